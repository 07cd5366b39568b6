//! Cleaning a file name given by a user into one safe to store, show and put in a key.
//!
//! Only the last path part is kept (either separator, so `..\..\x` gives `x`); control
//! characters (CR/LF included) and the Unicode bidi controls that can disguise an extension
//! (`invoice\u{202E}fdp.exe` shows as `invoiceexe.pdf`) are removed; leading and trailing
//! spaces and dots go; the result is cut to [`MAX_BYTES`] at a character boundary, keeping a
//! short extension. A name with nothing left becomes [`FALLBACK`].
//!
//! Names are not Unicode-normalised: `é` typed as one or two code points gives two names.
//! The `unicode-normalization` crate's NFC would fold them.

/// Longest cleaned name in bytes: well under the 255-byte file name limit of common file
/// systems, leaving room in an S3 key (1024 bytes) for the prefix.
pub const MAX_BYTES: usize = 200;

/// The name given when nothing usable is left.
pub const FALLBACK: &str = "unnamed-file";

/// Longest extension (dot included, in bytes) kept when a long name is cut.
const MAX_EXTENSION_BYTES: usize = 16;

/// A safe version of `raw`: never empty, no separator, control or bidi character, at most
/// [`MAX_BYTES`] bytes.
pub fn clean(raw: &str) -> String {
    let last_part = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let kept: String = last_part.chars().filter(|c| !is_unsafe(*c)).collect();
    let trimmed = kept.trim_matches(|c: char| c.is_whitespace() || c == '.');
    if trimmed.is_empty() {
        return FALLBACK.to_owned();
    }
    shorten(trimmed)
}

/// Characters that must never appear in a stored name.
pub fn is_unsafe(c: char) -> bool {
    c == '/' || c == '\\' || c.is_control() || is_bidi_control(c) || c == '\u{FEFF}'
}

/// The explicit direction marks, embeddings, overrides and isolates of Unicode.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}')
        || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Cuts `name` to [`MAX_BYTES`], keeping its extension when that is short.
fn shorten(name: &str) -> String {
    if name.len() <= MAX_BYTES {
        return name.to_owned();
    }
    let extension = match name.rfind('.') {
        Some(dot) if name.len() - dot <= MAX_EXTENSION_BYTES && dot > 0 => &name[dot..],
        _ => "",
    };
    let stem = cut_at_char_boundary(name, MAX_BYTES - extension.len());
    let stem = stem.trim_end_matches(|c: char| c.is_whitespace() || c == '.');
    format!("{stem}{extension}")
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
fn cut_at_char_boundary(s: &str, max: usize) -> &str {
    let mut end = max.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ordinary_names_stay_as_they_are() {
        for name in [
            "a b.txt",
            "a+b.txt",
            "résumé 東京.pdf",
            "C++ notes 100%~.txt",
            ".env",
        ] {
            assert_eq!(clean(name), name.trim_start_matches('.'));
        }
    }

    #[test]
    fn path_parts_are_dropped() {
        assert_eq!(clean("../../etc/passwd"), "passwd");
        assert_eq!(clean("..\\..\\x"), "x");
        assert_eq!(clean("C:\\Users\\me\\report.pdf"), "report.pdf");
        assert_eq!(clean("../.."), FALLBACK);
        assert_eq!(clean("dir/"), FALLBACK);
    }

    #[test]
    fn header_injection_and_disguised_extensions_are_defused() {
        assert_eq!(clean("a\r\nX-Evil: 1.txt"), "aX-Evil: 1.txt");
        assert_eq!(clean("invoice\u{202E}fdp.exe"), "invoicefdp.exe");
        assert_eq!(clean("a\u{2066}b\u{2069}\u{200F}.txt\0"), "ab.txt");
    }

    #[test]
    fn long_names_are_cut_at_a_character_boundary() {
        let cleaned = clean(&"é".repeat(300));
        assert_eq!(cleaned, "é".repeat(100));
        let cleaned = clean(&format!("{}.pdf", "東".repeat(100)));
        assert!(
            cleaned.len() <= MAX_BYTES && cleaned.ends_with("東.pdf"),
            "{cleaned}"
        );
    }

    #[test]
    fn nothing_left_gives_the_fallback() {
        for raw in ["", "   ", "...", "\u{202E}", "\r\n", "/"] {
            assert_eq!(clean(raw), FALLBACK, "{raw:?}");
        }
    }

    proptest! {
        #[test]
        fn cleaned_names_are_always_safe(raw in any::<String>()) {
            let cleaned = clean(&raw);
            prop_assert!(!cleaned.is_empty());
            prop_assert!(cleaned.len() <= MAX_BYTES);
            prop_assert!(!cleaned.chars().any(is_unsafe));
            prop_assert!(cleaned != "." && cleaned != "..");
        }

        #[test]
        fn cleaning_is_idempotent(raw in any::<String>()) {
            let once = clean(&raw);
            prop_assert_eq!(clean(&once), once);
        }
    }
}
