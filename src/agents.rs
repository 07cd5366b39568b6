//! The agents of a workspace: every tool that its MCP servers publish (FastAgent makes
//! each agent one tool taking `{"message"}`). Discovery results are cached briefly per
//! server, so listing agents and sending messages do not ask the servers every time.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ::http::StatusCode;
use serde_json::json;

use crate::api::workspaces::{AgentServer, Workspace};
use crate::app::App;
use crate::error::{Error, Result};
use crate::http::{self, Response};
use crate::mcp::{ServerInfo, ServerSpec};

/// How long a discovery answer (or failure) is reused.
const TTL: Duration = Duration::from_secs(5);

/// What discovery found on a server, or why it failed.
type Answer = std::result::Result<ServerInfo, String>;

/// Discovery answers by server URL and headers.
#[derive(Default)]
pub struct Cache {
    entries: Mutex<HashMap<String, (Instant, Answer)>>,
}

pub fn spec(server: &AgentServer) -> ServerSpec {
    ServerSpec {
        label: server.name.clone(),
        url: server.url.clone(),
        headers: server
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}

fn cache_key(spec: &ServerSpec) -> String {
    let mut key = spec.url.clone();
    for (k, v) in &spec.headers {
        key.push('\n');
        key.push_str(k);
        key.push(':');
        key.push_str(v);
    }
    key
}

impl Cache {
    /// The server's tools, from the cache when fresh.
    pub async fn discover(
        &self,
        app: &App,
        spec: &ServerSpec,
    ) -> std::result::Result<ServerInfo, String> {
        let key = cache_key(spec);
        if let Some(hit) = self.fresh(&key) {
            return hit;
        }
        let result = app.mcp.discover(spec).await.map_err(|e| e.to_string());
        let mut entries = self
            .entries
            .lock()
            .expect("agent cache lock is never poisoned");
        entries.retain(|_, (at, _)| at.elapsed() < TTL);
        entries.insert(key, (Instant::now(), result.clone()));
        result
    }

    fn fresh(&self, key: &str) -> Option<std::result::Result<ServerInfo, String>> {
        let entries = self
            .entries
            .lock()
            .expect("agent cache lock is never poisoned");
        entries
            .get(key)
            .filter(|(at, _)| at.elapsed() < TTL)
            .map(|(_, r)| r.clone())
    }

    /// Forgets a server's answer, e.g. after a call found it changed or gone.
    pub fn invalidate(&self, spec: &ServerSpec) {
        self.entries
            .lock()
            .expect("agent cache lock is never poisoned")
            .remove(&cache_key(spec));
    }
}

/// Asks every server of the workspace at once.
async fn discover_all(
    app: &App,
    w: &Workspace,
) -> Vec<(ServerSpec, std::result::Result<ServerInfo, String>)> {
    let specs: Vec<ServerSpec> = w.agent_servers.iter().map(spec).collect();
    let answers =
        futures_util::future::join_all(specs.iter().map(|s| app.agents.discover(app, s))).await;
    specs.into_iter().zip(answers).collect()
}

/// `GET /api/workspaces/{ws}/agents`.
pub async fn list_agents(app: &App, w: &Workspace) -> Result<Response> {
    let servers: Vec<serde_json::Value> = discover_all(app, w)
        .await
        .into_iter()
        .map(|(spec, answer)| match answer {
            Ok(info) => json!({
                "name": spec.label, "url": spec.url, "reachable": true,
                "protocol_version": info.protocol_version, "server_name": info.name,
                "agents": info.tools.iter().filter(|t| !t.name.ends_with("_fan_in")).map(|t| json!({
                    "name": t.name, "description": t.description,
                })).collect::<Vec<_>>(),
            }),
            Err(error) => json!({
                "name": spec.label, "url": spec.url, "reachable": false, "error": error, "agents": [],
            }),
        })
        .collect();
    http::json(StatusCode::OK, &json!({"servers": servers}))
}

/// The server and tool that run `agent` in this workspace. `agent` is a tool name, or
/// `server/tool` to pick one server when several publish the same name. Without a
/// name, the first agent of the first reachable server answers.
pub async fn resolve(
    app: &App,
    w: &Workspace,
    agent: Option<&str>,
) -> Result<(ServerSpec, String)> {
    let (server_name, tool) = match agent.map(|a| a.split_once('/')) {
        Some(Some((s, t))) => (Some(s), Some(t)),
        Some(None) => (None, agent),
        None => (None, None),
    };
    let mut reasons = Vec::new();
    for (spec, answer) in discover_all(app, w).await {
        if server_name.is_some_and(|s| s != spec.label) {
            continue;
        }
        match answer {
            Ok(info) => {
                let found = info
                    .tools
                    .iter()
                    .find(|t| tool.is_none_or(|name| t.name == name));
                if let Some(t) = found {
                    let name = t.name.clone();
                    return Ok((spec, name));
                }
            }
            Err(e) => reasons.push(e),
        }
    }
    if w.agent_servers.is_empty() {
        return Err(Error::bad_request(
            "no_agent_servers",
            "this workspace has no agent servers; add one first",
        ));
    }
    if !reasons.is_empty() {
        return Err(Error::unavailable("agent_unreachable", reasons.join("; ")));
    }
    let name = agent.unwrap_or("any agent");
    Err(Error::bad_request(
        "unknown_agent",
        format!("no agent server of this workspace offers {name}"),
    ))
}
