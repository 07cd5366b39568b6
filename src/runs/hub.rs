//! The live side of run events on one instance. A single PostgreSQL connection listens on
//! the event and cancel channels; followers of a run wait on a `watch` for its newest
//! sequence number, then read the new events from the database. Every instance hears
//! every announcement, so a browser may follow a run from any instance. If the listening
//! connection is lost, followers still catch up by polling until it is back.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::watch;
use tokio_postgres::AsyncMessage;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::events::{CANCEL_CHANNEL, EVENTS_CHANNEL};

/// Followers and running calls of this instance, by run.
#[derive(Default)]
pub struct Hub {
    followers: Mutex<HashMap<Uuid, watch::Sender<i32>>>,
    running: Mutex<HashMap<Uuid, CancellationToken>>,
}

impl Hub {
    /// A receiver that changes whenever a new event of `run` is announced.
    pub fn subscribe(&self, run: Uuid) -> watch::Receiver<i32> {
        let mut followers = self.followers.lock().expect("hub lock is never poisoned");
        followers.retain(|_, tx| tx.receiver_count() > 0);
        followers
            .entry(run)
            .or_insert_with(|| watch::channel(0).0)
            .subscribe()
    }

    /// Wakes the followers of `run`.
    pub fn publish(&self, run: Uuid, seq: i32) {
        let followers = self.followers.lock().expect("hub lock is never poisoned");
        if let Some(tx) = followers.get(&run) {
            tx.send_if_modified(|latest| {
                let newer = seq > *latest;
                *latest = (*latest).max(seq);
                newer
            });
        }
    }

    /// Registers a run executing here, so a cancel request can reach it.
    pub fn register(&self, run: Uuid, token: CancellationToken) {
        self.running
            .lock()
            .expect("hub lock is never poisoned")
            .insert(run, token);
    }

    pub fn unregister(&self, run: Uuid) {
        self.running
            .lock()
            .expect("hub lock is never poisoned")
            .remove(&run);
    }

    /// Cancels `run` if it executes on this instance; true when it did.
    pub fn cancel_local(&self, run: Uuid) -> bool {
        let running = self.running.lock().expect("hub lock is never poisoned");
        running.get(&run).map(CancellationToken::cancel).is_some()
    }

    /// Tokens of every run executing here (for shutdown).
    pub fn running_tokens(&self) -> Vec<CancellationToken> {
        self.running
            .lock()
            .expect("hub lock is never poisoned")
            .values()
            .cloned()
            .collect()
    }

    pub fn running_count(&self) -> usize {
        self.running
            .lock()
            .expect("hub lock is never poisoned")
            .len()
    }

    fn on_notification(&self, channel: &str, payload: &str) {
        if channel == EVENTS_CHANNEL {
            let parsed = payload
                .split_once(':')
                .and_then(|(run, seq)| Some((run.parse().ok()?, seq.parse().ok()?)));
            if let Some((run, seq)) = parsed {
                self.publish(run, seq);
            }
        } else if channel == CANCEL_CHANNEL
            && let Ok(run) = payload.parse()
        {
            self.cancel_local(run);
        }
    }
}

/// Keeps one listening connection open for the life of the process, reconnecting with
/// backoff when it drops, until `stop` is cancelled (at shutdown, before the database goes).
pub fn spawn_listener(hub: Arc<Hub>, url: String, stop: CancellationToken) {
    tokio::spawn(async move {
        let mut delay = Duration::from_millis(500);
        loop {
            let result = tokio::select! {
                result = listen(&hub, &url) => result,
                () = stop.cancelled() => return,
            };
            match result {
                Ok(()) => delay = Duration::from_millis(500),
                Err(e) => log::warn!(target: "runs", error = e.as_str(); "run event listener lost"),
            }
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = stop.cancelled() => return,
            }
            delay = (delay * 2).min(Duration::from_secs(30));
        }
    });
}

async fn listen(hub: &Hub, url: &str) -> Result<(), String> {
    let (client, mut connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .map_err(|e| e.to_string())?;
    let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
    let statement = format!("LISTEN {EVENTS_CHANNEL}; LISTEN {CANCEL_CHANNEL}");
    let listen = client.batch_execute(&statement);
    let mut listen = std::pin::pin!(listen);
    let mut listening = false;
    loop {
        tokio::select! {
            done = &mut listen, if !listening => {
                done.map_err(|e| e.to_string())?;
                listening = true;
                log::debug!(target: "runs", "listening for run events");
            }
            message = messages.next() => match message {
                Some(Ok(AsyncMessage::Notification(n))) => hub.on_notification(n.channel(), n.payload()),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.to_string()),
                None => return Ok(()),
            },
        }
    }
}
