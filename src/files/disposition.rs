//! `Content-Disposition` for downloads, and which types may be shown in the browser.
//!
//! The header carries the name twice (RFC 6266): `filename="..."` as an ASCII fallback for
//! old clients, and `filename*=UTF-8''...` percent-encoded (RFC 8187) with the real name.
//! Types a browser would run or render as a page (HTML, SVG, XML, scripts) are always sent
//! as attachments: served inline from our origin they could run script as the user.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Characters RFC 8187 allows unencoded in `filename*` (`attr-char`).
const ATTR_CHAR: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'!')
    .remove(b'#')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'^')
    .remove(b'_')
    .remove(b'`')
    .remove(b'|')
    .remove(b'~');

/// Types safe to show inline: they cannot run script in our origin.
const INLINE_SAFE: &[&str] = &[
    "text/plain",
    "application/pdf",
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "image/avif",
    "image/bmp",
    "audio/mpeg",
    "audio/ogg",
    "audio/wav",
    "audio/webm",
    "video/mp4",
    "video/webm",
    "video/ogg",
];

/// Whether a file of `content_type` may be shown inline. An allow-list: anything unknown,
/// including `text/html`, `image/svg+xml` and `*/xml`, is downloaded instead.
pub fn is_inline_safe(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    INLINE_SAFE
        .iter()
        .any(|safe| safe.eq_ignore_ascii_case(essence))
}

/// The header value for a file called `name` (a name from [`super::name::clean`]).
pub fn header(name: &str, inline: bool) -> String {
    let kind = if inline { "inline" } else { "attachment" };
    let encoded = utf8_percent_encode(name, ATTR_CHAR);
    format!(
        "{kind}; filename=\"{}\"; filename*=UTF-8''{encoded}",
        ascii_fallback(name)
    )
}

/// The header for a download, inline only when asked for and safe for the type.
pub fn for_download(name: &str, content_type: &str, want_inline: bool) -> String {
    header(name, want_inline && is_inline_safe(content_type))
}

/// `name` in printable ASCII: anything else, and the characters with a meaning inside a
/// quoted string or to some browsers (`"`, `\`, `%`), become `_`.
fn ascii_fallback(name: &str) -> String {
    let fallback: String = name
        .chars()
        .map(|c| match c {
            ' '..='~' if !matches!(c, '"' | '\\' | '%') => c,
            _ => '_',
        })
        .collect();
    if fallback.is_empty() {
        super::name::FALLBACK.to_owned()
    } else {
        fallback
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Reads the `filename*` parameter back, as a browser would.
    fn decoded_name(header: &str) -> String {
        let encoded = header.split("filename*=UTF-8''").nth(1).expect("filename*");
        percent_encoding::percent_decode_str(encoded)
            .decode_utf8()
            .expect("UTF-8")
            .into_owned()
    }

    #[test]
    fn names_get_an_ascii_fallback_and_the_exact_utf8_name() {
        let h = header("résumé 東京.pdf", false);
        assert_eq!(
            h,
            "attachment; filename=\"r_sum_ __.pdf\"; \
             filename*=UTF-8''r%C3%A9sum%C3%A9%20%E6%9D%B1%E4%BA%AC.pdf"
        );
        assert_eq!(decoded_name(&h), "résumé 東京.pdf");
        let h = header("C++ notes 100%~.txt", true);
        assert!(
            h.starts_with("inline; filename=\"C++ notes 100_~.txt\";"),
            "{h}"
        );
        assert_eq!(decoded_name(&h), "C++ notes 100%~.txt");
        assert!(header("a\"b\\c.txt", false).contains("filename=\"a_b_c.txt\""));
    }

    #[test]
    fn executable_types_are_never_inline() {
        for t in [
            "text/html",
            "image/svg+xml",
            "application/xml",
            "text/javascript",
            "",
            "x/y",
        ] {
            assert!(!is_inline_safe(t), "{t}");
            assert!(for_download("f", t, true).starts_with("attachment;"));
        }
        for t in ["text/plain; charset=utf-8", "image/PNG", "application/pdf"] {
            assert!(is_inline_safe(t), "{t}");
            assert!(for_download("f", t, true).starts_with("inline;"));
        }
        assert!(for_download("f", "image/png", false).starts_with("attachment;"));
    }

    proptest! {
        #[test]
        fn headers_are_valid_and_round_trip_the_name(raw in any::<String>(), inline: bool) {
            let name = crate::files::name::clean(&raw);
            let h = header(&name, inline);
            prop_assert!(http::HeaderValue::from_str(&h).is_ok(), "{}", h);
            prop_assert!(h.bytes().all(|b| (b' '..=b'~').contains(&b)));
            prop_assert_eq!(decoded_name(&h), name);
        }
    }
}
