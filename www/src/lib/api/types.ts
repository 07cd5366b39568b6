/**
 * The shapes the daedalus HTTP API answers with (DESIGN.md, "HTTP API").
 * Fields may be added by the server, never renamed.
 */

export interface ErrorBody {
  error: { code: string; message: string };
}

export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

export type Theme = "light" | "dark" | "system";

export interface Preferences {
  theme: Theme;
  default_workspace_id: string | null;
}

export interface Me {
  id: string;
  name: string;
  preferences: Preferences;
}

/** Header values are write-only: the server answers each name with "". */
export interface AgentServer {
  name: string;
  url: string;
  headers?: Record<string, string>;
}

export interface Workspace {
  id: string;
  name: string;
  description: string;
  agent_servers: AgentServer[];
  default_agent: string | null;
  created_at: string;
  updated_at: string;
}

/**
 * What the app sends for an agent server. A header value of `null` keeps the
 * value already stored for that header of the server with the same name;
 * a header left out is removed.
 */
export interface AgentServerInput {
  name: string;
  url: string;
  headers?: Record<string, string | null>;
}

export interface WorkspaceInput {
  name: string;
  description: string;
  agent_servers: AgentServerInput[];
  default_agent: string | null;
}

export interface Agent {
  name: string;
  description: string;
}

export interface AgentServerStatus {
  name: string;
  url: string;
  reachable: boolean;
  protocol_version?: string;
  error?: string;
  agents: Agent[];
}

export interface AgentsReport {
  servers: AgentServerStatus[];
}

export interface Conversation {
  id: string;
  workspace_id: string;
  title: string;
  agent: string;
  archived: boolean;
  created_at: string;
  updated_at: string;
}

export interface RunError {
  code: string;
  message: string;
}

export type MessageStatus = "complete" | "pending" | "failed" | "cancelled";

export interface Message {
  id: string;
  conversation_id: string;
  role: "user" | "assistant";
  content: string;
  status: MessageStatus;
  /** Why the run failed; older records may hold only a sentence. */
  error: RunError | string | null;
  agent: string | null;
  run_id: string | null;
  file_ids: string[];
  created_at: string;
}

export interface MessageInput {
  content: string;
  agent?: string;
  file_ids?: string[];
}

export interface StoredFile {
  id: string;
  workspace_id: string;
  name: string;
  content_type: string;
  size: number;
  sha256: string;
  created_at: string;
}

/** The events of one agent run, as sent on its event stream. */
export type RunEvent =
  | {
      type: "run.started";
      run_id: string;
      user_message: Message;
      assistant_message: Message;
    }
  | { type: "progress"; progress: number; total?: number; message?: string }
  | { type: "message.completed"; message: Message }
  | { type: "run.failed"; error: RunError; message: Message }
  | { type: "run.cancelled"; message?: Message };

export type TelemetryEvent =
  | {
      type: "exception";
      kind: "error" | "unhandledrejection";
      message?: string;
    }
  | {
      type: "web_vital";
      name: "LCP" | "INP" | "CLS" | "FCP" | "TTFB";
      value: number;
    }
  | { type: "feature"; feature: string };
