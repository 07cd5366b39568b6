//! Input rules shared by the handlers: text lengths, NUL characters, agent server URLs
//! and headers. Each failure is a 400 whose code names the rule.

use serde::Deserialize;

use crate::error::{Error, Result};

/// For `#[serde(default, deserialize_with = "nullable")]`: tells `"field": null` (clear
/// it, `Some(None)`) from an absent field (keep it, `None`).
pub fn nullable<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// Checks a text field: no NUL (PostgreSQL cannot store it), at most `max` characters,
/// and not blank unless `allow_empty`. Returns it trimmed.
pub fn text(field: &str, value: &str, max: usize, allow_empty: bool) -> Result<String> {
    if value.contains('\0') {
        return Err(Error::bad_request(
            "invalid_text",
            format!("{field} contains a NUL character"),
        ));
    }
    let trimmed = value.trim();
    if trimmed.is_empty() && !allow_empty {
        return Err(Error::bad_request(
            "invalid_text",
            format!("{field} must not be empty"),
        ));
    }
    if trimmed.chars().count() > max {
        return Err(Error::bad_request(
            "too_long",
            format!("{field} is longer than {max} characters"),
        ));
    }
    Ok(trimmed.to_string())
}

/// An agent server URL: http or https, with a host, no credentials, bounded.
pub fn server_url(value: &str) -> Result<String> {
    let url = text("agent server url", value, 2048, false)?;
    let bad = |why: &str| Error::bad_request("invalid_url", format!("agent server url {why}"));
    let uri: http::Uri = url.parse().map_err(|_| bad("is not a URL"))?;
    match uri.scheme_str() {
        Some("http") | Some("https") => {}
        _ => return Err(bad("must start with http:// or https://")),
    }
    let Some(authority) = uri.authority() else {
        return Err(bad("has no host"));
    };
    if authority.as_str().contains('@') {
        return Err(bad("must not carry credentials; use a header instead"));
    }
    if authority.host().is_empty() {
        return Err(bad("has no host"));
    }
    Ok(url)
}

/// Headers the MCP client sets itself; a workspace may not override them.
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "accept",
    "mcp-session-id",
    "mcp-protocol-version",
    "mcp-method",
    "mcp-name",
    "last-event-id",
];

/// A header an agent server should receive: a valid name that is not reserved, and a
/// value without line breaks.
pub fn server_header(name: &str, value: &str) -> Result<()> {
    let bad = |why: String| Error::bad_request("invalid_header", why);
    let parsed = http::HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| bad(format!("{name:?} is not a header name")))?;
    if RESERVED_HEADERS.contains(&parsed.as_str()) {
        return Err(bad(format!("{name} is set by Daedalus itself")));
    }
    if value.len() > 8192 || http::HeaderValue::from_str(value).is_err() {
        return Err(bad(format!(
            "the value of {name} is not a valid header value"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_rules() {
        assert_eq!(text("title", "  hi ", 10, false).expect("ok"), "hi");
        assert!(text("title", "a\0b", 10, false).is_err());
        assert!(text("title", "   ", 10, false).is_err());
        assert!(text("title", &"é".repeat(11), 10, false).is_err());
        assert!(text("title", &"é".repeat(10), 10, false).is_ok());
    }

    #[test]
    fn server_urls_must_be_http() {
        assert!(server_url("http://127.0.0.1:8080/mcp").is_ok());
        assert!(server_url("https://agents.example/mcp").is_ok());
        for bad in [
            "ftp://x/mcp",
            "javascript:alert(1)",
            "file:///etc/passwd",
            "/mcp",
            "http://u:p@h/",
        ] {
            assert!(server_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn reserved_and_broken_headers_are_refused() {
        assert!(server_header("Authorization", "Bearer x").is_ok());
        assert!(server_header("Mcp-Session-Id", "x").is_err());
        assert!(server_header("X-A", "a\r\nb").is_err());
        assert!(server_header("bad name", "x").is_err());
    }
}
