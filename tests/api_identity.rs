//! Who may see what: another user's ids answer 404 (never 403), and the identity header
//! is believed only from a trusted proxy.

mod common;

use common::{Daedalus, TestDb, create_conversation, create_workspace, insert_messages};
use http::Method;
use serde_json::json;

#[tokio::test]
async fn another_users_workspace_conversation_and_messages_answer_404() {
    let db = TestDb::create().await;
    let d = Daedalus::start(&db, &[]).await;
    let ws = create_workspace(&d, "alice", "Alice's").await;
    let c = create_conversation(&d, "alice", &ws, "Private").await;
    insert_messages(&db, &c, 2).await;
    let workspace = format!("/api/workspaces/{ws}");
    let conversations = format!("{workspace}/conversations");
    let conversation = format!("{conversations}/{c}");
    let messages = format!("{conversation}/messages");

    for path in [&workspace, &conversations, &conversation, &messages] {
        assert_eq!(d.get_as("alice", path).await.status, 200, "{path}");
        assert_eq!(
            d.get_as("bob", path).await.expect_error(404),
            "not_found",
            "{path}"
        );
    }
    let bob_list = d.get_as("bob", "/api/workspaces").await.expect(200);
    assert_eq!(bob_list["items"], json!([]));

    let attempts = [
        (Method::PATCH, &workspace, json!({"name": "mine now"})),
        (Method::DELETE, &workspace, json!(null)),
        (Method::POST, &conversations, json!({"title": "intruder"})),
        (Method::PATCH, &conversation, json!({"title": "mine now"})),
        (Method::DELETE, &conversation, json!(null)),
    ];
    for (method, path, body) in attempts {
        let call = d.call(method.clone(), path).user("bob");
        let call = if body.is_null() {
            call
        } else {
            call.json(&body)
        };
        assert_eq!(
            call.send().await.expect_error(404),
            "not_found",
            "{method} {path}"
        );
    }
    let prefs = json!({"theme": "dark", "default_workspace_id": ws});
    let reply = d
        .call(Method::PUT, "/api/me/preferences")
        .user("bob")
        .json(&prefs)
        .send()
        .await;
    assert_eq!(reply.expect_error(400), "invalid_workspace");

    let still = d.get_as("alice", &workspace).await.expect(200);
    assert_eq!(still["name"], "Alice's");
    let convs = d.get_as("alice", &conversations).await.expect(200);
    assert_eq!(convs["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(convs["items"][0]["title"], "Private");
    let msgs = d.get_as("alice", &messages).await.expect(200);
    assert_eq!(msgs["items"].as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn a_conversation_is_not_reachable_through_another_workspace() {
    let db = TestDb::create().await;
    let d = Daedalus::start(&db, &[]).await;
    let ws_a = create_workspace(&d, "alice", "A").await;
    let ws_b = create_workspace(&d, "alice", "B").await;
    let c = create_conversation(&d, "alice", &ws_a, "In A").await;
    let wrong = format!("/api/workspaces/{ws_b}/conversations/{c}");
    d.get_as("alice", &wrong).await.expect_error(404);
    d.get_as("alice", &format!("{wrong}/messages"))
        .await
        .expect_error(404);
}

#[tokio::test]
async fn in_production_an_identity_header_from_an_untrusted_peer_is_refused() {
    let db = TestDb::create().await;
    let env = [
        ("DAEDALUS_ENV", "production"),
        ("DAEDALUS_TRUSTED_PROXIES", "10.9.9.9/32"),
    ];
    let d = Daedalus::start(&db, &env).await;
    let reply = d.get_as("mallory", "/api/me").await;
    assert_eq!(reply.expect_error(401), "unauthorized");
    d.get("/api/me").await.expect_error(401);
    d.get("/api/health").await.expect(200);
    let users: i64 = db
        .client()
        .await
        .query_one("SELECT count(*) FROM users", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(users, 0, "no user was created for the spoofed name");
}

#[tokio::test]
async fn in_development_an_identity_header_from_an_untrusted_peer_means_the_local_user() {
    let db = TestDb::create().await;
    let d = Daedalus::start(&db, &[("DAEDALUS_TRUSTED_PROXIES", "10.9.9.9/32")]).await;
    let me = d.get_as("mallory", "/api/me").await.expect(200);
    assert_eq!(me["name"], "local");
}

#[tokio::test]
async fn in_production_a_trusted_proxy_names_the_user() {
    let db = TestDb::create().await;
    let d = Daedalus::start(&db, &[("DAEDALUS_ENV", "production")]).await;
    let me = d.get_as("alice", "/api/me").await.expect(200);
    assert_eq!(me["name"], "alice");
    d.get("/api/me").await.expect_error(401);
}

#[tokio::test]
async fn a_custom_identity_header_is_the_only_one_believed() {
    let db = TestDb::create().await;
    let env = [
        ("DAEDALUS_ENV", "production"),
        ("DAEDALUS_AUTH_HEADER", "X-Auth-Request-User"),
    ];
    let d = Daedalus::start(&db, &env).await;
    let me = d
        .call(Method::GET, "/api/me")
        .header("x-auth-request-user", "carol")
        .send()
        .await
        .expect(200);
    assert_eq!(me["name"], "carol");
    d.get_as("alice", "/api/me").await.expect_error(401);
}
