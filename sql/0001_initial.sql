-- Daedalus data model, first version.
-- Every list the API serves has an index that matches its order and filter.

CREATE TABLE users (
    id          uuid PRIMARY KEY,
    -- The name the SSO proxy puts in the identity header ("local" in development).
    external_id text NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE workspaces (
    id            uuid PRIMARY KEY,
    owner_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name          text NOT NULL,
    description   text NOT NULL DEFAULT '',
    -- [{"name", "url", "headers": {"Name": "value"}}]; header values never leave the server.
    agent_servers jsonb NOT NULL DEFAULT '[]',
    default_agent text,
    -- Per-workspace knobs, e.g. agent timeouts.
    settings      jsonb NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX workspaces_owner_newest ON workspaces (owner_id, created_at DESC, id DESC);

CREATE TABLE user_preferences (
    user_id              uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    theme                text NOT NULL DEFAULT 'system' CHECK (theme IN ('light', 'dark', 'system')),
    default_workspace_id uuid REFERENCES workspaces (id) ON DELETE SET NULL,
    updated_at           timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE conversations (
    id           uuid PRIMARY KEY,
    workspace_id uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    title        text NOT NULL,
    agent        text,
    archived     boolean NOT NULL DEFAULT false,
    -- Next message sequence number; taken with UPDATE ... RETURNING.
    next_seq     bigint NOT NULL DEFAULT 1,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX conversations_workspace_newest
    ON conversations (workspace_id, updated_at DESC, id DESC);

CREATE TABLE files (
    id           uuid PRIMARY KEY,
    workspace_id uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name         text NOT NULL,
    content_type text NOT NULL,
    size         bigint NOT NULL CHECK (size >= 0),
    sha256       text NOT NULL,
    storage_key  text NOT NULL UNIQUE,
    uploaded_by  uuid REFERENCES users (id) ON DELETE SET NULL,
    -- 'upload' from a person, 'agent' when an agent produced it.
    origin       text NOT NULL DEFAULT 'upload' CHECK (origin IN ('upload', 'agent')),
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX files_workspace_newest ON files (workspace_id, created_at DESC, id DESC);

-- Running Daedalus processes; a run whose instance stopped beating is failed by another.
CREATE TABLE instances (
    id           uuid PRIMARY KEY,
    started_at   timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE runs (
    id                   uuid PRIMARY KEY,
    conversation_id      uuid NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    agent                text NOT NULL,
    status               text NOT NULL DEFAULT 'running'
                         CHECK (status IN ('running', 'completed', 'failed', 'cancelled')),
    cancel_requested     boolean NOT NULL DEFAULT false,
    -- The instance executing the run.
    instance_id          uuid NOT NULL,
    created_at           timestamptz NOT NULL DEFAULT now(),
    finished_at          timestamptz
);
CREATE INDEX runs_conversation ON runs (conversation_id, created_at DESC);
CREATE INDEX runs_running ON runs (status) WHERE status = 'running';

CREATE TABLE messages (
    id              uuid PRIMARY KEY,
    conversation_id uuid NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    seq             bigint NOT NULL,
    role            text NOT NULL CHECK (role IN ('user', 'assistant')),
    content         text NOT NULL,
    -- The agent's full answer as MCP content blocks (text, images, resources, ...).
    parts           jsonb NOT NULL DEFAULT '[]',
    status          text NOT NULL CHECK (status IN ('complete', 'pending', 'failed', 'cancelled')),
    error           jsonb,
    agent           text,
    run_id          uuid REFERENCES runs (id) ON DELETE SET NULL,
    file_ids        uuid[] NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (conversation_id, seq)
);

CREATE TABLE run_events (
    run_id     uuid NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    seq        integer NOT NULL,
    type       text NOT NULL,
    data       jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, seq)
);
