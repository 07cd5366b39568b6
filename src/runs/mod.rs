//! Agent runs. Sending a message stores it, starts a run owned by the server (not by the
//! browser connection), and streams the run's events. Events are numbered and stored, so
//! a browser that re-attaches with `Last-Event-ID` misses nothing, on any instance.
//!
//! - `events`: storing, announcing and framing events;
//! - `hub`: the per-instance LISTEN connection, followers and cancel tokens;
//! - `task`: one run's execution, from the agent call to its recorded end;
//! - `prompt`: what the agent is sent (the message, attachments, the transcript).

pub mod events;
pub mod hub;
pub mod prompt;
pub mod sweep;
pub mod task;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ::http::StatusCode;
use ::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use crate::api::{conversations, messages, validate, workspaces};
use crate::app::{App, User};
use crate::error::{Error, Result};
use crate::http::{self, Body, Request, Response, header_value};
use crate::metrics;
use events::Event;

/// Longest message a person may send, in characters.
pub const MAX_CONTENT_CHARS: usize = 200_000;
/// Most files one message may carry.
pub const MAX_ATTACHMENTS: usize = 20;
/// A quiet stream gets a keep-alive comment this often.
const KEEP_ALIVE_EVERY: Duration = Duration::from_secs(15);

/// The runs of this instance.
pub struct Runs {
    pub hub: Arc<hub::Hub>,
    tracker: TaskTracker,
    /// This process, as recorded on the runs it executes.
    pub instance_id: Uuid,
    shutting_down: AtomicBool,
}

impl Runs {
    pub fn new() -> Runs {
        Runs {
            hub: Arc::new(hub::Hub::default()),
            tracker: TaskTracker::new(),
            instance_id: Uuid::new_v4(),
            shutting_down: AtomicBool::new(false),
        }
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Relaxed)
    }

    /// Lets running agent calls finish within `grace`, then cancels the rest, which
    /// records them as failed by the shutdown.
    pub async fn shutdown(&self, grace: Duration) {
        self.tracker.close();
        if tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_ok()
        {
            return;
        }
        self.shutting_down
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let cut = self.hub.running_count();
        log::warn!(target: "runs", cut_off = cut; "shutdown: cancelling runs still going");
        for token in self.hub.running_tokens() {
            token.cancel();
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), self.tracker.wait()).await;
    }
}

impl Default for Runs {
    fn default() -> Self {
        Runs::new()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendInput {
    content: String,
    agent: Option<String>,
    #[serde(default)]
    file_ids: Vec<Uuid>,
}

/// `POST …/messages`: stores the message, starts the run, streams its events.
pub async fn handle_send(
    app: &Arc<App>,
    user: &User,
    ws: Uuid,
    c: Uuid,
    req: Request,
) -> Result<Response> {
    let input: SendInput = http::read_json(req).await?;
    let content = validate::text("content", &input.content, MAX_CONTENT_CHARS, false)?;
    let agent = input
        .agent
        .map(|a| validate::text("agent", &a, 200, false))
        .transpose()?;
    if input.file_ids.len() > MAX_ATTACHMENTS {
        let msg = format!("at most {MAX_ATTACHMENTS} files per message");
        return Err(Error::bad_request("too_many_files", msg));
    }
    let workspace = workspaces::load(app, user, ws).await?;
    let conversation = conversations::load_row(app, user, ws, c).await?;
    let agent = agent
        .or(conversation.get(3))
        .or(workspace.default_agent.clone());
    check_files(app, ws, &input.file_ids).await?;
    let started = task::start(app, &workspace, c, &content, agent, &input.file_ids).await?;
    let run = started.run_id;
    task::spawn(app, &self_tracker(app), workspace, started);
    Ok(event_stream(follow(app.clone(), run, 0)))
}

fn self_tracker(app: &App) -> TaskTracker {
    app.runs.tracker.clone()
}

/// Every attached file must be in this workspace.
async fn check_files(app: &App, ws: Uuid, ids: &[Uuid]) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let db = app.db.get().await?;
    let row = db
        .query_one(
            "SELECT count(*) FROM files WHERE workspace_id = $1 AND id = ANY($2)",
            &[&ws, &ids],
        )
        .await?;
    let found: i64 = row.get(0);
    let unique: std::collections::HashSet<&Uuid> = ids.iter().collect();
    if found as usize != unique.len() {
        return Err(Error::bad_request(
            "unknown_file",
            "an attached file is not in this workspace",
        ));
    }
    Ok(())
}

/// Fails with 404 unless the run belongs to this conversation of this user's workspace.
async fn check_run(app: &App, user: &User, ws: Uuid, c: Uuid, r: Uuid) -> Result<String> {
    let db = app.db.get().await?;
    let stmt = db
        .prepare_cached(
            "SELECT r.status FROM runs r JOIN conversations c ON c.id = r.conversation_id
             JOIN workspaces w ON w.id = c.workspace_id
             WHERE r.id = $1 AND c.id = $2 AND w.id = $3 AND w.owner_id = $4",
        )
        .await?;
    let row = db
        .query_opt(&stmt, &[&r, &c, &ws, &user.id])
        .await?
        .ok_or(Error::NotFound)?;
    Ok(row.get(0))
}

/// `GET …/runs/{r}/events`: replays what came after `Last-Event-ID` (or `?after=`), then
/// follows live until the run ends.
pub async fn handle_events(
    app: &Arc<App>,
    user: &User,
    ws: Uuid,
    c: Uuid,
    r: Uuid,
    req: &Request,
) -> Result<Response> {
    let pairs = crate::http::query::parse(req.uri().query())?;
    let header = req.headers().get("last-event-id").map(|v| v.as_bytes());
    let raw = header.or_else(|| crate::http::query::get(&pairs, "after").map(str::as_bytes));
    let after = events::parse_last_event_id(raw).ok_or_else(|| {
        Error::bad_request(
            "invalid_last_event_id",
            "Last-Event-ID (or ?after=) must be an event number",
        )
    })?;
    check_run(app, user, ws, c, r).await?;
    Ok(event_stream(follow(app.clone(), r, after)))
}

/// Stops the running calls of these runs, wherever they execute (their conversation or
/// workspace is being deleted).
pub async fn cancel_all(app: &App, runs: &[Uuid]) {
    for run in runs {
        if app.runs.hub.cancel_local(*run) {
            continue;
        }
        if let Ok(db) = app.db.get().await {
            let _ = db
                .execute(
                    "SELECT pg_notify($1, $2)",
                    &[&events::CANCEL_CHANNEL, &run.to_string()],
                )
                .await;
        }
    }
}

/// `POST …/runs/{r}/cancel`: asks the instance running it to stop; answers the status.
pub async fn handle_cancel(app: &App, user: &User, ws: Uuid, c: Uuid, r: Uuid) -> Result<Response> {
    let status = check_run(app, user, ws, c, r).await?;
    if status != "running" {
        return http::json(
            StatusCode::OK,
            &serde_json::json!({"run_id": r, "status": status}),
        );
    }
    let db = app.db.get().await?;
    db.execute(
        "UPDATE runs SET cancel_requested = true WHERE id = $1",
        &[&r],
    )
    .await?;
    if !app.runs.hub.cancel_local(r) {
        db.execute(
            "SELECT pg_notify($1, $2)",
            &[&events::CANCEL_CHANNEL, &r.to_string()],
        )
        .await?;
    }
    http::json(
        StatusCode::ACCEPTED,
        &serde_json::json!({"run_id": r, "status": "cancelling"}),
    )
}

fn event_stream(body: Body) -> Response {
    let mut resp = ::http::Response::new(body);
    *resp.status_mut() = StatusCode::OK;
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, header_value("text/event-stream"));
    h.insert(CACHE_CONTROL, header_value("no-cache"));
    h.insert("x-accel-buffering", header_value("no"));
    resp
}

/// A body that replays the run's events after `after` and follows it to its end.
fn follow(app: Arc<App>, run: Uuid, after: i32) -> Body {
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    tokio::spawn(async move {
        let gauge = &metrics::get().run_streams_open;
        gauge.inc();
        follow_into(&app, run, after, &tx).await;
        gauge.dec();
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|bytes| (Ok::<_, crate::http::BoxError>(Frame::data(bytes)), rx))
    });
    BodyExt::boxed_unsync(StreamBody::new(stream))
}

async fn follow_into(app: &App, run: Uuid, mut after: i32, tx: &mpsc::Sender<Bytes>) {
    let mut changes = app.runs.hub.subscribe(run);
    loop {
        let batch = match read_events(app, run, after).await {
            Ok(batch) => batch,
            Err(e) => {
                log::warn!(target: "runs", run = run.to_string().as_str(), error = e.to_string().as_str();
                    "cannot read run events; retrying");
                Vec::new()
            }
        };
        if batch.is_empty() && run_has_ended(app, run).await {
            // The client already holds the last event (it re-attached after the end).
            return;
        }
        for event in batch {
            if tx.send(events::sse_frame(&event)).await.is_err() {
                return;
            }
            after = event.seq;
            if events::is_terminal(&event.kind) {
                return;
            }
        }
        tokio::select! {
            changed = changes.changed() => if changed.is_err() { return },
            () = tokio::time::sleep(KEEP_ALIVE_EVERY) => {
                if tx.send(Bytes::from_static(events::KEEP_ALIVE)).await.is_err() {
                    return;
                }
            }
            () = tx.closed() => return,
        }
    }
}

/// The end of a run is written with its last event, so an ended run has no more events.
async fn run_has_ended(app: &App, run: Uuid) -> bool {
    let Ok(db) = app.db.get().await else {
        return false;
    };
    let status = db
        .query_opt("SELECT status FROM runs WHERE id = $1", &[&run])
        .await;
    matches!(status, Ok(Some(row)) if row.get::<_, &str>(0) != "running")
}

async fn read_events(app: &App, run: Uuid, after: i32) -> Result<Vec<Event>> {
    let db = app.db.get().await?;
    events::after(&db, run, after).await
}

/// The JSON of one message row, by id.
pub async fn message_json(
    db: &impl deadpool_postgres::GenericClient,
    id: Uuid,
) -> Result<serde_json::Value> {
    let sql = format!("SELECT {} FROM messages WHERE id = $1", messages::COLUMNS);
    let row = db.query_one(&sql, &[&id]).await?;
    Ok(messages::to_json(&row))
}
