//! The shared state every handler receives: configuration, the database pool, and the
//! cache of known users.

use std::collections::HashMap;
use std::sync::Mutex;

use deadpool_postgres::Pool;
use uuid::Uuid;

use crate::config::Config;
use crate::error::Result;
use crate::http::server::RequestContext;
use crate::identity;

/// The signed-in user of a request.
#[derive(Clone, Debug)]
pub struct User {
    pub id: Uuid,
    pub name: String,
}

/// Most users remembered per instance; the cache is emptied when it fills.
const USER_CACHE_LIMIT: usize = 10_000;

pub struct App {
    pub cfg: Config,
    pub db: Pool,
    /// External name to user id. Ids never change, so instances may cache them freely.
    users: Mutex<HashMap<String, Uuid>>,
    pub telemetry_limit: crate::api::telemetry::RateLimit,
    /// MCP sessions and connections to agent servers.
    pub mcp: crate::mcp::Pool,
    /// Recent discovery answers of agent servers.
    pub agents: crate::agents::Cache,
    pub runs: crate::runs::Runs,
    /// Where file bytes live: S3 or the local disk.
    pub store: crate::storage::Store,
}

/// Sessions first: FastAgent 0.10.48 serves every stateless (2026-07-28) request from one
/// shared session, so stateless calls would mix the memories of different conversations
/// and users, and two runs at once would collide. A server that opens no session is still
/// reached statelessly, with the transcript carrying the conversation.
fn mcp_options() -> crate::mcp::PoolOptions {
    let mut versions: Vec<String> = crate::mcp::protocol::SUPPORTED
        .iter()
        .map(|v| v.to_string())
        .collect();
    versions.rotate_left(1);
    crate::mcp::PoolOptions {
        protocol_versions: versions,
        ..Default::default()
    }
}

impl App {
    pub fn new(cfg: Config, db: Pool, store: crate::storage::Store) -> App {
        App {
            cfg,
            db,
            users: Mutex::new(HashMap::new()),
            telemetry_limit: Default::default(),
            mcp: crate::mcp::Pool::new(mcp_options()),
            agents: Default::default(),
            runs: Default::default(),
            store,
        }
    }

    /// The user behind this request, created on first sight.
    pub async fn identify(
        &self,
        headers: &http::HeaderMap,
        ctx: &mut RequestContext,
    ) -> Result<User> {
        let name = identity::claimed_user(&self.cfg, headers, ctx.peer)?;
        ctx.user = Some(name.clone());
        if let Some(id) = self.cached_user(&name) {
            return Ok(User { id, name });
        }
        let id = self.find_or_create_user(&name).await?;
        let mut users = self
            .users
            .lock()
            .expect("user cache lock is never poisoned");
        if users.len() >= USER_CACHE_LIMIT {
            users.clear();
        }
        users.insert(name.clone(), id);
        Ok(User { id, name })
    }

    fn cached_user(&self, name: &str) -> Option<Uuid> {
        self.users
            .lock()
            .expect("user cache lock is never poisoned")
            .get(name)
            .copied()
    }

    /// Two first requests of a new user may race; the loser's statement can see neither
    /// row, so it simply asks again.
    async fn find_or_create_user(&self, name: &str) -> Result<Uuid> {
        let db = self.db.get().await?;
        for _ in 0..3 {
            let row = db
                .query_opt(
                    "WITH new AS (
                    INSERT INTO users (id, external_id) VALUES ($1, $2)
                    ON CONFLICT (external_id) DO NOTHING RETURNING id
                 )
                 SELECT id FROM new UNION ALL SELECT id FROM users WHERE external_id = $2
                 LIMIT 1",
                    &[&Uuid::new_v4(), &name],
                )
                .await?;
            if let Some(row) = row {
                return Ok(row.get(0));
            }
        }
        Err(crate::error::Error::internal(
            "user row neither inserted nor found",
        ))
    }
}
