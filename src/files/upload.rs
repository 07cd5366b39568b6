//! Measuring an upload on its way to storage: its size and SHA-256, and the size limit.
//!
//! The limit applies to the bytes actually received, so a chunked body without a length,
//! or one that lies about its length, is stopped as soon as it crosses the limit. The
//! [`Meter`] is the pure core; [`metered`] wraps a body stream with one and hands back a
//! [`Receipt`] to read the result once the store has consumed the stream, and counts the
//! bytes in `daedalus_file_bytes_total{direction="in"}` as they pass.

use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use sha2::{Digest, Sha256};

use crate::storage::{ByteStream, StorageError};

/// Size and checksum of a complete upload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Measured {
    pub size: u64,
    /// Lower-case hex SHA-256 of the bytes.
    pub sha256: String,
}

/// Counts and hashes bytes, refusing any beyond the limit.
pub struct Meter {
    hasher: Sha256,
    size: u64,
    limit: u64,
}

impl Meter {
    pub fn new(limit: u64) -> Meter {
        Meter {
            hasher: Sha256::new(),
            size: 0,
            limit,
        }
    }

    /// Takes one chunk; `TooLarge` once the total passes the limit.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<(), StorageError> {
        self.size += chunk.len() as u64;
        if self.size > self.limit {
            return Err(StorageError::TooLarge);
        }
        self.hasher.update(chunk);
        Ok(())
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn finish(self) -> Measured {
        Measured {
            size: self.size,
            sha256: hex::encode(self.hasher.finalize()),
        }
    }
}

/// Where the result of a metered stream appears once the stream has ended.
#[derive(Clone, Debug, Default)]
pub struct Receipt(Arc<Mutex<Option<Measured>>>);

impl Receipt {
    /// The size and checksum, if the stream was read to its end without error.
    pub fn measured(&self) -> Option<Measured> {
        self.0
            .lock()
            .expect("the receipt lock is never poisoned")
            .clone()
    }
}

/// Wraps `body` so that it is measured on the way and fails with `TooLarge` past `limit`.
pub fn metered(body: ByteStream, limit: u64) -> (ByteStream, Receipt) {
    let receipt = Receipt::default();
    let stream = Metered {
        inner: body,
        meter: Some(Meter::new(limit)),
        receipt: receipt.clone(),
    };
    (stream.boxed(), receipt)
}

struct Metered {
    inner: ByteStream,
    /// `None` once the stream has ended or failed.
    meter: Option<Meter>,
    receipt: Receipt,
}

impl Stream for Metered {
    type Item = Result<Bytes, StorageError>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Self::Item>> {
        if self.meter.is_none() {
            return Poll::Ready(None);
        }
        let polled = self.inner.poll_next_unpin(cx);
        match polled {
            Poll::Ready(Some(Ok(chunk))) => {
                bytes_counter("in").inc_by(chunk.len() as u64);
                let meter = self
                    .meter
                    .as_mut()
                    .expect("checked above: the stream is going on");
                match meter.feed(&chunk) {
                    Ok(()) => Poll::Ready(Some(Ok(chunk))),
                    Err(e) => self.stop(e),
                }
            }
            Poll::Ready(Some(Err(e))) => self.stop(e),
            Poll::Ready(None) => {
                let measured = self.meter.take().map(Meter::finish);
                *self
                    .receipt
                    .0
                    .lock()
                    .expect("the receipt lock is never poisoned") = measured;
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Metered {
    fn stop(&mut self, e: StorageError) -> Poll<Option<Result<Bytes, StorageError>>> {
        self.meter = None;
        Poll::Ready(Some(Err(e)))
    }
}

/// `daedalus_file_bytes_total` for one direction (`in` or `out`).
pub(crate) fn bytes_counter(direction: &str) -> prometheus::IntCounter {
    crate::metrics::get()
        .file_bytes
        .with_label_values(&[direction])
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::stream;

    fn chunks(parts: &[&'static [u8]]) -> ByteStream {
        let items: Vec<Result<Bytes, StorageError>> =
            parts.iter().map(|p| Ok(Bytes::from_static(p))).collect();
        stream::iter(items).boxed()
    }

    #[tokio::test]
    async fn size_and_checksum_come_out_at_the_end() {
        let (mut body, receipt) = metered(chunks(&[b"hello ", b"world"]), 11);
        assert_eq!(receipt.measured(), None);
        while let Some(chunk) = body.next().await {
            chunk.expect("within the limit");
        }
        let measured = receipt.measured().expect("measured");
        assert_eq!(measured.size, 11);
        assert_eq!(
            measured.sha256,
            "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
        );
    }

    #[tokio::test]
    async fn bytes_past_the_limit_fail_and_stop_the_stream() {
        let (mut body, receipt) = metered(chunks(&[b"1234", b"5678", b"9"]), 6);
        assert!(body.next().await.expect("first").is_ok());
        assert!(matches!(
            body.next().await,
            Some(Err(StorageError::TooLarge))
        ));
        assert!(body.next().await.is_none());
        assert_eq!(receipt.measured(), None);
    }

    #[test]
    fn an_empty_upload_has_the_empty_checksum() {
        let measured = Meter::new(0).finish();
        assert_eq!(measured.size, 0);
        assert_eq!(measured.sha256, crate::storage::s3::sign::EMPTY_SHA256);
    }
}
