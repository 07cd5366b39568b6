//! HTTP plumbing: the server loop and per-request wrapper (`server`), typed routes
//! (`route`), query strings (`query`), and the body and response helpers below.

pub mod query;
pub mod route;
pub mod server;

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderValue, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Body as _;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// Every response body: whole bytes, or a stream of frames.
pub type Body = UnsyncBoxBody<Bytes, BoxError>;
pub type Request = http::Request<hyper::body::Incoming>;
pub type Response = http::Response<Body>;

/// Largest JSON request body on any route.
pub const JSON_BODY_LIMIT: u64 = 1 << 20;

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

pub fn empty() -> Body {
    full(Bytes::new())
}

/// A JSON response with the given status.
pub fn json<T: Serialize + ?Sized>(status: StatusCode, value: &T) -> Result<Response> {
    let bytes = serde_json::to_vec(value).map_err(Error::internal)?;
    Ok(json_bytes(status, bytes))
}

pub fn json_bytes(status: StatusCode, bytes: Vec<u8>) -> Response {
    let mut resp = ::http::Response::new(full(bytes));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// 204 with no body.
pub fn no_content() -> Response {
    let mut resp = ::http::Response::new(empty());
    *resp.status_mut() = StatusCode::NO_CONTENT;
    resp
}

/// The error as the JSON error shape, with `Allow` on a 405.
pub fn error_response(err: &Error) -> Response {
    let mut resp = json_bytes(err.status(), err.body());
    if let Error::MethodNotAllowed { allow } = err {
        let names: Vec<&str> = allow.iter().map(http::Method::as_str).collect();
        if let Ok(v) = HeaderValue::from_str(&names.join(", ")) {
            resp.headers_mut().insert(http::header::ALLOW, v);
        }
    }
    if let Error::RangeNotSatisfiable { size } = err
        && let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}"))
    {
        resp.headers_mut().insert(http::header::CONTENT_RANGE, v);
    }
    resp
}

/// Rejects a body whose declared length is over `limit` before reading a byte of it.
pub fn check_declared_length(req: &Request, limit: u64) -> Result<()> {
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok());
    if let Some(len) = declared.and_then(|v| v.parse::<u64>().ok())
        && len > limit
    {
        return Err(Error::PayloadTooLarge { limit });
    }
    if req.body().size_hint().lower() > limit {
        return Err(Error::PayloadTooLarge { limit });
    }
    Ok(())
}

/// Reads a whole small body, failing with 413 as soon as it passes `limit`,
/// whatever the request declared.
pub async fn read_limited(req: Request, limit: u64) -> Result<Bytes> {
    check_declared_length(&req, limit)?;
    let mut body = req.into_body();
    let mut buf = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| Error::bad_request("body_unreadable", e.to_string()))?;
        if let Ok(data) = frame.into_data() {
            if (buf.len() + data.len()) as u64 > limit {
                return Err(Error::PayloadTooLarge { limit });
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(buf.freeze())
}

/// Reads and decodes a JSON body; unknown fields, bad UTF-8 and deep nesting are 400s.
pub async fn read_json<T: DeserializeOwned>(req: Request) -> Result<T> {
    let bytes = read_limited(req, JSON_BODY_LIMIT).await?;
    parse_json(&bytes)
}

/// Decodes a JSON body (the part of `read_json` that benchmarks and fuzzing call).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    if bytes.is_empty() {
        return Err(Error::bad_request(
            "invalid_json",
            "the body is empty; send a JSON object",
        ));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        let code = if e.is_data() {
            "invalid_field"
        } else {
            "invalid_json"
        };
        Error::bad_request(
            code,
            format!("the body is not what this endpoint takes: {e}"),
        )
    })
}

/// A header value from a static string.
pub fn header_value(s: &'static str) -> HeaderValue {
    HeaderValue::from_static(s)
}
