//! PostgreSQL: the connection pool, the migrator (`migrate`) and the private cluster
//! used in development (`embedded`).

pub mod embedded;
pub mod migrate;

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;

/// Connections the pool keeps at most; PostgreSQL's default allows 100 across instances.
pub const POOL_SIZE: usize = 16;

/// Builds the pool; connections are opened lazily.
///
/// Connections are plain TCP or a unix socket: TLS to PostgreSQL is not supported yet
/// (adding `tokio-postgres-rustls` and honouring `sslmode` would fix that).
pub fn pool(url: &str) -> Result<Pool, String> {
    let pg: tokio_postgres::Config = url.parse().map_err(|e| format!("database URL: {e}"))?;
    let mut pg = pg;
    pg.application_name("daedalus");
    pg.connect_timeout(Duration::from_secs(5));
    let manager = Manager::from_config(
        pg,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(POOL_SIZE)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(Duration::from_secs(5)))
        .create_timeout(Some(Duration::from_secs(5)))
        .build()
        .map_err(|e| format!("database pool: {e}"))
}

/// One connection outside the pool (migrations hold it for their lock).
pub async fn connect(url: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            log::warn!(target: "db", error = e.to_string().as_str(); "database connection ended");
        }
    });
    Ok(client)
}
