//! The load benchmark's baseline: the least a hyper 1 server on tokio can do to answer
//! `GET /api/health` with Daedalus's JSON. Same runtime, same HTTP/1.1 settings, no
//! routing, no logging, no metrics, so the ratio shows what Daedalus's wrapper costs.
//!
//! `cargo run --release --example bare_hyper -- 127.0.0.1:PORT`

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

const HEALTH: &[u8] = br#"{"status":"ok"}"#;

async fn answer(req: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (status, body) = match req.uri().path() {
        "/api/health" => (StatusCode::OK, Bytes::from_static(HEALTH)),
        _ => (StatusCode::NOT_FOUND, Bytes::new()),
    };
    let resp = Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(body))
        .expect("a static status and header always build");
    Ok(resp)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8100".into());
    let listener = TcpListener::bind(&addr).await?;
    println!("listening on {}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service_fn(answer));
            let _ = conn.await;
        });
    }
}
