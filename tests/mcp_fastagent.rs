//! The MCP client against a real FastAgent server (tests/agents/agents.py,
//! started by tests/services/fastagent.sh): every agent kind, progress,
//! conversation memory per session, cancellation, session loss and a server
//! that dies and comes back.

mod mcp_common;

use std::time::Duration;

use daedalus::mcp::{McpError, Pool, PoolOptions, Progress, ServerSpec, Timeouts, ToolCall};
use serde_json::json;
use tokio::sync::mpsc;
use uuid::Uuid;

use mcp_common::{OwnServer, discover_until_up, spec, text_of};

fn fastagent() -> ServerSpec {
    spec(
        "fastagent",
        &mcp_common::service_url("DAEDALUS_TEST_FASTAGENT_URL", "fastagent.sh"),
    )
}

/// A pool that speaks only the session revisions, so FastAgent keeps per-session memory.
fn session_pool() -> Pool {
    Pool::new(PoolOptions {
        protocol_versions: vec![
            "2025-11-25".into(),
            "2025-06-18".into(),
            "2025-03-26".into(),
        ],
        ..PoolOptions::default()
    })
}

fn message(tool: &str, text: &str) -> ToolCall {
    ToolCall::new(tool, json!({"message": text}))
}

async fn ask(pool: &Pool, server: &ServerSpec, tool: &str, text: &str) -> String {
    let outcome = pool
        .call_tool(server, message(tool, text))
        .await
        .unwrap_or_else(|e| panic!("{tool}: {e}"));
    assert!(!outcome.is_error, "{tool} reported an error: {outcome:?}");
    text_of(&outcome)
}

#[tokio::test]
async fn discover_negotiates_the_stateless_revision_and_lists_every_agent() {
    let info = Pool::new(PoolOptions::default())
        .discover(&fastagent())
        .await
        .expect("discover");
    assert_eq!(info.protocol_version, "2026-07-28");
    assert!(info.stateless);
    assert_eq!(info.name, "daedalus-test-agents-MCP-Server");
    let mut names: Vec<_> = info.tools.iter().map(|t| t.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "dispatcher",
            "echo",
            "fanout",
            "fanout_fan_in",
            "pipeline",
            "sleeper",
            "slow"
        ]
    );
}

#[tokio::test]
async fn discover_over_a_session_revision() {
    let info = session_pool()
        .discover(&fastagent())
        .await
        .expect("discover");
    assert_eq!(info.protocol_version, "2025-11-25");
    assert!(!info.stateless);
    assert!(info.tools.iter().any(|t| t.name == "echo"));
}

#[tokio::test]
async fn every_agent_kind_answers_in_both_revisions() {
    let server = fastagent();
    for pool in [Pool::new(PoolOptions::default()), session_pool()] {
        assert_eq!(ask(&pool, &server, "echo", "hello").await, "hello");
        assert_eq!(ask(&pool, &server, "slow", "patience").await, "patience");
        let slept = ask(
            &pool,
            &server,
            "sleeper",
            r#"***CALL_TOOL sleep_seconds {"seconds": 1}"#,
        );
        assert!(slept.await.contains("slept 1"));
        assert_eq!(
            ask(&pool, &server, "pipeline", "through").await.trim(),
            "through"
        );
        let routed = ask(
            &pool,
            &server,
            "dispatcher",
            r#"{"agent":"echo","confidence":"high"}"#,
        );
        assert!(routed.await.contains("echo"));
        let fanned = ask(&pool, &server, "fanout", "both").await;
        assert!(fanned.contains("both"), "{fanned}");
    }
}

#[tokio::test]
async fn requests_are_counted_under_the_server_label() {
    let server = spec("fastagent-metrics", &fastagent().url);
    let pool = Pool::new(PoolOptions::default());
    assert_eq!(ask(&pool, &server, "echo", "count me").await, "count me");
    let metrics = daedalus::metrics::get();
    let calls = metrics
        .mcp_requests
        .with_label_values(&["fastagent-metrics", "tools/call", "ok"])
        .get();
    assert_eq!(calls, 1);
    let timed = metrics
        .mcp_duration
        .with_label_values(&["fastagent-metrics", "tools/call"])
        .get_sample_count();
    assert_eq!(timed, 1);
}

#[tokio::test]
async fn unknown_tool_is_a_tool_error_not_a_failure() {
    let outcome = Pool::new(PoolOptions::default())
        .call_tool(&fastagent(), message("no_such_agent", "x"))
        .await
        .expect("the call itself works");
    assert!(outcome.is_error);
}

async fn collect_progress(pool: &Pool, tool: &str, text: &str) -> Vec<Progress> {
    let (sender, mut receiver) = mpsc::unbounded_channel();
    let mut call = message(tool, text);
    call.progress = Some(sender);
    pool.call_tool(&fastagent(), call).await.expect("call");
    let mut all = Vec::new();
    while let Ok(progress) = receiver.try_recv() {
        all.push(progress);
    }
    all
}

#[tokio::test]
async fn progress_is_forwarded_even_when_it_goes_down() {
    for pool in [Pool::new(PoolOptions::default()), session_pool()] {
        let progress = collect_progress(
            &pool,
            "pipeline",
            r#"***CALL_TOOL sleep_seconds {"seconds": 1}"#,
        )
        .await;
        assert!(progress.len() >= 2, "{progress:?}");
        assert!(progress.iter().any(|p| p.message.is_some()), "{progress:?}");
        let goes_down = progress.windows(2).any(|w| w[1].progress < w[0].progress);
        assert!(
            goes_down,
            "a chain restarts its count per step: {progress:?}"
        );
    }
}

#[tokio::test]
async fn each_conversation_keeps_its_own_session_memory() {
    let pool = session_pool();
    let server = fastagent();
    let (first, second) = (Uuid::new_v4(), Uuid::new_v4());
    let mut call = message("echo", "***FIXED_RESPONSE remembered");
    call.session_key = Some(first);
    let opened = pool.call_tool(&server, call).await.expect("first turn");
    assert!(opened.fresh_session);
    assert!(!pool.session_is_fresh(&server, first).await);

    let mut call = message("echo", "what did I say?");
    call.session_key = Some(first);
    let again = pool.call_tool(&server, call).await.expect("second turn");
    assert!(!again.fresh_session);
    assert_eq!(text_of(&again), "remembered");

    let mut call = message("echo", "other conversation");
    call.session_key = Some(second);
    let other = pool
        .call_tool(&server, call)
        .await
        .expect("other conversation");
    assert!(other.fresh_session);
    assert_eq!(text_of(&other), "other conversation");
    pool.forget_session(&server, first).await;
    pool.forget_session(&server, second).await;
}

#[tokio::test]
async fn stateless_calls_are_always_fresh_and_carry_the_transcript() {
    let pool = Pool::new(PoolOptions::default());
    let key = Uuid::new_v4();
    for turn in ["one", "two"] {
        let mut call = message("echo", turn);
        call.fresh_arguments = Some(json!({"message": format!("[transcript] {turn}")}));
        call.session_key = Some(key);
        let outcome = pool.call_tool(&fastagent(), call).await.expect("call");
        assert!(outcome.fresh_session);
        assert_eq!(outcome.protocol_version, "2026-07-28");
        assert_eq!(text_of(&outcome), format!("[transcript] {turn}"));
    }
}

/// Starts a `slow` call and cancels it as soon as FastAgent reports the first progress.
async fn cancelled_slow_call(pool: &Pool, server: &ServerSpec, key: Uuid) -> McpError {
    let (sender, mut receiver) = mpsc::unbounded_channel();
    let mut call = message("slow", "never answered");
    call.session_key = Some(key);
    call.progress = Some(sender);
    let cancel = call.cancel.clone();
    tokio::spawn(async move {
        receiver.recv().await;
        cancel.cancel();
    });
    pool.call_tool(server, call).await.expect_err("cancelled")
}

#[tokio::test]
async fn after_cancellation_the_next_turn_works_on_a_new_session() {
    let pool = session_pool();
    let server = fastagent();
    let key = Uuid::new_v4();
    let mut call = message("echo", "first turn");
    call.session_key = Some(key);
    pool.call_tool(&server, call).await.expect("first turn");

    let error = cancelled_slow_call(&pool, &server, key).await;
    assert_eq!(error.kind(), "cancelled", "{error}");

    // FastAgent dropped the session with the cancellation: the next turn gets a new one,
    // sends the transcript, and the late reply of the cancelled call never shows up.
    let mut call = message("echo", "next turn");
    call.session_key = Some(key);
    call.fresh_arguments = Some(json!({"message": "transcript + next turn"}));
    let outcome = pool.call_tool(&server, call).await.expect("next turn");
    assert!(outcome.fresh_session);
    assert_eq!(text_of(&outcome), "transcript + next turn");
}

#[tokio::test]
async fn stateless_cancellation_closes_the_stream_and_the_next_call_works() {
    let pool = Pool::new(PoolOptions::default());
    let server = fastagent();
    let error = cancelled_slow_call(&pool, &server, Uuid::new_v4()).await;
    assert_eq!(error.kind(), "cancelled");
    assert_eq!(ask(&pool, &server, "echo", "after").await, "after");
}

#[tokio::test]
async fn silence_beyond_the_idle_limit_times_out() {
    let pool = session_pool();
    let mut call = message("slow", "too slow");
    call.timeouts = Timeouts {
        idle: Duration::from_millis(300),
        total: Duration::from_secs(60),
    };
    let error = pool
        .call_tool(&fastagent(), call)
        .await
        .expect_err("timeout");
    assert!(
        matches!(error, McpError::Timeout { idle: true, .. }),
        "{error}"
    );
    assert_eq!(
        ask(&pool, &fastagent(), "echo", "still fine").await,
        "still fine"
    );
}

#[tokio::test]
async fn killed_server_gives_a_clear_error_and_works_again_after_restart() {
    let mut own = OwnServer::start("fastagent.sh").await;
    let server = spec("own-fastagent", &own.url());
    let pool = session_pool();
    discover_until_up(&pool, &server).await;
    let key = Uuid::new_v4();
    let mut call = message("echo", "before");
    call.session_key = Some(key);
    pool.call_tool(&server, call)
        .await
        .expect("before the kill");

    own.kill();
    let error = pool
        .call_tool(&server, message("echo", "while down"))
        .await
        .expect_err("server is down");
    assert_eq!(error.kind(), "unreachable");
    let text = error.to_string();
    // The first attempt may hit the pooled connection the kill closed, later ones are refused.
    assert!(
        text.contains("own-fastagent") && text.contains("is unreachable"),
        "{text}"
    );

    own.restart().await;
    discover_until_up(&pool, &server).await;
    // The restarted server forgot the session (404): a new one is opened transparently.
    let mut call = message("echo", "after");
    call.session_key = Some(key);
    call.fresh_arguments = Some(json!({"message": "transcript + after"}));
    let outcome = pool.call_tool(&server, call).await.expect("after restart");
    assert!(outcome.fresh_session);
    assert_eq!(text_of(&outcome), "transcript + after");
}

#[tokio::test]
async fn server_killed_mid_call_fails_the_call_clearly() {
    let mut own = OwnServer::start("fastagent.sh").await;
    let server = spec("dying-fastagent", &own.url());
    let pool = session_pool();
    discover_until_up(&pool, &server).await;
    let (sender, mut receiver) = mpsc::unbounded_channel();
    let mut call = message("slow", "interrupted");
    call.progress = Some(sender);
    let calling = tokio::spawn({
        let pool = pool.clone();
        let server = server.clone();
        async move { pool.call_tool(&server, call).await }
    });
    receiver.recv().await.expect("the call started");
    own.kill();
    let error = calling.await.expect("task").expect_err("server died");
    assert!(
        matches!(error.kind(), "unreachable" | "protocol"),
        "{error}"
    );
}
