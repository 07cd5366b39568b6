//! Runs when something breaks: the agent server dies mid-run or restarts between turns,
//! or a Daedalus instance dies while one of its runs is going. Each test starts a
//! FastAgent of its own, so killing it or leaving it busy disturbs no other test.

mod common;

use common::fastagent::{FastAgent, conversation_with, messages, workspace_with};
use common::sse::{self, SseEvent};
use common::{Daedalus, TestDb};

fn sleep_for(secs: u32) -> String {
    format!("***CALL_TOOL sleep_seconds {{\"seconds\": {secs}}}")
}

fn assert_numbered(events: &[SseEvent]) {
    let ids: Vec<i64> = events.iter().map(SseEvent::seq).collect();
    let expected: Vec<i64> = (1..=events.len() as i64).collect();
    assert_eq!(ids, expected, "event ids are not contiguous: {events:#?}");
}

fn run_id(started: &SseEvent) -> String {
    assert_eq!(started.event, "run.started");
    started.data["run_id"]
        .as_str()
        .expect("run.started names the run")
        .to_string()
}

#[tokio::test]
async fn an_agent_server_killed_mid_run_fails_the_run_and_loses_nothing() {
    let mut agent = FastAgent::start().await;
    let db = TestDb::create().await;
    let d = Daedalus::start(&db, &[]).await;
    let ws = workspace_with(&d, &[("local", &agent.url())]).await;
    let c = conversation_with(&d, &ws, "sleeper").await;
    let first = sse::send(&d, &ws, &c, "before the crash")
        .await
        .until_end()
        .await;
    sse::completed(&first);

    let mut stream = sse::send(&d, &ws, &c, &sleep_for(60)).await;
    let mut events = stream.until("progress").await;
    agent.kill().await;
    events.extend(stream.until_end().await);

    assert_numbered(&events);
    let failed = events.last().expect("an end");
    assert_eq!(failed.event, "run.failed", "{events:#?}");
    let error = &failed.data["error"];
    assert_eq!(error["code"], "agent_unreachable", "{error}");
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("agent server local")),
        "the error says which server: {error}"
    );
    let list = messages(&d, &ws, &c).await;
    let texts: Vec<&str> = list.iter().filter_map(|m| m["content"].as_str()).collect();
    assert_eq!(
        texts[..3],
        ["before the crash", "before the crash", &sleep_for(60)]
    );
    assert_eq!(list[3]["status"], "failed");
    assert_eq!(list[3]["error"], *error);
}

#[tokio::test]
async fn after_an_agent_server_restart_the_next_turn_still_knows_the_conversation() {
    let mut agent = FastAgent::start().await;
    let db = TestDb::create().await;
    let d = Daedalus::start(&db, &[]).await;
    let ws = workspace_with(&d, &[("local", &agent.url())]).await;
    let c = conversation_with(&d, &ws, "echo").await;
    let first = sse::send(&d, &ws, &c, "alpha").await.until_end().await;
    assert_eq!(
        first.last().expect("an end").data["message"]["content"],
        "alpha"
    );

    agent.restart().await;
    let events = sse::send(&d, &ws, &c, "beta").await.until_end().await;

    assert_numbered(&events);
    let done = events.last().expect("an end");
    assert_eq!(done.event, "message.completed", "{events:#?}");
    // The new server has no session for this conversation: the passthrough agent hands
    // back the transcript Daedalus sent in front of the message.
    let answer = done.data["message"]["content"].as_str().expect("text");
    assert!(
        answer.contains("User: alpha"),
        "transcript missing: {answer}"
    );
    assert!(
        answer.contains("Assistant: alpha"),
        "transcript missing: {answer}"
    );
    assert!(answer.ends_with("beta"), "{answer}");
}

#[tokio::test]
async fn a_run_of_a_killed_instance_is_failed_by_another() {
    // A server of its own: the agent goes on sleeping after its caller died.
    let agent = FastAgent::start().await;
    let db = TestDb::create().await;
    let a = Daedalus::start(&db, &[]).await;
    let b = Daedalus::start(&db, &[]).await;
    let ws = workspace_with(&a, &[("local", &agent.url())]).await;
    let c = conversation_with(&a, &ws, "sleeper").await;

    let mut stream = sse::send(&a, &ws, &c, &sleep_for(150)).await;
    let mut events = stream.until("progress").await;
    let run = run_id(&events[0]);
    let last = events.last().expect("seen events").seq();
    let mut on_b = sse::attach(&b, &ws, &c, &run, last).await;
    on_b.expect_stream();
    drop(stream);
    // Dropping the handle kills the process with SIGKILL: no shutdown, no last word.
    drop(a);
    events.extend(on_b.until_end().await);

    assert_numbered(&events);
    let failed = events.last().expect("an end");
    assert_eq!(failed.event, "run.failed", "{events:#?}");
    assert_eq!(failed.data["error"]["code"], "instance_lost");
    let list = messages(&b, &ws, &c).await;
    assert_eq!(list[0]["content"], sleep_for(150));
    assert_eq!(list[1]["status"], "failed");
    assert_eq!(list[1]["error"]["code"], "instance_lost");
}
