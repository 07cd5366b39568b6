//! Workspace files: metadata in PostgreSQL, bytes in the store under
//! `workspaces/{workspace_id}/files/{file_id}/{cleaned name}`. The row is committed only
//! after the bytes are stored, so a failure in between leaves no row; the object of a
//! failed insert is deleted again.

use bytes::Bytes;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::app::App;
use crate::error::{Error, Result};
use crate::storage::StorageError;

/// The storage key of a file; only the cleaned name comes from the person.
pub fn object_key(ws: Uuid, file: Uuid, clean_name: &str) -> String {
    format!("workspaces/{ws}/files/{file}/{clean_name}")
}

impl From<StorageError> for Error {
    fn from(e: StorageError) -> Error {
        match e {
            StorageError::NotFound { .. } => Error::NotFound,
            other => {
                log::warn!(target: "storage", error = other.to_string().as_str(); "storage failed");
                Error::unavailable(
                    "storage_unavailable",
                    "file storage cannot be reached; try again shortly",
                )
            }
        }
    }
}

/// Stores bytes already in memory (agent output) as a workspace file.
pub async fn store_bytes(
    app: &App,
    ws: Uuid,
    uploader: Option<Uuid>,
    name: &str,
    content_type: &str,
    bytes: Bytes,
    origin: &str,
) -> Result<Uuid> {
    let id = Uuid::new_v4();
    let name = crate::files::name::clean(name);
    let key = object_key(ws, id, &name);
    let sha = hex::encode(Sha256::digest(&bytes));
    let size = bytes.len() as i64;
    let body: crate::storage::ByteStream =
        Box::pin(futures_util::stream::once(async move { Ok(bytes) }));
    app.store
        .put(&key, content_type, Some(size as u64), body)
        .await?;
    let meta = NewFile {
        id,
        ws,
        name,
        content_type,
        size,
        sha256: sha,
        key,
        uploader,
        origin,
    };
    insert_row(app, &meta).await?;
    Ok(id)
}

struct NewFile<'a> {
    id: Uuid,
    ws: Uuid,
    name: String,
    content_type: &'a str,
    size: i64,
    sha256: String,
    key: String,
    uploader: Option<Uuid>,
    origin: &'a str,
}

/// Commits the metadata of stored bytes; on failure the object goes too.
async fn insert_row(app: &App, f: &NewFile<'_>) -> Result<()> {
    let inserted = async {
        let db = app.db.get().await?;
        db.execute(
            "INSERT INTO files (id, workspace_id, name, content_type, size, sha256, storage_key, uploaded_by, origin)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &[&f.id, &f.ws, &f.name, &f.content_type, &f.size, &f.sha256, &f.key, &f.uploader, &f.origin],
        )
        .await?;
        Ok::<_, Error>(())
    }
    .await;
    if let Err(e) = inserted {
        if let Err(del) = app.store.delete(&f.key).await {
            log::warn!(target: "files", key = f.key.as_str(), error = del.to_string().as_str();
                "orphaned object left after a failed insert");
        }
        return Err(e);
    }
    Ok(())
}
