//! Agent server replies through `mcp::sse::Parser`, fed read by read as the MCP transport
//! feeds it. Property: any split of the input into reads yields the same events, the same
//! outcome (including the size cap) and the same resumption point.
#![no_main]

use daedalus::mcp::sse::{Event, Parser};
use libfuzzer_sys::fuzz_target;

/// Small enough that fuzzed lines reach it.
const CAP: usize = 4096;

fn run(stream: &[u8], cuts: &[usize]) -> (Vec<Event>, Result<(), String>, Option<String>) {
    let mut parser = Parser::new(CAP);
    let mut events = Vec::new();
    let mut rest = stream;
    let mut outcome = Ok(());
    for &cut in cuts.iter().chain(std::iter::once(&usize::MAX)) {
        let (read, tail) = rest.split_at(cut.min(rest.len()));
        rest = tail;
        if let Err(e) = parser.push(read, &mut events) {
            outcome = Err(e.to_string());
            break;
        }
    }
    if outcome.is_ok() {
        outcome = parser.finish(&mut events).map_err(|e| e.to_string());
    }
    let last_id = parser.last_event_id().map(str::to_owned);
    (events, outcome, last_id)
}

fuzz_target!(|data: &[u8]| {
    // The first eight bytes choose the read sizes (0 to 15 bytes each, cycled); empty
    // reads count too, but a size list of zeros alone must still end.
    let (sizes, stream) = data.split_at(data.len().min(8));
    let mut cuts = Vec::new();
    let mut total = 0;
    for size in sizes.iter().cycle().map(|b| usize::from(b % 16)) {
        if total >= stream.len() || cuts.len() > 2 * stream.len() + 8 {
            break;
        }
        cuts.push(size);
        total += size;
    }
    let whole = run(stream, &[]);
    let split = run(stream, &cuts);
    assert_eq!(whole, split, "reads {cuts:?}");
    let bytewise = run(stream, &vec![1; stream.len()]);
    assert_eq!(whole, bytewise, "one-byte reads");
});
