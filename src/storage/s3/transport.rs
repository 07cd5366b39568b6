//! Sending one S3 request: signing, timing, metrics, retries and error mapping.
//!
//! Requests whose body can be sent again (none, or bytes in memory) are retried with
//! backoff on connection errors and 5xx answers. A `RequestTimeTooSkewed` answer corrects
//! the clock from the server's `Date` header and retries once. A streamed body cannot be
//! replayed, so a streamed PUT is tried once; the skew it reveals still corrects the
//! requests that follow (and `ensure_ready` at start makes a signed request first).

use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{Stream, StreamExt, TryStreamExt};
use http::{Method, Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full, Limited, StreamBody};
use hyper::body::{Frame, Incoming};
use sha2::{Digest, Sha256};

use super::sign::{self, EMPTY_SHA256, UNSIGNED_PAYLOAD};
use super::{S3Store, xml};
use crate::storage::{ByteStream, StorageError, local::length_mismatch};

pub(super) type Body = UnsyncBoxBody<Bytes, StorageError>;

/// Attempts for a replayable request, and the pause before each retry.
const BACKOFF: &[Duration] = &[Duration::from_millis(100), Duration::from_millis(400)];

/// How long a request with a small body may wait for the answer's headers.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// Largest error or XML answer read into memory.
pub(super) const MAX_XML: usize = 1024 * 1024;

/// What a request carries.
pub(super) enum Payload {
    Empty,
    /// Small documents (hashed and signed) or one multipart part (sent unsigned): both can be
    /// sent again on retry.
    Bytes {
        data: Bytes,
        signed: bool,
    },
    /// A streamed body of exactly `len` bytes: sent once, never buffered.
    Stream {
        body: ByteStream,
        len: u64,
    },
}

/// One S3 request before signing.
pub(super) struct Call {
    /// Operation name for metrics and logs (`PutObject`, ...).
    pub op: &'static str,
    pub method: Method,
    /// The object key, or `None` for a bucket request.
    pub key: Option<String>,
    pub query: Vec<(String, String)>,
    /// Extra headers to send and sign (`range`, `content-type`, ...).
    pub headers: Vec<(String, String)>,
    pub payload: Payload,
}

impl Call {
    pub fn new(op: &'static str, method: Method, key: Option<&str>) -> Call {
        Call {
            op,
            method,
            key: key.map(str::to_owned),
            query: Vec::new(),
            headers: Vec::new(),
            payload: Payload::Empty,
        }
    }

    pub fn query(mut self, name: &str, value: &str) -> Call {
        self.query.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Call {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn payload(mut self, payload: Payload) -> Call {
        self.payload = payload;
        self
    }
}

/// Why an attempt failed, and whether trying again may help.
enum Failure {
    Retry(StorageError),
    Skewed(StorageError, Option<time::OffsetDateTime>),
    Final(StorageError),
}

impl S3Store {
    /// Sends `call`, retrying when allowed; returns a 2xx answer with its body unread.
    pub(super) async fn send(&self, mut call: Call) -> Result<Response<Incoming>, StorageError> {
        let mut retries = BACKOFF.iter();
        let mut skew_corrected = false;
        loop {
            let replayable = !matches!(call.payload, Payload::Stream { .. });
            let failure = match self.attempt(&mut call).await {
                Ok(answer) => return Ok(answer),
                Err(failure) => failure,
            };
            match failure {
                Failure::Skewed(_, Some(server_time)) if replayable && !skew_corrected => {
                    self.correct_clock(server_time);
                    skew_corrected = true;
                }
                Failure::Skewed(e, Some(server_time)) => {
                    self.correct_clock(server_time);
                    return Err(e);
                }
                Failure::Retry(e) if replayable => match retries.next() {
                    Some(pause) => {
                        log::debug!(target: "s3", op = call.op; "retrying after {e}");
                        tokio::time::sleep(*pause).await;
                    }
                    None => return Err(unavailable_after_retries(e)),
                },
                Failure::Retry(e) => return Err(unavailable_after_retries(e)),
                Failure::Skewed(e, None) | Failure::Final(e) => return Err(e),
            }
        }
    }

    async fn attempt(&self, call: &mut Call) -> Result<Response<Incoming>, Failure> {
        let (body, body_failure) = take_body(&mut call.payload);
        let request = self.signed_request(call, body).map_err(Failure::Final)?;
        let started = Instant::now();
        let answer = if body_failure.is_some() {
            self.client().request(request).await
        } else {
            match tokio::time::timeout(ANSWER_TIMEOUT, self.client().request(request)).await {
                Ok(answer) => answer,
                Err(_) => return Err(self.record(call.op, started, timed_out())),
            }
        };
        let outcome = match answer {
            Ok(answer) if answer.status().is_success() => {
                self.observe(call.op, started, "ok");
                return Ok(answer);
            }
            Ok(answer) => failure_from_answer(answer, self.now()).await,
            Err(e) => failure_from_transport(e, body_failure),
        };
        Err(self.record(call.op, started, outcome))
    }

    fn record(&self, op: &'static str, started: Instant, failure: Failure) -> Failure {
        self.observe(op, started, "error");
        failure
    }

    fn observe(&self, op: &'static str, started: Instant, outcome: &str) {
        let metrics = crate::metrics::get();
        metrics.s3_requests.with_label_values(&[op, outcome]).inc();
        crate::metrics::observe(&metrics.s3_duration.with_label_values(&[op]), started);
    }

    fn signed_request(&self, call: &Call, body: Body) -> Result<Request<Body>, StorageError> {
        let path = self.path(call.key.as_deref());
        let payload_hash = payload_hash(&call.payload);
        let mut headers = call.headers.clone();
        headers.push(("host".into(), self.host().to_owned()));
        headers.push(("x-amz-date".into(), sign::amz_date(self.now())));
        headers.push(("x-amz-content-sha256".into(), payload_hash.clone()));
        if let Some(len) = payload_len(&call.payload) {
            headers.push(("content-length".into(), len.to_string()));
        }
        let req = sign::Request {
            method: call.method.as_str(),
            path: &path,
            query: &call.query,
            headers: &headers,
            payload_hash: &payload_hash,
        };
        let authorization = sign::authorization(self.credentials(), &req, &self.scope());
        let mut builder = Request::builder().method(call.method.clone()).uri(format!(
            "{}{}{}",
            self.base_url(),
            path,
            url_query(&call.query)
        ));
        for (name, value) in &headers {
            builder = builder.header(name, value);
        }
        builder
            .header("authorization", authorization)
            .body(body)
            .map_err(|e| StorageError::Protocol(format!("cannot build the request: {e}")))
    }
}

/// The query as sent: like the canonical one, but a parameter without value (`?uploads`)
/// goes bare, as S3 documents it.
fn url_query(query: &[(String, String)]) -> String {
    if query.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = query
        .iter()
        .map(|(k, v)| match v.is_empty() {
            true => sign::encode_query_part(k),
            false => format!(
                "{}={}",
                sign::encode_query_part(k),
                sign::encode_query_part(v)
            ),
        })
        .collect();
    format!("?{}", parts.join("&"))
}

fn payload_hash(payload: &Payload) -> String {
    match payload {
        Payload::Empty => EMPTY_SHA256.to_owned(),
        Payload::Bytes { data, signed: true } => hex::encode(Sha256::digest(data)),
        Payload::Bytes { signed: false, .. } | Payload::Stream { .. } => UNSIGNED_PAYLOAD.into(),
    }
}

fn payload_len(payload: &Payload) -> Option<u64> {
    match payload {
        Payload::Empty => None,
        Payload::Bytes { data, .. } => Some(data.len() as u64),
        Payload::Stream { len, .. } => Some(*len),
    }
}

/// The body for this attempt. A stream is moved out (it can be sent only once) and watched,
/// so that its own error, rather than the broken connection it causes, is reported.
fn take_body(payload: &mut Payload) -> (Body, Option<BodyFailure>) {
    match payload {
        Payload::Empty => (
            Empty::new().map_err(|never| match never {}).boxed_unsync(),
            None,
        ),
        Payload::Bytes { data, .. } => (
            Full::new(data.clone())
                .map_err(|never| match never {})
                .boxed_unsync(),
            None,
        ),
        Payload::Stream { body, len } => {
            let body = std::mem::replace(body, futures_util::stream::empty().boxed());
            let failure = BodyFailure::default();
            let watched = Watched {
                inner: body,
                expected: *len,
                sent: 0,
                failure: failure.clone(),
                held: None,
                done: false,
            };
            let frames = StreamBody::new(watched.map_ok(Frame::data));
            (BodyExt::boxed_unsync(frames), Some(failure))
        }
    }
}

/// Where a streamed body leaves its error for [`S3Store::send`] to report.
#[derive(Clone, Default)]
struct BodyFailure(Arc<Mutex<Option<StorageError>>>);

impl BodyFailure {
    fn set(&self, e: StorageError) {
        *self
            .0
            .lock()
            .expect("the body failure lock is never poisoned") = Some(e);
    }

    fn take(&self) -> Option<StorageError> {
        self.0
            .lock()
            .expect("the body failure lock is never poisoned")
            .take()
    }
}

/// A body stream held to its announced length, its failure kept aside.
///
/// hyper stops polling once the announced length has gone out, so the last chunk is held
/// back until the stream confirms its end: whatever measures the stream (size, checksum)
/// sees it finish, and a stream longer than announced fails the request.
struct Watched {
    inner: ByteStream,
    expected: u64,
    sent: u64,
    failure: BodyFailure,
    /// The chunk that reached the announced length, waiting for the stream's end.
    held: Option<Bytes>,
    done: bool,
}

impl Watched {
    fn fail(&mut self, e: StorageError) -> Poll<Option<Result<Bytes, StorageError>>> {
        let shown = StorageError::BodyError(e.to_string());
        self.failure.set(e);
        Poll::Ready(Some(Err(shown)))
    }
}

impl Stream for Watched {
    type Item = Result<Bytes, StorageError>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        match self.inner.poll_next_unpin(cx) {
            Poll::Ready(Some(Ok(chunk))) if chunk.is_empty() => self.poll_next(cx),
            Poll::Ready(Some(Ok(chunk))) => {
                self.sent += chunk.len() as u64;
                if self.sent > self.expected {
                    let (expected, sent) = (self.expected, self.sent);
                    return self.fail(length_mismatch(Some(expected), sent));
                }
                if self.sent == self.expected {
                    self.held = Some(chunk);
                    return self.poll_next(cx);
                }
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(None) if self.held.is_some() => {
                self.done = true;
                Poll::Ready(self.held.take().map(Ok))
            }
            Poll::Ready(Some(Err(e))) => self.fail(e),
            Poll::Ready(None) if self.sent < self.expected => {
                let (expected, sent) = (self.expected, self.sent);
                self.fail(length_mismatch(Some(expected), sent))
            }
            other => other,
        }
    }
}

fn failure_from_transport(
    e: hyper_util::client::legacy::Error,
    body: Option<BodyFailure>,
) -> Failure {
    if let Some(body_error) = body.and_then(|b| b.take()) {
        return Failure::Final(body_error);
    }
    Failure::Retry(StorageError::Unavailable(describe_transport(&e)))
}

/// The innermost cause is the useful part ("Connection refused").
fn describe_transport(e: &hyper_util::client::legacy::Error) -> String {
    let mut source: &dyn std::error::Error = e;
    while let Some(inner) = source.source() {
        source = inner;
    }
    format!("{e}: {source}")
}

fn timed_out() -> Failure {
    Failure::Retry(StorageError::Unavailable("no answer in time".into()))
}

/// Beyond this difference from the server's clock a bodiless 403 (an answer to HEAD cannot
/// carry the error code) is taken for `RequestTimeTooSkewed`; S3 allows 15 minutes.
const SKEW_SUSPECTED: time::Duration = time::Duration::minutes(5);

async fn failure_from_answer(
    answer: Response<Incoming>,
    signed_at: time::OffsetDateTime,
) -> Failure {
    let status = answer.status();
    let server_time = server_time(&answer);
    let text = read_text(answer.into_body()).await.unwrap_or_default();
    let (mut code, message) =
        xml::parse_error(&text).unwrap_or_else(|| (status_code_name(status), text));
    let clock_off = server_time.is_some_and(|t| (t - signed_at).abs() > SKEW_SUSPECTED);
    if code == "Http403" && clock_off {
        code = "RequestTimeTooSkewed".into();
    }
    classify(status, code, message, server_time)
}

fn classify(
    status: StatusCode,
    code: String,
    message: String,
    server_time: Option<time::OffsetDateTime>,
) -> Failure {
    let bodiless_404 = status == StatusCode::NOT_FOUND && code == status_code_name(status);
    if code == "NoSuchKey" || bodiless_404 {
        return Failure::Final(StorageError::NotFound);
    }
    let error = StorageError::Service {
        code,
        message,
        status: status.as_u16(),
    };
    match &error {
        StorageError::Service { code, .. } if code == "RequestTimeTooSkewed" => {
            Failure::Skewed(error, server_time)
        }
        _ if status.is_server_error() && status != StatusCode::NOT_IMPLEMENTED => {
            Failure::Retry(error)
        }
        _ => Failure::Final(error),
    }
}

/// A code for answers without an error document (HEAD, proxies): `Http404`.
fn status_code_name(status: StatusCode) -> String {
    format!("Http{}", status.as_u16())
}

fn server_time(answer: &Response<Incoming>) -> Option<time::OffsetDateTime> {
    let date = answer.headers().get(http::header::DATE)?.to_str().ok()?;
    parse_http_date(date)
}

/// Parses an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
pub(super) fn parse_http_date(date: &str) -> Option<time::OffsetDateTime> {
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let naive = time::PrimitiveDateTime::parse(date.trim(), &format).ok()?;
    Some(naive.assume_utc())
}

fn unavailable_after_retries(e: StorageError) -> StorageError {
    match e {
        StorageError::Service {
            code,
            message,
            status,
        } => StorageError::Unavailable(format!("S3 answered {status} {code}: {message}")),
        other => other,
    }
}

/// Reads a small answer body (an XML document) into a string, up to [`MAX_XML`].
pub(super) async fn read_text(body: Incoming) -> Result<String, StorageError> {
    let collected = Limited::new(body, MAX_XML)
        .collect()
        .await
        .map_err(|e| StorageError::Unavailable(format!("reading the answer failed: {e}")))?;
    Ok(String::from_utf8_lossy(&collected.to_bytes()).into_owned())
}

/// An answer body as a stream of chunks; a cut connection shows as `Unavailable`.
pub(super) fn stream_body(body: Incoming) -> ByteStream {
    body.into_data_stream()
        .map_err(|e| StorageError::Unavailable(format!("download cut off: {e}")))
        .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates_parse() {
        let t = parse_http_date("Fri, 24 May 2013 00:00:00 GMT").expect("parses");
        assert_eq!(t, time::macros::datetime!(2013-05-24 00:00:00 UTC));
        assert!(parse_http_date("yesterday").is_none());
    }

    #[test]
    fn bare_parameters_go_without_equals_sign() {
        let query = [
            ("uploads".into(), String::new()),
            ("prefix".into(), "a b".into()),
        ];
        assert_eq!(url_query(&query), "?uploads&prefix=a%20b");
    }

    #[test]
    fn answers_map_to_meaningful_errors() {
        let not_found = classify(StatusCode::NOT_FOUND, "Http404".into(), String::new(), None);
        assert!(matches!(not_found, Failure::Final(StorageError::NotFound)));
        let slow = classify(
            StatusCode::SERVICE_UNAVAILABLE,
            "SlowDown".into(),
            String::new(),
            None,
        );
        assert!(matches!(slow, Failure::Retry(_)));
        let denied = classify(
            StatusCode::FORBIDDEN,
            "AccessDenied".into(),
            String::new(),
            None,
        );
        assert!(matches!(
            denied,
            Failure::Final(StorageError::Service { status: 403, .. })
        ));
    }
}
