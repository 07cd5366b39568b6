//! Workspaces: a person's places to work, each with its agent servers, default agent and
//! settings. Header values of agent servers are write-only: answers name the headers but
//! show their values as empty strings, and an update that sends an empty value keeps the
//! stored one.

use std::collections::BTreeMap;

use ::http::StatusCode;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio_postgres::Row;
use uuid::Uuid;

use super::paging::{Key, Window};
use super::validate;
use crate::app::{App, User};
use crate::error::{Error, Result};
use crate::http::{self, Request, Response, query};

/// An agent server as stored, header values included.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct AgentServer {
    pub name: String,
    pub url: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// Knobs of one workspace.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// An agent call fails after this long without any progress.
    #[serde(default = "default_idle")]
    pub agent_idle_timeout_secs: u32,
    /// An agent call fails after this long whatever it reports.
    #[serde(default = "default_total")]
    pub agent_total_timeout_secs: u32,
}

fn default_idle() -> u32 {
    120
}

fn default_total() -> u32 {
    1800
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            agent_idle_timeout_secs: default_idle(),
            agent_total_timeout_secs: default_total(),
        }
    }
}

/// A workspace as the database holds it.
pub struct Workspace {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    pub agent_servers: Vec<AgentServer>,
    pub default_agent: Option<String>,
    pub settings: Settings,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

const COLUMNS: &str =
    "id, name, description, agent_servers, default_agent, settings, created_at, updated_at";

impl Workspace {
    fn from_row(row: &Row) -> Result<Workspace> {
        let servers: serde_json::Value = row.get(3);
        let settings: serde_json::Value = row.get(5);
        Ok(Workspace {
            id: row.get(0),
            name: row.get(1),
            description: row.get(2),
            agent_servers: serde_json::from_value(servers).map_err(Error::internal)?,
            default_agent: row.get(4),
            settings: serde_json::from_value(settings).unwrap_or_default(),
            created_at: row.get(6),
            updated_at: row.get(7),
        })
    }

    /// The answer shape: header values replaced by empty strings.
    fn to_json(&self) -> serde_json::Value {
        let servers: Vec<serde_json::Value> = self
            .agent_servers
            .iter()
            .map(|s| {
                let headers: BTreeMap<&str, &str> =
                    s.headers.keys().map(|k| (k.as_str(), "")).collect();
                serde_json::json!({"name": s.name, "url": s.url, "headers": headers})
            })
            .collect();
        serde_json::json!({
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "agent_servers": servers,
            "default_agent": self.default_agent,
            "settings": self.settings,
            "created_at": rfc3339(self.created_at),
            "updated_at": rfc3339(self.updated_at),
        })
    }
}

pub fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Loads a workspace of this user; anyone else's answers 404.
pub async fn load(app: &App, user: &User, ws: Uuid) -> Result<Workspace> {
    let db = app.db.get().await?;
    let sql = format!("SELECT {COLUMNS} FROM workspaces WHERE id = $1 AND owner_id = $2");
    let row = db
        .query_opt(&sql, &[&ws, &user.id])
        .await?
        .ok_or(Error::NotFound)?;
    Workspace::from_row(&row)
}

/// Fails with 404 unless the workspace is this user's.
pub async fn check_owner(app: &App, user: &User, ws: Uuid) -> Result<()> {
    let db = app.db.get().await?;
    let stmt = db
        .prepare_cached("SELECT 1 FROM workspaces WHERE id = $1 AND owner_id = $2")
        .await?;
    db.query_opt(&stmt, &[&ws, &user.id])
        .await?
        .map(|_| ())
        .ok_or(Error::NotFound)
}

pub async fn handle_list(app: &App, user: &User, req: &Request) -> Result<Response> {
    let window = Window::from_pairs(&query::parse(req.uri().query())?)?;
    let db = app.db.get().await?;
    let sql = format!(
        "SELECT {COLUMNS} FROM workspaces WHERE owner_id = $1 AND (created_at, id) < ($2, $3)
         ORDER BY created_at DESC, id DESC LIMIT $4"
    );
    let (after, fetch) = (&window.after, window.fetch());
    let rows = db
        .query(&sql, &[&user.id, &after.at, &after.id, &fetch])
        .await?;
    let items = rows
        .iter()
        .map(Workspace::from_row)
        .collect::<Result<Vec<_>>>()?;
    window.respond(
        items,
        |w| Key {
            at: w.created_at,
            id: w.id,
        },
        Workspace::to_json,
    )
}

pub async fn handle_get(app: &App, user: &User, ws: Uuid) -> Result<Response> {
    http::json(StatusCode::OK, &load(app, user, ws).await?.to_json())
}

/// What a create or update may carry; absent fields are left as they are.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceInput {
    name: Option<String>,
    description: Option<String>,
    agent_servers: Option<Vec<AgentServerInput>>,
    #[serde(default, deserialize_with = "validate::nullable")]
    default_agent: Option<Option<String>>,
    settings: Option<Settings>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AgentServerInput {
    name: String,
    url: String,
    #[serde(default)]
    headers: BTreeMap<String, Option<String>>,
}

const MAX_SERVERS: usize = 20;
const MAX_HEADERS: usize = 20;

/// Checks the servers and fills empty header values from the stored ones.
fn servers_from_input(
    input: Vec<AgentServerInput>,
    stored: &[AgentServer],
) -> Result<Vec<AgentServer>> {
    if input.len() > MAX_SERVERS {
        return Err(Error::bad_request(
            "too_many_servers",
            format!("at most {MAX_SERVERS} agent servers"),
        ));
    }
    let mut out: Vec<AgentServer> = Vec::with_capacity(input.len());
    for s in input {
        let name = validate::text("agent server name", &s.name, 100, false)?;
        if out.iter().any(|o| o.name == name) {
            return Err(Error::bad_request(
                "duplicate_server",
                format!("two agent servers are named {name}"),
            ));
        }
        let url = validate::server_url(&s.url)?;
        if s.headers.len() > MAX_HEADERS {
            return Err(Error::bad_request(
                "too_many_headers",
                format!("at most {MAX_HEADERS} headers per server"),
            ));
        }
        let old = stored.iter().find(|o| o.name == name);
        let mut headers = BTreeMap::new();
        for (key, value) in s.headers {
            let value = match value.filter(|v| !v.is_empty()) {
                Some(v) => v,
                None => old
                    .and_then(|o| o.headers.get(&key))
                    .cloned()
                    .unwrap_or_default(),
            };
            validate::server_header(&key, &value)?;
            headers.insert(key, value);
        }
        out.push(AgentServer { name, url, headers });
    }
    Ok(out)
}

fn check_settings(s: &Settings) -> Result<()> {
    let idle = 1..=3600;
    let total = 1..=86_400;
    if !idle.contains(&s.agent_idle_timeout_secs) || !total.contains(&s.agent_total_timeout_secs) {
        return Err(Error::bad_request(
            "invalid_settings",
            "agent_idle_timeout_secs must be 1 to 3600 and agent_total_timeout_secs 1 to 86400",
        ));
    }
    Ok(())
}

fn default_agent(value: Option<String>) -> Result<Option<String>> {
    value
        .map(|a| validate::text("default_agent", &a, 200, false))
        .transpose()
}

pub async fn handle_create(app: &App, user: &User, req: Request) -> Result<Response> {
    let input: WorkspaceInput = http::read_json(req).await?;
    let name = validate::text("name", input.name.as_deref().unwrap_or(""), 200, false)?;
    let description = validate::text(
        "description",
        input.description.as_deref().unwrap_or(""),
        2000,
        true,
    )?;
    let servers = servers_from_input(input.agent_servers.unwrap_or_default(), &[])?;
    let default_agent = default_agent(input.default_agent.flatten())?;
    let settings = input.settings.unwrap_or_default();
    check_settings(&settings)?;
    let db = app.db.get().await?;
    let sql = format!(
        "INSERT INTO workspaces (id, owner_id, name, description, agent_servers, default_agent, settings)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLUMNS}"
    );
    let servers_json = serde_json::to_value(&servers).map_err(Error::internal)?;
    let settings_json = serde_json::to_value(&settings).map_err(Error::internal)?;
    let row = db
        .query_one(
            &sql,
            &[
                &Uuid::new_v4(),
                &user.id,
                &name,
                &description,
                &servers_json,
                &default_agent,
                &settings_json,
            ],
        )
        .await?;
    http::json(StatusCode::CREATED, &Workspace::from_row(&row)?.to_json())
}

pub async fn handle_update(app: &App, user: &User, ws: Uuid, req: Request) -> Result<Response> {
    let input: WorkspaceInput = http::read_json(req).await?;
    let mut w = load(app, user, ws).await?;
    if let Some(name) = input.name {
        w.name = validate::text("name", &name, 200, false)?;
    }
    if let Some(description) = input.description {
        w.description = validate::text("description", &description, 2000, true)?;
    }
    if let Some(servers) = input.agent_servers {
        w.agent_servers = servers_from_input(servers, &w.agent_servers)?;
    }
    if let Some(agent) = input.default_agent {
        w.default_agent = default_agent(agent)?;
    }
    if let Some(settings) = input.settings {
        check_settings(&settings)?;
        w.settings = settings;
    }
    let db = app.db.get().await?;
    let sql = format!(
        "UPDATE workspaces SET name = $3, description = $4, agent_servers = $5, default_agent = $6,
         settings = $7, updated_at = now() WHERE id = $1 AND owner_id = $2 RETURNING {COLUMNS}"
    );
    let servers_json = serde_json::to_value(&w.agent_servers).map_err(Error::internal)?;
    let settings_json = serde_json::to_value(&w.settings).map_err(Error::internal)?;
    let row = db
        .query_opt(
            &sql,
            &[
                &ws,
                &user.id,
                &w.name,
                &w.description,
                &servers_json,
                &w.default_agent,
                &settings_json,
            ],
        )
        .await?
        .ok_or(Error::NotFound)?;
    http::json(StatusCode::OK, &Workspace::from_row(&row)?.to_json())
}

/// Deletes the workspace with its conversations, messages and files. Rows go first, in
/// one statement; the objects follow, and one that cannot be deleted now is logged (the
/// bucket listing under the workspace's prefix finds it later).
pub async fn handle_delete(app: &App, user: &User, ws: Uuid) -> Result<Response> {
    let db = app.db.get().await?;
    let row = db
        .query_one(
            "WITH gone AS (DELETE FROM workspaces WHERE id = $1 AND owner_id = $2 RETURNING id)
             SELECT (SELECT count(*) FROM gone),
                    array(SELECT storage_key FROM files WHERE workspace_id IN (SELECT id FROM gone)),
                    array(SELECT r.id FROM runs r JOIN conversations c ON c.id = r.conversation_id
                          WHERE c.workspace_id IN (SELECT id FROM gone) AND r.status = 'running')",
            &[&ws, &user.id],
        )
        .await?;
    drop(db);
    if row.get::<_, i64>(0) == 0 {
        return Err(Error::NotFound);
    }
    let keys: Vec<String> = row.get(1);
    crate::runs::cancel_all(app, &row.get::<_, Vec<Uuid>>(2)).await;
    for key in keys {
        if let Err(e) = app.store.delete(&key).await {
            log::warn!(target: "files", key = key.as_str(), error = e.to_string().as_str();
                "object of a deleted workspace left behind");
        }
    }
    Ok(http::no_content())
}

pub async fn handle_agents(app: &App, user: &User, ws: Uuid) -> Result<Response> {
    let w = load(app, user, ws).await?;
    crate::agents::list_agents(app, &w).await
}
