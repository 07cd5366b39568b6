//! `multipart/form-data` uploads through `files::multipart::Parser`, fed as
//! `multipart::first_file` feeds it. Property: how the body is cut into reads changes
//! neither the events (file bytes joined per part) nor the outcome.
#![no_main]

use daedalus::files::multipart::{Event, Limits, Parser};
use libfuzzer_sys::fuzz_target;

const BOUNDARY: &str = "----WebKitFormBoundary7MA4YWxkTrZu0gW";

#[derive(Debug, PartialEq)]
enum Seen {
    Part(String),
    Data(Vec<u8>),
    PartEnd,
    End,
}

fn run(body: &[u8], read: usize) -> (Vec<Seen>, Result<(), String>) {
    let mut parser = Parser::new(BOUNDARY, Limits::default());
    let mut seen = Vec::new();
    for chunk in body.chunks(read.max(1)) {
        parser.feed(chunk);
        loop {
            match parser.next() {
                Ok(Some(event)) => record(&mut seen, event),
                Ok(None) => break,
                Err(e) => return (seen, Err(e.to_string())),
            }
        }
    }
    (seen, parser.finish().map_err(|e| e.to_string()))
}

fn record(seen: &mut Vec<Seen>, event: Event) {
    match event {
        Event::Part(headers) => seen.push(Seen::Part(format!("{headers:?}"))),
        Event::Data(bytes) => match seen.last_mut() {
            Some(Seen::Data(joined)) => joined.extend_from_slice(&bytes),
            _ => seen.push(Seen::Data(bytes.to_vec())),
        },
        Event::PartEnd => seen.push(Seen::PartEnd),
        Event::End => seen.push(Seen::End),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&read, body)) = data.split_first() else {
        return;
    };
    let whole = run(body, body.len().max(1));
    let split = run(body, usize::from(read % 64) + 1);
    assert_eq!(whole, split, "reads of {} bytes", read % 64 + 1);
});
