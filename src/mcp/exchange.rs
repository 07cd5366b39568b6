//! One JSON-RPC request carried to its answer.
//!
//! Around the POST and its reply stream this adds what a long agent call
//! needs: progress forwarded as it comes, an idle timeout restarted by every
//! message with a hard cap above it, cancellation (telling the server, or
//! in the stateless revision just closing the stream, which also covers
//! servers that never close theirs), answers to the server's own requests,
//! and resumption of a dropped stream with `Last-Event-ID`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::mpsc::UnboundedSender;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::jsonrpc::{self, Id, Incoming, Router, RpcError};
use super::protocol::{self, ClientFeatures};
use super::server_requests;
use super::transport::{self, Client, Endpoint, MessageStream, ReadError, Verb, Wire};
use super::{McpError, Progress, Timeouts};

/// How many times in a row a stream may be resumed without yielding a message.
const MAX_RESUMPTIONS: u32 = 3;
/// Wait before resuming when the server gave event ids but no `retry`.
const DEFAULT_RETRY: Duration = Duration::from_secs(1);
/// Error bodies are quoted up to this many bytes.
const EXCERPT_BYTES: usize = 300;

/// Everything one request needs besides its method and parameters.
pub struct Ctx<'a> {
    pub client: &'a Client,
    pub endpoint: &'a Arc<Endpoint>,
    pub features: &'a ClientFeatures,
    pub router: &'a Router,
    pub max_message_bytes: usize,
    pub timeouts: Timeouts,
    pub cancel: &'a CancellationToken,
    pub progress: Option<&'a UnboundedSender<Progress>>,
}

/// A request's result, with the session id its HTTP response carried.
pub struct Answer {
    pub result: Value,
    pub session_id: Option<String>,
}

/// When an unanswered request gives up: the earlier of the idle and the total limit.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    started: Instant,
    last_activity: Instant,
    timeouts: Timeouts,
}

impl Deadline {
    pub fn new(now: Instant, timeouts: Timeouts) -> Deadline {
        Deadline {
            started: now,
            last_activity: now,
            timeouts,
        }
    }

    pub fn touch(&mut self, now: Instant) {
        self.last_activity = now;
    }

    pub fn at(&self) -> Instant {
        (self.last_activity + self.timeouts.idle).min(self.started + self.timeouts.total)
    }

    fn error(&self, server: &str) -> McpError {
        let idle = self.last_activity + self.timeouts.idle < self.started + self.timeouts.total;
        McpError::Timeout {
            server: server.to_owned(),
            after: if idle {
                self.timeouts.idle
            } else {
                self.timeouts.total
            },
            idle,
        }
    }
}

/// Sends `method` and waits for its answer; records the request metrics.
pub async fn request(
    ctx: &Ctx<'_>,
    wire: &Wire,
    id: Id,
    method: &str,
    params: Value,
) -> Result<Answer, McpError> {
    let started = std::time::Instant::now();
    let waiter = ctx.router.register(id.clone());
    let result = Request { ctx, wire, id: &id }
        .run(method, params, waiter)
        .await;
    ctx.router.forget(&id);
    let metrics = crate::metrics::get();
    let outcome = result.as_ref().map_or_else(McpError::kind, |_| "ok");
    let label = ctx.endpoint.label.as_str();
    metrics
        .mcp_requests
        .with_label_values(&[label, method, outcome])
        .inc();
    metrics
        .mcp_duration
        .with_label_values(&[label, method])
        .observe(started.elapsed().as_secs_f64());
    result
}

struct Request<'a, 'c> {
    ctx: &'a Ctx<'c>,
    wire: &'a Wire,
    id: &'a Id,
}

impl Request<'_, '_> {
    async fn run(
        &self,
        method: &str,
        params: Value,
        mut waiter: tokio::sync::oneshot::Receiver<jsonrpc::Reply>,
    ) -> Result<Answer, McpError> {
        let mut deadline = Deadline::new(Instant::now(), self.ctx.timeouts);
        let verb = self.post_verb(method, params);
        let response = self
            .guard(
                &mut deadline,
                transport::send(self.ctx.client, self.ctx.endpoint, self.wire, verb),
            )
            .await??;
        let session_id = response
            .headers()
            .get(transport::SESSION_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let response = self.check_status(response).await?;
        let mut stream = self.open_stream(response)?;
        let result = self.read(&mut stream, &mut deadline, &mut waiter).await?;
        Ok(Answer { result, session_id })
    }

    fn post_verb(&self, method: &str, mut params: Value) -> Verb {
        let stateless = self
            .wire
            .version
            .as_deref()
            .is_some_and(protocol::is_stateless);
        if self.ctx.progress.is_some() {
            params = protocol::with_progress_token(params, self.id.to_value());
        }
        let routing = stateless.then(|| {
            params = protocol::with_envelope(params.clone(), self.ctx.features);
            (method.to_owned(), protocol::routing_name(method, &params))
        });
        let body = jsonrpc::request(self.id, method, params);
        Verb::Post {
            body: Bytes::from(body.to_string()),
            routing,
        }
    }

    /// Runs `step` unless the call is cancelled or its deadline passes first.
    async fn guard<T>(
        &self,
        deadline: &mut Deadline,
        step: impl Future<Output = T>,
    ) -> Result<T, McpError> {
        tokio::select! {
            biased;
            _ = self.ctx.cancel.cancelled() => Err(self.abandon(McpError::Cancelled {
                server: self.server(),
            })),
            _ = tokio::time::sleep_until(deadline.at()) => {
                Err(self.abandon(deadline.error(&self.server())))
            }
            value = step => Ok(value),
        }
    }

    async fn check_status(
        &self,
        response: http::Response<hyper::body::Incoming>,
    ) -> Result<http::Response<hyper::body::Incoming>, McpError> {
        let status = response.status().as_u16();
        if status == 200 {
            return Ok(response);
        }
        let detail = transport::excerpt(response, EXCERPT_BYTES).await;
        if self.wire.session_id.is_some() && session_is_gone(status, &detail) {
            return Err(McpError::SessionLost {
                server: self.server(),
            });
        }
        Err(McpError::HttpStatus {
            server: self.server(),
            status,
            detail,
        })
    }

    fn open_stream(
        &self,
        response: http::Response<hyper::body::Incoming>,
    ) -> Result<MessageStream, McpError> {
        MessageStream::new(response, self.ctx.max_message_bytes).map_err(|content_type| {
            McpError::Protocol {
                server: self.server(),
                detail: format!("it replied with content type {content_type:?}"),
            }
        })
    }

    async fn read(
        &self,
        stream: &mut MessageStream,
        deadline: &mut Deadline,
        waiter: &mut tokio::sync::oneshot::Receiver<jsonrpc::Reply>,
    ) -> Result<Value, McpError> {
        let mut resumptions = 0;
        let mut last_event_id = None;
        loop {
            let item = tokio::select! {
                biased;
                _ = self.ctx.cancel.cancelled() => {
                    return Err(self.abandon(McpError::Cancelled { server: self.server() }));
                }
                Ok(reply) = &mut *waiter => return self.reply(reply),
                _ = tokio::time::sleep_until(deadline.at()) => {
                    return Err(self.abandon(deadline.error(&self.server())));
                }
                item = stream.next() => item,
            };
            match item {
                Ok(Some(message)) => {
                    deadline.touch(Instant::now());
                    resumptions = 0;
                    if let Some(reply) = self.handle(message) {
                        return self.reply(reply);
                    }
                }
                Ok(None) | Err(ReadError::Broken(_)) => {
                    let (id, retry) = stream.resume_point();
                    last_event_id = id.or(last_event_id);
                    let resumable = last_event_id
                        .clone()
                        .filter(|_| resumptions < MAX_RESUMPTIONS);
                    let Some(from) = resumable else {
                        return Err(self.ended_early(item));
                    };
                    resumptions += 1;
                    *stream = self.resume(deadline, from, retry).await?;
                }
                Err(error) => return Err(self.abandon(self.unreadable(error))),
            }
        }
    }

    fn unreadable(&self, error: ReadError) -> McpError {
        match error {
            ReadError::TooLarge(limit) => McpError::TooLarge {
                server: self.server(),
                limit,
            },
            ReadError::Malformed(detail) | ReadError::Broken(detail) => McpError::Protocol {
                server: self.server(),
                detail,
            },
        }
    }

    fn ended_early(&self, item: Result<Option<Incoming>, ReadError>) -> McpError {
        match item {
            Err(ReadError::Broken(reason)) => McpError::Unreachable {
                server: self.server(),
                reason: format!("the connection broke before the answer ({reason})"),
            },
            _ => McpError::Protocol {
                server: self.server(),
                detail: "its reply ended before the answer".into(),
            },
        }
    }

    /// Reconnects with GET and `Last-Event-ID` after the delay the server asked for.
    async fn resume(
        &self,
        deadline: &mut Deadline,
        last_event_id: String,
        retry: Option<Duration>,
    ) -> Result<MessageStream, McpError> {
        let delay = retry.unwrap_or(DEFAULT_RETRY);
        log::debug!(target: "mcp", server = self.ctx.endpoint.label.as_str(),
            delay_ms = delay.as_millis() as u64; "resuming a dropped stream");
        self.guard(deadline, tokio::time::sleep(delay)).await?;
        let verb = Verb::Resume { last_event_id };
        let send = transport::send(self.ctx.client, self.ctx.endpoint, self.wire, verb);
        let response = self.guard(deadline, send).await??;
        let response = self.check_status(response).await?;
        self.open_stream(response)
    }

    /// Deals with one message; returns the answer when it is ours.
    fn handle(&self, message: Incoming) -> Option<jsonrpc::Reply> {
        match message {
            Incoming::Response {
                id: Some(id),
                reply,
            } if id == *self.id => Some(reply),
            Incoming::Response {
                id: Some(id),
                reply,
            } => {
                if !self.ctx.router.deliver(&id, reply) {
                    log::debug!(target: "mcp", server = self.ctx.endpoint.label.as_str();
                        "ignored a reply nobody waits for");
                }
                None
            }
            // The server could not say which request failed; on this stream it can only be ours.
            Incoming::Response { id: None, reply } => reply.is_err().then_some(reply),
            Incoming::Notification { method, params } => {
                if method == "notifications/progress" {
                    self.forward_progress(&params);
                }
                None
            }
            Incoming::Request { id, method, params } => {
                self.answer_server(id, &method, &params);
                None
            }
        }
    }

    fn forward_progress(&self, params: &Value) {
        let Some(sender) = self.ctx.progress else {
            return;
        };
        if params.get("progressToken") != Some(&self.id.to_value()) {
            return;
        }
        let Some(progress) = params.get("progress").and_then(Value::as_f64) else {
            return;
        };
        // A caller that stopped listening does not stop the call.
        let _ = sender.send(Progress {
            progress,
            total: params.get("total").and_then(Value::as_f64),
            message: params
                .get("message")
                .and_then(Value::as_str)
                .map(str::to_owned),
        });
    }

    fn answer_server(&self, id: Value, method: &str, params: &Value) {
        let answer = server_requests::answer(id, method, params, self.ctx.features);
        self.post_in_background(answer, "answer to a server request");
    }

    fn reply(&self, reply: jsonrpc::Reply) -> Result<Value, McpError> {
        reply.map_err(|RpcError { code, message, .. }| McpError::Rpc {
            server: self.server(),
            code,
            message,
        })
    }

    /// Gives up on the request; the server is told where the revision has a way to.
    fn abandon(&self, error: McpError) -> McpError {
        let stateless = self
            .wire
            .version
            .as_deref()
            .is_some_and(protocol::is_stateless);
        if !stateless {
            let reason = error.to_string();
            let params = json!({"requestId": self.id.to_value(), "reason": reason});
            let notice = jsonrpc::notification("notifications/cancelled", params);
            self.post_in_background(notice, "cancellation notice");
        }
        error
    }

    fn post_in_background(&self, message: Value, what: &'static str) {
        let client = self.ctx.client.clone();
        let endpoint = self.ctx.endpoint.clone();
        let wire = self.wire.clone();
        tokio::spawn(async move {
            if let Err(error) = post_message(&client, &endpoint, &wire, message).await {
                log::debug!(target: "mcp", server = endpoint.label.as_str(), what = what,
                    error = error.to_string().as_str(); "could not deliver a message");
            }
        });
    }

    fn server(&self) -> String {
        self.ctx.endpoint.display.clone()
    }
}

/// Whether an error status on a request with a session id means the session is gone:
/// 404 per the specification, or the reference server's 400 naming the session.
pub fn session_is_gone(status: u16, body: &str) -> bool {
    status == 404 || (status == 400 && body.to_ascii_lowercase().contains("session"))
}

/// Posts a notification or a response and checks the acknowledgement.
pub async fn post_message(
    client: &Client,
    endpoint: &Endpoint,
    wire: &Wire,
    message: Value,
) -> Result<(), McpError> {
    let verb = Verb::Post {
        body: Bytes::from(message.to_string()),
        routing: None,
    };
    let response = transport::send(client, endpoint, wire, verb).await?;
    let status = response.status().as_u16();
    if jsonrpc::notification_accepted(status) {
        return Ok(());
    }
    Err(McpError::HttpStatus {
        server: endpoint.display.clone(),
        status,
        detail: transport::excerpt(response, EXCERPT_BYTES).await,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadline_is_the_earlier_of_idle_and_total() {
        let start = Instant::now();
        let timeouts = Timeouts {
            idle: Duration::from_secs(10),
            total: Duration::from_secs(25),
        };
        let mut deadline = Deadline::new(start, timeouts);
        assert_eq!(deadline.at(), start + Duration::from_secs(10));
        deadline.touch(start + Duration::from_secs(8));
        assert_eq!(deadline.at(), start + Duration::from_secs(18));
        assert!(matches!(
            deadline.error("s"),
            McpError::Timeout { idle: true, .. }
        ));
        deadline.touch(start + Duration::from_secs(20));
        assert_eq!(deadline.at(), start + Duration::from_secs(25));
        assert!(matches!(
            deadline.error("s"),
            McpError::Timeout { idle: false, .. }
        ));
    }

    #[test]
    fn lost_session_statuses() {
        assert!(session_is_gone(404, ""));
        assert!(session_is_gone(
            400,
            r#"{"error":{"code":-32000,"message":"Bad Request: No valid session ID provided"}}"#
        ));
        assert!(!session_is_gone(400, "Parse error"));
        assert!(!session_is_gone(500, "session"));
    }
}
