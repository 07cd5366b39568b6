//! The `Range` request header (RFC 9110 §14.2) for downloads, resolved against the size.
//!
//! One range is served as a 206; several ranges are answered with the whole file (200), as
//! the RFC allows: multipart/byteranges is not worth its cost here. A header that does not
//! parse is ignored the same way; one that parses but starts beyond the end is a 416.

use crate::storage::ByteRange;

/// What to answer for a `Range` header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeOutcome {
    /// No usable range: send the whole file with 200.
    Full,
    /// Send these bytes with 206 and `Content-Range`.
    Partial(ByteRange),
    /// 416, with `Content-Range: bytes */{size}`.
    Unsatisfiable,
}

/// Resolves the `Range` header (if any) against a file of `size` bytes.
pub fn parse(header: Option<&str>, size: u64) -> RangeOutcome {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return RangeOutcome::Full;
    };
    if spec.contains(',') {
        return RangeOutcome::Full;
    }
    match spec.trim().split_once('-') {
        Some(("", suffix)) => suffix_range(suffix, size),
        Some((first, last)) => bounded_range(first, last, size),
        None => RangeOutcome::Full,
    }
}

/// `bytes=-N`: the last N bytes.
fn suffix_range(suffix: &str, size: u64) -> RangeOutcome {
    match number(suffix) {
        None => RangeOutcome::Full,
        Some(0) => RangeOutcome::Unsatisfiable,
        Some(_) if size == 0 => RangeOutcome::Unsatisfiable,
        Some(n) => RangeOutcome::Partial(ByteRange {
            first: size.saturating_sub(n),
            last: size - 1,
        }),
    }
}

/// `bytes=A-B` or `bytes=A-`.
fn bounded_range(first: &str, last: &str, size: u64) -> RangeOutcome {
    let Some(first) = number(first) else {
        return RangeOutcome::Full;
    };
    let last = match last {
        "" => None,
        text => match number(text) {
            Some(n) if n >= first => Some(n),
            _ => return RangeOutcome::Full,
        },
    };
    if first >= size {
        return RangeOutcome::Unsatisfiable;
    }
    let last = last.map_or(size - 1, |n| n.min(size - 1));
    RangeOutcome::Partial(ByteRange { first, last })
}

/// A decimal number of digits only (no sign, no spaces inside).
fn number(text: &str) -> Option<u64> {
    let text = text.trim();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// `Content-Range` for a 416 answer.
pub fn unsatisfiable_content_range(size: u64) -> String {
    format!("bytes */{size}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn partial(first: u64, last: u64) -> RangeOutcome {
        RangeOutcome::Partial(ByteRange { first, last })
    }

    #[test]
    fn the_issue_cases() {
        assert_eq!(parse(Some("bytes=0-9"), 100), partial(0, 9));
        assert_eq!(parse(Some("bytes=-10"), 100), partial(90, 99));
        assert_eq!(parse(Some("bytes=10-"), 100), partial(10, 99));
        assert_eq!(parse(Some("bytes=100-"), 100), RangeOutcome::Unsatisfiable);
        assert_eq!(
            parse(Some("bytes=200-300"), 100),
            RangeOutcome::Unsatisfiable
        );
    }

    #[test]
    fn edges_follow_the_rfc() {
        assert_eq!(parse(None, 100), RangeOutcome::Full);
        assert_eq!(parse(Some("bytes=90-200"), 100), partial(90, 99));
        assert_eq!(parse(Some("bytes=-200"), 100), partial(0, 99));
        assert_eq!(parse(Some("bytes=-0"), 100), RangeOutcome::Unsatisfiable);
        assert_eq!(parse(Some("bytes=0-0"), 0), RangeOutcome::Unsatisfiable);
        assert_eq!(parse(Some("bytes=-5"), 0), RangeOutcome::Unsatisfiable);
        assert_eq!(parse(Some("bytes=0-1,5-6"), 100), RangeOutcome::Full);
        for ignored in [
            "bytes=9-0",
            "bytes=a-b",
            "items=0-9",
            "bytes=",
            "bytes=-",
            "bytes=+1-2",
        ] {
            assert_eq!(parse(Some(ignored), 100), RangeOutcome::Full, "{ignored}");
        }
        assert_eq!(unsatisfiable_content_range(100), "bytes */100");
    }

    proptest! {
        #[test]
        fn partial_ranges_lie_within_the_file(
            header in "bytes=[0-9]{0,4}-[0-9]{0,4}",
            size in 0u64..5000,
        ) {
            if let RangeOutcome::Partial(r) = parse(Some(&header), size) {
                prop_assert!(r.first <= r.last && r.last < size);
            }
        }

        #[test]
        fn any_header_is_handled(header in any::<String>(), size: u64) {
            if let RangeOutcome::Partial(r) = parse(Some(&header), size) {
                prop_assert!(r.first <= r.last && r.last < size);
            }
        }
    }
}
