//! The standalone GET stream of a session, on which a server sends requests
//! of its own (for example `elicitation/create` outside any tool call's stream).
//!
//! It is opened only when the client declared a capability that a server
//! could use this way: Daedalus itself declares none, so it keeps no idle
//! stream per conversation; the conformance client declares elicitation.
//! A server that does not offer the stream (405 or any other refusal) is
//! left alone.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::exchange;
use super::jsonrpc::Incoming;
use super::protocol::ClientFeatures;
use super::server_requests;
use super::transport::{self, Client, Endpoint, MessageStream, Verb, Wire};

/// Reconnections in a row that yield nothing before the listener gives up.
const MAX_RECONNECTS: u32 = 5;
const DEFAULT_RETRY: Duration = Duration::from_secs(1);
/// How long the first opening may hold up the session's first request.
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything the background task owns.
pub struct Listener {
    pub client: Client,
    pub endpoint: Arc<Endpoint>,
    pub wire: Wire,
    pub features: ClientFeatures,
    pub max_message_bytes: usize,
}

impl Listener {
    /// Opens the stream, then keeps reading it in the background until `stop` is
    /// cancelled (the session was retired) or the server refuses. The first opening is
    /// awaited so that the stream exists before the session's first request: servers
    /// drop what they would send while no stream is open.
    pub async fn start(self, stop: CancellationToken) {
        let opening = tokio::time::timeout(OPEN_TIMEOUT, self.open(None)).await;
        let Ok(Some(first)) = opening else {
            return;
        };
        tokio::spawn(async move {
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = self.run(first) => {}
            }
        });
    }

    async fn run(self, first: MessageStream) {
        let mut last_event_id: Option<String> = None;
        let mut retry = DEFAULT_RETRY;
        let mut next = Some(first);
        for _ in 0..MAX_RECONNECTS {
            let mut stream = match next.take() {
                Some(stream) => stream,
                None => match self.open(last_event_id.clone()).await {
                    Some(stream) => stream,
                    None => return,
                },
            };
            let mut answered_any = false;
            while let Ok(Some(message)) = stream.next().await {
                answered_any |= self.handle(message).await;
            }
            let (id, server_retry) = stream.resume_point();
            last_event_id = id.or(last_event_id);
            retry = server_retry.unwrap_or(retry);
            if !answered_any {
                tokio::time::sleep(retry).await;
            }
        }
    }

    async fn open(&self, last_event_id: Option<String>) -> Option<MessageStream> {
        let verb = match last_event_id {
            Some(last_event_id) => Verb::Resume { last_event_id },
            None => Verb::Listen,
        };
        let response = transport::send(&self.client, &self.endpoint, &self.wire, verb)
            .await
            .ok()?;
        if response.status() != http::StatusCode::OK {
            log::debug!(target: "mcp", server = self.endpoint.label.as_str(),
                status = response.status().as_u16(); "no standalone stream offered");
            return None;
        }
        MessageStream::new(response, self.max_message_bytes).ok()
    }

    /// Answers a server request; true when there was one.
    async fn handle(&self, message: Incoming) -> bool {
        let Incoming::Request { id, method, params } = message else {
            return false;
        };
        let answer = server_requests::answer(id, &method, &params, &self.features);
        let posted = exchange::post_message(&self.client, &self.endpoint, &self.wire, answer).await;
        if let Err(error) = posted {
            log::debug!(target: "mcp", server = self.endpoint.label.as_str(),
                error = error.to_string().as_str(); "could not answer a server request");
        }
        true
    }
}
