//! Uploads of unknown (or very large) length: S3 multipart upload, one part in flight.
//!
//! The body is cut into parts of [`PART_SIZE`] bytes (the last one shorter), well above
//! S3's 5 MiB minimum; while one part uploads the next one is read, so memory holds at
//! most two parts. A body that ends within the first part goes as a single PUT instead.
//! Any failure aborts the upload, so no parts are left behind (an abort the server cannot
//! take during an outage is retried in the background). Two cases escape that: the
//! process dying, or the caller dropping the `put` future instead of letting the body
//! stream fail; the bucket's `AbortIncompleteMultipartUpload` lifecycle rule cleans up
//! after both. A CompleteMultipartUpload whose answer is lost can be retried into
//! `NoSuchUpload` although the object exists; the upload then reports failure and the
//! object is left for the orphan sweep.
//!
//! With a fixed part size and S3's 10,000-part cap, an object can reach 78 GiB this way;
//! beyond that the upload fails with `TooLarge`. Growing parts with the count would lift it.

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use http::Method;
use tokio::task::JoinHandle;

use super::transport::{Call, Payload};
use super::{S3Store, signed_bytes, xml};
use crate::storage::local::length_mismatch;
use crate::storage::{ByteStream, StorageError};

/// Size of every part but the last.
pub const PART_SIZE: usize = 8 * 1024 * 1024;

/// S3's cap on parts per upload.
pub const MAX_PARTS: u32 = 10_000;

/// Stores `body` under `key`; `len`, when given, must match the bytes received.
pub(super) async fn put_unknown_length(
    store: &S3Store,
    key: &str,
    content_type: &str,
    len: Option<u64>,
    body: ByteStream,
) -> Result<(), StorageError> {
    let mut parts = PartReader::new(body, len);
    let first = parts.next_part().await?.unwrap_or_default();
    if first.len() < PART_SIZE {
        return store.put_bytes(key, content_type, first).await;
    }
    let upload_id = create(store, key, content_type).await?;
    let result = match upload_parts(store, key, &upload_id, first, &mut parts).await {
        Ok(etags) => complete(store, key, &upload_id, &etags).await,
        Err(e) => Err(e),
    };
    if result.is_err() {
        abort(store, key, &upload_id).await;
    }
    result
}

async fn upload_parts(
    store: &S3Store,
    key: &str,
    upload_id: &str,
    first: Bytes,
    parts: &mut PartReader,
) -> Result<Vec<String>, StorageError> {
    let mut etags = Vec::new();
    let mut in_flight = spawn_part(store, key, upload_id, 1, first);
    loop {
        let next = parts.next_part().await;
        let etag = finish(in_flight).await;
        let next = match (next, etag) {
            (Ok(next), Ok(etag)) => {
                etags.push(etag);
                next
            }
            (Err(e), _) | (_, Err(e)) => return Err(e),
        };
        let number = etags.len() as u32 + 1;
        match next {
            Some(_) if number > MAX_PARTS => return Err(StorageError::TooLarge),
            Some(part) => in_flight = spawn_part(store, key, upload_id, number, part),
            None => return Ok(etags),
        }
    }
}

type PartTask = JoinHandle<Result<String, StorageError>>;

fn spawn_part(store: &S3Store, key: &str, upload_id: &str, number: u32, data: Bytes) -> PartTask {
    let call = Call::new("UploadPart", Method::PUT, Some(key))
        .query("partNumber", &number.to_string())
        .query("uploadId", upload_id)
        .payload(Payload::Bytes {
            data,
            signed: false,
        });
    let store = store.clone();
    tokio::spawn(async move {
        let answer = store.send(call).await?;
        answer
            .headers()
            .get(http::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .ok_or_else(|| StorageError::Protocol("UploadPart answer without ETag".into()))
    })
}

async fn finish(task: PartTask) -> Result<String, StorageError> {
    task.await
        .map_err(|e| StorageError::Protocol(format!("part upload task failed: {e}")))?
}

async fn create(store: &S3Store, key: &str, content_type: &str) -> Result<String, StorageError> {
    let call = Call::new("CreateMultipartUpload", Method::POST, Some(key))
        .query("uploads", "")
        .header("content-type", content_type);
    xml::parse_upload_id(&store.read_xml(call).await?)
}

async fn complete(
    store: &S3Store,
    key: &str,
    upload_id: &str,
    etags: &[String],
) -> Result<(), StorageError> {
    let call = Call::new("CompleteMultipartUpload", Method::POST, Some(key))
        .query("uploadId", upload_id)
        .payload(signed_bytes(xml::complete_body(etags)));
    store.read_xml(call).await.map(drop)
}

/// The caller reports the error that made it abort, not this one. An abort that cannot
/// reach the server (the outage that failed the upload, usually) is retried in the
/// background with backoff for a while, so the parts do not stay stored once it is back.
async fn abort(store: &S3Store, key: &str, upload_id: &str) {
    if try_abort(store, key, upload_id).await {
        return;
    }
    let (store, key, upload_id) = (store.clone(), key.to_string(), upload_id.to_string());
    tokio::spawn(async move {
        let mut delay = std::time::Duration::from_millis(500);
        for _ in 0..ABORT_RETRIES {
            tokio::time::sleep(delay).await;
            if try_abort(&store, &key, &upload_id).await {
                return;
            }
            delay = (delay * 2).min(std::time::Duration::from_secs(60));
        }
        log::error!(target: "s3", upload_id = upload_id.as_str();
            "gave up aborting a failed multipart upload; the bucket's lifecycle rule must clean it");
    });
}

/// About fifteen minutes of tries, the last ones a minute apart.
const ABORT_RETRIES: u32 = 20;

/// True when the upload is gone (aborted now, or unknown to the server already).
async fn try_abort(store: &S3Store, key: &str, upload_id: &str) -> bool {
    let call =
        Call::new("AbortMultipartUpload", Method::DELETE, Some(key)).query("uploadId", upload_id);
    match store.send(call).await {
        Ok(_) => true,
        Err(StorageError::Service { code, .. }) if code == "NoSuchUpload" => true,
        Err(e) => {
            log::warn!(target: "s3", upload_id; "could not abort a failed multipart upload: {e}");
            false
        }
    }
}

/// Cuts a body into parts of [`PART_SIZE`] bytes, checking an announced length.
struct PartReader {
    body: ByteStream,
    buffer: BytesMut,
    expected: Option<u64>,
    received: u64,
    ended: bool,
}

impl PartReader {
    fn new(body: ByteStream, expected: Option<u64>) -> PartReader {
        PartReader {
            body,
            buffer: BytesMut::new(),
            expected,
            received: 0,
            ended: false,
        }
    }

    /// The next part: full-sized unless the body ended; `None` once all is read.
    async fn next_part(&mut self) -> Result<Option<Bytes>, StorageError> {
        while self.buffer.len() < PART_SIZE && !self.ended {
            match self.body.next().await {
                Some(chunk) => self.take(chunk?)?,
                None => self.end()?,
            }
        }
        if self.buffer.is_empty() && self.ended {
            return Ok(None);
        }
        let size = self.buffer.len().min(PART_SIZE);
        Ok(Some(self.buffer.split_to(size).freeze()))
    }

    fn take(&mut self, chunk: Bytes) -> Result<(), StorageError> {
        self.received += chunk.len() as u64;
        if self.expected.is_some_and(|len| self.received > len) {
            return Err(length_mismatch(self.expected, self.received));
        }
        if self.buffer.capacity() == 0 {
            self.buffer.reserve(PART_SIZE);
        }
        self.buffer.extend_from_slice(&chunk);
        Ok(())
    }

    fn end(&mut self) -> Result<(), StorageError> {
        self.ended = true;
        match self.expected {
            Some(len) if len != self.received => Err(length_mismatch(self.expected, self.received)),
            _ => Ok(()),
        }
    }
}
