//! Messages of a conversation, and the agent runs that sending one starts.
//!
//! Lists are oldest first. Without a cursor a page starts at the first message;
//! `?from=end` starts at the newest instead (the page still reads oldest first) and its
//! cursor leads back to older messages.

use ::http::StatusCode;
use serde::Serialize;
use time::OffsetDateTime;
use tokio_postgres::Row;
use uuid::Uuid;

use super::conversations::load_row;
use super::paging::List;
use crate::app::{App, User};
use crate::error::{Error, Result};
use crate::http::query::{self, encode_cursor};
use crate::http::{self, Request, Response};

pub const COLUMNS: &str = "id, conversation_id, role, content, status, error, agent, run_id, \
                           file_ids, created_at, parts, seq";

/// A message row in the answer shape.
pub fn to_json(row: &Row) -> serde_json::Value {
    serde_json::to_value(Message::from_row(row)).expect("a message always serialises")
}

/// A message row in the answer shape, borrowing from the row: listing messages is the
/// busiest read, so no intermediate JSON tree is built.
#[derive(Serialize)]
pub struct Message<'a> {
    id: Uuid,
    conversation_id: Uuid,
    role: &'a str,
    content: &'a str,
    status: &'a str,
    error: Option<serde_json::Value>,
    agent: Option<&'a str>,
    run_id: Option<Uuid>,
    file_ids: Vec<Uuid>,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    parts: serde_json::Value,
}

impl<'a> Message<'a> {
    pub fn from_row(row: &'a Row) -> Message<'a> {
        Message {
            id: row.get(0),
            conversation_id: row.get(1),
            role: row.get(2),
            content: row.get(3),
            status: row.get(4),
            error: row.get(5),
            agent: row.get(6),
            run_id: row.get(7),
            file_ids: row.get(8),
            created_at: row.get(9),
            parts: row.get(10),
        }
    }
}

/// Where a page starts: after a sequence number (forward) or before one (backward).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    After(i64),
    Before(i64),
}

impl Position {
    pub fn decode(raw: &str) -> Result<Position> {
        let bad = || Error::bad_request("invalid_cursor", "the cursor is not one this server gave");
        let (dir, seq) = raw.split_once(':').ok_or_else(bad)?;
        let seq: i64 = seq.parse().map_err(|_| bad())?;
        match dir {
            "a" => Ok(Position::After(seq)),
            "b" => Ok(Position::Before(seq)),
            _ => Err(bad()),
        }
    }

    fn encode(self) -> String {
        match self {
            Position::After(seq) => encode_cursor(&format!("a:{seq}")),
            Position::Before(seq) => encode_cursor(&format!("b:{seq}")),
        }
    }
}

pub async fn handle_list(
    app: &App,
    user: &User,
    ws: Uuid,
    c: Uuid,
    req: &Request,
) -> Result<Response> {
    let pairs = query::parse(req.uri().query())?;
    let page = query::Page::from_pairs(&pairs)?;
    let position = match (page.cursor.as_deref(), query::get(&pairs, "from")) {
        (Some(raw), _) => Position::decode(raw)?,
        (None, None | Some("start")) => Position::After(0),
        (None, Some("end")) => Position::Before(i64::MAX),
        (None, Some(_)) => {
            return Err(Error::bad_request(
                "invalid_query",
                "from must be start or end",
            ));
        }
    };
    let (rows, next_cursor) = fetch_page(app, user, ws, c, position, page.limit).await?;
    let items: Vec<Message<'_>> = rows.iter().map(Message::from_row).collect();
    http::json(StatusCode::OK, &List { items, next_cursor })
}

/// One page of messages, checking ownership in the same round trip when rows exist.
async fn fetch_page(
    app: &App,
    user: &User,
    ws: Uuid,
    c: Uuid,
    position: Position,
    limit: i64,
) -> Result<(Vec<Row>, Option<String>)> {
    let db = app.db.get().await?;
    let (cmp, order) = match position {
        Position::After(_) => (">", "ASC"),
        Position::Before(_) => ("<", "DESC"),
    };
    let sql = format!(
        "SELECT {COLUMNS} FROM messages m
         WHERE m.conversation_id = $1 AND m.seq {cmp} $2
           AND EXISTS (SELECT 1 FROM conversations c JOIN workspaces w ON w.id = c.workspace_id
                       WHERE c.id = $1 AND c.workspace_id = $3 AND w.owner_id = $4)
         ORDER BY m.seq {order} LIMIT $5"
    );
    let stmt = db.prepare_cached(&sql).await?;
    let (Position::After(seq) | Position::Before(seq)) = position;
    let mut rows = db
        .query(&stmt, &[&c, &seq, &ws, &user.id, &(limit + 1)])
        .await?;
    drop(db);
    if rows.is_empty() {
        load_row(app, user, ws, c).await?;
    }
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next = match position {
        Position::After(_) => rows.last().map(|r| Position::After(r.get(11))),
        Position::Before(_) => rows.last().map(|r| Position::Before(r.get(11))),
    };
    if matches!(position, Position::Before(_)) {
        rows.reverse();
    }
    Ok((rows, next.filter(|_| more).map(Position::encode)))
}
