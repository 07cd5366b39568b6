//! Request header values the server interprets: the identity header, `Range`,
//! `Content-Type` with parameters (the multipart boundary, MCP media types) and
//! `Last-Event-ID`. The first byte chooses the header; the rest is its value.
//! Properties: a resolved range lies inside the file; an accepted name is trimmed printable
//! text; a boundary is 1 to 70 characters.
#![no_main]

use daedalus::files::{multipart, range};
use daedalus::identity;
use daedalus::mcp::jsonrpc::media_type_is;
use daedalus::runs::events::parse_last_event_id;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, value)) = data.split_first() else {
        return;
    };
    // Header values reach handlers only if hyper accepted them.
    let Ok(header) = http::HeaderValue::from_bytes(value) else {
        return;
    };
    match which % 4 {
        0 => check_identity(header.as_bytes()),
        1 => check_range(header.to_str().ok(), u64::from(which) << 24),
        2 => check_content_type(header.to_str().ok()),
        _ => {
            let _ = parse_last_event_id(Some(header.as_bytes()));
        }
    }
});

fn check_identity(raw: &[u8]) {
    if let Ok(name) = identity::parse_name(raw) {
        assert!(!name.is_empty() && name.trim() == name);
        assert!(!name.chars().any(char::is_control));
    }
}

fn check_range(header: Option<&str>, size: u64) {
    if let range::RangeOutcome::Partial(r) = range::parse(header, size) {
        assert!(
            r.first <= r.last && r.last < size,
            "{header:?} on {size}: {r:?}"
        );
    }
}

fn check_content_type(value: Option<&str>) {
    let Some(value) = value else { return };
    if let Ok(boundary) = multipart::boundary(value) {
        assert!(
            (1..=70).contains(&boundary.len()),
            "{value:?} gave {boundary:?}"
        );
    }
    let _ = media_type_is(value, "text/event-stream");
}
