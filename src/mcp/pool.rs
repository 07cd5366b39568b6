//! The pool of agent servers, their sessions and their connections: the
//! face of the MCP client towards the rest of Daedalus.
//!
//! One [`Pool`] per process. Per server it keeps the HTTP connections
//! (through the shared hyper client), a backoff so a dead server is not
//! hammered, and one MCP session per conversation key (plus one shared
//! session for key-less calls such as discovery). A lost session is
//! replaced and the request retried once; the replacement is fresh, which
//! the caller learns through `fresh_session`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use serde_json::{Value, json};
use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::backoff::Backoff;
use super::exchange::{self, Ctx};
use super::jsonrpc::{Id, Router};
use super::listener::Listener;
use super::protocol::ClientFeatures;
use super::session::{self, Established};
use super::transport::{self, Client, Endpoint};
use super::{
    Content, McpError, PoolOptions, Progress, ServerInfo, ServerSpec, Timeouts, ToolCall, ToolInfo,
    ToolOutcome,
};

/// Pages of `tools/list` followed before giving up on a server that never stops paging.
const MAX_TOOL_PAGES: usize = 100;

/// The process-wide MCP client; cloning is cheap and shares everything.
#[derive(Clone)]
pub struct Pool {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    options: PoolOptions,
    features: ClientFeatures,
    next_id: AtomicI64,
    servers: Mutex<HashMap<ServerSpec, Arc<Server>>>,
}

struct Server {
    endpoint: Arc<Endpoint>,
    backoff: Mutex<Backoff>,
    sessions: Mutex<HashMap<Option<Uuid>, Arc<Session>>>,
    /// Set once the server turned out to keep no sessions (the stateless revision, or
    /// no `Mcp-Session-Id`): every key then shares one connection.
    memoryless: AtomicBool,
}

/// One conversation's MCP session (or a stateless server's connection).
struct Session {
    /// Locked while a session is being opened, so concurrent callers wait for one opening.
    state: tokio::sync::Mutex<Option<Arc<Established>>>,
    /// No turn has run on the current session yet.
    fresh: AtomicBool,
    last_used: Mutex<Instant>,
    router: Router,
    /// Stops the standalone GET stream of the current session, when one was opened.
    listener: Mutex<Option<CancellationToken>>,
}

/// What one request runs on, and how it went.
struct Performed {
    result: Value,
    fresh: bool,
    established: Arc<Established>,
}

enum Op<'a> {
    ListTools,
    CallTool(&'a ToolCall),
}

/// The per-call knobs an operation runs with.
struct CallEnv<'a> {
    timeouts: Timeouts,
    cancel: &'a CancellationToken,
    progress: Option<&'a UnboundedSender<Progress>>,
}

impl Pool {
    pub fn new(options: PoolOptions) -> Pool {
        let features = ClientFeatures {
            elicitation_with_defaults: options.elicitation_with_defaults,
        };
        Pool {
            inner: Arc::new(Inner {
                client: transport::new_client(),
                options,
                features,
                next_id: AtomicI64::new(1),
                servers: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Connects (or reuses the connection) and lists the server's tools.
    pub async fn discover(&self, spec: &ServerSpec) -> Result<ServerInfo, McpError> {
        let server = self.inner.server(spec)?;
        let cancel = CancellationToken::new();
        let env = CallEnv {
            timeouts: self.inner.options.discover_timeouts,
            cancel: &cancel,
            progress: None,
        };
        let performed = self
            .inner
            .perform(&server, None, Op::ListTools, &env)
            .await?;
        let established = &performed.established;
        Ok(ServerInfo {
            protocol_version: established.version.clone(),
            stateless: established.stateless(),
            name: established.server_name.clone(),
            version: established.server_version.clone(),
            instructions: established.instructions.clone(),
            tools: tools_from(&performed.result),
        })
    }

    /// Calls one tool on the conversation's session (see the module documentation of
    /// `mcp` for `fresh_arguments`).
    pub async fn call_tool(
        &self,
        spec: &ServerSpec,
        call: ToolCall,
    ) -> Result<ToolOutcome, McpError> {
        let server = self.inner.server(spec)?;
        let env = CallEnv {
            timeouts: call.timeouts,
            cancel: &call.cancel,
            progress: call.progress.as_ref(),
        };
        let performed = self
            .inner
            .perform(&server, call.session_key, Op::CallTool(&call), &env)
            .await?;
        Ok(outcome_from(performed))
    }

    /// Whether the next call with this key would run on a session without earlier
    /// turns. Only a hint: the session may still be lost before that call, which
    /// `fresh_arguments` covers.
    pub async fn session_is_fresh(&self, spec: &ServerSpec, session_key: Uuid) -> bool {
        let Ok(server) = self.inner.server(spec) else {
            return true;
        };
        if server.memoryless.load(Ordering::Relaxed) {
            return true;
        }
        let session = lock(&server.sessions).get(&Some(session_key)).cloned();
        match session {
            Some(session) => {
                session.state.lock().await.is_none() || session.fresh.load(Ordering::Relaxed)
            }
            None => true,
        }
    }

    /// Ends the MCP session kept for this key (DELETE), if any.
    pub async fn forget_session(&self, spec: &ServerSpec, session_key: Uuid) {
        let server = lock(&self.inner.servers).get(spec).cloned();
        let Some(server) = server else { return };
        let session = lock(&server.sessions).remove(&Some(session_key));
        if let Some(session) = session {
            self.inner.retire(&server, &session).await;
        }
    }

    /// Ends every session, for a clean shutdown.
    pub async fn shutdown(&self) {
        let servers: Vec<_> = lock(&self.inner.servers).drain().map(|(_, s)| s).collect();
        for server in servers {
            let sessions: Vec<_> = lock(&server.sessions).drain().map(|(_, s)| s).collect();
            for session in sessions {
                self.inner.retire(&server, &session).await;
            }
        }
    }
}

impl Inner {
    fn server(&self, spec: &ServerSpec) -> Result<Arc<Server>, McpError> {
        let mut servers = lock(&self.servers);
        if let Some(server) = servers.get(spec) {
            return Ok(server.clone());
        }
        let server = Arc::new(Server {
            endpoint: Arc::new(Endpoint::new(spec)?),
            backoff: Mutex::new(Backoff::default()),
            sessions: Mutex::new(HashMap::new()),
            memoryless: AtomicBool::new(false),
        });
        servers.insert(spec.clone(), server.clone());
        Ok(server)
    }

    fn next_id(&self) -> Id {
        Id::Number(self.next_id.fetch_add(1, Ordering::Relaxed))
    }

    /// Runs `op` on the key's session, replacing a lost session and retrying once.
    async fn perform(
        &self,
        server: &Arc<Server>,
        key: Option<Uuid>,
        op: Op<'_>,
        env: &CallEnv<'_>,
    ) -> Result<Performed, McpError> {
        for attempt in 0.. {
            self.check_backoff(server)?;
            let session = self.session(server, key);
            let result = self.attempt(server, &session, &op, env).await;
            match result {
                Err((error, established)) if attempt == 0 && renegotiates(&error, &established) => {
                    log::info!(target: "mcp", server = server.endpoint.label.as_str(),
                        reason = error.kind(); "connection lost; opening a new one");
                    session.drop_if_current(&established).await;
                }
                Err((error, established)) => {
                    self.note_failure(server, &error);
                    if abandons_session(&error) {
                        self.retire_if_current(server, &session, established).await;
                    }
                    return Err(error);
                }
                Ok(performed) => {
                    lock(&server.backoff).succeeded();
                    return Ok(performed);
                }
            }
        }
        unreachable!("the loop returns by its second attempt")
    }

    async fn attempt(
        &self,
        server: &Arc<Server>,
        session: &Arc<Session>,
        op: &Op<'_>,
        env: &CallEnv<'_>,
    ) -> Result<Performed, (McpError, Option<Arc<Established>>)> {
        let ctx = Ctx {
            client: &self.client,
            endpoint: &server.endpoint,
            features: &self.features,
            router: &session.router,
            max_message_bytes: self.options.max_message_bytes,
            timeouts: env.timeouts,
            cancel: env.cancel,
            progress: env.progress,
        };
        let opening = session::open(&ctx, &self.options.protocol_versions, || self.next_id());
        let (established, opened) = session.current(opening).await.map_err(|e| (e, None))?;
        if opened {
            self.listen(server, session, &established).await;
        }
        // Stored both ways: a server replaced by another may start or stop keeping sessions.
        let memoryless = !established.keeps_memory();
        server.memoryless.store(memoryless, Ordering::Relaxed);
        let fresh = !established.keeps_memory() || session.fresh.load(Ordering::Relaxed);
        let result = match op {
            Op::ListTools => self.list_tools(&ctx, &established).await,
            Op::CallTool(call) => self.call_once(&ctx, &established, call, fresh).await,
        };
        let result = result.map_err(|e| (e, Some(established.clone())))?;
        if matches!(op, Op::CallTool(_)) {
            session.fresh.store(false, Ordering::Relaxed);
        }
        Ok(Performed {
            result,
            fresh,
            established,
        })
    }

    /// Opens the session's standalone stream when the client can answer what may come on it.
    async fn listen(&self, server: &Server, session: &Session, established: &Established) {
        if established.stateless() || !self.features.elicitation_with_defaults {
            return;
        }
        let stop = CancellationToken::new();
        let listener = Listener {
            client: self.client.clone(),
            endpoint: server.endpoint.clone(),
            wire: established.wire(),
            features: self.features.clone(),
            max_message_bytes: self.options.max_message_bytes,
        };
        if let Some(previous) = lock(&session.listener).replace(stop.clone()) {
            previous.cancel();
        }
        listener.start(stop).await;
    }

    async fn call_once(
        &self,
        ctx: &Ctx<'_>,
        established: &Established,
        call: &ToolCall,
        fresh: bool,
    ) -> Result<Value, McpError> {
        let arguments = match (&call.fresh_arguments, fresh) {
            (Some(fresh_arguments), true) => fresh_arguments.clone(),
            _ => call.arguments.clone(),
        };
        let params = json!({"name": call.tool, "arguments": arguments});
        let answer = exchange::request(
            ctx,
            &established.wire(),
            self.next_id(),
            "tools/call",
            params,
        )
        .await?;
        Ok(answer.result)
    }

    async fn list_tools(
        &self,
        ctx: &Ctx<'_>,
        established: &Established,
    ) -> Result<Value, McpError> {
        let mut tools = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_TOOL_PAGES {
            let params = cursor.map_or_else(|| json!({}), |c| json!({"cursor": c}));
            let id = self.next_id();
            let answer =
                exchange::request(ctx, &established.wire(), id, "tools/list", params).await?;
            if let Some(page) = answer.result.get("tools").and_then(Value::as_array) {
                tools.extend(page.iter().cloned());
            }
            cursor = answer
                .result
                .get("nextCursor")
                .and_then(Value::as_str)
                .map(str::to_owned);
            if cursor.is_none() {
                return Ok(Value::Array(tools));
            }
        }
        Err(McpError::Protocol {
            server: ctx.endpoint.display.clone(),
            detail: format!("its tool list did not end after {MAX_TOOL_PAGES} pages"),
        })
    }

    fn check_backoff(&self, server: &Server) -> Result<(), McpError> {
        lock(&server.backoff)
            .check(Instant::now())
            .map_err(|(retry_in, reason)| McpError::BackingOff {
                server: server.endpoint.display.clone(),
                reason,
                retry_in,
            })
    }

    fn note_failure(&self, server: &Server, error: &McpError) {
        if let McpError::Unreachable { reason, .. } = error {
            log::warn!(target: "mcp", server = server.endpoint.label.as_str(),
                reason = reason.as_str(); "agent server unreachable");
            let policy = self.options.backoff;
            lock(&server.backoff).failed(policy, Instant::now(), reason);
        }
    }

    /// The key's session, made on first use; beyond the cap the least recently used goes.
    fn session(&self, server: &Arc<Server>, key: Option<Uuid>) -> Arc<Session> {
        let key = if server.memoryless.load(Ordering::Relaxed) {
            None
        } else {
            key
        };
        let mut sessions = lock(&server.sessions);
        let session = sessions.entry(key).or_insert_with(Session::new).clone();
        *lock(&session.last_used) = Instant::now();
        if sessions.len() > self.options.max_sessions_per_server
            && let Some(oldest) = least_recently_used(&sessions)
        {
            let evicted = sessions.remove(&oldest).expect("the key was just found");
            self.retire_in_background(server.clone(), evicted);
        }
        session
    }

    /// Ends a session whose state is uncertain after an abandoned request: FastAgent
    /// tears a session down after a cancellation, but only some time later, and a
    /// request racing that teardown fails. The next turn opens a fresh session instead.
    async fn retire_if_current(
        &self,
        server: &Arc<Server>,
        session: &Session,
        established: Option<Arc<Established>>,
    ) {
        let Some(established) = established.filter(|e| !e.stateless()) else {
            return;
        };
        if session.drop_if_current(&Some(established.clone())).await {
            let client = self.client.clone();
            let endpoint = server.endpoint.clone();
            tokio::spawn(async move { session::close(&client, &endpoint, &established).await });
        }
    }

    fn retire_in_background(&self, server: Arc<Server>, session: Arc<Session>) {
        let client = self.client.clone();
        tokio::spawn(async move {
            if let Some(established) = session.take().await {
                session::close(&client, &server.endpoint, &established).await;
            }
        });
    }

    async fn retire(&self, server: &Server, session: &Session) {
        if let Some(established) = session.take().await {
            session::close(&self.client, &server.endpoint, &established).await;
        }
    }
}

fn least_recently_used(sessions: &HashMap<Option<Uuid>, Arc<Session>>) -> Option<Option<Uuid>> {
    sessions
        .iter()
        .filter(|(key, _)| key.is_some())
        .min_by_key(|(_, session)| *lock(&session.last_used))
        .map(|(key, _)| *key)
}

impl Session {
    fn new() -> Arc<Session> {
        Arc::new(Session {
            state: tokio::sync::Mutex::new(None),
            fresh: AtomicBool::new(true),
            last_used: Mutex::new(Instant::now()),
            router: Router::default(),
            listener: Mutex::new(None),
        })
    }

    /// The open connection, opening one with `opening` when there is none.
    async fn current(
        &self,
        opening: impl Future<Output = Result<Established, McpError>>,
    ) -> Result<(Arc<Established>, bool), McpError> {
        let mut state = self.state.lock().await;
        if let Some(established) = &*state {
            return Ok((established.clone(), false));
        }
        let established = Arc::new(opening.await?);
        crate::metrics::get().mcp_connections_active.inc();
        self.fresh.store(true, Ordering::Relaxed);
        *state = Some(established.clone());
        Ok((established, true))
    }

    fn stop_listening(&self) {
        if let Some(stop) = lock(&self.listener).take() {
            stop.cancel();
        }
    }

    /// Forgets a lost session, unless another caller already replaced it.
    async fn drop_if_current(&self, lost: &Option<Arc<Established>>) -> bool {
        let mut state = self.state.lock().await;
        let is_current = match (&*state, lost) {
            (Some(current), Some(lost)) => Arc::ptr_eq(current, lost),
            _ => false,
        };
        if is_current {
            self.stop_listening();
            *state = None;
            crate::metrics::get().mcp_connections_active.dec();
        }
        is_current
    }

    async fn take(&self) -> Option<Arc<Established>> {
        self.stop_listening();
        let taken = self.state.lock().await.take();
        if taken.is_some() {
            crate::metrics::get().mcp_connections_active.dec();
        }
        taken
    }
}

/// Errors that mean the connection, not the request, is at fault: a lost session, or
/// a stateless server that now refuses requests (it may have been replaced by one that
/// speaks another revision). One new negotiation and one retry are worth it.
fn renegotiates(error: &McpError, established: &Option<Arc<Established>>) -> bool {
    let stateless = established.as_ref().is_some_and(|e| e.stateless());
    match error {
        McpError::SessionLost { .. } => true,
        McpError::HttpStatus { status, .. } => stateless && (400..500).contains(status),
        _ => false,
    }
}

/// Errors after which the request may still run on the server, or the session's
/// stream is in an unknown state.
fn abandons_session(error: &McpError) -> bool {
    matches!(
        error,
        McpError::Cancelled { .. }
            | McpError::Timeout { .. }
            | McpError::TooLarge { .. }
            | McpError::Protocol { .. }
    )
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section here is a plain map or value update that a panic cannot tear.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn tools_from(list: &Value) -> Vec<ToolInfo> {
    let tools = list.as_array().map(Vec::as_slice).unwrap_or_default();
    tools
        .iter()
        .filter_map(|tool| {
            Some(ToolInfo {
                name: tool.get("name")?.as_str()?.to_owned(),
                description: tool
                    .get("description")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                input_schema: tool.get("inputSchema").cloned().unwrap_or(Value::Null),
            })
        })
        .collect()
}

fn outcome_from(performed: Performed) -> ToolOutcome {
    let Performed {
        mut result,
        fresh,
        established,
    } = performed;
    let content = match result.get_mut("content").map(Value::take) {
        Some(Value::Array(blocks)) => blocks.into_iter().map(Content::from_value).collect(),
        _ => Vec::new(),
    };
    ToolOutcome {
        content,
        is_error: result
            .get("isError")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        structured: result.get_mut("structuredContent").map(Value::take),
        fresh_session: fresh,
        protocol_version: established.version.clone(),
    }
}
