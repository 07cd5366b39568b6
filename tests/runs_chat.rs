//! Chatting with agents through the real binary, real PostgreSQL and the shared real
//! FastAgent (`DAEDALUS_TEST_FASTAGENT_URL`): what a person sees when they send a
//! message, re-attach, cancel, or ask for something they may not have.

mod common;

use common::fastagent::{conversation_with, messages, shared_url, workspace_with};
use common::sse::{self, SseEvent};
use common::{Daedalus, TestDb};
use http::Method;
use serde_json::Value;

/// A message that makes `sleeper` call its tool and sleep for `secs`, with progress.
fn sleep_for(secs: u32) -> String {
    format!("***CALL_TOOL sleep_seconds {{\"seconds\": {secs}}}")
}

/// Ids run 1, 2, 3, … with no gap and no repeat.
fn assert_numbered_from(events: &[SseEvent], first: i64) {
    let ids: Vec<i64> = events.iter().map(SseEvent::seq).collect();
    let expected: Vec<i64> = (first..first + events.len() as i64).collect();
    assert_eq!(ids, expected, "event ids are not contiguous: {events:#?}");
}

fn kinds(events: &[SseEvent]) -> Vec<&str> {
    events.iter().map(|e| e.event.as_str()).collect()
}

fn run_id(started: &SseEvent) -> String {
    assert_eq!(started.event, "run.started");
    started.data["run_id"]
        .as_str()
        .expect("run.started names the run")
        .to_string()
}

async fn echo_chat(d: &Daedalus) -> (String, String) {
    let ws = workspace_with(d, &[("local", &shared_url())]).await;
    let c = conversation_with(d, &ws, "echo").await;
    (ws, c)
}

#[tokio::test]
async fn a_message_streams_the_run_and_both_messages_are_kept() {
    let db = TestDb::create().await;
    let d = Daedalus::start(&db, &[]).await;
    let (ws, c) = echo_chat(&d).await;

    let mut stream = sse::send(&d, &ws, &c, "Hello, agent").await;
    stream.expect_stream();
    let events = stream.until_end().await;

    assert_numbered_from(&events, 1);
    let started = &events[0];
    let run = run_id(started);
    let user = &started.data["user_message"];
    assert_eq!(user["role"], "user");
    assert_eq!(user["content"], "Hello, agent");
    assert_eq!(user["status"], "complete");
    assert!(
        events.iter().any(|e| e.event == "progress"),
        "FastAgent reports progress and it is forwarded: {events:#?}"
    );
    let done = events.last().expect("a last event");
    assert_eq!(done.event, "message.completed", "{events:#?}");
    assert_eq!(done.data["message"]["content"], "Hello, agent");
    assert_eq!(done.data["message"]["status"], "complete");
    assert_eq!(done.data["message"]["agent"], "echo");

    let list = messages(&d, &ws, &c).await;
    assert_eq!(list.len(), 2, "{list:#?}");
    assert_eq!(list[0]["id"], user["id"]);
    assert_eq!(list[0]["content"], "Hello, agent");
    assert_eq!(list[1]["role"], "assistant");
    assert_eq!(list[1]["content"], "Hello, agent");
    assert_eq!(list[1]["status"], "complete");
    assert_eq!(list[1]["run_id"].as_str(), Some(run.as_str()));
}

#[tokio::test]
async fn the_second_turn_knows_the_first() {
    let db = TestDb::create().await;
    let d = Daedalus::start(&db, &[]).await;
    let (ws, c) = echo_chat(&d).await;

    sse::send(&d, &ws, &c, "alpha").await.until_end().await;
    let events = sse::send(&d, &ws, &c, "beta").await.until_end().await;

    let done = events.last().expect("a last event");
    assert_eq!(done.event, "message.completed", "{events:#?}");
    // The passthrough agent answers what it was sent: exactly the message when its own
    // session holds the conversation, the transcript and the message when the server
    // keeps none (FastAgent speaks the stateless revision).
    let answer = done.data["message"]["content"].as_str().expect("text");
    let remembered = answer == "beta"
        || (answer.contains("User: alpha\n\nAssistant: alpha") && answer.ends_with("beta"));
    assert!(
        remembered,
        "the agent was not given the conversation: {answer}"
    );
}

#[tokio::test]
async fn an_unknown_agent_fails_the_run_and_keeps_the_message() {
    let db = TestDb::create().await;
    let d = Daedalus::start(&db, &[]).await;
    let ws = workspace_with(&d, &[("local", &shared_url())]).await;
    let c = conversation_with(&d, &ws, "nobody").await;

    let events = sse::send(&d, &ws, &c, "Anyone there?")
        .await
        .until_end()
        .await;

    assert_numbered_from(&events, 1);
    assert_eq!(kinds(&events), ["run.started", "run.failed"]);
    let failed = &events[1];
    assert_eq!(failed.data["error"]["code"], "unknown_agent");
    assert!(
        failed.data["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("nobody")),
        "the error names the agent: {failed:?}"
    );
    let list = messages(&d, &ws, &c).await;
    assert_eq!(list[0]["content"], "Anyone there?");
    assert_eq!(list[0]["status"], "complete");
    assert_eq!(list[1]["status"], "failed");
    assert_eq!(list[1]["error"]["code"], "unknown_agent");
}

#[tokio::test]
async fn an_agent_server_that_is_down_fails_the_run_and_keeps_the_message() {
    let db = TestDb::create().await;
    let d = Daedalus::start(&db, &[]).await;
    let down = format!("http://127.0.0.1:{}/mcp", closed_port());
    let ws = workspace_with(&d, &[("local", &down)]).await;
    let c = conversation_with(&d, &ws, "echo").await;

    let events = sse::send(&d, &ws, &c, "Hello?").await.until_end().await;

    assert_numbered_from(&events, 1);
    assert_eq!(kinds(&events), ["run.started", "run.failed"]);
    let error = &events[1].data["error"];
    assert_eq!(error["code"], "agent_unreachable", "{error}");
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("local")),
        "the error names the server: {error}"
    );
    let list = messages(&d, &ws, &c).await;
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["content"], "Hello?");
    assert_eq!(list[1]["status"], "failed");
    assert_eq!(list[1]["error"], *error);
}

/// A port with nothing listening on it.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("binding a free port")
        .port()
}

#[tokio::test]
async fn cancelling_mid_run_ends_it_and_the_next_turn_still_knows_the_conversation() {
    let db = TestDb::create().await;
    let d = Daedalus::start(&db, &[]).await;
    let ws = workspace_with(&d, &[("local", &shared_url())]).await;
    let c = conversation_with(&d, &ws, "sleeper").await;
    let first = sse::send(&d, &ws, &c, "alpha").await.until_end().await;
    sse::completed(&first);

    let mut stream = sse::send(&d, &ws, &c, &sleep_for(120)).await;
    let mut events = stream.until("progress").await;
    let run = run_id(&events[0]);
    let path = format!("/api/workspaces/{ws}/conversations/{c}/runs/{run}/cancel");
    let cancel = d.call(Method::POST, &path).send().await.expect(202);
    assert_eq!(cancel["status"], "cancelling");
    events.extend(stream.until_end().await);

    assert_numbered_from(&events, 1);
    let end = events.last().expect("an end");
    assert_eq!(end.event, "run.cancelled", "{events:#?}");
    assert_eq!(end.data["message"]["status"], "cancelled");
    let again = d.call(Method::POST, &path).send().await.expect(200);
    assert_eq!(again["status"], "cancelled");

    // FastAgent drops the session after a cancel; the next turn gets a new one and
    // the stored transcript, which the passthrough agent hands back.
    let next = sse::send(&d, &ws, &c, "gamma").await.until_end().await;
    let done = next.last().expect("an end");
    assert_eq!(done.event, "message.completed", "{next:#?}");
    let answer = done.data["message"]["content"].as_str().expect("text");
    assert!(
        answer.contains("User: alpha"),
        "transcript missing: {answer}"
    );
    assert!(
        answer.contains("Assistant: alpha"),
        "transcript missing: {answer}"
    );
    assert!(answer.ends_with("gamma"), "{answer}");
    let list = messages(&d, &ws, &c).await;
    let statuses: Vec<&str> = list.iter().filter_map(|m| m["status"].as_str()).collect();
    assert_eq!(
        statuses,
        [
            "complete",
            "complete",
            "complete",
            "cancelled",
            "complete",
            "complete"
        ]
    );
}

#[tokio::test]
async fn a_second_message_while_a_run_is_going_is_a_conflict() {
    let db = TestDb::create().await;
    let d = Daedalus::start(&db, &[]).await;
    let ws = workspace_with(&d, &[("local", &shared_url())]).await;
    let c = conversation_with(&d, &ws, "slow").await;

    let mut first = sse::send(&d, &ws, &c, "one").await;
    first.until("run.started").await;
    let second = sse::send(&d, &ws, &c, "two").await;
    assert_eq!(second.expect_error(409), "run_in_progress");
    let events = first.until_end().await;
    sse::completed(&events);

    let list = messages(&d, &ws, &c).await;
    let texts: Vec<&str> = list.iter().filter_map(|m| m["content"].as_str()).collect();
    assert_eq!(texts, ["one", "one"], "the refused message is not kept");
}

#[tokio::test]
async fn re_attaching_with_last_event_id_loses_and_doubles_nothing() {
    let db = TestDb::create().await;
    let d = Daedalus::start(&db, &[]).await;
    let ws = workspace_with(&d, &[("local", &shared_url())]).await;
    let c = conversation_with(&d, &ws, "sleeper").await;

    let mut stream = sse::send(&d, &ws, &c, &sleep_for(4)).await;
    let seen = stream.until("progress").await;
    drop(stream);
    let run = run_id(&seen[0]);
    let last = seen.last().expect("seen events").seq();
    let rest = sse::attach(&d, &ws, &c, &run, last).await.until_end().await;

    let mut all = seen.clone();
    all.extend(rest);
    assert_numbered_from(&all, 1);
    sse::completed(&all);
    let replay = sse::attach(&d, &ws, &c, &run, 0).await.until_end().await;
    assert_eq!(replay, all, "a full replay is the same stream");
}

#[tokio::test]
async fn another_instance_on_the_same_database_follows_a_run_live() {
    let db = TestDb::create().await;
    let a = Daedalus::start(&db, &[]).await;
    let b = Daedalus::start(&db, &[]).await;
    let ws = workspace_with(&a, &[("local", &shared_url())]).await;
    let c = conversation_with(&a, &ws, "sleeper").await;

    let mut stream = sse::send(&a, &ws, &c, &sleep_for(4)).await;
    let seen = stream.until("progress").await;
    let run = run_id(&seen[0]);
    let last = seen.last().expect("seen events").seq();
    let mut on_b = sse::attach(&b, &ws, &c, &run, last).await;
    on_b.expect_stream();
    let rest_on_a = stream.until_end().await;
    let rest_on_b = on_b.until_end().await;

    assert_eq!(
        rest_on_b, rest_on_a,
        "both instances stream the same events"
    );
    let mut all = seen;
    all.extend(rest_on_b);
    assert_numbered_from(&all, 1);
    sse::completed(&all);
}

#[tokio::test]
async fn a_run_goes_on_when_the_browser_goes_away() {
    let db = TestDb::create().await;
    let d = Daedalus::start(&db, &[]).await;
    let ws = workspace_with(&d, &[("local", &shared_url())]).await;
    let c = conversation_with(&d, &ws, "sleeper").await;

    let mut stream = sse::send(&d, &ws, &c, &sleep_for(3)).await;
    let started = stream.until("run.started").await;
    drop(stream);
    let pending = messages(&d, &ws, &c).await;
    assert_eq!(pending[1]["status"], "pending", "the run was not over yet");

    // Waiting on a fresh connection is how a reloaded page learns the run ended.
    let run = run_id(&started[0]);
    sse::attach(&d, &ws, &c, &run, 1).await.until_end().await;
    let list = messages(&d, &ws, &c).await;
    assert_eq!(list[1]["status"], "complete", "{list:#?}");
    assert!(
        list[1]["content"].as_str().is_some_and(|t| !t.is_empty()),
        "{list:#?}"
    );
}

#[tokio::test]
async fn a_chain_reports_progress_that_goes_down_and_every_step_is_forwarded() {
    let db = TestDb::create().await;
    let d = Daedalus::start(&db, &[]).await;
    let ws = workspace_with(&d, &[("local", &shared_url())]).await;
    let c = conversation_with(&d, &ws, "pipeline").await;

    let events = sse::send(&d, &ws, &c, "through the chain")
        .await
        .until_end()
        .await;

    assert_numbered_from(&events, 1);
    sse::completed(&events);
    let values: Vec<f64> = events
        .iter()
        .filter(|e| e.event == "progress")
        .map(|e| e.data["progress"].as_f64().expect("a progress value"))
        .collect();
    assert!(
        values.windows(2).any(|w| w[1] < w[0]),
        "a chain's progress goes back down as the next agent starts: {values:?}"
    );
    let stored = stored_progress(&db, &events[0]).await;
    assert_eq!(stored, values, "every stored progress event was streamed");
    // What FastAgent 0.10.48 sends for this chain when called directly.
    let steps: Vec<&str> = events
        .iter()
        .filter(|e| e.event == "progress")
        .filter_map(|e| e.data["message"].as_str())
        .collect();
    let expected = ["started", "step 1 (llm)", "completed"];
    let expected: Vec<String> = ["echo", "sleeper"]
        .iter()
        .flat_map(|agent| expected.map(|step| format!("{agent}/agent_loop: {step}")))
        .collect();
    assert_eq!(steps, expected, "every step of both agents is forwarded");
}

/// The progress values stored for the run that `started` began.
async fn stored_progress(db: &TestDb, started: &SseEvent) -> Vec<f64> {
    let run: uuid::Uuid = run_id(started).parse().expect("a UUID");
    let rows = db
        .client()
        .await
        .query(
            "SELECT data FROM run_events WHERE run_id = $1 AND type = 'progress' ORDER BY seq",
            &[&run],
        )
        .await
        .expect("reading run events");
    rows.iter()
        .map(|r| r.get::<_, Value>(0)["progress"].as_f64().expect("a value"))
        .collect()
}

#[tokio::test]
async fn the_agents_list_shows_reachable_servers_and_why_others_are_not() {
    let db = TestDb::create().await;
    let d = Daedalus::start(&db, &[]).await;
    let down = format!("http://127.0.0.1:{}/mcp", closed_port());
    let ws = workspace_with(&d, &[("local", &shared_url()), ("gone", &down)]).await;

    let list = d
        .get(&format!("/api/workspaces/{ws}/agents"))
        .await
        .expect(200);

    let servers = list["servers"].as_array().expect("servers");
    assert_eq!(servers.len(), 2, "{list:#}");
    let local = &servers[0];
    assert_eq!(local["name"], "local");
    assert_eq!(local["reachable"], true, "{local:#}");
    assert!(
        local["protocol_version"]
            .as_str()
            .is_some_and(|v| v.len() == 10),
        "a protocol revision like 2025-11-25: {local:#}"
    );
    let mut names: Vec<&str> = local["agents"]
        .as_array()
        .expect("agents")
        .iter()
        .filter_map(|a| a["name"].as_str())
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "dispatcher",
            "echo",
            "fanout",
            "pipeline",
            "sleeper",
            "slow"
        ]
    );
    let gone = &servers[1];
    assert_eq!(gone["name"], "gone");
    assert_eq!(gone["reachable"], false);
    assert!(
        gone["error"].as_str().is_some_and(|e| !e.is_empty()),
        "an unreachable server says why: {gone:#}"
    );
    assert_eq!(gone["agents"], serde_json::json!([]));
}

#[tokio::test]
async fn another_users_conversation_or_run_is_not_found() {
    let db = TestDb::create().await;
    let d = Daedalus::start(&db, &[]).await;
    let (ws, c) = echo_chat(&d).await;
    let events = sse::send(&d, &ws, &c, "mine").await.until_end().await;
    let run = run_id(&events[0]);
    let bob_ws = common::create_workspace(&d, "bob", "Bob's").await;

    let base = format!("/api/workspaces/{ws}/conversations/{c}");
    let send = |path: String| {
        sse::Open::new(&d, Method::POST, &path)
            .user("bob")
            .json(&serde_json::json!({"content": "not yours"}))
            .send()
    };
    assert_eq!(
        send(format!("{base}/messages")).await.expect_error(404),
        "not_found"
    );
    let crossed = format!("/api/workspaces/{bob_ws}/conversations/{c}/messages");
    assert_eq!(send(crossed).await.expect_error(404), "not_found");
    let events_path = format!("{base}/runs/{run}/events");
    let attach = sse::Open::new(&d, Method::GET, &events_path)
        .user("bob")
        .send()
        .await;
    assert_eq!(attach.expect_error(404), "not_found");
    let cancel = d
        .call(Method::POST, &format!("{base}/runs/{run}/cancel"))
        .user("bob")
        .send()
        .await;
    assert_eq!(cancel.expect_error(404), "not_found");
    assert_eq!(messages(&d, &ws, &c).await.len(), 2, "nothing was added");
}

#[tokio::test]
async fn completed_runs_are_counted_by_agent_and_outcome() {
    let db = TestDb::create().await;
    let d = Daedalus::start(&db, &[]).await;
    let (ws, c) = echo_chat(&d).await;
    for text in ["one", "two"] {
        sse::completed(&sse::send(&d, &ws, &c, text).await.until_end().await);
    }

    let metrics = d.get("/metrics").await;
    let text = String::from_utf8_lossy(&metrics.body);
    let line = text
        .lines()
        .find(|l| l.starts_with("daedalus_agent_runs_total{") && l.contains("agent=\"echo\""))
        .unwrap_or_else(|| panic!("no echo run count in\n{text}"));
    assert!(line.contains("outcome=\"completed\""), "{line}");
    assert!(line.ends_with(" 2"), "two completed runs: {line}");
}

#[tokio::test]
async fn a_run_is_cancelled_from_another_instance() {
    let db = TestDb::create().await;
    let a = Daedalus::start(&db, &[]).await;
    let b = Daedalus::start(&db, &[]).await;
    let ws = workspace_with(&a, &[("local", &shared_url())]).await;
    let c = conversation_with(&a, &ws, "sleeper").await;

    let mut stream = sse::send(&a, &ws, &c, &sleep_for(120)).await;
    let mut events = stream.until("progress").await;
    let run = run_id(&events[0]);
    let path = format!("/api/workspaces/{ws}/conversations/{c}/runs/{run}/cancel");
    b.call(Method::POST, &path).send().await.expect(202);
    events.extend(stream.until_end().await);

    assert_numbered_from(&events, 1);
    assert_eq!(
        events.last().expect("an end").event,
        "run.cancelled",
        "{events:#?}"
    );
    let list = messages(&b, &ws, &c).await;
    assert_eq!(list[1]["status"], "cancelled");
}

#[tokio::test]
async fn re_attaching_after_the_last_event_of_an_ended_run_ends_the_stream() {
    let db = TestDb::create().await;
    let d = Daedalus::start(&db, &[]).await;
    let (ws, c) = echo_chat(&d).await;
    let events = sse::send(&d, &ws, &c, "done soon").await.until_end().await;
    let run = run_id(&events[0]);
    let last = events.last().expect("an end").seq();

    // What a browser's EventSource does when a finished stream closes: it reconnects
    // with the last id it saw. Nothing more will come, so the answer must end (a 204
    // also tells EventSource to stop reconnecting).
    let mut again = sse::attach(&d, &ws, &c, &run, last).await;
    if again.status == http::StatusCode::NO_CONTENT {
        return;
    }
    again.expect_stream();
    // Longer than the keep-alive period, so a stream kept open only by keep-alives shows.
    let patience = std::time::Duration::from_secs(30);
    let ended = tokio::time::timeout(patience, again.next()).await;
    match ended {
        Ok(None) => {}
        Ok(Some(event)) => panic!("an ended run sent another event: {event:?}"),
        Err(_) => panic!("the stream of an ended run stayed open for {patience:?}"),
    }
}
