//! An incremental `multipart/form-data` parser (RFC 7578 over RFC 2046) for uploads.
//!
//! Bytes go in with [`Parser::feed`] as they arrive; [`Parser::next`] hands out events:
//! a part's headers, its body in chunks (never the whole part at once), its end, and the
//! end of the form. Memory stays bounded: a chunk is handed out as soon as it cannot be
//! the start of a delimiter, and headers, preamble and part count are capped ([`Limits`]).
//! [`first_file`] drives the parser over a body stream for the upload handler.

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use memchr::memmem::Finder;

use crate::storage::{ByteStream, StorageError};

/// Caps that keep a hostile form from taking memory or time.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Bytes of one part's header block.
    pub max_header_bytes: usize,
    /// Bytes before the first delimiter (normally none).
    pub max_preamble_bytes: usize,
    pub max_parts: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_header_bytes: 8 * 1024,
            max_preamble_bytes: 16 * 1024,
            max_parts: 32,
        }
    }
}

/// What a part says about itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PartHeaders {
    /// The form field's name.
    pub name: Option<String>,
    /// The file name as the client gave it (`filename*` preferred); clean it before use.
    pub filename: Option<String>,
    pub content_type: Option<String>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    Part(PartHeaders),
    Data(Bytes),
    PartEnd,
    /// The closing delimiter: the form is complete.
    End,
}

#[derive(Debug, PartialEq, Eq)]
pub enum MultipartError {
    NotFormData,
    /// Missing, empty, longer than 70 characters, or with characters RFC 2046 forbids.
    BadBoundary,
    PreambleTooLong,
    HeadersTooLarge,
    BadHeader(String),
    TooManyParts,
    /// Something other than CRLF or `--` after a delimiter.
    BadDelimiter,
    /// The body ended before the closing delimiter.
    Truncated,
}

impl std::fmt::Display for MultipartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MultipartError::NotFormData => f.write_str("not multipart/form-data"),
            MultipartError::BadBoundary => f.write_str("missing or invalid boundary"),
            MultipartError::PreambleTooLong => f.write_str("too much data before the first part"),
            MultipartError::HeadersTooLarge => f.write_str("part headers too large"),
            MultipartError::BadHeader(line) => write!(f, "malformed part header {line:?}"),
            MultipartError::TooManyParts => f.write_str("too many parts"),
            MultipartError::BadDelimiter => f.write_str("malformed delimiter line"),
            MultipartError::Truncated => f.write_str("form ended before its closing delimiter"),
        }
    }
}

impl std::error::Error for MultipartError {}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Preamble,
    AfterDelimiter,
    Headers,
    Body,
    Epilogue,
}

pub struct Parser {
    /// `\r\n--boundary`: every delimiter, the first one included (see [`Parser::new`]).
    finder: Finder<'static>,
    delimiter_len: usize,
    buffer: BytesMut,
    state: State,
    preamble_seen: usize,
    parts: usize,
    limits: Limits,
}

impl Parser {
    /// A parser for the boundary of a `Content-Type: multipart/form-data; boundary=...`.
    pub fn from_content_type(content_type: &str) -> Result<Parser, MultipartError> {
        Ok(Parser::new(&boundary(content_type)?, Limits::default()))
    }

    pub fn new(boundary: &str, limits: Limits) -> Parser {
        let delimiter = format!("\r\n--{boundary}").into_bytes();
        let mut buffer = BytesMut::with_capacity(64 * 1024);
        // The first delimiter may open the body without a CRLF before it; adding one lets
        // a single search find them all.
        buffer.extend_from_slice(b"\r\n");
        Parser {
            delimiter_len: delimiter.len(),
            finder: Finder::new(&delimiter).into_owned(),
            buffer,
            state: State::Preamble,
            preamble_seen: 0,
            parts: 0,
            limits,
        }
    }

    pub fn feed(&mut self, chunk: &[u8]) {
        if self.state != State::Epilogue {
            self.buffer.extend_from_slice(chunk);
        }
    }

    /// The next event, or `None` when more bytes are needed.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<Event>, MultipartError> {
        loop {
            let step = match self.state {
                State::Preamble => self.skip_preamble()?,
                State::AfterDelimiter => self.after_delimiter()?,
                State::Headers => return self.headers(),
                State::Body => return Ok(self.body()),
                State::Epilogue => {
                    self.buffer.clear();
                    return Ok(None);
                }
            };
            match step {
                Step::Continue => {}
                Step::Wait => return Ok(None),
                Step::Emit(event) => return Ok(Some(event)),
            }
        }
    }

    /// Call at the end of the body: an error unless the form was complete.
    pub fn finish(&self) -> Result<(), MultipartError> {
        match self.state {
            State::Epilogue => Ok(()),
            _ => Err(MultipartError::Truncated),
        }
    }

    fn skip_preamble(&mut self) -> Result<Step, MultipartError> {
        if let Some(at) = self.finder.find(&self.buffer) {
            self.preamble_seen += at;
            let _ = self.buffer.split_to(at + self.delimiter_len);
            self.state = State::AfterDelimiter;
            return self.check_preamble().map(|()| Step::Continue);
        }
        let keep = self.delimiter_len - 1;
        let drop = self.buffer.len().saturating_sub(keep);
        self.preamble_seen += drop;
        let _ = self.buffer.split_to(drop);
        self.check_preamble().map(|()| Step::Wait)
    }

    fn check_preamble(&self) -> Result<(), MultipartError> {
        match self.preamble_seen > self.limits.max_preamble_bytes {
            true => Err(MultipartError::PreambleTooLong),
            false => Ok(()),
        }
    }

    fn after_delimiter(&mut self) -> Result<Step, MultipartError> {
        // RFC 2046 allows spaces and tabs between the boundary and its CRLF.
        while matches!(self.buffer.first(), Some(b' ' | b'\t')) {
            let _ = self.buffer.split_to(1);
        }
        if self.buffer.len() < 2 {
            return Ok(Step::Wait);
        }
        match &self.buffer[..2] {
            b"--" => {
                self.state = State::Epilogue;
                Ok(Step::Emit(Event::End))
            }
            b"\r\n" => {
                let _ = self.buffer.split_to(2);
                self.state = State::Headers;
                Ok(Step::Continue)
            }
            _ => Err(MultipartError::BadDelimiter),
        }
    }

    fn headers(&mut self) -> Result<Option<Event>, MultipartError> {
        let end = if self.buffer.starts_with(b"\r\n") {
            Some(0)
        } else {
            memchr::memmem::find(&self.buffer, b"\r\n\r\n").map(|at| at + 2)
        };
        let Some(end) = end else {
            // A block of exactly the limit may still be waiting for its blank line; only
            // `limit + 2` bytes without one prove it too large, however the body is read.
            return match self.buffer.len() > self.limits.max_header_bytes + 1 {
                true => Err(MultipartError::HeadersTooLarge),
                false => Ok(None),
            };
        };
        if end > self.limits.max_header_bytes {
            return Err(MultipartError::HeadersTooLarge);
        }
        let block = self.buffer.split_to(end + 2);
        self.parts += 1;
        if self.parts > self.limits.max_parts {
            return Err(MultipartError::TooManyParts);
        }
        self.state = State::Body;
        Ok(Some(Event::Part(parse_headers(&block[..end])?)))
    }

    fn body(&mut self) -> Option<Event> {
        match self.finder.find(&self.buffer) {
            Some(0) => {
                let _ = self.buffer.split_to(self.delimiter_len);
                self.state = State::AfterDelimiter;
                Some(Event::PartEnd)
            }
            Some(at) => Some(Event::Data(self.buffer.split_to(at).freeze())),
            None => {
                // Only the tail could be the start of a delimiter still arriving.
                let safe = self.buffer.len().saturating_sub(self.delimiter_len - 1);
                (safe > 0).then(|| Event::Data(self.buffer.split_to(safe).freeze()))
            }
        }
    }
}

enum Step {
    Continue,
    Wait,
    Emit(Event),
}

/// The boundary parameter of a `multipart/form-data` content type.
pub fn boundary(content_type: &str) -> Result<String, MultipartError> {
    let (essence, params) = content_type.split_once(';').unwrap_or((content_type, ""));
    if !essence.trim().eq_ignore_ascii_case("multipart/form-data") {
        return Err(MultipartError::NotFormData);
    }
    let boundary = parameters(params)
        .into_iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("boundary"))
        .map(|(_, value)| value)
        .ok_or(MultipartError::BadBoundary)?;
    let allowed = |c: char| c.is_ascii_alphanumeric() || "'()+_,-./:=? ".contains(c);
    let valid = (1..=70).contains(&boundary.len())
        && boundary.chars().all(allowed)
        && !boundary.ends_with(' ');
    if valid {
        Ok(boundary)
    } else {
        Err(MultipartError::BadBoundary)
    }
}

/// Header lines of one part (folded lines joined).
fn parse_headers(block: &[u8]) -> Result<PartHeaders, MultipartError> {
    let text = String::from_utf8_lossy(block);
    let mut lines: Vec<String> = Vec::new();
    for line in text.split("\r\n").filter(|l| !l.is_empty()) {
        match (line.starts_with([' ', '\t']), lines.last_mut()) {
            (true, Some(previous)) => previous.push_str(line),
            _ => lines.push(line.to_owned()),
        }
    }
    let mut headers = PartHeaders::default();
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| MultipartError::BadHeader(line.clone()))?;
        match name.trim().to_ascii_lowercase().as_str() {
            "content-disposition" => read_disposition(value, &mut headers),
            "content-type" => headers.content_type = Some(value.trim().to_owned()),
            _ => {}
        }
    }
    Ok(headers)
}

fn read_disposition(value: &str, headers: &mut PartHeaders) {
    let params = value.split_once(';').map_or("", |(_, rest)| rest);
    let mut extended = None;
    for (name, value) in parameters(params) {
        match name.to_ascii_lowercase().as_str() {
            "name" => headers.name = Some(value),
            "filename" => headers.filename = Some(value),
            "filename*" => extended = decode_extended(&value),
            _ => {}
        }
    }
    if extended.is_some() {
        headers.filename = extended;
    }
}

/// `UTF-8''caf%C3%A9.txt` (RFC 8187), for UTF-8 only.
fn decode_extended(value: &str) -> Option<String> {
    let (charset, rest) = value.split_once('\'')?;
    let (_language, encoded) = rest.split_once('\'')?;
    if !charset.eq_ignore_ascii_case("utf-8") {
        return None;
    }
    let decoded = percent_encoding::percent_decode_str(encoded)
        .decode_utf8()
        .ok()?;
    Some(decoded.into_owned())
}

/// `; a=b; c="d; e"` into pairs. In quoted values a backslash escapes only `"` and `\`
/// (as curl sends them); other backslashes are kept, as browsers send Windows paths.
fn parameters(text: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ';' || c.is_whitespace()) {
            chars.next();
        }
        let name: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if name.trim().is_empty() {
            return pairs;
        }
        let value = match chars.peek() {
            Some('"') => {
                chars.next();
                quoted(&mut chars)
            }
            _ => chars
                .by_ref()
                .take_while(|c| *c != ';')
                .collect::<String>()
                .trim()
                .to_owned(),
        };
        pairs.push((name.trim().to_owned(), value));
    }
}

fn quoted(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> String {
    let mut value = String::new();
    while let Some(c) = chars.next() {
        match c {
            '"' => break,
            '\\' if matches!(chars.peek(), Some('"' | '\\')) => {
                value.extend(chars.next());
            }
            c => value.push(c),
        }
    }
    value
}

/// Reads `body` up to the first part with a file name and returns its headers and a stream
/// of its bytes. Parts before it are skipped; after it, the rest of the form is read and
/// checked, so a truncated or malformed form fails the stream (and so the upload).
pub async fn first_file(
    mut body: ByteStream,
    content_type: &str,
) -> Result<(PartHeaders, ByteStream), StorageError> {
    let mut parser = Parser::from_content_type(content_type).map_err(bad_form)?;
    loop {
        match parser.next().map_err(bad_form)? {
            Some(Event::Part(headers)) if headers.filename.is_some() => {
                let stream = futures_util::stream::unfold(Some((parser, body, true)), file_chunk);
                return Ok((headers, stream.boxed()));
            }
            Some(Event::End) => return Err(bad_form("the form has no file")),
            Some(_) => {}
            None => match body.next().await {
                Some(chunk) => parser.feed(&chunk?),
                None => return Err(bad_form(MultipartError::Truncated)),
            },
        }
    }
}

/// The parser, the body, and whether the file part is still going on.
type FileState = (Parser, ByteStream, bool);

/// The next chunk of the file part; after its end, reads to the end of the form. The state
/// becomes `None` after an error, which ends the stream.
async fn file_chunk(
    state: Option<FileState>,
) -> Option<(Result<Bytes, StorageError>, Option<FileState>)> {
    let (mut parser, mut body, mut in_file) = state?;
    loop {
        match parser.next() {
            Err(e) => return Some((Err(bad_form(e)), None)),
            Ok(Some(Event::Data(data))) if in_file => {
                return Some((Ok(data), Some((parser, body, true))));
            }
            Ok(Some(Event::PartEnd)) => in_file = false,
            Ok(Some(Event::End)) => return None,
            Ok(Some(_)) => {}
            Ok(None) => match body.next().await {
                Some(Ok(chunk)) => parser.feed(&chunk),
                Some(Err(e)) => return Some((Err(e), None)),
                None => return Some((Err(bad_form(MultipartError::Truncated)), None)),
            },
        }
    }
}

fn bad_form(e: impl std::fmt::Display) -> StorageError {
    StorageError::BodyError(format!("bad multipart form: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const CT: &str = "multipart/form-data; boundary=----XyZ";

    fn form(parts: &[(&str, &[u8])]) -> Vec<u8> {
        let mut body = Vec::new();
        for (headers, data) in parts {
            body.extend_from_slice(b"------XyZ\r\n");
            body.extend_from_slice(headers.as_bytes());
            body.extend_from_slice(b"\r\n\r\n");
            body.extend_from_slice(data);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(b"------XyZ--\r\n");
        body
    }

    fn file_headers(filename: &str) -> String {
        format!(
            "Content-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n\
             Content-Type: text/plain"
        )
    }

    /// Every event of `body` fed in pieces of `step` bytes, consecutive data merged.
    fn events(body: &[u8], step: usize) -> Result<Vec<Event>, MultipartError> {
        let mut parser = Parser::from_content_type(CT)?;
        let mut out: Vec<Event> = Vec::new();
        for piece in body.chunks(step.max(1)) {
            parser.feed(piece);
            while let Some(event) = parser.next()? {
                match (out.last_mut(), event) {
                    (Some(Event::Data(held)), Event::Data(more)) => {
                        *held = [held.as_ref(), more.as_ref()].concat().into();
                    }
                    (_, event) => out.push(event),
                }
            }
        }
        parser.finish()?;
        Ok(out)
    }

    fn part(name: &str, filename: Option<&str>, content_type: Option<&str>) -> Event {
        Event::Part(PartHeaders {
            name: Some(name.into()),
            filename: filename.map(Into::into),
            content_type: content_type.map(Into::into),
        })
    }

    #[test]
    fn fields_and_files_come_out_whole_whatever_the_chunking() {
        let body = form(&[
            ("Content-Disposition: form-data; name=\"note\"", b"hi"),
            (
                &file_headers("a b.txt"),
                b"line 1\r\n--not the boundary\r\n",
            ),
        ]);
        let expected = vec![
            part("note", None, None),
            Event::Data(Bytes::from_static(b"hi")),
            Event::PartEnd,
            part("file", Some("a b.txt"), Some("text/plain")),
            Event::Data(Bytes::from_static(b"line 1\r\n--not the boundary\r\n")),
            Event::PartEnd,
            Event::End,
        ];
        for step in [1, 2, 3, 7, 16, 1000] {
            assert_eq!(
                events(&body, step).expect("parses"),
                expected,
                "step {step}"
            );
        }
    }

    #[test]
    fn odd_file_names_arrive_as_sent() {
        for name in [
            "a+b.txt",
            "résumé 東京.pdf",
            "../../etc/passwd",
            "invoice\u{202E}fdp.exe",
        ] {
            let body = form(&[(&file_headers(name), b"x")]);
            let first = events(&body, 5).expect("parses").remove(0);
            assert_eq!(
                first,
                part("file", Some(name), Some("text/plain")),
                "{name}"
            );
        }
    }

    #[test]
    fn file_name_encodings_of_curl_browsers_and_rfc_8187() {
        let curl = "form-data; name=\"f\"; filename=\"a\\\"b\\\\c.txt\"";
        let browser = "form-data; name=\"f\"; filename=\"C:\\dir\\a%22b.txt\"";
        let extended =
            "form-data; name=\"f\"; filename=\"fallback\"; filename*=UTF-8''%E6%9D%B1.txt";
        let cases = [
            (curl, "a\"b\\c.txt"),
            (browser, "C:\\dir\\a%22b.txt"),
            (extended, "東.txt"),
        ];
        for (disposition, expected) in cases {
            let headers = format!("Content-Disposition: {disposition}");
            let body = form(&[(&headers, b"x")]);
            let first = events(&body, 64).expect("parses").remove(0);
            assert_eq!(first, part("f", Some(expected), None), "{disposition}");
        }
    }

    #[test]
    fn boundaries_come_from_the_content_type() {
        assert_eq!(
            boundary("multipart/form-data; boundary=abc"),
            Ok("abc".into())
        );
        assert_eq!(
            boundary("Multipart/Form-Data; charset=x; boundary=\"a b\""),
            Ok("a b".into())
        );
        assert_eq!(
            boundary("text/plain; boundary=abc"),
            Err(MultipartError::NotFormData)
        );
        assert_eq!(
            boundary("multipart/form-data"),
            Err(MultipartError::BadBoundary)
        );
        assert_eq!(
            boundary("multipart/form-data; boundary="),
            Err(MultipartError::BadBoundary)
        );
        let long = format!("multipart/form-data; boundary={}", "a".repeat(71));
        assert_eq!(boundary(&long), Err(MultipartError::BadBoundary));
    }

    #[test]
    fn malformed_forms_give_clear_errors() {
        let truncated = &form(&[(&file_headers("a"), b"abc")])[..40];
        assert_eq!(events(truncated, 8), Err(MultipartError::Truncated));
        let huge_headers = format!(
            "Content-Disposition: form-data; name=\"{}\"",
            "n".repeat(9000)
        );
        let body = form(&[(&huge_headers, b"")]);
        assert_eq!(events(&body, 512), Err(MultipartError::HeadersTooLarge));
        let many: Vec<(&str, &[u8])> = vec![("Content-Disposition: form-data; name=\"a\"", b"")];
        let body = form(&many.repeat(33));
        assert_eq!(events(&body, 512), Err(MultipartError::TooManyParts));
        let body = b"------XyZ\r\nno colon here\r\n\r\nx\r\n------XyZ--";
        assert!(matches!(
            events(body, 64),
            Err(MultipartError::BadHeader(_))
        ));
        assert_eq!(
            events(b"------XyZjunk", 64),
            Err(MultipartError::BadDelimiter)
        );
        let preamble = vec![b'p'; 20_000];
        assert_eq!(
            events(&preamble, 4096),
            Err(MultipartError::PreambleTooLong)
        );
    }

    fn stream_of(body: Vec<u8>, step: usize) -> ByteStream {
        let chunks: Vec<Result<Bytes, StorageError>> = body
            .chunks(step)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        futures_util::stream::iter(chunks).boxed()
    }

    async fn read_all(mut body: ByteStream) -> Result<Vec<u8>, StorageError> {
        let mut out = Vec::new();
        while let Some(chunk) = body.next().await {
            out.extend_from_slice(&chunk?);
        }
        Ok(out)
    }

    #[tokio::test]
    async fn first_file_streams_the_file_part_and_checks_the_rest() {
        let body = form(&[
            ("Content-Disposition: form-data; name=\"note\"", b"skip me"),
            (&file_headers("x.bin"), b"file bytes"),
            ("Content-Disposition: form-data; name=\"after\"", b"ignored"),
        ]);
        let (headers, file) = first_file(stream_of(body.clone(), 3), CT)
            .await
            .expect("a file");
        assert_eq!(headers.filename.as_deref(), Some("x.bin"));
        assert_eq!(read_all(file).await.expect("complete"), b"file bytes");

        let cut = body[..body.len() - 10].to_vec();
        let (_, file) = first_file(stream_of(cut, 3), CT).await.expect("a file");
        assert!(matches!(
            read_all(file).await,
            Err(StorageError::BodyError(_))
        ));

        let no_file = form(&[("Content-Disposition: form-data; name=\"note\"", b"x")]);
        assert!(first_file(stream_of(no_file, 3), CT).await.is_err());
    }

    proptest! {
        #[test]
        fn any_file_content_round_trips(
            data in proptest::collection::vec(any::<u8>(), 0..600),
            step in 1usize..80,
        ) {
            let body = form(&[(&file_headers("f"), &data)]);
            let got = events(&body, step).expect("parses");
            let bytes: Vec<u8> = got.iter().filter_map(|e| match e {
                Event::Data(d) => Some(d.to_vec()),
                _ => None,
            }).flatten().collect();
            prop_assert_eq!(bytes, data);
        }

        #[test]
        fn arbitrary_input_never_panics(
            input in proptest::collection::vec(any::<u8>(), 0..400),
            step in 1usize..50,
        ) {
            let _ = events(&input, step);
        }
    }

    /// Found by the `multipart` fuzz target: a header block just under the limit was
    /// accepted when it arrived in one read and refused when its terminator came in pieces.
    #[test]
    fn header_limit_does_not_depend_on_how_the_body_is_read() {
        let limit = Limits::default().max_header_bytes;
        let prefix = "Content-Disposition: form-data; name=\"file\"; filename=\"";
        let filler = "a".repeat(limit - 2 - prefix.len() - 1);
        let headers = format!("{prefix}{filler}\"");
        assert_eq!(
            headers.len() + 2,
            limit,
            "the block ends exactly at the limit"
        );
        let body = form(&[(headers.as_str(), b"data")]);
        let whole = events(&body, body.len()).expect("a block within the limit is accepted");
        assert_eq!(events(&body, 1), Ok(whole));
    }
}
