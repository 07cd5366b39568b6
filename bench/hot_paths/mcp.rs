//! The MCP read path: SSE framing of FastAgent replies, JSON-RPC decoding of each event, and
//! handing responses to their waiters, as `mcp::transport` and `mcp::exchange` do it.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group};
use daedalus::mcp::jsonrpc::{self, Id, Incoming, Router};
use daedalus::mcp::sse::{Event, Parser};

/// The pool's cap on one event (`PoolOptions::default().max_message_bytes`).
const MAX_EVENT: usize = 16 << 20;

/// Real FastAgent 0.10.48 replies (CRLF line ends, `event: message`), captured from the
/// agents in `tests/agents/agents.py`: initialize, tools/list, three tool calls with
/// progress, and an unknown method.
pub fn fastagent_stream() -> Vec<u8> {
    let mut all = Vec::new();
    for name in [
        "init",
        "tools_list",
        "echo_call",
        "sleeper_call",
        "chain_call",
        "unknown_method",
    ] {
        let path = format!(
            "{}/bench/fixtures/fastagent/{name}.sse",
            env!("CARGO_MANIFEST_DIR")
        );
        all.extend(std::fs::read(&path).expect("the captured FastAgent streams are in the repo"));
    }
    all
}

/// A tool result of `size` bytes of text, framed the way FastAgent frames it.
pub fn one_large_event(size: usize) -> Vec<u8> {
    let text: String = "All work and no play makes Jack a dull boy. "
        .chars()
        .cycle()
        .take(size)
        .collect();
    let result = serde_json::json!({"jsonrpc": "2.0", "id": 9, "result": {
        "content": [{"type": "text", "text": text}], "isError": false}});
    format!("event: message\r\ndata: {result}\r\n\r\n").into_bytes()
}

/// Feeds `stream` in reads of `read` bytes, as the transport feeds hyper's frames.
fn parse_in_reads(stream: &[u8], read: usize) -> Vec<Event> {
    let mut parser = Parser::new(MAX_EVENT);
    let mut events = Vec::new();
    for chunk in stream.chunks(read) {
        parser
            .push(chunk, &mut events)
            .expect("the stream is under the cap");
    }
    parser
        .finish(&mut events)
        .expect("the stream is under the cap");
    events
}

/// SSE framing then JSON-RPC decoding of every non-empty event, like `take_events`.
fn decode(stream: &[u8], read: usize) -> Vec<Incoming> {
    let mut messages = Vec::new();
    for event in parse_in_reads(stream, read) {
        if event.data.trim().is_empty() {
            continue;
        }
        messages.extend(jsonrpc::parse(event.data.as_bytes()).expect("FastAgent sends JSON-RPC"));
    }
    messages
}

fn bench_sse(c: &mut Criterion) {
    let mut group = c.benchmark_group("sse");
    let small = fastagent_stream();
    group.throughput(Throughput::Bytes(small.len() as u64));
    group.bench_function("fastagent_small_events_16k_reads", |b| {
        b.iter(|| parse_in_reads(black_box(&small), 16 * 1024))
    });
    group.bench_function("fastagent_small_events_1_byte_reads", |b| {
        b.iter(|| parse_in_reads(black_box(&small), 1))
    });
    let large = one_large_event(1 << 20);
    group.throughput(Throughput::Bytes(large.len() as u64));
    group.bench_function("one_1mb_event_16k_reads", |b| {
        b.iter(|| parse_in_reads(black_box(&large), 16 * 1024))
    });
    group.bench_function("one_1mb_event_1_byte_reads", |b| {
        b.iter(|| parse_in_reads(black_box(&large), 1))
    });
    group.finish();
}

fn bench_jsonrpc(c: &mut Criterion) {
    let mut group = c.benchmark_group("jsonrpc");
    let small = fastagent_stream();
    group.throughput(Throughput::Bytes(small.len() as u64));
    group.bench_function("decode_fastagent_stream", |b| {
        b.iter(|| decode(black_box(&small), 16 * 1024))
    });
    let progress = br#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":4,"progress":2.0,"message":"sleeper/agent_loop: step 2 (tool sleep_seconds)"}}"#;
    group.throughput(Throughput::Elements(1));
    group.bench_function("decode_progress_notification", |b| {
        b.iter(|| jsonrpc::parse(black_box(progress)))
    });
    let large = one_large_event(1 << 20);
    group.throughput(Throughput::Bytes(large.len() as u64));
    group.bench_function("decode_1mb_result", |b| {
        b.iter(|| decode(black_box(&large), 16 * 1024))
    });
    group.finish();
}

/// 64 requests in flight on one server; their answers arrive in reverse order.
fn route_out_of_order(router: &Router, n: i64) -> usize {
    let waiters: Vec<_> = (0..n).map(|i| router.register(Id::Number(i))).collect();
    for i in (0..n).rev() {
        router.deliver(&Id::Number(i), Ok(serde_json::Value::Null));
    }
    waiters
        .into_iter()
        .filter_map(|mut w| w.try_recv().ok())
        .count()
}

fn bench_routing(c: &mut Criterion) {
    let mut group = c.benchmark_group("jsonrpc_routing");
    let router = Router::default();
    group.throughput(Throughput::Elements(64));
    group.bench_function("deliver_64_replies_out_of_order", |b| {
        b.iter(|| assert_eq!(route_out_of_order(&router, 64), 64))
    });
    group.finish();
}

criterion_group!(benches, bench_sse, bench_jsonrpc, bench_routing);
