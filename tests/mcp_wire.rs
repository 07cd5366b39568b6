//! The MCP client against a scripted in-process server, for wire-level cases
//! real servers do not produce on demand: a string id that must not match a
//! numeric request, server requests on the reply stream, progress for another
//! token, an error with `id: null`, odd media-type spelling, 204 for a
//! notification, and a 404 that means the session is gone.

use std::sync::{Arc, Mutex};

use daedalus::mcp::{McpError, Pool, PoolOptions, ServerSpec, ToolCall};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// One answer of the scripted server: status, content type, session id, body.
struct Reply {
    status: u16,
    content_type: &'static str,
    session: Option<&'static str>,
    body: String,
}

fn json_reply(body: Value) -> Reply {
    Reply {
        status: 200,
        content_type: "Application/JSON; charset=UTF-8",
        session: Some("s1"),
        body: body.to_string(),
    }
}

fn empty(status: u16) -> Reply {
    Reply {
        status,
        content_type: "text/plain",
        session: None,
        body: String::new(),
    }
}

/// Answers a POSTed message (with the request's session id), or a GET when the
/// message is `null` (with its `Last-Event-ID` as the second argument instead).
type Script = Arc<dyn Fn(&Value, Option<&str>) -> Reply + Send + Sync>;

/// Serves `script` for every POST; records every posted message.
async fn scripted_server(script: Script) -> (ServerSpec, Arc<Mutex<Vec<Value>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("port");
    let url = format!("http://{}/mcp", listener.local_addr().expect("address"));
    let posted = Arc::new(Mutex::new(Vec::new()));
    let recorded = posted.clone();
    tokio::spawn(async move {
        loop {
            let (socket, _) = listener.accept().await.expect("accept");
            tokio::spawn(serve(socket, script.clone(), recorded.clone()));
        }
    });
    let spec = ServerSpec {
        label: "scripted".into(),
        url,
        headers: Vec::new(),
    };
    (spec, posted)
}

async fn serve(mut socket: TcpStream, script: Script, posted: Arc<Mutex<Vec<Value>>>) {
    let mut bytes = Vec::new();
    let mut buffer = [0u8; 8192];
    let head_end = loop {
        let n = socket.read(&mut buffer).await.expect("read");
        if n == 0 {
            return;
        }
        bytes.extend_from_slice(&buffer[..n]);
        if let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
    };
    let head = String::from_utf8_lossy(&bytes[..head_end]).to_lowercase();
    let header = |name: &str| {
        head.lines()
            .find_map(|line| line.strip_prefix(&format!("{name}: ")).map(str::to_owned))
    };
    let length: usize = header("content-length").map_or(0, |v| v.trim().parse().expect("length"));
    while bytes.len() < head_end + length {
        let n = socket.read(&mut buffer).await.expect("read body");
        bytes.extend_from_slice(&buffer[..n]);
    }
    let reply = if head.starts_with("post") {
        let message: Value = serde_json::from_slice(&bytes[head_end..]).expect("JSON body");
        posted.lock().expect("record").push(message.clone());
        script(&message, header("mcp-session-id").as_deref())
    } else if head.starts_with("get") {
        script(&Value::Null, header("last-event-id").as_deref())
    } else {
        empty(405)
    };
    let mut response = format!(
        "HTTP/1.1 {} X\r\ncontent-type: {}\r\nconnection: close\r\n",
        reply.status, reply.content_type
    );
    if let Some(session) = reply.session {
        response.push_str(&format!("mcp-session-id: {session}\r\n"));
    }
    response.push_str(&format!(
        "content-length: {}\r\n\r\n{}",
        reply.body.len(),
        reply.body
    ));
    let _ = socket.write_all(response.as_bytes()).await;
}

/// The session-revision handshake every script shares; `None` for other methods.
fn handshake(message: &Value) -> Option<Reply> {
    match message["method"].as_str()? {
        "server/discover" => Some(empty(404)),
        "initialize" => Some(json_reply(json!({"jsonrpc": "2.0", "id": message["id"],
            "result": {"protocolVersion": "2025-06-18", "capabilities": {},
                       "serverInfo": {"name": "scripted", "version": "1"}}}))),
        "notifications/initialized" | "notifications/cancelled" => Some(empty(204)),
        _ => None,
    }
}

/// A tool result whose text is the call's `message` argument.
fn echo_reply(message: &Value) -> Reply {
    let text = &message["params"]["arguments"]["message"];
    json_reply(json!({"jsonrpc": "2.0", "id": message["id"],
        "result": {"content": [{"type": "text", "text": text}]}}))
}

fn sse(events: &[Value]) -> String {
    let mut body = String::from(": a comment first\r\n\r\n");
    for event in events {
        body.push_str(&format!("event: message\r\ndata: {event}\r\n\r\n"));
    }
    body
}

#[tokio::test]
async fn reply_stream_with_server_requests_foreign_ids_and_progress() {
    let script: Script = Arc::new(|message, _session| {
        if let Some(reply) = handshake(message) {
            return reply;
        }
        if message.get("method").is_none() {
            return empty(202); // our answers to the server's requests
        }
        let id = &message["id"];
        let token = &message["params"]["_meta"]["progressToken"];
        let events = [
            json!({"jsonrpc": "2.0", "id": "srv-1", "method": "ping"}),
            json!({"jsonrpc": "2.0", "id": 7, "method": "sampling/createMessage", "params": {}}),
            json!({"jsonrpc": "2.0", "id": id.to_string(), "result": {"content": []}}),
            json!({"jsonrpc": "2.0", "method": "notifications/progress",
                   "params": {"progressToken": "someone-else", "progress": 9}}),
            json!({"jsonrpc": "2.0", "method": "notifications/progress",
                   "params": {"progressToken": token, "progress": 0.5, "total": 1,
                              "message": "halfway"}}),
            json!({"jsonrpc": "2.0", "id": id,
                   "result": {"content": [{"type": "text", "text": "right"}]}}),
        ];
        Reply {
            status: 200,
            content_type: "TEXT/Event-Stream; charset=utf-8",
            session: Some("s1"),
            body: sse(&events),
        }
    });
    let (server, posted) = scripted_server(script).await;
    let (sender, mut receiver) = mpsc::unbounded_channel();
    let mut call = ToolCall::new("agent", json!({"message": "hi"}));
    call.progress = Some(sender);
    let outcome = Pool::new(PoolOptions::default())
        .call_tool(&server, call)
        .await
        .expect("call");
    assert_eq!(
        serde_json::to_value(&outcome.content).expect("content"),
        json!([{"type": "text", "text": "right"}])
    );
    assert_eq!(outcome.protocol_version, "2025-06-18");
    let progress = receiver.recv().await.expect("one progress");
    assert_eq!((progress.progress, progress.total), (0.5, Some(1.0)));
    assert_eq!(progress.message.as_deref(), Some("halfway"));
    assert!(
        receiver.try_recv().is_err(),
        "progress for another token leaked"
    );

    // Answers to the server's requests are posted in the background.
    for _ in 0..100 {
        if posted.lock().expect("posts").len() >= 6 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let posts = posted.lock().expect("posts").clone();
    let answer = |id: Value| {
        posts
            .iter()
            .find(|m| m["id"] == id && m.get("method").is_none())
    };
    assert_eq!(
        answer(json!("srv-1")).expect("ping answered")["result"],
        json!({})
    );
    assert_eq!(
        answer(json!(7)).expect("sampling answered")["error"]["code"],
        -32601
    );
}

#[tokio::test]
async fn error_with_null_id_fails_the_call_readably() {
    let script: Script = Arc::new(|message, _| {
        handshake(message).unwrap_or_else(|| {
            json_reply(json!({"jsonrpc": "2.0", "id": null,
                "error": {"code": -32700, "message": "Parse error"}}))
        })
    });
    let (server, _) = scripted_server(script).await;
    let error = Pool::new(PoolOptions::default())
        .call_tool(&server, ToolCall::new("agent", json!({})))
        .await
        .expect_err("an error response");
    assert!(
        matches!(error, McpError::Rpc { code: -32700, .. }),
        "{error:?}"
    );
    assert_eq!(error.kind(), "rpc");
    assert!(error.to_string().contains("Parse error"), "{error}");
}

#[tokio::test]
async fn lost_session_is_replaced_and_the_call_retried_once() {
    let calls = Arc::new(Mutex::new(0));
    let seen = calls.clone();
    let script: Script = Arc::new(move |message, _| {
        if let Some(reply) = handshake(message) {
            return reply;
        }
        let mut count = seen.lock().expect("count");
        *count += 1;
        if *count == 2 {
            return empty(404);
        }
        echo_reply(message)
    });
    let (server, posted) = scripted_server(script).await;
    let pool = Pool::new(PoolOptions::default());
    let key = uuid::Uuid::new_v4();
    let turn = |text: &str| {
        let mut call = ToolCall::new("agent", json!({"message": text}));
        call.fresh_arguments = Some(json!({"message": format!("transcript + {text}")}));
        call.session_key = Some(key);
        call
    };
    let first = pool.call_tool(&server, turn("one")).await.expect("first");
    assert!(first.fresh_session);
    let second = pool.call_tool(&server, turn("two")).await.expect("second");
    assert!(
        second.fresh_session,
        "the replacement session has no memory"
    );
    let text = serde_json::to_value(&second.content).expect("content");
    assert_eq!(text[0]["text"], "transcript + two");
    let initializations = posted
        .lock()
        .expect("posts")
        .iter()
        .filter(|m| m["method"] == "initialize")
        .count();
    assert_eq!(initializations, 2);
}

#[tokio::test]
async fn server_without_session_id_is_always_fresh() {
    let script: Script = Arc::new(|message, _| {
        let mut reply = handshake(message).unwrap_or_else(|| echo_reply(message));
        reply.session = None;
        reply
    });
    let (server, _) = scripted_server(script).await;
    let pool = Pool::new(PoolOptions::default());
    let key = uuid::Uuid::new_v4();
    for text in ["one", "two"] {
        let mut call = ToolCall::new("agent", json!({"message": text}));
        call.fresh_arguments = Some(json!({"message": format!("transcript + {text}")}));
        call.session_key = Some(key);
        let outcome = pool.call_tool(&server, call).await.expect("call");
        assert!(outcome.fresh_session, "no session id, so no memory");
        let content = serde_json::to_value(&outcome.content).expect("content");
        assert_eq!(content[0]["text"], format!("transcript + {text}"));
    }
}

#[tokio::test]
async fn stateless_server_replaced_by_a_session_server_is_renegotiated() {
    let discovered = Arc::new(Mutex::new(false));
    let script: Script = Arc::new(move |message, _| {
        let stateless_request =
            message["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"].is_string();
        if message["method"] == "server/discover" {
            let mut first = discovered.lock().expect("flag");
            if !*first {
                *first = true;
                return json_reply(json!({"jsonrpc": "2.0", "id": message["id"],
                    "result": {"supportedVersions": ["2026-07-28"], "capabilities": {}}}));
            }
        }
        if let Some(reply) = handshake(message) {
            return reply;
        }
        if stateless_request {
            return empty(400); // the new server does not speak the stateless revision
        }
        json_reply(json!({"jsonrpc": "2.0", "id": message["id"],
            "result": {"content": [{"type": "text", "text": "answered"}]}}))
    });
    let (server, _) = scripted_server(script).await;
    let pool = Pool::new(PoolOptions::default());
    let info = pool.discover(&server).await;
    assert!(info.is_ok(), "{info:?}");
    let outcome = pool
        .call_tool(&server, ToolCall::new("agent", json!({"message": "x"})))
        .await
        .expect("renegotiated call");
    assert_eq!(outcome.protocol_version, "2025-06-18");
}

#[tokio::test]
async fn stream_closed_after_retry_is_resumed_with_last_event_id() {
    let call_id = Arc::new(Mutex::new(Value::Null));
    let script: Script = Arc::new(move |message, header| {
        if message.is_null() {
            // The resumption: only after the last event the client saw.
            assert_eq!(header, Some("e2"), "Last-Event-ID");
            let id = call_id.lock().expect("id").clone();
            let answer = json!({"jsonrpc": "2.0", "id": id,
                "result": {"content": [{"type": "text", "text": "resumed"}]}});
            return Reply {
                status: 200,
                content_type: "text/event-stream",
                session: Some("s1"),
                body: format!("id: e3\ndata: {answer}\n\n"),
            };
        }
        if let Some(reply) = handshake(message) {
            return reply;
        }
        *call_id.lock().expect("id") = message["id"].clone();
        let token = &message["params"]["_meta"]["progressToken"];
        let progress = json!({"jsonrpc": "2.0", "method": "notifications/progress",
            "params": {"progressToken": token, "progress": 1}});
        Reply {
            status: 200,
            content_type: "text/event-stream",
            session: Some("s1"),
            // A priming event with an id and a retry, one message, then the stream ends.
            body: format!("id: e1\nretry: 10\ndata:\n\nid: e2\ndata: {progress}\n\n"),
        }
    });
    let (server, _) = scripted_server(script).await;
    let pool = Pool::new(PoolOptions::default());
    let (sender, mut receiver) = mpsc::unbounded_channel();
    let mut call = ToolCall::new("agent", json!({}));
    call.progress = Some(sender);
    let outcome = pool.call_tool(&server, call).await.expect("resumed call");
    let content = serde_json::to_value(&outcome.content).expect("content");
    assert_eq!(content[0]["text"], "resumed");
    assert_eq!(receiver.recv().await.expect("progress").progress, 1.0);
    assert!(receiver.try_recv().is_err(), "nothing doubled");
}
