//! One HTTP exchange with an agent server, and its reply read as a stream
//! of JSON-RPC messages.
//!
//! A reply is either one JSON body or an SSE stream; both come out of
//! [`MessageStream::next`] one message at a time, read frame by frame with a
//! size cap, so a long agent run never sits in memory whole.
//!
//! Only plain `http://` URLs are supported: the agent servers sit next to
//! Daedalus on a private network. Adding a TLS connector (hyper-rustls) to
//! [`new_client`] would lift this.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client as LegacyClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::jsonrpc::{self, media_type_is};
use super::{McpError, ServerSpec, sse};

pub type Client = LegacyClient<HttpConnector, Full<Bytes>>;

pub const SESSION_HEADER: &str = "mcp-session-id";
const VERSION_HEADER: &str = "mcp-protocol-version";
const METHOD_HEADER: &str = "mcp-method";
const NAME_HEADER: &str = "mcp-name";
const LAST_EVENT_ID: &str = "last-event-id";

/// A connection pool for every agent server of the process.
pub fn new_client() -> Client {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(Duration::from_secs(10)));
    LegacyClient::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(60))
        .build(connector)
}

/// Where a server is and what every request to it carries.
#[derive(Debug)]
pub struct Endpoint {
    pub uri: Uri,
    /// The metric label.
    pub label: String,
    /// How messages name the server: its label and URL without the query.
    pub display: String,
    headers: HeaderMap,
}

impl Endpoint {
    pub fn new(spec: &ServerSpec) -> Result<Endpoint, McpError> {
        let display = format!(
            "{} ({})",
            spec.label,
            spec.url.split('?').next().unwrap_or("")
        );
        let unusable = |reason: String| McpError::Unreachable {
            server: display.clone(),
            reason,
        };
        let uri: Uri = spec
            .url
            .parse()
            .map_err(|_| unusable("its URL is not a valid URL".into()))?;
        if uri.scheme_str() != Some("http") {
            return Err(unusable("only http:// URLs are supported".into()));
        }
        let mut headers = HeaderMap::new();
        for (name, value) in &spec.headers {
            let name = HeaderName::try_from(name.as_str())
                .map_err(|_| unusable(format!("header name {name:?} is not valid")))?;
            let mut value = HeaderValue::try_from(value.as_str())
                .map_err(|_| unusable(format!("the value of header {name} is not valid")))?;
            value.set_sensitive(true);
            headers.append(name, value);
        }
        Ok(Endpoint {
            uri,
            label: spec.label.clone(),
            display,
            headers,
        })
    }
}

/// The MCP headers of one request, beyond the configured ones.
#[derive(Debug, Clone, Default)]
pub struct Wire {
    pub session_id: Option<String>,
    /// Sent as `MCP-Protocol-Version` (left out on `initialize`).
    pub version: Option<String>,
}

/// What to send.
pub enum Verb {
    Post {
        body: Bytes,
        /// `Mcp-Method` and `Mcp-Name` for the stateless revision.
        routing: Option<(String, Option<String>)>,
    },
    /// Resume a stream after the event with this id.
    Resume {
        last_event_id: String,
    },
    /// Open the session's standalone stream for server-initiated messages.
    Listen,
    Delete,
}

pub async fn send(
    client: &Client,
    endpoint: &Endpoint,
    wire: &Wire,
    verb: Verb,
) -> Result<Response<Incoming>, McpError> {
    let request = build(endpoint, wire, verb).map_err(|e| McpError::Protocol {
        server: endpoint.display.clone(),
        detail: format!("a request could not be built: {e}"),
    })?;
    client
        .request(request)
        .await
        .map_err(|e| McpError::Unreachable {
            server: endpoint.display.clone(),
            reason: root_cause(&e),
        })
}

fn build(endpoint: &Endpoint, wire: &Wire, verb: Verb) -> http::Result<Request<Full<Bytes>>> {
    let (method, body, accept) = match &verb {
        Verb::Post { body, .. } => (
            Method::POST,
            body.clone(),
            "application/json, text/event-stream",
        ),
        Verb::Resume { .. } | Verb::Listen => (Method::GET, Bytes::new(), "text/event-stream"),
        Verb::Delete => (
            Method::DELETE,
            Bytes::new(),
            "application/json, text/event-stream",
        ),
    };
    let mut builder = Request::builder()
        .method(method)
        .uri(endpoint.uri.clone())
        .header(ACCEPT, accept);
    if let Some(headers) = builder.headers_mut() {
        headers.extend(endpoint.headers.clone());
    }
    if matches!(verb, Verb::Post { .. }) {
        builder = builder.header(CONTENT_TYPE, "application/json");
    }
    if let Some(session_id) = &wire.session_id {
        builder = builder.header(SESSION_HEADER, session_id);
    }
    if let Some(version) = &wire.version {
        builder = builder.header(VERSION_HEADER, version);
    }
    match verb {
        Verb::Post {
            routing: Some((method, name)),
            ..
        } => {
            builder = builder.header(METHOD_HEADER, method);
            if let Some(name) = name {
                builder = builder.header(NAME_HEADER, name);
            }
        }
        Verb::Resume { last_event_id } => builder = builder.header(LAST_EVENT_ID, last_event_id),
        _ => {}
    }
    builder.body(Full::new(body))
}

/// The innermost cause of a client error, which is the one a person can act on.
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    if let Some(io) = cause.downcast_ref::<std::io::Error>()
        && io.kind() == std::io::ErrorKind::ConnectionRefused
    {
        return "connection refused".into();
    }
    cause.to_string()
}

/// Reads at most `limit` bytes of a body as text, for error messages.
pub async fn excerpt(response: Response<Incoming>, limit: usize) -> String {
    let mut body = response.into_body();
    let mut bytes = Vec::new();
    while bytes.len() < limit {
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    bytes.extend_from_slice(data);
                }
            }
            _ => break,
        }
    }
    bytes.truncate(limit);
    String::from_utf8_lossy(&bytes).trim().to_owned()
}

/// Why a reply stream stopped giving messages.
#[derive(Debug)]
pub enum ReadError {
    /// The connection broke; a stream with event ids may be resumed.
    Broken(String),
    TooLarge(usize),
    Malformed(String),
}

enum Format {
    Json(Vec<u8>),
    Sse(sse::Parser),
}

/// The messages of one reply, in order.
pub struct MessageStream {
    body: Incoming,
    format: Format,
    queue: VecDeque<jsonrpc::Incoming>,
    events: Vec<sse::Event>,
    limit: usize,
    ended: bool,
}

impl MessageStream {
    /// Errs with the content type when the reply is neither JSON nor SSE.
    pub fn new(response: Response<Incoming>, limit: usize) -> Result<MessageStream, String> {
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let format = if media_type_is(&content_type, "text/event-stream") {
            Format::Sse(sse::Parser::new(limit))
        } else if media_type_is(&content_type, "application/json") {
            Format::Json(Vec::new())
        } else {
            return Err(content_type);
        };
        Ok(MessageStream {
            body: response.into_body(),
            format,
            queue: VecDeque::new(),
            events: Vec::new(),
            limit,
            ended: false,
        })
    }

    /// The id of the last SSE event and the server's `retry`, for resuming.
    pub fn resume_point(&self) -> (Option<String>, Option<Duration>) {
        match &self.format {
            Format::Sse(parser) => (parser.last_event_id().map(str::to_owned), parser.retry()),
            Format::Json(_) => (None, None),
        }
    }

    /// The next message, or `None` once the reply ended.
    pub async fn next(&mut self) -> Result<Option<jsonrpc::Incoming>, ReadError> {
        loop {
            if let Some(message) = self.queue.pop_front() {
                return Ok(Some(message));
            }
            if self.ended {
                return Ok(None);
            }
            self.read_frame().await?;
        }
    }

    async fn read_frame(&mut self) -> Result<(), ReadError> {
        let data = match self.body.frame().await {
            None => return self.end(),
            Some(Err(e)) => return Err(ReadError::Broken(root_cause(&e))),
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => data,
                Err(_trailers) => return Ok(()),
            },
        };
        match &mut self.format {
            Format::Json(buffer) => {
                if buffer.len() + data.len() > self.limit {
                    return Err(ReadError::TooLarge(self.limit));
                }
                buffer.extend_from_slice(&data);
                Ok(())
            }
            Format::Sse(parser) => {
                parser
                    .push(&data, &mut self.events)
                    .map_err(|_| ReadError::TooLarge(self.limit))?;
                self.take_events()
            }
        }
    }

    fn end(&mut self) -> Result<(), ReadError> {
        self.ended = true;
        match &mut self.format {
            Format::Json(buffer) if buffer.iter().all(u8::is_ascii_whitespace) => Ok(()),
            Format::Json(buffer) => {
                let messages = jsonrpc::parse(buffer).map_err(|e| ReadError::Malformed(e.0))?;
                self.queue.extend(messages);
                Ok(())
            }
            Format::Sse(parser) => {
                parser
                    .finish(&mut self.events)
                    .map_err(|_| ReadError::TooLarge(self.limit))?;
                self.take_events()
            }
        }
    }

    fn take_events(&mut self) -> Result<(), ReadError> {
        for event in self.events.drain(..) {
            // Empty events prime a stream with an id for resumption; they carry no message.
            if event.data.trim().is_empty() {
                continue;
            }
            let messages =
                jsonrpc::parse(event.data.as_bytes()).map_err(|e| ReadError::Malformed(e.0))?;
            self.queue.extend(messages);
        }
        Ok(())
    }
}
