//! The accept loop with graceful shutdown, and the one wrapper every request passes
//! through: request id, route matching, the access log line, the HTTP metrics and the
//! error-to-response mapping.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderValue, Method};
use http_body_util::BodyExt;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use super::route::{Route, UNMATCHED};
use super::{Body, BoxError, Request, Response, error_response};
use crate::app::App;
use crate::error::Error;
use crate::metrics;

/// How long in-flight requests and streams get to finish after a shutdown signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// What the wrapper learns while a handler runs, for the access line.
#[derive(Default)]
pub struct RequestContext {
    pub peer: Option<SocketAddr>,
    pub request_id: String,
    /// The signed-in user's name, once identified.
    pub user: Option<String>,
}

/// Accepts connections until `shutdown` resolves, then drains them for the grace period.
pub async fn serve(app: Arc<App>, listener: TcpListener, shutdown: impl Future<Output = ()>) {
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => serve_connection(&app, &graceful, stream, peer),
                Err(e) => {
                    log::warn!(target: "http", error = e.to_string().as_str(); "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    let in_flight = metrics::get().http_in_flight.get();
    log::info!(target: "http", in_flight = in_flight; "shutting down: no new connections");
    tokio::select! {
        () = graceful.shutdown() => log::info!(target: "http", "every connection finished"),
        () = tokio::time::sleep(SHUTDOWN_GRACE) => {
            let cut = metrics::get().http_in_flight.get();
            log::warn!(target: "http", cut_off = cut, grace_seconds = SHUTDOWN_GRACE.as_secs();
                "grace period over: cutting off requests still in flight");
        }
    }
}

fn serve_connection(
    app: &Arc<App>,
    graceful: &GracefulShutdown,
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
) {
    let _ = stream.set_nodelay(true);
    let app = app.clone();
    let service = service_fn(move |req| {
        let app = app.clone();
        async move { Ok::<_, Infallible>(handle(&app, req, peer).await) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30))
        .max_buf_size(64 * 1024)
        .serve_connection(TokioIo::new(stream), service);
    let conn = graceful.watch(conn);
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            log::debug!(target: "http", error = e.to_string().as_str(); "connection ended with an error");
        }
    });
}

/// Runs one request through routing and its handler, and records it.
pub async fn handle(app: &Arc<App>, req: Request, peer: SocketAddr) -> Response {
    let started = Instant::now();
    metrics::get().http_in_flight.inc();
    let method = req.method().clone();
    let request_id = request_id(&req);
    let route = Route::parse(req.uri().path());
    let template = route.as_ref().map_or(UNMATCHED, Route::template);
    let mut ctx = RequestContext {
        peer: Some(peer),
        request_id,
        user: None,
    };
    let result = match route {
        _ if header_bytes(req.headers()) > MAX_HEADER_BYTES => Err(Error::HeadersTooLarge),
        None => Err(Error::NotFound),
        Some(route) if !route.allowed().contains(&method) => Err(Error::MethodNotAllowed {
            allow: route.allowed(),
        }),
        Some(route) => crate::api::dispatch(app, route, req, &mut ctx).await,
    };
    let mut resp = result.unwrap_or_else(|err| {
        log_error(&err, &ctx, template);
        error_response(&err)
    });
    if let Ok(v) = HeaderValue::from_str(&ctx.request_id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    let record = AccessRecord {
        started,
        method,
        template,
        status: resp.status().as_u16(),
        ctx,
        bytes: 0,
    };
    let (parts, body) = resp.into_parts();
    ::http::Response::from_parts(
        parts,
        Recorded {
            inner: body,
            record: Some(record),
        }
        .boxed_unsync(),
    )
}

/// Largest total of header names and values accepted. hyper refuses only what overflows
/// its read buffer (and without the JSON error shape); this bound is the one clients see.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

fn header_bytes(headers: &::http::HeaderMap) -> usize {
    headers
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len())
        .sum()
}

/// The client's `X-Request-Id` when it is short and printable, else a new one.
fn request_id(req: &Request) -> String {
    req.headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map_or_else(new_request_id, str::to_string)
}

/// A random prefix per process and a counter: unique across instances, and far cheaper
/// per request than a random UUID.
fn new_request_id() -> String {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    static PREFIX: OnceLock<u64> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix = PREFIX.get_or_init(|| uuid::Uuid::new_v4().as_u64_pair().0);
    format!(
        "{prefix:016x}{:016x}",
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

fn log_error(err: &Error, ctx: &RequestContext, route: &str) {
    let id = ctx.request_id.as_str();
    match err {
        Error::Internal(detail) => {
            log::error!(target: "http", request_id = id, route = route, error = detail.as_str(); "request failed")
        }
        e if e.status().is_server_error() => {
            log::warn!(target: "http", request_id = id, route = route, code = e.code(); "{}", e.message())
        }
        e => {
            log::debug!(target: "http", request_id = id, route = route, code = e.code(); "refused")
        }
    }
}

/// What the access line and the metrics say about one request; written when the
/// response body ends or is dropped, so streams count until their last byte.
struct AccessRecord {
    started: Instant,
    method: Method,
    template: &'static str,
    status: u16,
    ctx: RequestContext,
    bytes: u64,
}

impl AccessRecord {
    fn finish(self, complete: bool) {
        let elapsed = self.started.elapsed();
        let m = metrics::get();
        m.http_in_flight.dec();
        let method = self.method.as_str();
        let status_buf = itoa_status(self.status);
        let status = std::str::from_utf8(&status_buf).unwrap_or("000");
        m.http_requests
            .with_label_values(&[method, self.template, status])
            .inc();
        m.http_duration
            .with_label_values(&[method, self.template])
            .observe(elapsed.as_secs_f64());
        let user = self.ctx.user.as_deref().unwrap_or("-");
        log::info!(target: "access",
            request_id = self.ctx.request_id.as_str(), method = method, route = self.template,
            status = self.status, bytes = self.bytes,
            duration_ms = elapsed.as_secs_f64() * 1000.0, user = user, complete = complete;
            "request");
    }
}

fn itoa_status(status: u16) -> [u8; 3] {
    let s = status.min(999);
    [
        b'0' + (s / 100) as u8,
        b'0' + (s / 10 % 10) as u8,
        b'0' + (s % 10) as u8,
    ]
}

/// A response body that counts its bytes and writes the access record at its end.
struct Recorded {
    inner: Body,
    record: Option<AccessRecord>,
}

impl HttpBody for Recorded {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(data), Some(rec)) = (frame.data_ref(), self.record.as_mut()) {
                    rec.bytes += data.len() as u64;
                }
            }
            Poll::Ready(None) => {
                if let Some(rec) = self.record.take() {
                    rec.finish(true);
                }
            }
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Recorded {
    fn drop(&mut self) {
        if let Some(mut rec) = self.record.take() {
            // An empty or fully sent body may be dropped without a final poll.
            let complete = self.inner.is_end_stream();
            if complete {
                rec.bytes = rec.bytes.max(self.inner.size_hint().exact().unwrap_or(0));
            }
            rec.finish(complete);
        }
    }
}
