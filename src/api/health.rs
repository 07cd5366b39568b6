//! Liveness, readiness and the metrics scrape.

use ::http::StatusCode;
use ::http::header::CONTENT_TYPE;

use crate::app::App;
use crate::error::Result;
use crate::http::{self, Response};
use crate::metrics;

/// Liveness: answers as long as the process serves requests; touches nothing else.
pub fn handle_health() -> Result<Response> {
    Ok(http::json_bytes(
        StatusCode::OK,
        br#"{"status":"ok"}"#.to_vec(),
    ))
}

/// Readiness: the database answers, migrations are current, storage is reachable.
pub async fn handle_ready(app: &App) -> Result<Response> {
    let database = check_database(app).await;
    let storage = app.store.check().await.map_err(|e| e.to_string());
    let ready = database.is_ok() && storage.is_ok();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = serde_json::json!({
        "status": if ready { "ready" } else { "not_ready" },
        "checks": {
            "database": database.err().unwrap_or_else(|| "ok".into()),
            "storage": storage.err().unwrap_or_else(|| "ok".into()),
        }
    });
    http::json(status, &body)
}

async fn check_database(app: &App) -> Result<(), String> {
    let db = app
        .db
        .get()
        .await
        .map_err(|e| format!("no connection: {e}"))?;
    match crate::db::migrate::is_current(&db).await {
        Ok(true) => Ok(()),
        Ok(false) => Err("migrations are not all applied".into()),
        Err(e) => Err(format!("query failed: {e}")),
    }
}

pub fn handle_metrics() -> Result<Response> {
    let m = metrics::get();
    let mut resp = http::json_bytes(StatusCode::OK, m.encode());
    resp.headers_mut().insert(
        CONTENT_TYPE,
        http::header_value("text/plain; version=0.0.4; charset=utf-8"),
    );
    Ok(resp)
}
