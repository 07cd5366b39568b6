//! The local-disk store: each key is a file under the root folder.
//!
//! Writes go to a temporary file in `{root}/.partial` and are renamed into place only once
//! every byte is on disk, so a failed or cut-off upload leaves nothing under the key. Both
//! folders are on the same filesystem, which makes the rename atomic.
//!
//! A key that is a folder of another key (`a/b` and `a/b/c`) cannot coexist here as it can
//! on S3; keys made by this service never nest that way.

use std::io::SeekFrom;
use std::path::{Path, PathBuf};

use futures_util::{StreamExt, TryStreamExt};
use tokio::fs;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use super::{ByteRange, ByteStream, Object, ObjectMeta, StorageError};

/// Folder under the root that holds uploads in progress; never a key part.
pub const PARTIAL_DIR: &str = ".partial";

/// A file being written in the partial folder. It is removed when dropped, so a failed
/// write, or an upload cut off by the client or a shutdown (its future dropped), leaves
/// nothing; once renamed into place, removing the old path does nothing.
struct PartialFile(PathBuf);

impl Drop for PartialFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Read size for downloads: large enough for throughput, small for memory.
const READ_CHUNK: usize = 64 * 1024;

#[derive(Clone, Debug)]
pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    pub fn new(root: PathBuf) -> LocalStore {
        LocalStore { root }
    }

    /// The folder holding the objects.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, key: &str) -> PathBuf {
        key.split('/')
            .fold(self.root.clone(), |p, part| p.join(part))
    }

    /// Makes the folders, and removes what a crash left in the partial folder (files an
    /// hour old: no upload of a running instance is that slow to write a byte).
    pub async fn ensure_ready(&self) -> Result<(), StorageError> {
        let partial_dir = self.root.join(PARTIAL_DIR);
        fs::create_dir_all(&partial_dir).await?;
        let mut entries = fs::read_dir(&partial_dir).await?;
        while let Some(entry) = entries.next_entry().await? {
            let stale = entry
                .metadata()
                .await
                .ok()
                .and_then(|m| m.modified().ok())
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > std::time::Duration::from_secs(3600));
            if stale {
                let _ = fs::remove_file(entry.path()).await;
            }
        }
        Ok(())
    }

    /// Writable means a file can be created and removed in the partial folder.
    pub async fn check(&self) -> Result<(), StorageError> {
        let probe = self.partial_path();
        fs::write(&probe, b"").await.map_err(unavailable)?;
        fs::remove_file(&probe).await.map_err(unavailable)?;
        Ok(())
    }

    fn partial_path(&self) -> PathBuf {
        let name = uuid::Uuid::new_v4().simple().to_string();
        self.root.join(PARTIAL_DIR).join(name)
    }

    pub async fn put(
        &self,
        key: &str,
        len: Option<u64>,
        body: ByteStream,
    ) -> Result<(), StorageError> {
        let partial = PartialFile(self.partial_path());
        write_all(&partial.0, len, body).await?;
        self.move_into_place(&partial.0, key).await
    }

    async fn move_into_place(&self, partial: &Path, key: &str) -> Result<(), StorageError> {
        let target = self.path(key);
        let placed = async {
            if let Some(dir) = target.parent() {
                fs::create_dir_all(dir).await?;
            }
            fs::rename(partial, &target).await
        };
        placed.await.map_err(Into::into)
    }

    pub async fn get(&self, key: &str, range: Option<ByteRange>) -> Result<Object, StorageError> {
        let mut file = fs::File::open(self.path(key))
            .await
            .map_err(not_found_or_io)?;
        let total_size = file.metadata().await?.len();
        let (first, size) = match range {
            Some(r) if r.first > r.last || r.last >= total_size => {
                return Err(unsatisfiable(total_size));
            }
            Some(r) => (r.first, r.len()),
            None => (0, total_size),
        };
        file.seek(SeekFrom::Start(first)).await?;
        let reader = tokio_util::io::ReaderStream::with_capacity(file.take(size), READ_CHUNK);
        Ok(Object {
            size,
            total_size,
            content_type: None,
            body: reader.map_err(StorageError::from).boxed(),
        })
    }

    pub async fn head(&self, key: &str) -> Result<ObjectMeta, StorageError> {
        let meta = fs::metadata(self.path(key))
            .await
            .map_err(not_found_or_io)?;
        if !meta.is_file() {
            return Err(StorageError::NotFound);
        }
        Ok(object_meta(key.to_owned(), &meta))
    }

    /// Removes the file and the folders it leaves empty, so deleted workspaces leave no
    /// trail of empty folders.
    pub async fn delete(&self, key: &str) -> Result<(), StorageError> {
        let path = self.path(key);
        match fs::remove_file(&path).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        let mut dir = path.parent();
        while let Some(d) = dir.filter(|d| *d != self.root) {
            if fs::remove_dir(d).await.is_err() {
                break;
            }
            dir = d.parent();
        }
        Ok(())
    }

    pub async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StorageError> {
        let mut found = Vec::new();
        let mut pending = vec![(self.root.clone(), String::new())];
        while let Some((dir, key_prefix)) = pending.pop() {
            let mut entries = match fs::read_dir(&dir).await {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e.into()),
            };
            while let Some(entry) = entries.next_entry().await? {
                let Ok(name) = entry.file_name().into_string() else {
                    continue;
                };
                let key = format!("{key_prefix}{name}");
                let meta = entry.metadata().await?;
                if name == PARTIAL_DIR && key_prefix.is_empty() {
                    continue;
                } else if meta.is_dir() && could_hold(&key, prefix) {
                    pending.push((entry.path(), format!("{key}/")));
                } else if meta.is_file() && key.starts_with(prefix) {
                    found.push(object_meta(key, &meta));
                }
            }
        }
        found.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(found)
    }
}

async fn write_all(
    path: &Path,
    len: Option<u64>,
    mut body: ByteStream,
) -> Result<(), StorageError> {
    let mut file = fs::File::create(path).await?;
    let mut written = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        written += chunk.len() as u64;
        if len.is_some_and(|len| written > len) {
            return Err(length_mismatch(len, written));
        }
        file.write_all(&chunk).await?;
    }
    if len.is_some_and(|len| written != len) {
        return Err(length_mismatch(len, written));
    }
    file.sync_all().await?;
    Ok(())
}

/// Whether a folder with key prefix `dir/` may contain keys starting with `prefix`.
fn could_hold(dir: &str, prefix: &str) -> bool {
    let dir = format!("{dir}/");
    dir.starts_with(prefix) || prefix.starts_with(&dir)
}

fn object_meta(key: String, meta: &std::fs::Metadata) -> ObjectMeta {
    ObjectMeta {
        key,
        size: meta.len(),
        content_type: None,
        last_modified: meta.modified().ok().map(time::OffsetDateTime::from),
    }
}

pub(crate) fn length_mismatch(expected: Option<u64>, received: u64) -> StorageError {
    let expected = expected.unwrap_or_default();
    StorageError::BodyError(format!("announced {expected} bytes, received {received}"))
}

fn not_found_or_io(e: std::io::Error) -> StorageError {
    match e.kind() {
        std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory => StorageError::NotFound,
        _ => StorageError::Io(e),
    }
}

fn unavailable(e: std::io::Error) -> StorageError {
    StorageError::Unavailable(format!("data folder not writable: {e}"))
}

/// Callers resolve ranges against the size first (`files::range`); a range past the end
/// here means the object changed in between, and S3 answers the same way.
fn unsatisfiable(total: u64) -> StorageError {
    StorageError::Service {
        code: "InvalidRange".into(),
        message: format!("range beyond the object's {total} bytes"),
        status: 416,
    }
}
