//! What can go wrong talking to an agent server, in words a person understands.
//!
//! Every variant names the server (its label and URL without query) so the
//! message stands on its own in the UI; [`McpError::kind`] gives the stable
//! snake_case reason for API error bodies and metric labels.

use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
pub enum McpError {
    /// No connection could be made, or it broke before a reply.
    Unreachable {
        server: String,
        reason: String,
    },
    /// Recent attempts failed; the next one is allowed after `retry_in`.
    BackingOff {
        server: String,
        reason: String,
        retry_in: Duration,
    },
    /// Nothing came from the server for the idle limit, or the call hit its hard cap.
    Timeout {
        server: String,
        after: Duration,
        idle: bool,
    },
    Cancelled {
        server: String,
    },
    /// The server broke the protocol (bad JSON, no common revision, a stream that ended early).
    Protocol {
        server: String,
        detail: String,
    },
    HttpStatus {
        server: String,
        status: u16,
        detail: String,
    },
    /// The server answered with a JSON-RPC error.
    Rpc {
        server: String,
        code: i64,
        message: String,
    },
    TooLarge {
        server: String,
        limit: usize,
    },
    /// The session was lost again right after it was replaced.
    SessionLost {
        server: String,
    },
}

impl McpError {
    /// A snake_case reason, stable for API bodies and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            McpError::Unreachable { .. } | McpError::BackingOff { .. } => "unreachable",
            McpError::Timeout { .. } => "timeout",
            McpError::Cancelled { .. } => "cancelled",
            McpError::Protocol { .. } => "protocol",
            McpError::HttpStatus { .. } => "http_status",
            McpError::Rpc { .. } => "rpc",
            McpError::TooLarge { .. } => "too_large",
            McpError::SessionLost { .. } => "session_lost",
        }
    }

    /// Same as [`McpError::kind`], under the name the API error bodies use.
    pub fn code(&self) -> &'static str {
        self.kind()
    }
}

impl std::fmt::Display for McpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            McpError::Unreachable { server, reason } => {
                write!(f, "agent server {server} is unreachable: {reason}")
            }
            McpError::BackingOff {
                server,
                reason,
                retry_in,
            } => write!(
                f,
                "agent server {server} is unreachable ({reason}); next attempt in {:.1} s",
                retry_in.as_secs_f64()
            ),
            McpError::Timeout {
                server,
                after,
                idle,
            } => {
                let what = if *idle {
                    "sent nothing for"
                } else {
                    "did not finish within"
                };
                write!(
                    f,
                    "agent server {server} {what} {:.0} s",
                    after.as_secs_f64()
                )
            }
            McpError::Cancelled { server } => {
                write!(f, "the call to agent server {server} was cancelled")
            }
            McpError::Protocol { server, detail } => {
                write!(f, "agent server {server} broke the MCP protocol: {detail}")
            }
            McpError::HttpStatus {
                server,
                status,
                detail,
            } if detail.is_empty() => write!(f, "agent server {server} answered HTTP {status}"),
            McpError::HttpStatus {
                server,
                status,
                detail,
            } => write!(f, "agent server {server} answered HTTP {status}: {detail}"),
            McpError::Rpc {
                server,
                code,
                message,
            } => write!(
                f,
                "agent server {server} reported an error ({code}): {message}"
            ),
            McpError::TooLarge { server, limit } => {
                write!(
                    f,
                    "agent server {server} sent a message larger than {limit} bytes"
                )
            }
            McpError::SessionLost { server } => write!(
                f,
                "agent server {server} dropped the session again right after it was renewed"
            ),
        }
    }
}

impl std::error::Error for McpError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_read_as_sentences_and_kinds_are_snake_case() {
        let error = McpError::Unreachable {
            server: "agents (http://127.0.0.1:1/mcp)".into(),
            reason: "connection refused".into(),
        };
        assert_eq!(
            error.to_string(),
            "agent server agents (http://127.0.0.1:1/mcp) is unreachable: connection refused"
        );
        assert_eq!(error.kind(), "unreachable");
        let timeout = McpError::Timeout {
            server: "a".into(),
            after: Duration::from_secs(30),
            idle: true,
        };
        assert_eq!(timeout.to_string(), "agent server a sent nothing for 30 s");
    }
}
