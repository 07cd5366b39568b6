//! Keyset paging for lists ordered newest first by `(timestamp, id)`: the cursor names the
//! last item of the previous page, so pages stay stable while rows are added.

use std::borrow::Cow;

use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::http::query::encode_cursor;

/// The list shape every list endpoint answers.
#[derive(Serialize)]
pub struct List<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// The position after which the next page starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    pub at: OffsetDateTime,
    pub id: Uuid,
}

impl Key {
    pub fn encode(&self) -> String {
        let micros = self.at.unix_timestamp_nanos() / 1000;
        encode_cursor(&format!("{micros}:{}", self.id))
    }

    pub fn decode(raw: &str) -> Result<Key> {
        let bad = || Error::bad_request("invalid_cursor", "the cursor is not one this server gave");
        let (micros, id) = raw.split_once(':').ok_or_else(bad)?;
        let micros: i128 = micros.parse().map_err(|_| bad())?;
        let at = OffsetDateTime::from_unix_timestamp_nanos(micros * 1000).map_err(|_| bad())?;
        Ok(Key {
            at,
            id: id.parse().map_err(|_| bad())?,
        })
    }

    /// The cursor before any item: later than every row.
    pub fn start() -> Key {
        Key {
            at: OffsetDateTime::from_unix_timestamp(253_402_300_799).expect("year 9999 is valid"),
            id: Uuid::max(),
        }
    }
}

/// Where a newest-first list request starts: its page size and the key after which it
/// begins (`limit` and `cursor` of the query).
pub struct Window {
    pub limit: i64,
    pub after: Key,
}

impl Window {
    pub fn from_pairs(pairs: &[(Cow<'_, str>, Cow<'_, str>)]) -> Result<Window> {
        let page = crate::http::query::Page::from_pairs(pairs)?;
        let after = page
            .cursor
            .as_deref()
            .map(Key::decode)
            .transpose()?
            .unwrap_or_else(Key::start);
        Ok(Window {
            limit: page.limit,
            after,
        })
    }

    /// Rows to fetch: one more than a page, to learn whether another page exists.
    pub fn fetch(&self) -> i64 {
        self.limit + 1
    }

    /// The list answer for rows fetched with [`Window::fetch`].
    pub fn respond<T>(
        &self,
        rows: Vec<T>,
        key: impl Fn(&T) -> Key,
        to_json: impl Fn(&T) -> serde_json::Value,
    ) -> Result<crate::http::Response> {
        let list = page(rows, self.limit, |row| key(row).encode());
        let items: Vec<serde_json::Value> = list.items.iter().map(to_json).collect();
        crate::http::json(
            ::http::StatusCode::OK,
            &List {
                items,
                next_cursor: list.next_cursor,
            },
        )
    }
}

/// Cuts a fetched `limit + 1` rows down to a page and its cursor.
pub fn page<T>(mut rows: Vec<T>, limit: i64, key: impl Fn(&T) -> String) -> List<T> {
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = if more { rows.last().map(key) } else { None };
    List {
        items: rows,
        next_cursor,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_to_the_microsecond() {
        let at = OffsetDateTime::from_unix_timestamp_nanos(1_764_000_000_123_456_000).expect("ok");
        let key = Key {
            at,
            id: Uuid::new_v4(),
        };
        let raw = crate::http::query::Page::from_pairs(&[("cursor".into(), key.encode().into())])
            .expect("ok")
            .cursor
            .expect("cursor");
        assert_eq!(Key::decode(&raw).expect("ok"), key);
    }

    #[test]
    fn a_page_has_a_cursor_only_when_more_rows_exist() {
        let p = page(vec![1, 2, 3], 2, |n| n.to_string());
        assert_eq!(p.items, vec![1, 2]);
        assert_eq!(p.next_cursor.as_deref(), Some("2"));
        let p = page(vec![1, 2], 2, |n| n.to_string());
        assert_eq!(p.next_cursor, None);
    }
}
