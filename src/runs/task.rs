//! One run, from the stored user message to its recorded end. The user message, the
//! pending assistant message, the run and its first event are written in one
//! transaction before the agent is called; the answer (or the failure, or the
//! cancellation) is written in another when the call ends.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use super::events::{self, Event};
use super::{message_json, prompt};
use crate::api::workspaces::Workspace;
use crate::app::App;
use crate::error::{Error, Result};
use crate::mcp::{McpError, Timeouts, ToolCall, ToolOutcome};
use crate::metrics;

/// What `start` stored, handed to the run's task.
pub struct Started {
    pub run_id: Uuid,
    pub conversation_id: Uuid,
    pub workspace_id: Uuid,
    pub user_seq: i64,
    pub assistant_message_id: Uuid,
    pub agent: Option<String>,
    pub content: String,
    pub file_ids: Vec<Uuid>,
}

/// Stores the user message, the pending answer, the run and `run.started`, atomically.
/// A conversation runs one agent call at a time.
pub async fn start(
    app: &App,
    w: &Workspace,
    c: Uuid,
    content: &str,
    agent: Option<String>,
    file_ids: &[Uuid],
) -> Result<Started> {
    let mut db = app.db.get().await?;
    let tx = db.transaction().await?;
    let row = tx
        .query_one(
            "UPDATE conversations SET next_seq = next_seq + 2, updated_at = now(),
                agent = coalesce(agent, $2) WHERE id = $1 RETURNING next_seq - 2",
            &[&c, &agent],
        )
        .await?;
    let seq: i64 = row.get(0);
    let busy = tx
        .query_opt(
            "SELECT 1 FROM runs WHERE conversation_id = $1 AND status = 'running'",
            &[&c],
        )
        .await?;
    if busy.is_some() {
        return Err(Error::Conflict {
            code: "run_in_progress",
            message: "the agent is still answering the previous message; wait or stop it".into(),
        });
    }
    let (run_id, user_id, assistant_id) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let agent_label = agent.clone().unwrap_or_default();
    tx.execute(
        "INSERT INTO runs (id, conversation_id, agent, instance_id) VALUES ($1, $2, $3, $4)",
        &[&run_id, &c, &agent_label, &app.runs.instance_id],
    )
    .await?;
    let insert = "INSERT INTO messages (id, conversation_id, seq, role, content, status, agent, run_id, file_ids)
                  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
    tx.execute(
        insert,
        &[
            &user_id,
            &c,
            &seq,
            &"user",
            &content,
            &"complete",
            &agent,
            &run_id,
            &file_ids,
        ],
    )
    .await?;
    let no_files: Vec<Uuid> = Vec::new();
    let next = seq + 1;
    tx.execute(
        insert,
        &[
            &assistant_id,
            &c,
            &next,
            &"assistant",
            &"",
            &"pending",
            &agent,
            &run_id,
            &no_files,
        ],
    )
    .await?;
    let data = json!({
        "run_id": run_id,
        "user_message": message_json(&tx, user_id).await?,
        "assistant_message": message_json(&tx, assistant_id).await?,
    });
    events::append(
        &tx,
        run_id,
        &Event {
            seq: 1,
            kind: events::STARTED.into(),
            data,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Started {
        run_id,
        conversation_id: c,
        workspace_id: w.id,
        user_seq: seq,
        assistant_message_id: assistant_id,
        agent,
        content: content.to_string(),
        file_ids: file_ids.to_vec(),
    })
}

/// Runs the agent call in the background, tracked for shutdown. A panic in the run is
/// still recorded as a failure, so no run stays pending.
pub fn spawn(app: &Arc<App>, tracker: &TaskTracker, w: Workspace, s: Started) {
    let token = CancellationToken::new();
    app.runs.hub.register(s.run_id, token.clone());
    let app = app.clone();
    tracker.spawn(async move {
        let run_id = s.run_id;
        let assistant = s.assistant_message_id;
        let result = AssertUnwindSafe(execute(&app, &w, s, token))
            .catch_unwind()
            .await;
        if result.is_err() {
            log::error!(target: "runs", run = run_id.to_string().as_str(); "run panicked");
            let end = End::Failed {
                code: "internal_error",
                message: "the run failed inside Daedalus".into(),
            };
            let _ = record_end(&app, run_id, assistant, None, end).await;
        }
        app.runs.hub.unregister(run_id);
    });
}

/// How a run ended.
pub enum End {
    Completed {
        content: String,
        parts: Value,
        file_ids: Vec<Uuid>,
    },
    Failed {
        code: &'static str,
        message: String,
    },
    Cancelled,
}

impl End {
    fn outcome(&self) -> &'static str {
        match self {
            End::Completed { .. } => "completed",
            End::Failed { .. } => "failed",
            End::Cancelled => "cancelled",
        }
    }
}

async fn execute(app: &App, w: &Workspace, s: Started, cancel: CancellationToken) {
    let started = Instant::now();
    let m = metrics::get();
    m.agent_runs_active.inc();
    let mut seq = 1;
    let mut agent = s.agent.clone().unwrap_or_default();
    let end = match call_agent(app, w, &s, &cancel, &mut seq, &mut agent).await {
        Ok(outcome) => answer(app, &s, outcome).await,
        Err(_) if cancel.is_cancelled() && app.runs.is_shutting_down() => End::Failed {
            code: "server_shutdown",
            message: "Daedalus was stopped while the agent was answering; send the message again"
                .into(),
        },
        Err(_) if cancel.is_cancelled() => End::Cancelled,
        Err(RunError::Mcp(McpError::Cancelled { .. })) => End::Cancelled,
        Err(e) => End::Failed {
            code: e.code(),
            message: e.to_string(),
        },
    };
    let outcome = end.outcome();
    let label = if agent.is_empty() {
        "unknown"
    } else {
        agent.as_str()
    };
    m.agent_runs.with_label_values(&[label, outcome]).inc();
    m.agent_run_duration
        .with_label_values(&[label])
        .observe(started.elapsed().as_secs_f64());
    m.agent_runs_active.dec();
    log::info!(target: "runs", run = s.run_id.to_string().as_str(), agent = label, outcome = outcome,
        duration_ms = started.elapsed().as_millis() as u64; "run ended");
    if let Err(e) = record_end(app, s.run_id, s.assistant_message_id, Some(&agent), end).await {
        log::error!(target: "runs", run = s.run_id.to_string().as_str(), error = e.to_string().as_str();
            "could not record the end of a run");
    }
}

/// Why a call did not produce an answer.
enum RunError {
    Api(Error),
    Mcp(McpError),
}

impl RunError {
    fn code(&self) -> &'static str {
        match self {
            RunError::Api(e) => e.code(),
            // One code for "the agent server is down", whether found out before or during the call.
            RunError::Mcp(e) if e.kind() == "unreachable" => "agent_unreachable",
            RunError::Mcp(e) => e.code(),
        }
    }
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Api(e) => f.write_str(&e.message()),
            RunError::Mcp(e) => write!(f, "{e}"),
        }
    }
}

/// Resolves the agent, builds its message and calls it, storing progress as it comes.
async fn call_agent(
    app: &App,
    w: &Workspace,
    s: &Started,
    cancel: &CancellationToken,
    seq: &mut i32,
    agent: &mut String,
) -> std::result::Result<ToolOutcome, RunError> {
    let (spec, tool) = crate::agents::resolve(app, w, s.agent.as_deref())
        .await
        .map_err(RunError::Api)?;
    *agent = tool.clone();
    name_agent(app, s, &tool).await.map_err(RunError::Api)?;
    let message = prompt::message(app, s.workspace_id, &s.content, &s.file_ids)
        .await
        .map_err(RunError::Api)?;
    let with_transcript = prompt::with_transcript(app, s.conversation_id, s.user_seq, &message)
        .await
        .map_err(RunError::Api)?;
    let (progress_tx, mut progress_rx) = tokio::sync::mpsc::unbounded_channel();
    let call = ToolCall {
        tool,
        arguments: json!({ "message": message }),
        fresh_arguments: with_transcript.map(|text| json!({ "message": text })),
        session_key: Some(session_key(s.conversation_id, &spec.label, agent)),
        timeouts: Timeouts {
            idle: Duration::from_secs(w.settings.agent_idle_timeout_secs.into()),
            total: Duration::from_secs(w.settings.agent_total_timeout_secs.into()),
        },
        progress: Some(progress_tx),
        cancel: cancel.clone(),
    };
    let call = app.mcp.call_tool(&spec, call);
    let mut call = std::pin::pin!(call);
    let result = loop {
        tokio::select! {
            biased;
            Some(p) = progress_rx.recv() => record_progress(app, s.run_id, seq, p).await,
            result = &mut call => break result,
        }
    };
    while let Ok(p) = progress_rx.try_recv() {
        record_progress(app, s.run_id, seq, p).await;
    }
    if matches!(
        result,
        Err(McpError::Unreachable { .. }) | Err(McpError::HttpStatus { .. })
    ) {
        app.agents.invalidate(&spec);
    }
    result.map_err(RunError::Mcp)
}

/// Each agent of a conversation keeps its own MCP session, so switching agents never
/// hands one agent another's memory, and a new agent gets the transcript.
pub fn session_key(conversation: Uuid, server: &str, agent: &str) -> Uuid {
    Uuid::new_v5(&conversation, format!("{server}/{agent}").as_bytes())
}

/// The resolved agent is recorded on the run and the pending answer.
async fn name_agent(app: &App, s: &Started, tool: &str) -> Result<()> {
    let db = app.db.get().await?;
    db.execute(
        "UPDATE runs SET agent = $2 WHERE id = $1",
        &[&s.run_id, &tool],
    )
    .await?;
    db.execute(
        "UPDATE messages SET agent = $2 WHERE id = $1",
        &[&s.assistant_message_id, &tool],
    )
    .await?;
    Ok(())
}

async fn record_progress(app: &App, run: Uuid, seq: &mut i32, p: crate::mcp::Progress) {
    let data = json!({"progress": p.progress, "total": p.total, "message": p.message});
    let event = Event {
        seq: *seq + 1,
        kind: events::PROGRESS.into(),
        data,
    };
    let stored = match app.db.get().await {
        Ok(db) => events::append(&db, run, &event).await,
        Err(e) => Err(e.into()),
    };
    match stored {
        Ok(()) => {
            *seq += 1;
            app.runs.hub.publish(run, *seq);
        }
        Err(e) => {
            log::warn!(target: "runs", run = run.to_string().as_str(), error = e.to_string().as_str();
            "progress not stored")
        }
    }
}

/// Turns a tool result into the stored answer; binary content becomes workspace files.
async fn answer(app: &App, s: &Started, outcome: ToolOutcome) -> End {
    let text = outcome
        .content
        .iter()
        .filter_map(|c| match c {
            crate::mcp::Content::Text { text } => Some(text.as_str()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("\n\n");
    if outcome.is_error {
        let message = if text.is_empty() {
            "the agent reported an error".to_string()
        } else {
            text
        };
        return End::Failed {
            code: "agent_error",
            message,
        };
    }
    match prompt::keep_parts(app, s.workspace_id, &outcome.content).await {
        Ok((parts, file_ids)) => End::Completed {
            content: text,
            parts,
            file_ids,
        },
        Err(e) => End::Failed {
            code: e.code(),
            message: format!("the answer could not be kept: {}", e.message()),
        },
    }
}

/// Writes the end of a run: the answer or error on the message, the run's status and
/// the final event, in one transaction. Retried for a while if the database is away,
/// so an answer is not lost to a short outage.
pub async fn record_end(
    app: &App,
    run: Uuid,
    assistant: Uuid,
    agent: Option<&str>,
    end: End,
) -> Result<()> {
    let mut delay = Duration::from_millis(200);
    let mut last = None;
    for _ in 0..8 {
        match try_record_end(app, run, assistant, agent, &end).await {
            Ok(seq) => {
                app.runs.hub.publish(run, seq);
                return Ok(());
            }
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(10));
    }
    Err(last.unwrap_or_else(|| Error::internal("recording the run's end failed")))
}

/// Returns the number of the final event. The run row is locked first, so the run's
/// own task and the sweeper of dead instances never both end it.
async fn try_record_end(
    app: &App,
    run: Uuid,
    assistant: Uuid,
    agent: Option<&str>,
    end: &End,
) -> Result<i32> {
    let mut db = app.db.get().await?;
    let tx = db.transaction().await?;
    let row = tx
        .query_opt(
            "SELECT r.status, (SELECT coalesce(max(seq), 0) + 1 FROM run_events WHERE run_id = r.id)
             FROM runs r WHERE r.id = $1 FOR UPDATE",
            &[&run],
        )
        .await?;
    // The conversation was deleted meanwhile: there is nothing left to record.
    let Some(row) = row else { return Ok(0) };
    let (current, seq): (String, i32) = (row.get(0), row.get(1));
    if current != "running" {
        return Ok(seq - 1);
    }
    let no_files: Vec<Uuid> = Vec::new();
    let (status, content, parts, files, error) = match end {
        End::Completed {
            content,
            parts,
            file_ids,
        } => ("complete", content.as_str(), parts.clone(), file_ids, None),
        End::Failed { code, message } => (
            "failed",
            "",
            json!([]),
            &no_files,
            Some(json!({"code": code, "message": message})),
        ),
        End::Cancelled => ("cancelled", "", json!([]), &no_files, None),
    };
    tx.execute(
        "UPDATE messages SET status = $2, content = $3, parts = $4, file_ids = $5, error = $6,
            agent = coalesce($7, agent) WHERE id = $1",
        &[&assistant, &status, &content, &parts, files, &error, &agent],
    )
    .await?;
    let row = tx
        .query_one(
            "UPDATE runs SET status = $2, finished_at = now() WHERE id = $1 RETURNING conversation_id",
            &[&run, &end.outcome()],
        )
        .await?;
    let conversation: Uuid = row.get(0);
    tx.execute(
        "UPDATE conversations SET updated_at = now() WHERE id = $1",
        &[&conversation],
    )
    .await?;
    let message = message_json(&tx, assistant).await?;
    let (kind, data) = match end {
        End::Completed { .. } => (events::COMPLETED, json!({ "message": message })),
        End::Failed {
            code,
            message: text,
        } => (
            events::FAILED,
            json!({"error": {"code": code, "message": text}, "message": message}),
        ),
        End::Cancelled => (events::CANCELLED, json!({ "message": message })),
    };
    events::append(
        &tx,
        run,
        &Event {
            seq,
            kind: kind.into(),
            data,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(seq)
}
