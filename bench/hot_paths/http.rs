//! Request routing, query strings, header values and JSON request bodies.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group};
use daedalus::api::conversations::ConversationInput;
use daedalus::api::me::Preferences;
use daedalus::api::messages::Position;
use daedalus::api::telemetry::Batch;
use daedalus::api::workspaces::WorkspaceInput;
use daedalus::http::parse_json;
use daedalus::http::query::{self, Page};
use daedalus::http::route::Route;
use daedalus::runs::SendInput;
use daedalus::runs::events::parse_last_event_id;

const WS: &str = "0b6f8f6e-8a4e-4c1e-9d8e-3f1f6c1d2a10";
const C: &str = "1c7a9b2e-2f4d-4e6a-8b1c-5d3e2f1a0b9c";
const R: &str = "6f3d2c1b-0a9e-4d8c-b7a6-5e4f3d2c1b0a";

/// Every path template of the API with real ids, as a browser sends them.
pub fn api_paths() -> Vec<String> {
    let base = format!("/api/workspaces/{WS}");
    let conv = format!("{base}/conversations/{C}");
    vec![
        "/api/health".into(),
        "/api/ready".into(),
        "/metrics".into(),
        "/api/me".into(),
        "/api/me/preferences".into(),
        "/api/workspaces".into(),
        base.clone(),
        format!("{base}/agents"),
        format!("{base}/conversations"),
        conv.clone(),
        format!("{conv}/messages"),
        format!("{conv}/runs/{R}/events"),
        format!("{conv}/runs/{R}/cancel"),
        format!("{base}/files"),
        format!("{base}/files/{R}"),
        format!("{base}/files/{R}/content"),
        "/api/telemetry".into(),
        "/w/some/page".into(),
    ]
}

/// Paths scanners and broken clients send: each must be refused cheaply.
pub fn junk_paths() -> Vec<String> {
    vec![
        "/api/workspaces/not-a-uuid".into(),
        "/api/workspaces/%2e%2e/x".into(),
        "//api/workspaces".into(),
        "/api/health/".into(),
        "/api/../../etc/passwd".into(),
        "/api/nope".into(),
        format!("/api/workspaces/{WS}/conversations/{C}/runs/{R}"),
        format!("/api/workspaces/{WS}/files/{R}/content/extra"),
        format!("/api/{}", "a/".repeat(200)),
    ]
}

fn bench_routes(c: &mut Criterion) {
    let mut group = c.benchmark_group("route");
    let api = api_paths();
    group.throughput(Throughput::Elements(api.len() as u64));
    group.bench_function("parse_every_api_path", |b| {
        b.iter(|| {
            for path in &api {
                let route = Route::parse(black_box(path)).expect("an API path matches");
                black_box(route.template());
            }
        })
    });
    let junk = junk_paths();
    group.throughput(Throughput::Elements(junk.len() as u64));
    group.bench_function("refuse_junk_paths", |b| {
        b.iter(|| {
            for path in &junk {
                black_box(Route::parse(black_box(path)));
            }
        })
    });
    group.finish();
}

/// The message list's query handling, as `messages::handle_list` does it.
fn list_position(raw: Option<&str>) -> Option<(i64, Position)> {
    let pairs = query::parse(raw).ok()?;
    let page = Page::from_pairs(&pairs).ok()?;
    let position = match page.cursor.as_deref() {
        Some(cursor) => Position::decode(cursor).ok()?,
        None => Position::After(0),
    };
    Some((page.limit, position))
}

fn bench_queries(c: &mut Criterion) {
    let mut group = c.benchmark_group("query");
    let cursor = query::encode_cursor("a:9950");
    let paged = format!("limit=50&cursor={cursor}");
    group.bench_function("message_page_first", |b| {
        b.iter(|| black_box(list_position(black_box(Some("limit=50")))))
    });
    group.bench_function("message_page_with_cursor", |b| {
        b.iter(|| black_box(list_position(black_box(Some(&paged)))))
    });
    let upload = "name=r%C3%A9sum%C3%A9+%E6%9D%B1%E4%BA%AC+C%2B%2B+notes+100%25~.pdf";
    group.bench_function("upload_name_percent_decoded", |b| {
        b.iter(|| {
            let pairs = query::parse(black_box(Some(upload))).expect("valid query");
            black_box(query::get(&pairs, "name").map(str::len))
        })
    });
    group.finish();
}

fn bench_headers(c: &mut Criterion) {
    let mut group = c.benchmark_group("header");
    group.bench_function("identity_name", |b| {
        b.iter(|| daedalus::identity::parse_name(black_box(b"alice.example@corp.example.com")))
    });
    group.bench_function("last_event_id", |b| {
        b.iter(|| parse_last_event_id(black_box(Some(b"1234".as_slice()))))
    });
    group.bench_function("mcp_content_type", |b| {
        b.iter(|| {
            daedalus::mcp::jsonrpc::media_type_is(
                black_box("Text/Event-Stream; charset=utf-8"),
                "text/event-stream",
            )
        })
    });
    group.finish();
}

const WORKSPACE_BODY: &str = r#"{"name":"Research","description":"Papers and notes for the Q3 review","agent_servers":[{"name":"local","url":"http://127.0.0.1:8001/mcp","headers":{"Authorization":"Bearer 0123456789abcdef"}},{"name":"team","url":"https://agents.example.com/mcp","headers":{}}],"default_agent":"researcher","settings":{"agent_idle_timeout_secs":120,"agent_total_timeout_secs":1800}}"#;
const CONVERSATION_BODY: &str =
    r#"{"title":"Quarterly numbers, second pass","agent":"researcher"}"#;
const PREFERENCES_BODY: &str = r#"{"theme":"dark"}"#;
const TELEMETRY_BODY: &str = r#"{"events":[{"type":"web_vital","name":"LCP","value":812.4},{"type":"web_vital","name":"CLS","value":0.02},{"type":"feature","feature":"message_send"},{"type":"exception","kind":"error","message":"TypeError: x is undefined"}]}"#;

fn send_body(chars: usize) -> String {
    let text = "Summarise the attached report in three bullet points, please. ";
    let content: String = text.chars().cycle().take(chars).collect();
    serde_json::json!({
        "content": content,
        "agent": "researcher",
        "file_ids": [WS, C],
    })
    .to_string()
}

fn bench_json_bodies(c: &mut Criterion) {
    let mut group = c.benchmark_group("json_body");
    group.bench_function("workspace", |b| {
        b.iter(|| parse_json::<WorkspaceInput>(black_box(WORKSPACE_BODY.as_bytes())))
    });
    group.bench_function("conversation", |b| {
        b.iter(|| parse_json::<ConversationInput>(black_box(CONVERSATION_BODY.as_bytes())))
    });
    group.bench_function("preferences", |b| {
        b.iter(|| parse_json::<Preferences>(black_box(PREFERENCES_BODY.as_bytes())))
    });
    group.bench_function("telemetry", |b| {
        b.iter(|| parse_json::<Batch>(black_box(TELEMETRY_BODY.as_bytes())))
    });
    for chars in [200, 64 * 1024] {
        let body = send_body(chars);
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_function(format!("send_message_{chars}_chars"), |b| {
            b.iter(|| parse_json::<SendInput>(black_box(body.as_bytes())))
        });
    }
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    group.bench_function("refuse_nested_10000_deep", |b| {
        b.iter_batched(
            || deep.clone(),
            |body| parse_json::<ConversationInput>(body.as_bytes()).is_err(),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(
    benches,
    bench_routes,
    bench_queries,
    bench_headers,
    bench_json_bodies
);
