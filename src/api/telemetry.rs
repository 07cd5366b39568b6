//! Browser telemetry: unhandled errors, Web Vitals and feature use, sent in small batches
//! and turned into the `daedalus_client_*` and `daedalus_feature_usage_total` metrics.
//! Label values come only from the fixed sets below; anything else is refused.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use serde::Deserialize;

use crate::app::App;
use crate::error::{Error, Result};
use crate::http::{self, Request, Response};
use crate::metrics;

/// Features the browser app reports; the same list lives in `www/src/lib/telemetry/index.ts`.
pub const FEATURES: &[&str] = &[
    "workspace_create",
    "workspace_update",
    "workspace_delete",
    "conversation_create",
    "conversation_rename",
    "conversation_archive",
    "conversation_delete",
    "conversation_search",
    "message_send",
    "message_copy",
    "message_retry",
    "run_cancel",
    "run_reattach",
    "file_upload",
    "file_download",
    "file_delete",
    "file_attach",
    "theme_change",
];

pub const VITALS: &[&str] = &["LCP", "INP", "CLS", "FCP", "TTFB"];
const EXCEPTION_KINDS: &[&str] = &["error", "unhandledrejection"];

const MAX_BODY: u64 = 64 * 1024;
const MAX_EVENTS: usize = 50;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Batch {
    pub events: Vec<Event>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Event {
    Exception {
        kind: String,
        #[serde(default)]
        message: Option<String>,
    },
    WebVital {
        name: String,
        value: f64,
    },
    Feature {
        feature: String,
    },
}

/// Creates the series of every fixed label value at zero, so dashboards and alerts see
/// them before the first browser reports anything.
pub fn preset_metrics() {
    let m = metrics::get();
    for kind in EXCEPTION_KINDS {
        m.client_exceptions.with_label_values(&[kind]);
    }
    for name in VITALS {
        m.client_web_vitals.with_label_values(&[name]);
    }
    for feature in FEATURES {
        m.feature_usage.with_label_values(&[feature]);
    }
    for direction in ["in", "out"] {
        m.file_bytes.with_label_values(&[direction]);
    }
}

/// Checks a whole batch before counting any of it.
pub fn validate(batch: &Batch) -> Result<()> {
    if batch.events.len() > MAX_EVENTS {
        return Err(Error::bad_request(
            "too_many_events",
            format!("at most {MAX_EVENTS} events a batch"),
        ));
    }
    for event in &batch.events {
        let known = match event {
            Event::Exception { kind, .. } => EXCEPTION_KINDS.contains(&kind.as_str()),
            Event::WebVital { name, value } => {
                VITALS.contains(&name.as_str())
                    && value.is_finite()
                    && (0.0..=600_000.0).contains(value)
            }
            Event::Feature { feature } => FEATURES.contains(&feature.as_str()),
        };
        if !known {
            return Err(Error::bad_request(
                "unknown_event",
                "an event names an unknown kind, vital or feature",
            ));
        }
    }
    Ok(())
}

/// Counts a valid batch. Vitals arrive in milliseconds (CLS unitless) and are kept in seconds.
fn record(batch: &Batch) {
    let m = metrics::get();
    for event in &batch.events {
        match event {
            Event::Exception { kind, .. } => m.client_exceptions.with_label_values(&[kind]).inc(),
            Event::WebVital { name, value } => {
                let v = if name == "CLS" {
                    *value
                } else {
                    value / 1000.0
                };
                m.client_web_vitals.with_label_values(&[name]).observe(v);
            }
            Event::Feature { feature } => m.feature_usage.with_label_values(&[feature]).inc(),
        }
    }
}

/// Batches accepted per client address per minute.
const BATCHES_PER_MINUTE: u32 = 60;

/// A fixed-window count of batches per client, per instance.
pub struct RateLimit {
    windows: Mutex<HashMap<String, (Instant, u32)>>,
}

impl RateLimit {
    pub fn new() -> RateLimit {
        RateLimit {
            windows: Mutex::new(HashMap::new()),
        }
    }

    fn allow(&self, client: &str, now: Instant) -> bool {
        let mut windows = self
            .windows
            .lock()
            .expect("rate limit lock is never poisoned");
        if windows.len() > 10_000 {
            windows.retain(|_, (start, _)| now.duration_since(*start).as_secs() < 60);
        }
        let entry = windows.entry(client.to_string()).or_insert((now, 0));
        if now.duration_since(entry.0).as_secs() >= 60 {
            *entry = (now, 0);
        }
        entry.1 += 1;
        entry.1 <= BATCHES_PER_MINUTE
    }
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit::new()
    }
}

pub async fn handle_telemetry(app: &App, user: &str, req: Request) -> Result<Response> {
    if !app.telemetry_limit.allow(user, Instant::now()) {
        return Err(Error::TooManyRequests);
    }
    let bytes = http::read_limited(req, MAX_BODY).await?;
    let batch: Batch = http::parse_json(&bytes)?;
    validate(&batch)?;
    record(&batch);
    Ok(http::no_content())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(json: &str) -> Result<Batch> {
        http::parse_json(json.as_bytes())
    }

    #[test]
    fn known_events_pass_and_unknown_labels_are_refused() {
        let ok = batch(
            r#"{"events":[{"type":"feature","feature":"message_send"},
            {"type":"web_vital","name":"LCP","value":1200},{"type":"exception","kind":"error"}]}"#,
        )
        .expect("parses");
        assert!(validate(&ok).is_ok());
        let bad =
            batch(r#"{"events":[{"type":"feature","feature":"drop table"}]}"#).expect("parses");
        assert!(validate(&bad).is_err());
        let bad =
            batch(r#"{"events":[{"type":"web_vital","name":"LCP","value":-1}]}"#).expect("parses");
        assert!(validate(&bad).is_err());
        assert!(batch(r#"{"events":[{"type":"nope"}]}"#).is_err());
    }

    #[test]
    fn a_client_is_limited_per_minute() {
        let limit = RateLimit::new();
        let now = Instant::now();
        for _ in 0..BATCHES_PER_MINUTE {
            assert!(limit.allow("a", now));
        }
        assert!(!limit.allow("a", now));
        assert!(limit.allow("b", now));
    }
}
