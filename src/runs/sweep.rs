//! Runs whose instance died. Every instance records a heartbeat; a run still marked
//! running whose instance has not beaten for a while can never finish, so any instance
//! records it as failed, and the browser following it learns so instead of waiting forever.

use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

use super::task::{End, record_end};
use crate::app::App;
use crate::error::Result;

const HEARTBEAT_EVERY: Duration = Duration::from_secs(10);
/// An instance silent for this long is taken for dead.
const DEAD_AFTER_SECS: f64 = 45.0;

/// Beats for this instance and fails the runs of dead ones, until the process ends.
pub fn spawn(app: Arc<App>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(HEARTBEAT_EVERY);
        loop {
            tick.tick().await;
            if let Err(e) = beat_and_sweep(&app).await {
                log::warn!(target: "runs", error = e.to_string().as_str(); "heartbeat failed");
            }
        }
    });
}

async fn beat_and_sweep(app: &App) -> Result<()> {
    let db = app.db.get().await?;
    db.execute(
        "INSERT INTO instances (id) VALUES ($1)
         ON CONFLICT (id) DO UPDATE SET heartbeat_at = now()",
        &[&app.runs.instance_id],
    )
    .await?;
    let orphans = db
        .query(
            "SELECT r.id, m.id FROM runs r
             JOIN messages m ON m.run_id = r.id AND m.role = 'assistant'
             WHERE r.status = 'running' AND r.instance_id <> $1
               AND NOT EXISTS (SELECT 1 FROM instances i WHERE i.id = r.instance_id
                               AND i.heartbeat_at > now() - make_interval(secs => $2))",
            &[&app.runs.instance_id, &DEAD_AFTER_SECS],
        )
        .await?;
    db.execute(
        "DELETE FROM instances WHERE heartbeat_at < now() - interval '1 day'",
        &[],
    )
    .await?;
    drop(db);
    for row in orphans {
        let (run, message): (Uuid, Uuid) = (row.get(0), row.get(1));
        log::warn!(target: "runs", run = run.to_string().as_str(); "failing a run whose instance died");
        let end = End::Failed {
            code: "instance_lost",
            message:
                "the Daedalus instance running this agent call stopped; send the message again"
                    .into(),
        };
        record_end(app, run, message, None, end).await?;
    }
    Ok(())
}
