//! Run events: numbered, stored in `run_events`, announced with `NOTIFY` so that any
//! instance can stream them, and written to browsers as Server-Sent Events.

use bytes::{BufMut, Bytes, BytesMut};
use deadpool_postgres::GenericClient;
use serde_json::Value;
use uuid::Uuid;

use crate::error::Result;

/// The channel that announces `run_id:seq` of every stored event.
pub const EVENTS_CHANNEL: &str = "daedalus_run_events";
/// The channel that asks the instance running `run_id` to cancel it.
pub const CANCEL_CHANNEL: &str = "daedalus_run_cancel";

pub const STARTED: &str = "run.started";
pub const PROGRESS: &str = "progress";
pub const COMPLETED: &str = "message.completed";
pub const FAILED: &str = "run.failed";
pub const CANCELLED: &str = "run.cancelled";

/// True for the events that end a run's stream.
pub fn is_terminal(kind: &str) -> bool {
    matches!(kind, COMPLETED | FAILED | CANCELLED)
}

/// One stored event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub seq: i32,
    pub kind: String,
    pub data: Value,
}

/// Stores one event and announces it, in one statement (and so in the caller's
/// transaction, if any: the announcement goes out at commit).
pub async fn append(db: &impl GenericClient, run: Uuid, event: &Event) -> Result<()> {
    let stmt = db
        .prepare_cached(
            "WITH e AS (INSERT INTO run_events (run_id, seq, type, data) VALUES ($1, $2, $3, $4)
                        RETURNING seq)
             SELECT pg_notify($5, $1::text || ':' || seq::text) FROM e",
        )
        .await?;
    db.query(
        &stmt,
        &[&run, &event.seq, &event.kind, &event.data, &EVENTS_CHANNEL],
    )
    .await?;
    Ok(())
}

/// Events of a run after `seq`, in order.
pub async fn after(db: &impl GenericClient, run: Uuid, seq: i32) -> Result<Vec<Event>> {
    let stmt = db
        .prepare_cached(
            "SELECT seq, type, data FROM run_events WHERE run_id = $1 AND seq > $2 ORDER BY seq",
        )
        .await?;
    let rows = db.query(&stmt, &[&run, &seq]).await?;
    Ok(rows
        .iter()
        .map(|r| Event {
            seq: r.get(0),
            kind: r.get(1),
            data: r.get(2),
        })
        .collect())
}

/// One event as an SSE frame: `id`, `event` and one `data` line (JSON has no raw newlines).
pub fn sse_frame(event: &Event) -> Bytes {
    let data = serde_json::to_vec(&event.data).expect("a JSON value always serialises");
    let mut out = BytesMut::with_capacity(data.len() + event.kind.len() + 32);
    out.put_slice(b"id: ");
    out.put_slice(event.seq.to_string().as_bytes());
    out.put_slice(b"\nevent: ");
    out.put_slice(event.kind.as_bytes());
    out.put_slice(b"\ndata: ");
    out.put_slice(&data);
    out.put_slice(b"\n\n");
    out.freeze()
}

/// A comment line that keeps proxies from closing a quiet stream.
pub const KEEP_ALIVE: &[u8] = b": keep-alive\n\n";

/// The `Last-Event-ID` a browser re-attaches with: a sequence number, or 0 for all.
/// `None` when the value is not an event number.
pub fn parse_last_event_id(value: Option<&[u8]>) -> Option<i32> {
    let Some(raw) = value else { return Some(0) };
    let text = std::str::from_utf8(raw).ok()?.trim();
    if text.is_empty() {
        return Some(0);
    }
    text.parse::<i32>().ok().filter(|n| *n >= 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_carry_id_event_and_one_data_line() {
        let e = Event {
            seq: 7,
            kind: PROGRESS.into(),
            data: serde_json::json!({"message": "a\nb"}),
        };
        let frame = sse_frame(&e);
        assert_eq!(
            &frame[..],
            b"id: 7\nevent: progress\ndata: {\"message\":\"a\\nb\"}\n\n"
        );
    }

    #[test]
    fn last_event_ids_are_sequence_numbers() {
        assert_eq!(parse_last_event_id(None), Some(0));
        assert_eq!(parse_last_event_id(Some(b" 12 ")), Some(12));
        assert_eq!(parse_last_event_id(Some(b"-1")), None);
        assert_eq!(parse_last_event_id(Some(b"x")), None);
    }
}
