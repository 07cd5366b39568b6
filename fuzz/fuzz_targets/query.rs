//! Query strings of list requests, as `messages::handle_list` reads them: pairs, paging,
//! and the cursor. Property: a cursor this server encodes decodes to the same position.
#![no_main]

use daedalus::api::messages::Position;
use daedalus::http::query::{self, Page};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(pairs) = query::parse(Some(text)) else {
        return;
    };
    let Ok(page) = Page::from_pairs(&pairs) else {
        return;
    };
    assert!((1..=query::MAX_LIMIT).contains(&page.limit));
    if let Some(raw) = page.cursor.as_deref() {
        let _ = Position::decode(raw);
    }
    if let Some(raw) = query::get(&pairs, "cursor") {
        let again = query::encode_cursor(raw);
        let cursor_query = format!("cursor={again}");
        let round = query::parse(Some(&cursor_query)).expect("an encoded cursor");
        let page = Page::from_pairs(&round).expect("a cursor we encoded");
        assert_eq!(page.cursor.as_deref(), Some(raw));
    }
});
