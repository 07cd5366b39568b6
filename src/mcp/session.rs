//! Opening and ending a connection to a server in the revision both sides speak.
//!
//! With the stateless revision on offer, `server/discover` comes first; a
//! server that does not know it (any HTTP or JSON-RPC error) is then asked
//! to `initialize` a session in the newest session revision.

use serde_json::{Value, json};

use super::McpError;
use super::exchange::{self, Ctx};
use super::jsonrpc::{self, Id};
use super::protocol::{self, STATELESS};
use super::transport::{self, Client, Endpoint, Verb, Wire};

/// A connection that is ready for requests.
#[derive(Debug, Clone, PartialEq)]
pub struct Established {
    pub version: String,
    /// `None` for the stateless revision and for servers that keep no session.
    pub session_id: Option<String>,
    pub server_name: String,
    pub server_version: String,
    pub instructions: Option<String>,
}

impl Established {
    pub fn stateless(&self) -> bool {
        protocol::is_stateless(&self.version)
    }

    /// Whether the server keeps state between calls: only a session it named does.
    pub fn keeps_memory(&self) -> bool {
        !self.stateless() && self.session_id.is_some()
    }

    pub fn wire(&self) -> Wire {
        Wire {
            session_id: self.session_id.clone(),
            version: Some(self.version.clone()),
        }
    }
}

/// Negotiates the revision and, for the session revisions, opens a session.
///
/// `versions` is in order of preference. When a session revision comes first, a session
/// is asked for first and the stateless revision is tried only if the server will not
/// open one; otherwise the stateless revision is tried first.
pub async fn open(
    ctx: &Ctx<'_>,
    versions: &[String],
    mut next_id: impl FnMut() -> Id,
) -> Result<Established, McpError> {
    let mut legacy: Vec<String> = versions
        .iter()
        .filter(|v| !protocol::is_stateless(v))
        .cloned()
        .collect();
    let offers_stateless = versions.iter().any(|v| v == STATELESS);
    let prefers_sessions = versions.first().is_some_and(|v| !protocol::is_stateless(v));
    if offers_stateless && prefers_sessions {
        if let Some(newest) = legacy.first() {
            match initialize(ctx, newest, versions, next_id()).await {
                Err(error) if falls_back(&error) => {}
                other => return other,
            }
        }
        legacy.clear();
    }
    if offers_stateless {
        match discover(ctx, next_id()).await {
            Ok(Discovered::Stateless(established)) => return Ok(established),
            Ok(Discovered::Legacy(theirs)) if !theirs.is_empty() => {
                legacy.retain(|v| theirs.contains(v))
            }
            Ok(Discovered::Legacy(_)) => {}
            Err(error) if !falls_back(&error) => return Err(error),
            Err(_) => {}
        }
    }
    let Some(newest) = legacy.first() else {
        return Err(McpError::Protocol {
            server: ctx.endpoint.display.clone(),
            detail: format!("it speaks none of the revisions {}", versions.join(", ")),
        });
    };
    initialize(ctx, newest, versions, next_id()).await
}

/// Errors that only say "this server does not speak the stateless revision".
fn falls_back(error: &McpError) -> bool {
    matches!(
        error,
        McpError::HttpStatus { .. } | McpError::Rpc { .. } | McpError::Protocol { .. }
    )
}

enum Discovered {
    Stateless(Established),
    /// The server answered but does not offer the stateless revision: these are its
    /// revisions (none when it answered without a list, as servers that echo an empty
    /// result for unknown methods do).
    Legacy(Vec<String>),
}

async fn discover(ctx: &Ctx<'_>, id: Id) -> Result<Discovered, McpError> {
    let wire = Wire {
        session_id: None,
        version: Some(STATELESS.to_owned()),
    };
    let answer = exchange::request(ctx, &wire, id, "server/discover", json!({})).await?;
    let theirs: Vec<String> = answer
        .result
        .get("supportedVersions")
        .and_then(Value::as_array)
        .map(|all| {
            all.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    if !theirs.iter().any(|v| v == STATELESS) {
        return Ok(Discovered::Legacy(theirs));
    }
    Ok(Discovered::Stateless(established(
        STATELESS,
        None,
        &answer.result,
    )))
}

async fn initialize(
    ctx: &Ctx<'_>,
    version: &str,
    ours: &[String],
    id: Id,
) -> Result<Established, McpError> {
    let params = protocol::initialize_params(version, ctx.features);
    let answer = exchange::request(ctx, &Wire::default(), id, "initialize", params).await?;
    let chosen = answer
        .result
        .get("protocolVersion")
        .and_then(Value::as_str)
        .unwrap_or("(none)");
    let chosen =
        protocol::accept_initialized(chosen, ours).map_err(|detail| McpError::Protocol {
            server: ctx.endpoint.display.clone(),
            detail,
        })?;
    let established = established(&chosen, answer.session_id, &answer.result);
    let initialized = jsonrpc::notification("notifications/initialized", json!({}));
    exchange::post_message(ctx.client, ctx.endpoint, &established.wire(), initialized).await?;
    Ok(established)
}

fn established(version: &str, session_id: Option<String>, result: &Value) -> Established {
    // The stateless revision moved serverInfo into `_meta`; servers differ in where they put it.
    let info = |key: &str| {
        let under_meta = format!("/_meta/io.modelcontextprotocol~1serverInfo/{key}");
        [format!("/serverInfo/{key}"), under_meta]
            .iter()
            .find_map(|path| result.pointer(path).and_then(Value::as_str))
            .unwrap_or("")
            .to_owned()
    };
    Established {
        version: version.to_owned(),
        session_id,
        server_name: info("name"),
        server_version: info("version"),
        instructions: result
            .get("instructions")
            .and_then(Value::as_str)
            .map(str::to_owned),
    }
}

/// Ends a session with DELETE. Servers may refuse (405) or have forgotten it already;
/// either way there is nothing more to do, so the outcome is only logged.
pub async fn close(client: &Client, endpoint: &Endpoint, established: &Established) {
    if established.session_id.is_none() {
        return;
    }
    match transport::send(client, endpoint, &established.wire(), Verb::Delete).await {
        Ok(response) => log::debug!(target: "mcp", server = endpoint.label.as_str(),
            status = response.status().as_u16(); "session ended"),
        Err(error) => log::debug!(target: "mcp", server = endpoint.label.as_str(),
            error = error.to_string().as_str(); "could not end a session"),
    }
}
