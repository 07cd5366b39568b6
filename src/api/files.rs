//! Workspace files: metadata in PostgreSQL, bytes in the store under
//! `workspaces/{workspace_id}/files/{file_id}/{cleaned name}`. The row is committed only
//! after the bytes are stored, so a failure in between leaves no row; the object of a
//! failed insert is deleted again.

use ::http::header::{
    ACCEPT_RANGES, CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE,
    ETAG, RANGE,
};
use ::http::{HeaderValue, StatusCode};
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use http_body_util::{BodyExt, BodyStream, StreamBody};
use hyper::body::Frame;
use percent_encoding::percent_decode;
use sha2::{Digest, Sha256};
use tokio_postgres::Row;
use uuid::Uuid;

use super::paging::{Key, Window};
use super::workspaces::{check_owner, rfc3339};
use crate::app::{App, User};
use crate::error::{Error, Result};
use crate::files::range::{self, RangeOutcome};
use crate::files::{disposition, download, multipart, upload};
use crate::http::{self, BoxError, Request, Response, header_value, query};
use crate::metrics;
use crate::storage::{ByteStream, StorageError};

/// The storage key of a file; only the cleaned name comes from the person.
pub fn object_key(ws: Uuid, file: Uuid, clean_name: &str) -> String {
    format!("workspaces/{ws}/files/{file}/{clean_name}")
}

impl From<StorageError> for Error {
    fn from(e: StorageError) -> Error {
        match e {
            StorageError::NotFound => Error::NotFound,
            StorageError::TooLarge => Error::PayloadTooLarge { limit: 0 },
            StorageError::BodyError(why) => Error::bad_request(
                "upload_interrupted",
                format!("the body did not arrive whole: {why}"),
            ),
            StorageError::Unavailable(why) => {
                log::warn!(target: "storage", error = why.as_str(); "storage unavailable");
                Error::unavailable(
                    "storage_unavailable",
                    "file storage cannot be reached; try again shortly",
                )
            }
            StorageError::Service { .. } | StorageError::Protocol(_) => Error::BadGateway {
                code: "storage_error",
                message: format!("file storage refused the request: {e}"),
            },
            StorageError::InvalidKey(_) | StorageError::Io(_) => Error::internal(e),
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

const COLUMNS: &str =
    "id, workspace_id, name, content_type, size, sha256, created_at, storage_key, origin";

fn to_json(row: &Row) -> serde_json::Value {
    serde_json::json!({
        "id": row.get::<_, Uuid>(0),
        "workspace_id": row.get::<_, Uuid>(1),
        "name": row.get::<_, &str>(2),
        "content_type": row.get::<_, &str>(3),
        "size": row.get::<_, i64>(4),
        "sha256": row.get::<_, &str>(5),
        "created_at": rfc3339(row.get(6)),
        "origin": row.get::<_, &str>(8),
    })
}

/// One file of a workspace of this user; anything else is 404.
async fn load_row(app: &App, user: &User, ws: Uuid, f: Uuid) -> Result<Row> {
    let db = app.db.get().await?;
    let sql = format!(
        "SELECT {COLUMNS} FROM files f WHERE f.id = $1 AND f.workspace_id = $2
           AND EXISTS (SELECT 1 FROM workspaces w WHERE w.id = $2 AND w.owner_id = $3)"
    );
    let stmt = db.prepare_cached(&sql).await?;
    db.query_opt(&stmt, &[&f, &ws, &user.id])
        .await?
        .ok_or(Error::NotFound)
}

pub async fn handle_list(app: &App, user: &User, ws: Uuid, req: &Request) -> Result<Response> {
    let window = Window::from_pairs(&query::parse(req.uri().query())?)?;
    check_owner(app, user, ws).await?;
    let db = app.db.get().await?;
    let sql = format!(
        "SELECT {COLUMNS} FROM files WHERE workspace_id = $1 AND (created_at, id) < ($2, $3)
         ORDER BY created_at DESC, id DESC LIMIT $4"
    );
    let (after, fetch) = (&window.after, window.fetch());
    let rows = db.query(&sql, &[&ws, &after.at, &after.id, &fetch]).await?;
    window.respond(
        rows,
        |r| Key {
            at: r.get(6),
            id: r.get(0),
        },
        to_json,
    )
}

pub async fn handle_get(app: &App, user: &User, ws: Uuid, f: Uuid) -> Result<Response> {
    http::json(StatusCode::OK, &to_json(&load_row(app, user, ws, f).await?))
}

/// Deletes the row first, then the object: a file is never listed without its bytes.
pub async fn handle_delete(app: &App, user: &User, ws: Uuid, f: Uuid) -> Result<Response> {
    let db = app.db.get().await?;
    let row = db
        .query_opt(
            "DELETE FROM files f USING workspaces w
             WHERE f.id = $1 AND f.workspace_id = $2 AND w.id = f.workspace_id AND w.owner_id = $3
             RETURNING f.storage_key",
            &[&f, &ws, &user.id],
        )
        .await?
        .ok_or(Error::NotFound)?;
    drop(db);
    let key: String = row.get(0);
    if let Err(e) = app.store.delete(&key).await {
        log::warn!(target: "files", key = key.as_str(), error = e.to_string().as_str();
            "object of a deleted file left behind");
    }
    Ok(http::no_content())
}

/// Room for the multipart framing around a file of the largest accepted size.
const MULTIPART_OVERHEAD: u64 = 64 * 1024;

/// `POST …/files`: a raw body named by `?name=` (or `X-File-Name`), or a multipart form
/// whose part named `file` (or first part with a file name) is the file. Streamed to
/// storage with its size and SHA-256 computed on the way; the limit holds for the bytes
/// actually received, whatever the request declared.
pub async fn handle_upload(app: &App, user: &User, ws: Uuid, req: Request) -> Result<Response> {
    check_owner(app, user, ws).await?;
    let limit = app.cfg.max_upload_bytes;
    let content_type = header_str(&req, CONTENT_TYPE).unwrap_or("").to_string();
    let multipart = content_type
        .to_ascii_lowercase()
        .starts_with("multipart/form-data");
    http::check_declared_length(
        &req,
        if multipart {
            limit + MULTIPART_OVERHEAD
        } else {
            limit
        },
    )
    .map_err(|_| Error::PayloadTooLarge { limit })?;
    let declared = header_str(&req, CONTENT_LENGTH).and_then(|v| v.parse::<u64>().ok());
    let raw_name = raw_upload_name(&req)?;
    let body = incoming_stream(req.into_body());
    let (name, file_type, len, body) = if multipart {
        let (part, stream) = multipart::first_file(body, &content_type)
            .await
            .map_err(|e| upload_error(e, limit))?;
        let file_type = part.content_type.unwrap_or_default();
        (part.filename.unwrap_or_default(), file_type, None, stream)
    } else {
        (raw_name.unwrap_or_default(), content_type, declared, body)
    };
    let (body, receipt) = upload::metered(body, limit);
    let id = Uuid::new_v4();
    let name = crate::files::name::clean(&name);
    let file_type = media_type(&file_type);
    let key = object_key(ws, id, &name);
    app.store
        .put(&key, &file_type, len, body)
        .await
        .map_err(|e| upload_error(e, limit))?;
    let Some(measured) = receipt.measured() else {
        let _ = app.store.delete(&key).await;
        return Err(Error::internal("the upload ended without its measurements"));
    };
    let size = i64::try_from(measured.size).map_err(Error::internal)?;
    let meta = NewFile {
        id,
        ws,
        name,
        content_type: &file_type,
        size,
        sha256: measured.sha256,
        key,
        uploader: Some(user.id),
        origin: "upload",
    };
    insert_row(app, &meta).await?;
    metrics::get().file_uploads.inc();
    let row = load_row(app, user, ws, id).await?;
    http::json(StatusCode::CREATED, &to_json(&row))
}

fn header_str(req: &Request, name: ::http::header::HeaderName) -> Option<&str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// The file name of a raw upload: `?name=`, else the percent-encoded `X-File-Name`.
fn raw_upload_name(req: &Request) -> Result<Option<String>> {
    let pairs = query::parse(req.uri().query())?;
    if let Some(name) = query::get(&pairs, "name") {
        return Ok(Some(name.to_string()));
    }
    let header = req.headers().get("x-file-name").map(|v| v.as_bytes());
    let decoded = header.map(|raw| percent_decode(raw).decode_utf8_lossy().into_owned());
    Ok(decoded)
}

/// A usable media type, or `application/octet-stream`.
fn media_type(raw: &str) -> String {
    let essence = raw
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let valid = essence.len() <= 127
        && essence.split_once('/').is_some_and(|(t, s)| {
            let token = |p: &str| {
                !p.is_empty()
                    && p.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
            };
            token(t) && token(s)
        });
    if valid {
        essence
    } else {
        "application/octet-stream".to_string()
    }
}

/// The request body as a stream of chunks for storage.
fn incoming_stream(body: hyper::body::Incoming) -> ByteStream {
    BodyStream::new(body)
        .try_filter_map(|frame| async move { Ok(frame.into_data().ok()) })
        .map_err(|e| StorageError::BodyError(e.to_string()))
        .boxed()
}

/// The upload's failure as the person should hear it.
fn upload_error(e: StorageError, limit: u64) -> Error {
    match e {
        StorageError::TooLarge => Error::PayloadTooLarge { limit },
        other => Error::from(other),
    }
}

/// `GET`/`HEAD …/files/{f}/content`: the bytes, streamed, with `Range`.
pub async fn handle_content(
    app: &App,
    user: &User,
    ws: Uuid,
    f: Uuid,
    req: &Request,
) -> Result<Response> {
    let row = load_row(app, user, ws, f).await?;
    let (name, file_type, size, sha): (&str, &str, i64, &str) =
        (row.get(2), row.get(3), row.get(4), row.get(5));
    let size = size.max(0) as u64;
    let range = match range::parse(header_str(req, RANGE), size) {
        RangeOutcome::Unsatisfiable => return Err(Error::RangeNotSatisfiable { size }),
        RangeOutcome::Full => None,
        RangeOutcome::Partial(r) => Some(r),
    };
    let pairs = query::parse(req.uri().query())?;
    let want_inline = query::get(&pairs, "download").is_none();
    let body = if req.method() == ::http::Method::HEAD {
        http::empty()
    } else {
        let key: String = row.get(7);
        let object = app.store.get(&key, range).await?;
        let stream = download::counted(object.body)
            .map_ok(Frame::data)
            .map_err(|e| -> BoxError { Box::new(e) });
        BodyExt::boxed_unsync(StreamBody::new(stream))
    };
    let mut resp = ::http::Response::new(body);
    let h = resp.headers_mut();
    let shown_type = if disposition::is_inline_safe(file_type) {
        file_type
    } else {
        "application/octet-stream"
    };
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_str(shown_type).map_err(Error::internal)?,
    );
    let cd = disposition::for_download(name, file_type, want_inline);
    h.insert(
        CONTENT_DISPOSITION,
        HeaderValue::from_str(&cd).map_err(Error::internal)?,
    );
    h.insert("x-content-type-options", header_value("nosniff"));
    h.insert(ACCEPT_RANGES, header_value("bytes"));
    h.insert(CACHE_CONTROL, header_value("private, max-age=3600"));
    h.insert(
        ETAG,
        HeaderValue::from_str(&format!("\"{sha}\"")).map_err(Error::internal)?,
    );
    match range {
        Some(r) => {
            *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
            let h = resp.headers_mut();
            h.insert(CONTENT_LENGTH, HeaderValue::from(r.len()));
            h.insert(
                CONTENT_RANGE,
                HeaderValue::from_str(&r.content_range(size)).map_err(Error::internal)?,
            );
        }
        None => {
            resp.headers_mut()
                .insert(CONTENT_LENGTH, HeaderValue::from(size));
        }
    }
    Ok(resp)
}
