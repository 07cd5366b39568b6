//! The happy path of every route the service core serves, against the real binary and a
//! real PostgreSQL: what the browser app relies on, call by call.

mod common;

use common::{Daedalus, TestDb, create_conversation, create_workspace, insert_messages, raw_get};
use http::Method;
use serde_json::json;

#[tokio::test]
async fn health_answers_ok_and_head_answers_the_same_headers_without_a_body() {
    let db = TestDb::create().await;
    let d = Daedalus::start(&db, &[]).await;
    let get = d.get("/api/health").await;
    assert_eq!(get.expect(200), json!({"status": "ok"}));
    assert_eq!(get.header("content-type"), Some("application/json"));

    let raw_head = d
        .raw(b"HEAD /api/health HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .await;
    let raw_get = d.raw(&raw_get("/api/health", "")).await;
    assert_eq!(raw_head.status, 200);
    assert!(raw_head.body.is_empty(), "HEAD sent a body: {raw_head:?}");
    let names = |r: &common::RawReply| {
        let mut n: Vec<String> = r.headers.iter().map(|(k, _)| k.clone()).collect();
        n.sort();
        n
    };
    assert_eq!(names(&raw_head), names(&raw_get));
    for name in ["content-type", "content-length"] {
        assert_eq!(raw_head.header(name), raw_get.header(name), "{name}");
    }
}

#[tokio::test]
async fn ready_reports_database_and_migrations_ok() {
    let db = TestDb::create().await;
    let d = Daedalus::start(&db, &[]).await;
    let body = d.get("/api/ready").await.expect(200);
    assert_eq!(body["status"], "ready");
    assert_eq!(body["checks"]["database"], "ok");
}

#[tokio::test]
async fn metrics_answer_prometheus_text() {
    let db = TestDb::create().await;
    let d = Daedalus::start(&db, &[]).await;
    let reply = d.get("/metrics").await;
    assert_eq!(reply.status, 200);
    assert!(
        reply
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/plain; version=0.0.4")),
        "{:?}",
        reply.headers
    );
    assert!(String::from_utf8_lossy(&reply.body).contains("daedalus_up 1"));
}

#[tokio::test]
async fn me_is_the_local_user_in_development_and_the_header_user_behind_the_proxy() {
    let db = TestDb::create().await;
    let d = Daedalus::start(&db, &[]).await;
    let local = d.get("/api/me").await.expect(200);
    assert_eq!(local["name"], "local");
    assert_eq!(local["preferences"]["theme"], "system");
    assert!(local["id"].as_str().is_some_and(|id| id.len() == 36));

    let alice = d.get_as("alice", "/api/me").await.expect(200);
    assert_eq!(alice["name"], "alice");
    assert_ne!(alice["id"], local["id"]);
    let again = d.get_as("alice", "/api/me").await.expect(200);
    assert_eq!(
        again["id"], alice["id"],
        "a user is created once, then found"
    );
}

#[tokio::test]
async fn preferences_are_replaced_and_read_back() {
    let db = TestDb::create().await;
    let d = Daedalus::start(&db, &[]).await;
    let ws = create_workspace(&d, "alice", "Home").await;
    let prefs = json!({"theme": "dark", "default_workspace_id": ws});
    let put = d
        .call(Method::PUT, "/api/me/preferences")
        .user("alice")
        .json(&prefs)
        .send()
        .await
        .expect(200);
    assert_eq!(put, prefs);
    let got = d.get_as("alice", "/api/me/preferences").await.expect(200);
    assert_eq!(got, prefs);
    let me = d.get_as("alice", "/api/me").await.expect(200);
    assert_eq!(me["preferences"], prefs);
    let bob = d.get_as("bob", "/api/me/preferences").await.expect(200);
    assert_eq!(bob["theme"], "system", "preferences are per user");
}

#[tokio::test]
async fn workspaces_are_created_listed_read_updated_and_deleted() {
    let db = TestDb::create().await;
    let d = Daedalus::start(&db, &[]).await;
    let input = json!({
        "name": "Research",
        "description": "papers",
        "agent_servers": [{"name": "main", "url": "http://127.0.0.1:9/mcp",
                           "headers": {"Authorization": "Bearer abc"}}],
        "default_agent": "writer",
    });
    let created = d.post_json("/api/workspaces", &input).await.expect(201);
    let id = created["id"].as_str().expect("id").to_string();
    assert_eq!(created["name"], "Research");
    assert_eq!(created["description"], "papers");
    assert_eq!(created["default_agent"], "writer");
    assert_eq!(created["agent_servers"][0]["url"], "http://127.0.0.1:9/mcp");
    assert_eq!(
        created["agent_servers"][0]["headers"]["Authorization"], "",
        "header values are write-only"
    );
    for field in ["created_at", "updated_at"] {
        assert!(created[field].is_string(), "{field}");
    }

    let list = d.get("/api/workspaces").await.expect(200);
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(list["items"][0]["id"], id.as_str());
    assert_eq!(list["next_cursor"], serde_json::Value::Null);
    let one = d.get(&format!("/api/workspaces/{id}")).await.expect(200);
    assert_eq!(one, created);

    let patched = d
        .call(Method::PATCH, &format!("/api/workspaces/{id}"))
        .json(&json!({"name": "Renamed", "default_agent": null}))
        .send()
        .await
        .expect(200);
    assert_eq!(patched["name"], "Renamed");
    assert_eq!(patched["description"], "papers", "absent fields are kept");
    assert_eq!(patched["default_agent"], serde_json::Value::Null);

    let deleted = d
        .call(Method::DELETE, &format!("/api/workspaces/{id}"))
        .send()
        .await;
    assert_eq!(deleted.status, 204);
    d.get(&format!("/api/workspaces/{id}"))
        .await
        .expect_error(404);
    let list = d.get("/api/workspaces").await.expect(200);
    assert_eq!(list["items"], json!([]));
}

#[tokio::test]
async fn conversations_are_created_listed_read_updated_and_deleted() {
    let db = TestDb::create().await;
    let d = Daedalus::start(&db, &[]).await;
    let ws = create_workspace(&d, "local", "Home").await;
    let base = format!("/api/workspaces/{ws}/conversations");
    let created = d
        .post_json(&base, &json!({"title": "Plans", "agent": "writer"}))
        .await
        .expect(201);
    let id = created["id"].as_str().expect("id").to_string();
    assert_eq!(created["workspace_id"], ws.as_str());
    assert_eq!(created["title"], "Plans");
    assert_eq!(created["agent"], "writer");
    assert_eq!(created["archived"], false);

    let untitled = d.post_json(&base, &json!({})).await.expect(201);
    assert!(untitled["title"].as_str().is_some_and(|t| !t.is_empty()));

    let list = d.get(&base).await.expect(200);
    assert_eq!(list["items"].as_array().map(Vec::len), Some(2));
    let found = d.get(&format!("{base}?q=lan")).await.expect(200);
    assert_eq!(found["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(found["items"][0]["id"], id.as_str());

    let one = d.get(&format!("{base}/{id}")).await.expect(200);
    assert_eq!(one, created);
    let archived = d
        .call(Method::PATCH, &format!("{base}/{id}"))
        .json(&json!({"archived": true, "title": "Old plans"}))
        .send()
        .await
        .expect(200);
    assert_eq!(archived["archived"], true);
    assert_eq!(archived["title"], "Old plans");
    assert_eq!(archived["agent"], "writer");
    let visible = d.get(&base).await.expect(200);
    assert_eq!(visible["items"].as_array().map(Vec::len), Some(1));
    let only = d.get(&format!("{base}?archived=true")).await.expect(200);
    assert_eq!(only["items"][0]["id"], id.as_str());

    let deleted = d.call(Method::DELETE, &format!("{base}/{id}")).send().await;
    assert_eq!(deleted.status, 204);
    d.get(&format!("{base}/{id}")).await.expect_error(404);
}

#[tokio::test]
async fn messages_are_listed_oldest_first_in_the_message_shape() {
    let db = TestDb::create().await;
    let d = Daedalus::start(&db, &[]).await;
    let ws = create_workspace(&d, "local", "Home").await;
    let c = create_conversation(&d, "local", &ws, "Chat").await;
    let path = format!("/api/workspaces/{ws}/conversations/{c}/messages");
    assert_eq!(d.get(&path).await.expect(200)["items"], json!([]));
    insert_messages(&db, &c, 3).await;
    let list = d.get(&path).await.expect(200);
    let items = list["items"].as_array().expect("items");
    let contents: Vec<&str> = items.iter().filter_map(|m| m["content"].as_str()).collect();
    assert_eq!(contents, ["message 1", "message 2", "message 3"]);
    let m = &items[0];
    assert_eq!(m["conversation_id"], c.as_str());
    assert_eq!(m["role"], "user");
    assert_eq!(m["status"], "complete");
    assert_eq!(m["file_ids"], json!([]));
    for field in ["id", "error", "agent", "run_id", "created_at"] {
        assert!(m.get(field).is_some(), "message lacks {field}: {m}");
    }
}

#[tokio::test]
async fn deleting_a_workspace_deletes_its_conversations_and_messages() {
    let db = TestDb::create().await;
    let d = Daedalus::start(&db, &[]).await;
    let ws = create_workspace(&d, "local", "Home").await;
    let c = create_conversation(&d, "local", &ws, "Chat").await;
    insert_messages(&db, &c, 5).await;
    let reply = d
        .call(Method::DELETE, &format!("/api/workspaces/{ws}"))
        .send()
        .await;
    assert_eq!(reply.status, 204);
    let client = db.client().await;
    for table in ["conversations", "messages"] {
        let n: i64 = client
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .await
            .expect("count")
            .get(0);
        assert_eq!(n, 0, "{table} left behind");
    }
}

#[tokio::test]
async fn a_wrong_method_answers_405_with_allow() {
    let db = TestDb::create().await;
    let d = Daedalus::start(&db, &[]).await;
    let reply = d.call(Method::DELETE, "/api/health").send().await;
    assert_eq!(reply.expect_error(405), "method_not_allowed");
    assert_eq!(reply.header("allow"), Some("GET, HEAD"));
    let reply = d.call(Method::PUT, "/api/workspaces").send().await;
    reply.expect_error(405);
    assert_eq!(reply.header("allow"), Some("GET, HEAD, POST"));
}

#[tokio::test]
async fn unknown_api_paths_answer_a_json_404() {
    let db = TestDb::create().await;
    let d = Daedalus::start(&db, &[]).await;
    assert_eq!(
        d.get("/api/nothing-here").await.expect_error(404),
        "not_found"
    );
}

#[tokio::test]
async fn an_empty_header_value_in_an_update_keeps_the_stored_secret() {
    let db = TestDb::create().await;
    let d = Daedalus::start(&db, &[]).await;
    let server = |value: &str| {
        json!({"agent_servers": [{"name": "main", "url": "http://127.0.0.1:9/mcp",
                                  "headers": {"Authorization": value}}]})
    };
    let mut create = server("Bearer kept");
    create["name"] = json!("Secrets");
    let ws = d.post_json("/api/workspaces", &create).await.expect(201)["id"]
        .as_str()
        .expect("id")
        .to_string();
    let path = format!("/api/workspaces/{ws}");
    let stored = || async {
        let id: uuid::Uuid = ws.parse().expect("uuid");
        let row = db
            .client()
            .await
            .query_one("SELECT agent_servers FROM workspaces WHERE id = $1", &[&id])
            .await
            .expect("row");
        row.get::<_, serde_json::Value>(0)[0]["headers"]["Authorization"].clone()
    };
    let echo = d
        .call(Method::PATCH, &path)
        .json(&server(""))
        .send()
        .await
        .expect(200);
    assert_eq!(echo["agent_servers"][0]["headers"]["Authorization"], "");
    assert_eq!(
        stored().await,
        "Bearer kept",
        "an empty value keeps the secret"
    );
    d.call(Method::PATCH, &path)
        .json(&server("Bearer new"))
        .send()
        .await
        .expect(200);
    assert_eq!(stored().await, "Bearer new", "a value replaces it");
}

#[tokio::test]
async fn deleting_the_default_workspace_clears_the_preference() {
    let db = TestDb::create().await;
    let d = Daedalus::start(&db, &[]).await;
    let ws = create_workspace(&d, "local", "Home").await;
    let prefs = json!({"theme": "light", "default_workspace_id": ws});
    d.call(Method::PUT, "/api/me/preferences")
        .json(&prefs)
        .send()
        .await
        .expect(200);
    let deleted = d
        .call(Method::DELETE, &format!("/api/workspaces/{ws}"))
        .send()
        .await;
    assert_eq!(deleted.status, 204);
    let after = d.get("/api/me/preferences").await.expect(200);
    assert_eq!(
        after,
        json!({"theme": "light", "default_workspace_id": null})
    );
}
