//! JSON log lines on stdout: one object per record with `ts`, `level`, `target`, `msg` and the
//! record's key-value fields. The level comes from `RUST_LOG` (default `info`).

use std::io::Write;
use std::sync::Mutex;
use std::time::Duration;

use log::kv::{Key, Value, VisitSource};

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
    let sink = Sink::start();
    builder
        .target(env_logger::Target::Pipe(Box::new(sink)))
        .format(|buf, record| {
            let line = render(record);
            buf.write_all(&line)?;
            buf.write_all(b"\n")
        })
        .init();
}

/// How long a line may wait in memory before it reaches stdout.
const FLUSH_EVERY: Duration = Duration::from_millis(100);
/// Lines are written out at once beyond this many buffered bytes.
const FLUSH_BYTES: usize = 64 * 1024;

static BUFFER: Mutex<Vec<u8>> = Mutex::new(Vec::new());

/// Lines gathered in memory and written to stdout in batches: one `write` per line was
/// the largest cost of a small request. A thread writes them out every `FLUSH_EVERY`;
/// [`flush`] does it at once (at exit). A crash can lose the last `FLUSH_EVERY` of lines.
struct Sink;

impl Sink {
    fn start() -> Sink {
        std::thread::Builder::new()
            .name("log-flush".into())
            .spawn(|| {
                loop {
                    std::thread::sleep(FLUSH_EVERY);
                    flush();
                }
            })
            .expect("a thread can be started at start-up");
        Sink
    }
}

impl Write for Sink {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let mut buffer = BUFFER.lock().unwrap_or_else(|p| p.into_inner());
        buffer.extend_from_slice(bytes);
        if buffer.len() >= FLUSH_BYTES {
            write_out(&mut buffer);
        }
        Ok(bytes.len())
    }

    /// The logger asks after every line; the batching above decides instead.
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Writes every buffered line to stdout now.
pub fn flush() {
    let mut buffer = BUFFER.lock().unwrap_or_else(|p| p.into_inner());
    write_out(&mut buffer);
}

fn write_out(buffer: &mut Vec<u8>) {
    if buffer.is_empty() {
        return;
    }
    let mut out = std::io::stdout().lock();
    // Nowhere to report a failing stdout; the lines are dropped rather than kept growing.
    let _ = out.write_all(buffer).and_then(|()| out.flush());
    buffer.clear();
}

/// One record as a JSON object; fields keep their JSON types where the value has one.
/// Written straight into the line buffer: this runs once per request (the access line).
pub fn render(record: &log::Record<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    let now = time::OffsetDateTime::now_utc();
    let ts = now
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    out.extend_from_slice(b"{\"ts\":");
    push_str(&mut out, &ts);
    out.extend_from_slice(b",\"level\":\"");
    out.extend_from_slice(level_name(record.level()).as_bytes());
    out.extend_from_slice(b"\",\"target\":");
    push_str(&mut out, record.target());
    out.extend_from_slice(b",\"msg\":");
    match record.args().as_str() {
        Some(text) => push_str(&mut out, text),
        None => push_str(&mut out, &record.args().to_string()),
    }
    // A visitor writing into our own buffer cannot fail.
    let _ = record.key_values().visit(&mut Fields(&mut out));
    out.push(b'}');
    out
}

fn level_name(level: log::Level) -> &'static str {
    match level {
        log::Level::Error => "error",
        log::Level::Warn => "warn",
        log::Level::Info => "info",
        log::Level::Debug => "debug",
        log::Level::Trace => "trace",
    }
}

/// A JSON string, escaped.
fn push_str(out: &mut Vec<u8>, text: &str) {
    serde_json::to_writer(&mut *out, text).expect("writing to a Vec cannot fail");
}

struct Fields<'a>(&'a mut Vec<u8>);

impl<'kvs> VisitSource<'kvs> for Fields<'_> {
    fn visit_pair(&mut self, key: Key<'kvs>, value: Value<'kvs>) -> Result<(), log::kv::Error> {
        let out = &mut *self.0;
        out.push(b',');
        push_str(out, key.as_str());
        out.push(b':');
        if let Some(n) = value.to_u64() {
            out.extend_from_slice(n.to_string().as_bytes());
        } else if let Some(n) = value.to_i64() {
            out.extend_from_slice(n.to_string().as_bytes());
        } else if let Some(b) = value.to_bool() {
            out.extend_from_slice(if b { b"true" } else { b"false" });
        } else if let Some(f) = value.to_f64().filter(|f| f.is_finite()) {
            serde_json::to_writer(&mut *out, &f).expect("writing to a Vec cannot fail");
        } else if let Some(text) = value.to_borrowed_str() {
            push_str(out, text);
        } else {
            push_str(out, &value.to_string());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value as Json;

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
