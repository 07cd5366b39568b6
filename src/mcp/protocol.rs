//! MCP revisions and what each one puts on the wire besides the JSON-RPC
//! body: which revision to pick, the `initialize` parameters of the
//! session revisions, and the per-request `_meta` envelope and routing
//! headers of the stateless 2026-07-28 revision.

use serde_json::{Map, Value, json};

/// The stateless revision: no `initialize`, no session, everything per request.
pub const STATELESS: &str = "2026-07-28";

/// Every revision this client speaks, newest first.
pub const SUPPORTED: [&str; 4] = [STATELESS, "2025-11-25", "2025-06-18", "2025-03-26"];

const META_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
const META_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
const META_CLIENT_INFO: &str = "io.modelcontextprotocol/clientInfo";

pub fn is_stateless(version: &str) -> bool {
    version == STATELESS
}

/// What the client offers to servers; only what it can really answer is declared.
#[derive(Debug, Clone, Default)]
pub struct ClientFeatures {
    /// Answer `elicitation/create` by accepting the form with its schema defaults.
    pub elicitation_with_defaults: bool,
}

impl ClientFeatures {
    pub fn capabilities(&self) -> Value {
        let mut capabilities = Map::new();
        if self.elicitation_with_defaults {
            capabilities.insert("elicitation".into(), json!({}));
        }
        Value::Object(capabilities)
    }
}

pub fn client_info() -> Value {
    json!({"name": "daedalus", "version": env!("CARGO_PKG_VERSION")})
}

pub fn initialize_params(version: &str, features: &ClientFeatures) -> Value {
    json!({
        "protocolVersion": version,
        "capabilities": features.capabilities(),
        "clientInfo": client_info(),
    })
}

/// Adds the stateless envelope to a request's `params._meta`, keeping what is there.
pub fn with_envelope(params: Value, features: &ClientFeatures) -> Value {
    let mut params = into_object(params);
    let meta = params
        .entry("_meta")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(meta) = meta {
        meta.insert(META_VERSION.into(), json!(STATELESS));
        meta.insert(META_CAPABILITIES.into(), features.capabilities());
        meta.insert(META_CLIENT_INFO.into(), client_info());
    }
    Value::Object(params)
}

/// Adds `_meta.progressToken` so the server reports progress for this request.
pub fn with_progress_token(params: Value, token: Value) -> Value {
    let mut params = into_object(params);
    let meta = params
        .entry("_meta")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(meta) = meta {
        meta.insert("progressToken".into(), token);
    }
    Value::Object(params)
}

fn into_object(params: Value) -> Map<String, Value> {
    match params {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// The `Mcp-Name` routing header of the stateless revision: what the request acts on.
pub fn routing_name(method: &str, params: &Value) -> Option<String> {
    let key = match method {
        "tools/call" | "prompts/get" => "name",
        "resources/read" | "resources/subscribe" | "resources/unsubscribe" => "uri",
        _ => return None,
    };
    params.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// The newest revision both sides speak, from a `server/discover` answer.
pub fn pick_from_discovered<'a>(theirs: &[String], ours: &'a [String]) -> Option<&'a String> {
    ours.iter().find(|version| theirs.contains(version))
}

/// Checks the revision a server chose in its `initialize` answer.
pub fn accept_initialized(chosen: &str, ours: &[String]) -> Result<String, String> {
    if ours.iter().any(|version| version == chosen) && !is_stateless(chosen) {
        return Ok(chosen.to_owned());
    }
    Err(format!(
        "it answered with protocol revision \"{chosen}\", which this client does not speak ({})",
        ours.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ours() -> Vec<String> {
        SUPPORTED.iter().map(|v| v.to_string()).collect()
    }

    #[test]
    fn newest_common_revision_wins() {
        let theirs = vec!["2025-06-18".to_string(), "2025-11-25".to_string()];
        assert_eq!(
            pick_from_discovered(&theirs, &ours()).map(String::as_str),
            Some("2025-11-25")
        );
        assert_eq!(pick_from_discovered(&["1999-01-01".into()], &ours()), None);
    }

    #[test]
    fn unknown_initialize_answer_is_a_readable_error() {
        assert_eq!(
            accept_initialized("2025-06-18", &ours()),
            Ok("2025-06-18".into())
        );
        let error = accept_initialized("2024-11-05", &ours()).expect_err("too old");
        assert!(error.contains("\"2024-11-05\""), "{error}");
    }

    #[test]
    fn envelope_and_progress_token_keep_existing_meta() {
        let params = json!({"name": "echo", "_meta": {"trace": 1}});
        let params =
            with_progress_token(with_envelope(params, &ClientFeatures::default()), json!(4));
        let meta = &params["_meta"];
        assert_eq!(meta["trace"], 1);
        assert_eq!(meta["progressToken"], 4);
        assert_eq!(meta[META_VERSION], STATELESS);
        assert_eq!(meta[META_CAPABILITIES], json!({}));
        assert_eq!(routing_name("tools/call", &params).as_deref(), Some("echo"));
        assert_eq!(routing_name("tools/list", &params), None);
    }
}
