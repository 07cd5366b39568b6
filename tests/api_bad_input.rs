//! Bad input of every kind answers a JSON 4xx error and changes nothing: after each refused
//! request the lists read exactly as before.

mod common;

use common::{Daedalus, Reply, TestDb, create_conversation, create_workspace, insert_messages};
use http::Method;
use serde_json::{Value, json};

/// A seeded account: one workspace with one conversation holding two messages.
struct Seeded {
    db: TestDb,
    d: Daedalus,
    ws: String,
    c: String,
}

async fn seeded() -> Seeded {
    let db = TestDb::create().await;
    let d = Daedalus::start(&db, &[]).await;
    let ws = create_workspace(&d, "local", "Home").await;
    let c = create_conversation(&d, "local", &ws, "Chat").await;
    insert_messages(&db, &c, 2).await;
    Seeded { db, d, ws, c }
}

impl Seeded {
    /// Everything the user can list, read through the API.
    async fn snapshot(&self) -> Value {
        let ws = &self.ws;
        let conversations = format!("/api/workspaces/{ws}/conversations?archived=all");
        let messages = format!("/api/workspaces/{ws}/conversations/{}/messages", self.c);
        json!({
            "workspaces": self.d.get("/api/workspaces").await.expect(200),
            "conversations": self.d.get(&conversations).await.expect(200),
            "messages": self.d.get(&messages).await.expect(200),
            "preferences": self.d.get("/api/me/preferences").await.expect(200),
        })
    }

    /// Runs `request`, expects a JSON error with `status`, and checks nothing changed.
    async fn refused(&self, what: &str, status: u16, reply: Reply, before: &Value) -> String {
        assert_eq!(reply.status.as_u16(), status, "{what}: {reply:?}");
        let code = reply.expect_error(status);
        assert_eq!(&self.snapshot().await, before, "{what} changed something");
        code
    }

    fn conversations(&self) -> String {
        format!("/api/workspaces/{}/conversations", self.ws)
    }

    fn conversation(&self) -> String {
        format!("{}/{}", self.conversations(), self.c)
    }
}

fn post<'a>(s: &'a Seeded, path: &str, body: impl Into<bytes::Bytes>) -> common::Call<'a> {
    s.d.call(Method::POST, path)
        .header("content-type", "application/json")
        .body(body)
}

#[tokio::test]
async fn malformed_json_bodies_are_400s() {
    let s = seeded().await;
    let before = s.snapshot().await;
    let nested = format!("{{\"name\": {}{}}}", "[".repeat(10_000), "]".repeat(10_000));
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("a body that is not JSON", b"this is not json".to_vec()),
        ("an empty body", Vec::new()),
        ("JSON nested 10,000 deep", nested.into_bytes()),
        (
            "invalid UTF-8",
            b"{\"name\": \"\xff\xfe caf\xe9\"}".to_vec(),
        ),
        (
            "a raw NUL byte inside a string",
            b"{\"name\": \"a\0b\"}".to_vec(),
        ),
        ("an array instead of an object", b"[\"name\"]".to_vec()),
        ("trailing garbage", b"{\"name\": \"x\"} {}".to_vec()),
    ];
    for (what, body) in cases {
        let reply = post(&s, "/api/workspaces", body).send().await;
        let code = s.refused(what, 400, reply, &before).await;
        assert!(
            code == "invalid_json" || code == "invalid_field",
            "{what}: {code}"
        );
    }
}

#[tokio::test]
async fn fields_that_break_the_rules_are_400s_naming_the_rule() {
    let s = seeded().await;
    let before = s.snapshot().await;
    let long_title = "t".repeat(100_000);
    let server = |url: &str| json!({"name": "x", "agent_servers": [{"name": "a", "url": url}]});
    let cases = [
        (
            "a string with a NUL character",
            json!({"name": "a\u{0}b"}),
            "invalid_text",
        ),
        ("an empty name", json!({"name": "   "}), "invalid_text"),
        (
            "an unknown field",
            json!({"name": "x", "owner_id": "me"}),
            "invalid_field",
        ),
        ("a wrong type", json!({"name": 5}), "invalid_field"),
        (
            "an ftp agent server",
            server("ftp://agents.example/mcp"),
            "invalid_url",
        ),
        (
            "a javascript: agent server",
            server("javascript:alert(1)"),
            "invalid_url",
        ),
        (
            "a file: agent server",
            server("file:///etc/passwd"),
            "invalid_url",
        ),
        (
            "credentials in the URL",
            server("http://u:p@agents.example/mcp"),
            "invalid_url",
        ),
        (
            "a reserved header",
            json!({"name": "x", "agent_servers": [{"name": "a", "url": "http://h/mcp",
                   "headers": {"Mcp-Session-Id": "x"}}]}),
            "invalid_header",
        ),
        (
            "a header value with a line break",
            json!({"name": "x", "agent_servers": [{"name": "a", "url": "http://h/mcp",
                   "headers": {"X-Token": "a\r\nInjected: 1"}}]}),
            "invalid_header",
        ),
        (
            "two servers with one name",
            json!({"name": "x", "agent_servers": [{"name": "a", "url": "http://h/mcp"},
                                                  {"name": "a", "url": "http://g/mcp"}]}),
            "duplicate_server",
        ),
        (
            "timeouts out of range",
            json!({"name": "x", "settings": {"agent_idle_timeout_secs": 0}}),
            "invalid_settings",
        ),
    ];
    for (what, body, code) in cases {
        let reply = s.d.post_json("/api/workspaces", &body).await;
        assert_eq!(s.refused(what, 400, reply, &before).await, code, "{what}");
    }

    let title = json!({"title": long_title});
    let reply = s.d.post_json(&s.conversations(), &title).await;
    assert_eq!(
        s.refused("a 100,000-character title", 400, reply, &before)
            .await,
        "too_long"
    );
    let reply =
        s.d.call(Method::PATCH, &s.conversation())
            .json(&title)
            .send()
            .await;
    assert_eq!(
        s.refused("renaming to 100,000 characters", 400, reply, &before)
            .await,
        "too_long"
    );

    let ws = format!("/api/workspaces/{}", s.ws);
    let patch = server("ftp://agents.example/mcp");
    let reply = s.d.call(Method::PATCH, &ws).json(&patch).send().await;
    assert_eq!(
        s.refused("patching in an ftp server", 400, reply, &before)
            .await,
        "invalid_url"
    );

    let prefs = json!({"theme": "neon"});
    let reply =
        s.d.call(Method::PUT, "/api/me/preferences")
            .json(&prefs)
            .send()
            .await;
    assert_eq!(
        s.refused("an unknown theme", 400, reply, &before).await,
        "invalid_theme"
    );
}

#[tokio::test]
async fn a_20_mb_body_is_413_whether_its_length_is_declared_or_not() {
    let s = seeded().await;
    let before = s.snapshot().await;
    let size = 20 * 1024 * 1024;
    let mut json_body = b"{\"name\": \"".to_vec();
    json_body.resize(size - 2, b'a');
    json_body.extend_from_slice(b"\"}");

    // Raw connections: an HTTP client that is still writing when the 413 arrives may
    // report the closed connection instead of the answer.
    let mut declared = format!(
        "POST /api/workspaces HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
         Content-Length: {size}\r\nConnection: close\r\n\r\n"
    )
    .into_bytes();
    declared.extend_from_slice(&json_body);
    let raw = s.d.raw(&declared).await;
    assert_eq!(raw.status, 413, "a declared 20 MB body: {:?}", raw.headers);
    let error = raw.json().expect("a JSON error body");
    common::assert_error_shape(&error);
    assert_eq!(error["error"]["code"], "payload_too_large");
    assert_eq!(s.snapshot().await, before);

    let mut chunked = b"POST /api/workspaces HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
    for piece in json_body.chunks(64 * 1024) {
        chunked.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        chunked.extend_from_slice(piece);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let raw = s.d.raw(&chunked).await;
    assert_eq!(
        raw.status, 413,
        "an undeclared 20 MB body: {:?}",
        raw.headers
    );
    common::assert_error_shape(&raw.json().expect("a JSON error body"));
    assert_eq!(s.snapshot().await, before);
}

#[tokio::test]
async fn junk_paths_answer_a_json_404_and_touch_nothing() {
    let s = seeded().await;
    let before = s.snapshot().await;
    let create = json!({"name": "should not exist"});
    let cases = [
        (Method::GET, "/api/workspaces/not-a-uuid"),
        (Method::DELETE, "/api/workspaces/not-a-uuid"),
        (Method::GET, "/api/workspaces/%2e%2e/x"),
        (Method::DELETE, "/api/workspaces/%2e%2e/x"),
        (Method::GET, "//api/workspaces"),
        (Method::POST, "//api/workspaces"),
        (Method::GET, "/api/workspaces/"),
        (Method::POST, "/api/workspaces/"),
        (Method::GET, "/api/health/"),
    ];
    for (method, path) in cases {
        let reply = s.d.call(method.clone(), path).json(&create).send().await;
        let code = s
            .refused(&format!("{method} {path}"), 404, reply, &before)
            .await;
        assert_eq!(code, "not_found");
    }
    let raw =
        s.d.raw(&common::raw_get("/api/workspaces/%2e%2e/x", ""))
            .await;
    assert_eq!(raw.status, 404);
    common::assert_error_shape(&raw.json().expect("JSON 404"));
}

/// A 64 KiB header is more than the server buffers; hyper refuses it before any handler
/// runs, so the answer cannot carry the JSON error shape.
#[tokio::test]
async fn a_64_kib_header_is_refused_and_the_server_keeps_serving() {
    let s = seeded().await;
    let big = format!("X-Big: {}\r\n", "a".repeat(64 * 1024));
    let raw = s.d.raw(&common::raw_get("/api/health", &big)).await;
    assert!(
        raw.status == 431 || raw.status == 400,
        "a 64 KiB header answered {} {:?}",
        raw.status,
        raw.headers
    );
    let identity = format!("X-Forwarded-User: {}\r\n", "u".repeat(64 * 1024));
    let raw = s.d.raw(&common::raw_get("/api/me", &identity)).await;
    assert!(raw.status == 431 || raw.status == 400, "{}", raw.status);
    s.d.get("/api/health").await.expect(200);
    let users: i64 =
        s.db.client()
            .await
            .query_one("SELECT count(*) FROM users", &[])
            .await
            .expect("count")
            .get(0);
    assert_eq!(users, 1, "only the local user exists");
}

#[tokio::test]
async fn an_identity_header_that_is_not_a_usable_name_is_400() {
    let s = seeded().await;
    let long = "u".repeat(300);
    let reply = s.d.get_as(&long, "/api/me").await;
    assert_eq!(reply.expect_error(400), "invalid_identity");
    let mut latin1 =
        b"GET /api/me HTTP/1.1\r\nHost: test\r\nX-Forwarded-User: caf\xe9\xff\r\n".to_vec();
    latin1.extend_from_slice(b"Connection: close\r\n\r\n");
    let raw = s.d.raw(&latin1).await;
    assert_eq!(raw.status, 400, "a name that is not UTF-8");
    common::assert_error_shape(&raw.json().expect("JSON error"));
}
