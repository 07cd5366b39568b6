//! JSON log lines on stdout: one object per record with `ts`, `level`, `target`, `msg` and the
//! record's key-value fields. The level comes from `RUST_LOG` (default `info`).

use std::io::Write;

use log::kv::{Key, Value, VisitSource};
use serde_json::{Map, Value as Json};

/// Libraries whose debug output carries request data (statement parameters, headers,
/// bodies): they never log below `info`, whatever `RUST_LOG` says, so secrets and message
/// texts stay out of the logs.
const CAPPED: &[&str] = &[
    "tokio_postgres",
    "postgres_protocol",
    "hyper",
    "hyper_util",
    "h2",
];

/// Installs the JSON logger; call once, first thing in `main`.
pub fn init() {
    let mut builder = env_logger::Builder::new();
    builder.parse_filters(&std::env::var("RUST_LOG").unwrap_or_else(|_| "info".to_string()));
    for module in CAPPED {
        builder.filter_module(module, log::LevelFilter::Info);
    }
    builder
        .target(env_logger::Target::Stdout)
        .format(|buf, record| {
            let line = render(record);
            buf.write_all(&line)?;
            buf.write_all(b"\n")
        })
        .init();
}

/// One record as a JSON object; fields keep their JSON types where the value has one.
pub fn render(record: &log::Record<'_>) -> Vec<u8> {
    let mut obj = Map::with_capacity(8);
    let now = time::OffsetDateTime::now_utc();
    let ts = now
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    obj.insert("ts".into(), Json::String(ts));
    obj.insert(
        "level".into(),
        Json::String(record.level().as_str().to_ascii_lowercase()),
    );
    obj.insert("target".into(), Json::String(record.target().to_string()));
    obj.insert("msg".into(), Json::String(record.args().to_string()));
    let mut fields = Fields(&mut obj);
    // A visitor over our own map cannot fail.
    let _ = record.key_values().visit(&mut fields);
    serde_json::to_vec(&Json::Object(obj)).unwrap_or_default()
}

struct Fields<'a>(&'a mut Map<String, Json>);

impl<'kvs> VisitSource<'kvs> for Fields<'_> {
    fn visit_pair(&mut self, key: Key<'kvs>, value: Value<'kvs>) -> Result<(), log::kv::Error> {
        let json = if let Some(n) = value.to_u64() {
            Json::from(n)
        } else if let Some(n) = value.to_i64() {
            Json::from(n)
        } else if let Some(b) = value.to_bool() {
            Json::Bool(b)
        } else if let Some(f) = value.to_f64() {
            Json::from(f)
        } else {
            Json::String(value.to_string())
        };
        self.0.insert(key.as_str().to_string(), json);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_becomes_one_json_object_with_its_fields() {
        let kvs: &[(&str, Value<'_>)] =
            &[("status", Value::from(404u64)), ("route", Value::from("x"))];
        let record = log::Record::builder()
            .args(format_args!("request \"done\"\nnext"))
            .level(log::Level::Info)
            .target("access")
            .key_values(&kvs)
            .build();
        let line = render(&record);
        assert!(!line.contains(&b'\n'));
        let v: Json = serde_json::from_slice(&line).expect("valid JSON");
        assert_eq!(v["level"], "info");
        assert_eq!(v["target"], "access");
        assert_eq!(v["msg"], "request \"done\"\nnext");
        assert_eq!(v["status"], 404);
        assert_eq!(v["route"], "x");
    }
}
