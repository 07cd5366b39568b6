//! The embedded migrator. Migrations are the numbered SQL files in `sql/`, compiled into
//! the binary. At start they are applied in order, each in one transaction together with
//! its version record, under a PostgreSQL advisory lock so that instances starting
//! together apply each one exactly once. An applied migration whose file has changed
//! since stops the start.

use sha2::{Digest, Sha256};
use tokio_postgres::Client;

/// One migration file.
pub struct Migration {
    pub version: i32,
    pub name: &'static str,
    pub sql: &'static str,
}

/// Every migration, in order. Add new files here; never edit an applied one.
pub const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "0001_initial.sql",
    sql: include_str!("../../sql/0001_initial.sql"),
}];

/// Arbitrary but fixed: the key of the advisory lock every instance takes to migrate.
const LOCK_KEY: i64 = 0x_da3d_a105;

/// Why migrating failed.
#[derive(Debug)]
pub enum MigrateError {
    Database(tokio_postgres::Error),
    /// An applied migration no longer matches its file.
    Changed {
        version: i32,
        name: String,
    },
    /// The database has a migration this binary does not know (a newer binary ran).
    Unknown {
        version: i32,
    },
}

impl std::fmt::Display for MigrateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MigrateError::Database(e) => write!(f, "database error while migrating: {e}"),
            MigrateError::Changed { version, name } => write!(
                f,
                "migration {version} ({name}) was applied, but its file has changed since; \
                 restore the file and add a new migration instead"
            ),
            MigrateError::Unknown { version } => write!(
                f,
                "the database has migration {version}, which this binary does not know; \
                 it was migrated by a newer version"
            ),
        }
    }
}

impl std::error::Error for MigrateError {}

impl From<tokio_postgres::Error> for MigrateError {
    fn from(e: tokio_postgres::Error) -> Self {
        MigrateError::Database(e)
    }
}

pub fn checksum(sql: &str) -> String {
    hex::encode(Sha256::digest(sql.as_bytes()))
}

/// One row of `migrate --status`.
pub struct Status {
    pub version: i32,
    pub name: &'static str,
    pub applied_at: Option<time::OffsetDateTime>,
}

/// Applies what is missing; returns the versions this call applied.
pub async fn apply(client: &mut Client) -> Result<Vec<i32>, MigrateError> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&LOCK_KEY])
        .await?;
    let result = apply_locked(client).await;
    // The lock ends with the session anyway; an unlock failure changes nothing.
    let _ = client
        .execute("SELECT pg_advisory_unlock($1)", &[&LOCK_KEY])
        .await;
    result
}

async fn apply_locked(client: &mut Client) -> Result<Vec<i32>, MigrateError> {
    create_version_table(client).await?;
    let applied = applied_versions(client).await?;
    verify(&applied)?;
    let mut done = Vec::new();
    for m in MIGRATIONS
        .iter()
        .filter(|m| !applied.iter().any(|(v, _)| *v == m.version))
    {
        let tx = client.transaction().await?;
        tx.batch_execute(m.sql).await?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
            &[&m.version, &m.name, &checksum(m.sql)],
        )
        .await?;
        tx.commit().await?;
        log::info!(target: "migrate", version = m.version, name = m.name; "migration applied");
        done.push(m.version);
    }
    Ok(done)
}

async fn create_version_table(client: &Client) -> Result<(), tokio_postgres::Error> {
    // Quiet: "relation already exists, skipping" on every start is noise in the log.
    client
        .batch_execute(
            "SET client_min_messages = warning;
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version integer PRIMARY KEY,
                name text NOT NULL,
                checksum text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )",
        )
        .await
}

async fn applied_versions(client: &Client) -> Result<Vec<(i32, String)>, tokio_postgres::Error> {
    let rows = client
        .query("SELECT version, checksum FROM schema_migrations", &[])
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Every applied migration must be known and unchanged.
fn verify(applied: &[(i32, String)]) -> Result<(), MigrateError> {
    for (version, sum) in applied {
        let Some(m) = MIGRATIONS.iter().find(|m| m.version == *version) else {
            return Err(MigrateError::Unknown { version: *version });
        };
        if checksum(m.sql) != *sum {
            return Err(MigrateError::Changed {
                version: *version,
                name: m.name.to_string(),
            });
        }
    }
    Ok(())
}

/// Every known migration and when it was applied, for operators.
pub async fn status(client: &Client) -> Result<Vec<Status>, MigrateError> {
    create_version_table(client).await?;
    let rows = client
        .query("SELECT version, applied_at FROM schema_migrations", &[])
        .await?;
    let applied: Vec<(i32, time::OffsetDateTime)> =
        rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    Ok(MIGRATIONS
        .iter()
        .map(|m| Status {
            version: m.version,
            name: m.name,
            applied_at: applied
                .iter()
                .find(|(v, _)| *v == m.version)
                .map(|(_, at)| *at),
        })
        .collect())
}

/// True when every known migration is applied (readiness).
pub async fn is_current(client: &Client) -> Result<bool, tokio_postgres::Error> {
    let row = client
        .query_one(
            "SELECT coalesce(max(version), 0) FROM schema_migrations",
            &[],
        )
        .await?;
    let newest: i32 = row.get(0);
    Ok(newest >= MIGRATIONS.last().map_or(0, |m| m.version))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_in_order_and_named_after_their_version() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version as usize, i + 1);
            assert!(
                m.name.starts_with(&format!("{:04}_", m.version)),
                "{}",
                m.name
            );
        }
    }

    #[test]
    fn a_changed_file_is_detected() {
        let applied = vec![(1, checksum("something else"))];
        assert!(matches!(
            verify(&applied),
            Err(MigrateError::Changed { version: 1, .. })
        ));
        let applied = vec![(1, checksum(MIGRATIONS[0].sql))];
        assert!(verify(&applied).is_ok());
    }
}
