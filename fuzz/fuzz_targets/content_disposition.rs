//! `Content-Disposition` of downloads, built from a cleaned name as the download handler
//! builds it. Properties: the value is a valid header value; its `filename*` decodes back
//! to the name exactly; its quoted `filename` needs no escaping.
#![no_main]

use daedalus::files::{disposition, name};
use libfuzzer_sys::fuzz_target;
use percent_encoding::percent_decode_str;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, raw)) = data.split_first() else {
        return;
    };
    let name = name::clean(&String::from_utf8_lossy(raw));
    let types = [
        "application/pdf",
        "text/html",
        "image/svg+xml",
        "text/plain; charset=utf-8",
    ];
    let value = disposition::for_download(&name, types[usize::from(flags % 4)], flags & 4 != 0);
    let header = http::HeaderValue::from_str(&value).expect("a valid header value");
    let text = header.to_str().expect("visible ASCII only");
    let (_, encoded) = text
        .split_once("; filename*=UTF-8''")
        .expect("an RFC 8187 name");
    let decoded = percent_decode_str(encoded).decode_utf8().expect("UTF-8");
    assert_eq!(decoded, name);
    let quoted = text.split_once("filename=\"").expect("a fallback").1;
    let fallback = quoted.split_once('"').expect("a closed quote").0;
    assert!(!fallback.contains('\\') && !fallback.is_empty());
    assert!(quoted.starts_with(fallback) && quoted[fallback.len()..].starts_with("\"; "));
});
