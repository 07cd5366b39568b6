//! Reading a run's event stream as a browser would: one connection held open, events
//! taken one at a time as they arrive, and the connection dropped whenever the test
//! likes (a tab closing).
//!
//! The parser knows only what Daedalus writes (`id`, `event`, one `data` line, comments
//! for keep-alives); the MCP module has the full one.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{Method, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use super::Daedalus;

/// A guard against a stream that never delivers; a run of the test agents ends well
/// within it.
const PATIENCE: Duration = Duration::from_secs(90);

/// One event as received.
#[derive(Debug, Clone, PartialEq)]
pub struct SseEvent {
    pub id: Option<i64>,
    pub event: String,
    pub data: Value,
}

impl SseEvent {
    pub fn is_terminal(&self) -> bool {
        matches!(
            self.event.as_str(),
            "message.completed" | "run.failed" | "run.cancelled"
        )
    }

    /// The id, which every run event has.
    pub fn seq(&self) -> i64 {
        self.id
            .unwrap_or_else(|| panic!("an event without id: {self:?}"))
    }
}

/// The answer message of a run whose events end with `message.completed`; any other end
/// panics showing it (a failed run's error says why).
pub fn completed(events: &[SseEvent]) -> &Value {
    let last = events.last().expect("the run has events");
    assert_eq!(
        last.event, "message.completed",
        "the run did not complete: {:#}",
        last.data
    );
    &last.data["message"]
}

/// An open event stream.
pub struct EventStream {
    pub status: StatusCode,
    pub content_type: Option<String>,
    body: Incoming,
    buf: BytesMut,
    /// Bytes of the error answer, when the status was not 200.
    pub error_body: Bytes,
}

/// A request whose answer is read as an event stream.
pub struct Open<'a> {
    d: &'a Daedalus,
    builder: http::request::Builder,
    body: Bytes,
}

/// `POST …/messages` with `{"content": …}` as the local user.
pub async fn send(d: &Daedalus, ws: &str, c: &str, content: &str) -> EventStream {
    let body = serde_json::json!({ "content": content });
    Open::new(
        d,
        Method::POST,
        &format!("/api/workspaces/{ws}/conversations/{c}/messages"),
    )
    .json(&body)
    .send()
    .await
}

/// `GET …/runs/{r}/events` with `Last-Event-ID: after`.
pub async fn attach(d: &Daedalus, ws: &str, c: &str, run: &str, after: i64) -> EventStream {
    let path = format!("/api/workspaces/{ws}/conversations/{c}/runs/{run}/events");
    Open::new(d, Method::GET, &path)
        .header("last-event-id", &after.to_string())
        .send()
        .await
}

impl<'a> Open<'a> {
    pub fn new(d: &'a Daedalus, method: Method, path: &str) -> Open<'a> {
        Open {
            d,
            builder: http::Request::builder().method(method).uri(d.url(path)),
            body: Bytes::new(),
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.builder = self.builder.header(name, value);
        self
    }

    pub fn user(self, user: &str) -> Self {
        self.header("x-forwarded-user", user)
    }

    pub fn json(mut self, value: &Value) -> Self {
        self.body = serde_json::to_vec(value).expect("JSON encodes").into();
        self.header("content-type", "application/json")
    }

    /// Sends the request on a connection of its own, so dropping the stream closes it.
    pub async fn send(self) -> EventStream {
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(0)
            .build_http::<Full<Bytes>>();
        let req = self
            .builder
            .body(Full::new(self.body))
            .expect("a valid test request");
        let resp = client
            .request(req)
            .await
            .unwrap_or_else(|e| panic!("request failed: {e:?}\n{}", self.d.dump()));
        let (parts, body) = resp.into_parts();
        let content_type = parts
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let mut stream = EventStream {
            status: parts.status,
            content_type,
            body,
            buf: BytesMut::new(),
            error_body: Bytes::new(),
        };
        if stream.status != StatusCode::OK {
            stream.error_body = stream.read_rest().await;
        }
        stream
    }
}

impl EventStream {
    /// Asserts a 200 event stream.
    pub fn expect_stream(&self) {
        assert_eq!(
            self.status,
            StatusCode::OK,
            "expected an event stream; body: {}",
            String::from_utf8_lossy(&self.error_body)
        );
        assert_eq!(self.content_type.as_deref(), Some("text/event-stream"));
    }

    /// The JSON error answer's code, asserting the status.
    pub fn expect_error(&self, status: u16) -> String {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            String::from_utf8_lossy(&self.error_body)
        );
        let body: Value = serde_json::from_slice(&self.error_body).expect("a JSON error body");
        super::assert_error_shape(&body);
        body["error"]["code"].as_str().expect("code").to_string()
    }

    /// The next event, or `None` when the server ended the stream.
    pub async fn next(&mut self) -> Option<SseEvent> {
        tokio::time::timeout(PATIENCE, self.next_inner())
            .await
            .unwrap_or_else(|_| panic!("no event within {PATIENCE:?}"))
    }

    /// Every event until the stream ends; asserts it ends right after a terminal event.
    pub async fn until_end(&mut self) -> Vec<SseEvent> {
        let mut events = Vec::new();
        while let Some(e) = self.next().await {
            events.push(e);
        }
        let last = events.last().expect("the stream carried events");
        assert!(
            last.is_terminal(),
            "the stream ended without a terminal event: {events:#?}"
        );
        events
    }

    /// Events until one of `kind` (included); panics if the stream ends first.
    pub async fn until(&mut self, kind: &str) -> Vec<SseEvent> {
        let mut events = Vec::new();
        loop {
            let e = self
                .next()
                .await
                .unwrap_or_else(|| panic!("the stream ended before {kind}: {events:#?}"));
            let found = e.event == kind;
            events.push(e);
            if found {
                return events;
            }
        }
    }

    async fn next_inner(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(block) = self.take_block() {
                if let Some(event) = parse_block(&block) {
                    return Some(event);
                }
                continue;
            }
            match self.body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.buf.extend_from_slice(&data);
                    }
                }
                Some(Err(e)) => panic!("the event stream broke: {e}"),
                None => return None,
            }
        }
    }

    /// The next complete block (up to a blank line), without its terminator.
    fn take_block(&mut self) -> Option<String> {
        let end = self.buf.windows(2).position(|w| w == b"\n\n")?;
        let block = self.buf.split_to(end + 2);
        Some(String::from_utf8(block[..end].to_vec()).expect("events are UTF-8"))
    }

    async fn read_rest(&mut self) -> Bytes {
        let mut out = BytesMut::new();
        while let Some(Ok(frame)) = self.body.frame().await {
            if let Ok(data) = frame.into_data() {
                out.extend_from_slice(&data);
            }
        }
        out.freeze()
    }
}

/// One block as an event; `None` for comments (keep-alives).
fn parse_block(block: &str) -> Option<SseEvent> {
    let (mut id, mut event, mut data) = (None, None, None);
    for line in block.lines() {
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "" => {}
            "id" => id = Some(value.parse().expect("event ids are numbers")),
            "event" => event = Some(value.to_string()),
            "data" => data = Some(serde_json::from_str(value).expect("event data is JSON")),
            other => panic!("unexpected SSE field {other:?} in {block:?}"),
        }
    }
    let event = event?;
    Some(SseEvent {
        id,
        event,
        data: data.unwrap_or(Value::Null),
    })
}
