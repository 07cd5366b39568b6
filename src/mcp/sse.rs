//! An incremental Server-Sent Events parser over raw bytes.
//!
//! Bytes arrive in reads of any size; [`Parser::push`] takes each read and
//! appends every completed event to the caller's vector. Line ends may be
//! LF, CR or CRLF, also when the CR and the LF land in different reads, and
//! a multi-byte UTF-8 character may be split between reads: lines are kept
//! as bytes until their end is seen, and only then decoded.
//!
//! One deliberate difference from the browser algorithm: a stream that ends
//! without the final blank line still yields its last event from
//! [`Parser::finish`], because MCP servers that close right after the last
//! `data:` line mean that event to count.

use std::time::Duration;

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The `event:` field, or `message` when the event named none.
    pub event: String,
    /// The `data:` lines joined with `\n`.
    pub data: String,
    /// The last event id seen on the stream so far (ids carry over to later events).
    pub id: Option<String>,
}

/// The parser failed; the stream cannot be trusted past this point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// A line or an event's data grew beyond the configured cap.
    TooLarge { limit: usize },
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::TooLarge { limit } => write!(f, "an event is larger than {limit} bytes"),
        }
    }
}

impl std::error::Error for Error {}

/// Incremental parser state for one stream.
#[derive(Debug)]
pub struct Parser {
    max_event_bytes: usize,
    line: Vec<u8>,
    /// The previous read ended on CR, so a leading LF in the next read belongs to it.
    after_cr: bool,
    /// Whether the stream's first bytes are still to come (a BOM there is dropped).
    at_start: bool,
    data: String,
    has_data: bool,
    event: String,
    last_id: Option<String>,
    retry: Option<Duration>,
}

impl Parser {
    /// A parser that fails once a single line or an event's data exceeds `max_event_bytes`.
    pub fn new(max_event_bytes: usize) -> Parser {
        Parser {
            max_event_bytes,
            line: Vec::new(),
            after_cr: false,
            at_start: true,
            data: String::new(),
            has_data: false,
            event: String::new(),
            last_id: None,
            retry: None,
        }
    }

    /// The reconnection delay the server asked for with `retry:`, if any.
    pub fn retry(&self) -> Option<Duration> {
        self.retry
    }

    /// The last event id the stream set, for `Last-Event-ID` on a resumption.
    pub fn last_event_id(&self) -> Option<&str> {
        self.last_id.as_deref()
    }

    /// Feeds one read; completed events are appended to `out`.
    pub fn push(&mut self, mut bytes: &[u8], out: &mut Vec<Event>) -> Result<(), Error> {
        bytes = self.skip_bom(bytes);
        if bytes.is_empty() {
            return Ok(());
        }
        if self.after_cr && bytes.first() == Some(&b'\n') {
            bytes = &bytes[1..];
        }
        self.after_cr = false;
        while let Some(end) = bytes.iter().position(|&b| b == b'\n' || b == b'\r') {
            self.extend_line(&bytes[..end])?;
            self.end_line(out)?;
            let crlf = bytes[end] == b'\r' && bytes.get(end + 1) == Some(&b'\n');
            if bytes[end] == b'\r' && end + 1 == bytes.len() {
                self.after_cr = true;
            }
            bytes = &bytes[end + if crlf { 2 } else { 1 }..];
        }
        self.extend_line(bytes)
    }

    /// Ends the stream: an unterminated last line and a pending event still count.
    pub fn finish(&mut self, out: &mut Vec<Event>) -> Result<(), Error> {
        if !self.line.is_empty() {
            self.end_line(out)?;
        }
        self.dispatch(out);
        Ok(())
    }

    fn skip_bom<'a>(&mut self, bytes: &'a [u8]) -> &'a [u8] {
        if !self.at_start || bytes.is_empty() {
            return bytes;
        }
        // The BOM may itself be split across reads; keep it in the line buffer until whole.
        let seen = self.line.len();
        let bom = b"\xEF\xBB\xBF";
        let wanted = &bom[seen..];
        let n = wanted.len().min(bytes.len());
        if bytes[..n] != wanted[..n] {
            self.at_start = false;
            return bytes;
        }
        if n < wanted.len() {
            self.line.extend_from_slice(&bytes[..n]);
            return &bytes[n..];
        }
        self.line.clear();
        self.at_start = false;
        &bytes[n..]
    }

    fn extend_line(&mut self, bytes: &[u8]) -> Result<(), Error> {
        if bytes.is_empty() {
            return Ok(());
        }
        if self.at_start {
            // A partial BOM followed by other bytes was never a BOM.
            self.at_start = false;
        }
        if self.line.len() + bytes.len() > self.max_event_bytes {
            return Err(Error::TooLarge {
                limit: self.max_event_bytes,
            });
        }
        self.line.extend_from_slice(bytes);
        Ok(())
    }

    fn end_line(&mut self, out: &mut Vec<Event>) -> Result<(), Error> {
        self.at_start = false;
        let line = std::mem::take(&mut self.line);
        if line.is_empty() {
            self.dispatch(out);
            return Ok(());
        }
        let result = self.field(&line);
        // Keep the buffer's capacity for the next line instead of reallocating.
        self.line = line;
        self.line.clear();
        result
    }

    fn field(&mut self, line: &[u8]) -> Result<(), Error> {
        if line[0] == b':' {
            return Ok(());
        }
        let (name, value) = match line.iter().position(|&b| b == b':') {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &[][..]),
        };
        let value = String::from_utf8_lossy(value);
        match name {
            b"data" => self.append_data(&value)?,
            b"event" => self.event = value.into_owned(),
            b"id" if !value.contains('\0') => self.last_id = Some(value.into_owned()),
            b"retry" => self.set_retry(&value),
            _ => {}
        }
        Ok(())
    }

    fn append_data(&mut self, value: &str) -> Result<(), Error> {
        let separator = usize::from(self.has_data);
        if self.data.len() + separator + value.len() > self.max_event_bytes {
            return Err(Error::TooLarge {
                limit: self.max_event_bytes,
            });
        }
        if self.has_data {
            self.data.push('\n');
        }
        self.data.push_str(value);
        self.has_data = true;
        Ok(())
    }

    fn set_retry(&mut self, value: &str) {
        if !value.is_empty()
            && value.bytes().all(|b| b.is_ascii_digit())
            && let Ok(ms) = value.parse::<u64>()
        {
            self.retry = Some(Duration::from_millis(ms));
        }
    }

    fn dispatch(&mut self, out: &mut Vec<Event>) {
        let event = std::mem::take(&mut self.event);
        if !self.has_data {
            return;
        }
        self.has_data = false;
        out.push(Event {
            event: if event.is_empty() {
                "message".to_owned()
            } else {
                event
            },
            data: std::mem::take(&mut self.data),
            id: self.last_id.clone(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const CAP: usize = 1 << 20;

    fn parse_reads(reads: &[&[u8]]) -> Vec<Event> {
        let mut parser = Parser::new(CAP);
        let mut out = Vec::new();
        for read in reads {
            parser.push(read, &mut out).expect("within the cap");
        }
        parser.finish(&mut out).expect("within the cap");
        out
    }

    fn message(data: &str, id: Option<&str>) -> Event {
        Event {
            event: "message".into(),
            data: data.into(),
            id: id.map(str::to_owned),
        }
    }

    #[test]
    fn lf_cr_and_crlf_line_ends_all_end_lines() {
        let expected = vec![message("a", None), message("b", None)];
        assert_eq!(parse_reads(&[b"data: a\n\ndata: b\n\n"]), expected);
        assert_eq!(parse_reads(&[b"data: a\r\rdata: b\r\r"]), expected);
        assert_eq!(parse_reads(&[b"data: a\r\n\r\ndata: b\r\n\r\n"]), expected);
    }

    #[test]
    fn crlf_split_between_reads_is_one_line_end() {
        let events = parse_reads(&[b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n"]);
        assert_eq!(events, vec![message("a\nb", None)]);
    }

    #[test]
    fn cr_at_end_of_read_followed_by_other_bytes_is_a_line_end() {
        let events = parse_reads(&[b"data: a\r", b"\r"]);
        assert_eq!(events, vec![message("a", None)]);
    }

    #[test]
    fn multi_line_data_is_joined_with_newlines() {
        let events = parse_reads(&[b"data: one\ndata:two\ndata\ndata:  three\n\n"]);
        assert_eq!(events, vec![message("one\ntwo\n\n three", None)]);
    }

    #[test]
    fn comments_are_ignored() {
        let events = parse_reads(&[b": keep-alive\n\n:\ndata: x\n: mid\n\n"]);
        assert_eq!(events, vec![message("x", None)]);
    }

    #[test]
    fn events_without_data_dispatch_nothing() {
        let events = parse_reads(&[b"\n\n\nevent: ping\n\nid: 7\n\ndata: y\n\n"]);
        assert_eq!(events, vec![message("y", Some("7"))]);
    }

    #[test]
    fn empty_data_line_is_an_event_with_empty_data() {
        // The MCP reference server primes every stream this way.
        let events = parse_reads(&[b"id: prime-1\ndata:\n\n"]);
        assert_eq!(events, vec![message("", Some("prime-1"))]);
    }

    #[test]
    fn event_name_and_id_are_kept_and_ids_carry_over() {
        let events = parse_reads(&[b"event: note\nid: 1\ndata: a\n\ndata: b\n\nid\ndata: c\n\n"]);
        assert_eq!(
            events,
            vec![
                Event {
                    event: "note".into(),
                    data: "a".into(),
                    id: Some("1".into())
                },
                message("b", Some("1")),
                message("c", Some("")),
            ]
        );
    }

    #[test]
    fn id_with_nul_is_ignored() {
        let events = parse_reads(&[b"id: 1\n\nid: a\0b\ndata: x\n\n"]);
        assert_eq!(events, vec![message("x", Some("1"))]);
    }

    #[test]
    fn retry_sets_the_reconnection_delay_and_bad_values_are_ignored() {
        let mut parser = Parser::new(CAP);
        let mut out = Vec::new();
        parser.push(b"retry: 500\n\n", &mut out).expect("small");
        assert_eq!(parser.retry(), Some(Duration::from_millis(500)));
        parser
            .push(b"retry: 5s\nretry:\nretry: -1\n\n", &mut out)
            .expect("small");
        assert_eq!(parser.retry(), Some(Duration::from_millis(500)));
        assert!(out.is_empty());
    }

    #[test]
    fn utf8_character_split_between_reads_is_decoded_whole() {
        let text = "data: h\u{e9}llo \u{1F600}\n\n".as_bytes();
        let split = text.iter().position(|&b| b == 0xF0).expect("emoji present") + 2;
        let events = parse_reads(&[&text[..8], &text[8..split], &text[split..]]);
        assert_eq!(events, vec![message("h\u{e9}llo \u{1F600}", None)]);
    }

    #[test]
    fn invalid_utf8_becomes_replacement_characters() {
        let events = parse_reads(&[b"data: a\xFFb\n\n"]);
        assert_eq!(events, vec![message("a\u{FFFD}b", None)]);
    }

    #[test]
    fn stream_ending_without_blank_line_still_yields_last_event() {
        assert_eq!(parse_reads(&[b"data: last"]), vec![message("last", None)]);
        assert_eq!(parse_reads(&[b"data: last\n"]), vec![message("last", None)]);
    }

    #[test]
    fn byte_order_mark_at_start_is_dropped_even_when_split() {
        let events = parse_reads(&[b"\xEF", b"\xBB\xBFdata: a\n\n"]);
        assert_eq!(events, vec![message("a", None)]);
    }

    #[test]
    fn line_of_several_megabytes_in_small_reads() {
        let payload = "x".repeat(5 << 20);
        let stream = format!("data: {payload}\n\n");
        let mut parser = Parser::new(8 << 20);
        let mut out = Vec::new();
        for chunk in stream.as_bytes().chunks(16 * 1024) {
            parser.push(chunk, &mut out).expect("under the cap");
        }
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].data.len(), payload.len());
    }

    #[test]
    fn line_beyond_the_cap_fails_cleanly() {
        let mut parser = Parser::new(1024);
        let mut out = Vec::new();
        let long = vec![b'x'; 2048];
        parser.push(b"data: ", &mut out).expect("small");
        assert_eq!(
            parser.push(&long, &mut out),
            Err(Error::TooLarge { limit: 1024 })
        );
    }

    #[test]
    fn event_data_beyond_the_cap_fails_cleanly() {
        let mut parser = Parser::new(64);
        let mut out = Vec::new();
        let line = format!("data: {}\n", "y".repeat(40));
        parser
            .push(line.as_bytes(), &mut out)
            .expect("first line fits");
        assert_eq!(
            parser.push(line.as_bytes(), &mut out),
            Err(Error::TooLarge { limit: 64 })
        );
    }

    fn valid_stream() -> impl Strategy<Value = Vec<u8>> {
        let line_end = prop_oneof![Just("\n"), Just("\r"), Just("\r\n")];
        let field = prop_oneof![
            "[a-z\u{e9}\u{4e16}\u{1F600} ]{0,12}".prop_map(|v| format!("data: {v}")),
            "[a-z]{1,6}".prop_map(|v| format!("event: {v}")),
            "[0-9]{1,4}".prop_map(|v| format!("id: {v}")),
            "[0-9]{1,4}".prop_map(|v| format!("retry: {v}")),
            "[a-z ]{0,8}".prop_map(|v| format!(": {v}")),
            Just(String::new()),
        ];
        prop::collection::vec((field, line_end), 0..40).prop_map(|lines| {
            lines
                .into_iter()
                .flat_map(|(field, end)| format!("{field}{end}").into_bytes())
                .collect()
        })
    }

    proptest! {
        #[test]
        fn any_split_into_reads_yields_the_same_events(
            stream in valid_stream(),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..12),
        ) {
            let whole = parse_reads(&[&stream]);
            let mut points: Vec<usize> = cuts.iter().map(|c| c.index(stream.len() + 1)).collect();
            points.sort_unstable();
            let mut reads = Vec::new();
            let mut start = 0;
            for point in points {
                reads.push(&stream[start..point]);
                start = point;
            }
            reads.push(&stream[start..]);
            prop_assert_eq!(parse_reads(&reads), whole);
        }
    }
}
