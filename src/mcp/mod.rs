//! The MCP client: how Daedalus talks to FastAgent agent servers over
//! Streamable HTTP.
//!
//! Layers, bottom up: [`sse`] and [`jsonrpc`] are pure parsers over bytes;
//! [`protocol`] knows what each MCP revision puts on the wire; `transport`
//! sends one HTTP request and reads its reply as a stream of messages;
//! `exchange` runs one JSON-RPC request to completion (progress, timeouts,
//! cancellation, resumption); `session` opens and renews MCP sessions; and
//! [`Pool`] is what the rest of the service calls.
//!
//! Conversation memory: a call carrying a `session_key` runs on that key's
//! own MCP session, so the agent remembers earlier turns. When that session
//! is new (first call, replaced after loss, or the server keeps no session) the
//! agent remembers nothing; [`ToolCall::fresh_arguments`] then replaces
//! `arguments`, so the caller can put the stored transcript in front of the
//! message without knowing in advance which case applies, and
//! [`ToolOutcome::fresh_session`] says which one was sent.

mod backoff;
pub mod content;
mod error;
mod exchange;
pub mod jsonrpc;
mod listener;
mod pool;
pub mod protocol;
pub mod server_requests;
mod session;
pub mod sse;
mod transport;

use std::time::Duration;

pub use backoff::Policy as BackoffPolicy;
pub use content::Content;
pub use error::McpError;
pub use pool::Pool;

/// One configured agent server.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServerSpec {
    /// The name the workspace gives the server; used in metrics and messages.
    pub label: String,
    pub url: String,
    /// Extra request headers (for example `Authorization`); never logged.
    pub headers: Vec<(String, String)>,
}

/// How long a call may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Longest silence from the server; every message from it (progress above all) restarts it.
    pub idle: Duration,
    /// Hard cap for the whole call, however lively the server is.
    pub total: Duration,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts {
            idle: Duration::from_secs(120),
            total: Duration::from_secs(1800),
        }
    }
}

/// Settings shared by every server the pool talks to.
#[derive(Debug, Clone)]
pub struct PoolOptions {
    /// Revisions to offer, newest first; the newest one the server also speaks is used.
    pub protocol_versions: Vec<String>,
    /// Largest JSON body or SSE event accepted from a server.
    pub max_message_bytes: usize,
    /// Timeouts for connecting and listing tools in [`Pool::discover`].
    pub discover_timeouts: Timeouts,
    /// Sessions kept per server; beyond it the least recently used one is ended.
    pub max_sessions_per_server: usize,
    pub backoff: BackoffPolicy,
    /// Declare elicitation and accept every form with its defaults (conformance client only).
    pub elicitation_with_defaults: bool,
}

impl Default for PoolOptions {
    fn default() -> PoolOptions {
        PoolOptions {
            protocol_versions: protocol::SUPPORTED.iter().map(|v| v.to_string()).collect(),
            max_message_bytes: 16 << 20,
            discover_timeouts: Timeouts {
                idle: Duration::from_secs(15),
                total: Duration::from_secs(30),
            },
            max_sessions_per_server: 1000,
            backoff: BackoffPolicy::default(),
            elicitation_with_defaults: false,
        }
    }
}

/// What [`Pool::discover`] learns about a server.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerInfo {
    pub protocol_version: String,
    /// True for the 2026-07-28 revision: no session, so no agent memory between calls.
    pub stateless: bool,
    pub name: String,
    pub version: String,
    pub instructions: Option<String>,
    pub tools: Vec<ToolInfo>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ToolInfo {
    pub name: String,
    pub description: Option<String>,
    pub input_schema: serde_json::Value,
}

/// One `tools/call`.
#[derive(Debug)]
pub struct ToolCall {
    pub tool: String,
    pub arguments: serde_json::Value,
    /// Sent instead of `arguments` when the call runs on a session with no earlier
    /// turns (see the module documentation); `None` sends `arguments` either way.
    pub fresh_arguments: Option<serde_json::Value>,
    /// Conversation id: each conversation keeps its own MCP session (its own agent memory).
    pub session_key: Option<uuid::Uuid>,
    pub timeouts: Timeouts,
    /// Receives every progress notification of this call, in arrival order.
    pub progress: Option<tokio::sync::mpsc::UnboundedSender<Progress>>,
    pub cancel: tokio_util::sync::CancellationToken,
}

impl ToolCall {
    /// A call with default timeouts, no session key, no progress and no cancellation.
    pub fn new(tool: impl Into<String>, arguments: serde_json::Value) -> ToolCall {
        ToolCall {
            tool: tool.into(),
            arguments,
            fresh_arguments: None,
            session_key: None,
            timeouts: Timeouts::default(),
            progress: None,
            cancel: tokio_util::sync::CancellationToken::new(),
        }
    }
}

/// One progress notification; values may go down (FastAgent chains restart their count).
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    pub progress: f64,
    pub total: Option<f64>,
    pub message: Option<String>,
}

/// A tool's result.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolOutcome {
    pub content: Vec<Content>,
    /// The tool itself reported failure (the call still worked).
    pub is_error: bool,
    pub structured: Option<serde_json::Value>,
    /// True when this call ran on a session with no earlier turns (new, replaced
    /// after loss, or a server that keeps no session): `fresh_arguments` were sent if given.
    pub fresh_session: bool,
    pub protocol_version: String,
}
