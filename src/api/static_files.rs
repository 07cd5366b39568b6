//! The browser app, served by the binary itself in development: files from the SPA build,
//! `index.html` for every other non-API path (the SPA fallback), long caching for hashed
//! assets and none for `index.html`.

use std::path::Path;

use ::http::header::{CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE};
use ::http::{HeaderValue, StatusCode};
use futures_util::TryStreamExt;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use percent_encoding::percent_decode_str;
use tokio_util::io::ReaderStream;

use crate::app::App;
use crate::error::{Error, Result};
use crate::http::{Request, Response, header_value};

/// SvelteKit puts content-hashed files here; they never change under the same name.
const IMMUTABLE_PREFIX: &str = "_app/immutable/";

pub async fn handle_static(app: &App, req: &Request) -> Result<Response> {
    let Some(root) = app.cfg.static_dir.as_deref() else {
        return Err(Error::NotFound);
    };
    let relative = relative_path(req.uri().path()).unwrap_or_default();
    let candidate = root.join(&relative);
    let is_file = !relative.is_empty()
        && tokio::fs::metadata(&candidate)
            .await
            .is_ok_and(|m| m.is_file());
    if is_file {
        let cache = if relative.starts_with(IMMUTABLE_PREFIX) {
            "public, max-age=31536000, immutable"
        } else {
            "public, max-age=300"
        };
        return serve_file(&candidate, cache).await;
    }
    serve_file(&root.join("index.html"), "no-cache").await
}

/// The decoded path below the build folder, or `None` when it could step outside it.
pub fn relative_path(path: &str) -> Option<String> {
    let decoded = percent_decode_str(path.trim_start_matches('/'))
        .decode_utf8()
        .ok()?;
    let safe = decoded
        .split('/')
        .all(|seg| !seg.is_empty() && seg != "." && seg != ".." && !seg.contains(['\\', '\0']));
    (safe && !decoded.is_empty()).then(|| decoded.into_owned())
}

async fn serve_file(path: &Path, cache: &'static str) -> Result<Response> {
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|_| Error::NotFound)?;
    let len = file.metadata().await.map_err(Error::internal)?.len();
    let stream = ReaderStream::with_capacity(file, 64 * 1024)
        .map_ok(Frame::data)
        .map_err(|e| -> crate::http::BoxError { Box::new(e) });
    let mut resp = ::http::Response::new(StreamBody::new(stream).boxed_unsync());
    *resp.status_mut() = StatusCode::OK;
    let headers = resp.headers_mut();
    headers.insert(CONTENT_TYPE, header_value(content_type(path)));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(len));
    headers.insert(CACHE_CONTROL, header_value(cache));
    headers.insert("x-content-type-options", header_value("nosniff"));
    Ok(resp)
}

fn content_type(path: &Path) -> &'static str {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    match ext {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "webp" => "image/webp",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        "webmanifest" => "application/manifest+json",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_outside_the_build_are_refused() {
        assert_eq!(
            relative_path("/_app/immutable/x.js").as_deref(),
            Some("_app/immutable/x.js")
        );
        for bad in [
            "/../etc/passwd",
            "/%2e%2e/x",
            "/a//b",
            "/a/./b",
            "/a%5cb",
            "/",
        ] {
            assert_eq!(relative_path(bad), None, "{bad}");
        }
    }
}
