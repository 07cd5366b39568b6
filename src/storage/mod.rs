//! Object storage for workspace files: one interface over two stores.
//!
//! [`Store::S3`] talks to an S3-compatible server (MinIO in production) through this
//! project's own streaming client ([`s3`]); [`Store::Local`] keeps the same keys as files
//! under a folder (the embedded default). Both behave the same way, and the same tests run
//! against both: keys are `/`-separated, a failed write leaves nothing behind, deleting a
//! missing key succeeds, bodies stream in both directions.
//!
//! One difference remains: the local store does not remember an object's content type
//! (`content_type` is `None` there). PostgreSQL holds the authoritative metadata, so nothing
//! reads it back today; a sidecar file per object would close the gap.

pub mod error;
pub mod local;
pub mod s3;

use std::path::PathBuf;
use std::pin::Pin;

use bytes::Bytes;
use futures_util::Stream;

pub use error::StorageError;
pub use local::LocalStore;
pub use s3::{S3Config, S3Store};

/// A body moving through storage, chunk by chunk.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, StorageError>> + Send>>;

/// A satisfiable byte range of an object, both ends inclusive (as in HTTP).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteRange {
    pub first: u64,
    pub last: u64,
}

impl ByteRange {
    /// How many bytes the range covers.
    pub fn len(&self) -> u64 {
        self.last - self.first + 1
    }

    /// Never true: a range covers at least one byte. Here for clippy's `len` convention.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The `Content-Range` value for a 206 answer.
    pub fn content_range(&self, total: u64) -> String {
        format!("bytes {}-{}/{}", self.first, self.last, total)
    }
}

/// An object being read: its body streams, the sizes are known up front.
pub struct Object {
    /// Bytes the body will yield (the range's length for a ranged read).
    pub size: u64,
    /// Size of the whole object.
    pub total_size: u64,
    pub content_type: Option<String>,
    pub body: ByteStream,
}

/// What storage knows about an object without reading it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectMeta {
    pub key: String,
    pub size: u64,
    /// Known for objects read with `head` on S3; `None` from listings and the local store.
    pub content_type: Option<String>,
    pub last_modified: Option<time::OffsetDateTime>,
}

/// The configured object store.
#[derive(Clone, Debug)]
pub enum Store {
    Local(LocalStore),
    S3(S3Store),
}

impl Store {
    /// A store keeping objects as files under `root`.
    pub fn local(root: PathBuf) -> Store {
        Store::Local(LocalStore::new(root))
    }

    /// A store on an S3-compatible server.
    pub fn s3(cfg: S3Config) -> Result<Store, StorageError> {
        Ok(Store::S3(S3Store::new(cfg)?))
    }

    /// Makes the bucket or folder if it is missing; called once at start.
    pub async fn ensure_ready(&self) -> Result<(), StorageError> {
        match self {
            Store::Local(s) => s.ensure_ready().await,
            Store::S3(s) => s.ensure_ready().await,
        }
    }

    /// Readiness: the bucket answers, or the folder is writable.
    pub async fn check(&self) -> Result<(), StorageError> {
        match self {
            Store::Local(s) => s.check().await,
            Store::S3(s) => s.check().await,
        }
    }

    /// Streams `body` to `key`, replacing what was there only once it is complete.
    ///
    /// With `len` known the body must have exactly that many bytes (a single streamed PUT
    /// on S3); with `len` unknown S3 gets a multipart upload (or one PUT when the body turns
    /// out to fit in one part). An error from `body` is returned as it is, so a size limit
    /// enforced by the stream comes back as [`StorageError::TooLarge`].
    pub async fn put(
        &self,
        key: &str,
        content_type: &str,
        len: Option<u64>,
        body: ByteStream,
    ) -> Result<(), StorageError> {
        check_key(key)?;
        match self {
            Store::Local(s) => s.put(key, len, body).await,
            Store::S3(s) => s.put(key, content_type, len, body).await,
        }
    }

    /// Opens `key` for reading, the whole object or one range of it.
    pub async fn get(&self, key: &str, range: Option<ByteRange>) -> Result<Object, StorageError> {
        check_key(key)?;
        match self {
            Store::Local(s) => s.get(key, range).await,
            Store::S3(s) => s.get(key, range).await,
        }
    }

    pub async fn head(&self, key: &str) -> Result<ObjectMeta, StorageError> {
        check_key(key)?;
        match self {
            Store::Local(s) => s.head(key).await,
            Store::S3(s) => s.head(key).await,
        }
    }

    /// Removes `key`; a key that is already gone is not an error.
    pub async fn delete(&self, key: &str) -> Result<(), StorageError> {
        check_key(key)?;
        match self {
            Store::Local(s) => s.delete(key).await,
            Store::S3(s) => s.delete(key).await,
        }
    }

    /// Every object whose key starts with `prefix`, in key order (all pages).
    pub async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StorageError> {
        match self {
            Store::Local(s) => s.list(prefix).await,
            Store::S3(s) => s.list(prefix).await,
        }
    }
}

/// Keys are made by this service (`workspaces/{ws}/files/{id}/{name}`); anything that
/// could escape a folder or mean something else on disk is refused for both stores alike.
pub fn check_key(key: &str) -> Result<(), StorageError> {
    let bad_part = |p: &str| p.is_empty() || p == "." || p == ".." || p == local::PARTIAL_DIR;
    let bad_char = |c: char| c == '\\' || c.is_control();
    if key.len() > 1024 || key.split('/').any(bad_part) || key.contains(bad_char) {
        return Err(StorageError::InvalidKey(key.to_owned()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_that_could_escape_or_alias_are_refused() {
        for key in [
            "",
            "/a",
            "a/",
            "a//b",
            "a/../b",
            "./a",
            "a\\b",
            "a\nb",
            ".partial/x",
        ] {
            assert!(check_key(key).is_err(), "{key:?} accepted");
        }
        for key in [
            "workspaces/1/files/2/a b.txt",
            "a+b",
            "résumé 東京.pdf",
            "x~y",
            ".env",
        ] {
            assert!(check_key(key).is_ok(), "{key:?} refused");
        }
    }
}
