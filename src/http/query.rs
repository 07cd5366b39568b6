//! Query strings: percent-decoded `key=value` pairs, and the paging parameters every
//! list shares.

use std::borrow::Cow;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use percent_encoding::percent_decode_str;

use crate::error::{Error, Result};

/// Decoded pairs of a query string, in order. `+` is a space; bad UTF-8 is a 400.
pub fn parse(query: Option<&str>) -> Result<Vec<(Cow<'_, str>, Cow<'_, str>)>> {
    let Some(query) = query else {
        return Ok(Vec::new());
    };
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Ok((decode(k)?, decode(v)?))
        })
        .collect()
}

fn decode(s: &str) -> Result<Cow<'_, str>> {
    let invalid = || Error::bad_request("invalid_query", "the query string is not valid UTF-8");
    if s.contains('+') {
        let spaced = s.replace('+', " ");
        let decoded = percent_decode_str(&spaced)
            .decode_utf8()
            .map_err(|_| invalid())?;
        return Ok(Cow::Owned(decoded.into_owned()));
    }
    percent_decode_str(s).decode_utf8().map_err(|_| invalid())
}

/// The value of `key`, if given.
pub fn get<'a>(pairs: &'a [(Cow<'_, str>, Cow<'_, str>)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_ref())
}

/// `limit` and `cursor` of a list request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub limit: i64,
    pub cursor: Option<String>,
}

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 200;

impl Page {
    pub fn from_pairs(pairs: &[(Cow<'_, str>, Cow<'_, str>)]) -> Result<Page> {
        let limit = match get(pairs, "limit") {
            None => DEFAULT_LIMIT,
            Some(v) => v
                .parse::<i64>()
                .ok()
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .ok_or_else(|| {
                    Error::bad_request("invalid_limit", format!("limit must be 1 to {MAX_LIMIT}"))
                })?,
        };
        let cursor = get(pairs, "cursor").map(decode_cursor).transpose()?;
        Ok(Page { limit, cursor })
    }
}

/// Makes a cursor opaque: clients hand it back, never build one.
pub fn encode_cursor(raw: &str) -> String {
    URL_SAFE_NO_PAD.encode(raw)
}

fn decode_cursor(cursor: &str) -> Result<String> {
    let bad = || Error::bad_request("invalid_cursor", "the cursor is not one this server gave");
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    String::from_utf8(bytes).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_decoded_in_order() {
        let pairs = parse(Some("name=a+b%2Bc.txt&q=%C3%A9t%C3%A9&flag&=x")).expect("ok");
        assert_eq!(get(&pairs, "name"), Some("a b+c.txt"));
        assert_eq!(get(&pairs, "q"), Some("été"));
        assert_eq!(get(&pairs, "flag"), Some(""));
    }

    #[test]
    fn invalid_utf8_is_refused() {
        assert!(parse(Some("q=%FF")).is_err());
    }

    #[test]
    fn paging_limits_are_checked_and_cursors_round_trip() {
        let pairs = parse(Some("limit=0")).expect("ok");
        assert!(Page::from_pairs(&pairs).is_err());
        let cursor = encode_cursor("42");
        let q = format!("limit=5&cursor={cursor}");
        let page = Page::from_pairs(&parse(Some(&q)).expect("ok")).expect("ok");
        assert_eq!(
            page,
            Page {
                limit: 5,
                cursor: Some("42".into())
            }
        );
        assert!(Page::from_pairs(&parse(Some("cursor=!!")).expect("ok")).is_err());
    }
}
