//! Conversations on the same agent server do not get in each other's way: each keeps its
//! own agent memory, and two can have the agent working at the same time.

mod common;

use common::fastagent::{FastAgent, conversation_with, shared_url, workspace_with};
use common::sse;
use common::{Daedalus, TestDb};

#[tokio::test]
async fn each_conversation_keeps_its_own_agent_memory() {
    // A server of its own: if memory leaks, the leaked answer sticks to the agent.
    let agent = FastAgent::start().await;
    let db = TestDb::create().await;
    let d = Daedalus::start(&db, &[]).await;
    let ws = workspace_with(&d, &[("local", &agent.url())]).await;
    let a = conversation_with(&d, &ws, "echo").await;
    let b = conversation_with(&d, &ws, "echo").await;

    // The passthrough model takes this as "answer this from now on", in its memory.
    let set = sse::send(&d, &ws, &a, "***FIXED_RESPONSE said in A")
        .await
        .until_end()
        .await;
    assert_eq!(
        set.last().expect("an end").data["message"]["content"],
        "said in A"
    );
    let events = sse::send(&d, &ws, &b, "hello from B")
        .await
        .until_end()
        .await;

    let done = events.last().expect("an end");
    assert_eq!(done.event, "message.completed", "{events:#?}");
    assert_eq!(
        done.data["message"]["content"], "hello from B",
        "conversation B was answered from conversation A's memory"
    );
}

#[tokio::test]
async fn two_conversations_have_the_agent_working_at_the_same_time() {
    let db = TestDb::create().await;
    let d = Daedalus::start(&db, &[]).await;
    let ws = workspace_with(&d, &[("local", &shared_url())]).await;
    let a = conversation_with(&d, &ws, "sleeper").await;
    let b = conversation_with(&d, &ws, "echo").await;

    let mut long = sse::send(&d, &ws, &a, "***CALL_TOOL sleep_seconds {\"seconds\": 5}").await;
    long.until("progress").await;
    let events = sse::send(&d, &ws, &b, "meanwhile").await.until_end().await;
    let long_events = long.until_end().await;

    let done = events.last().expect("an end");
    assert_eq!(done.event, "message.completed", "{events:#?}");
    assert_eq!(done.data["message"]["content"], "meanwhile");
    let long_done = long_events.last().expect("an end");
    assert_eq!(long_done.event, "message.completed", "{long_events:#?}");
}
