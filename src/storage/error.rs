//! What can go wrong when moving bytes to or from storage, and what it means.
//!
//! The HTTP layer maps each variant to a status (see [`StorageError::kind`] for the
//! client-facing reason): `NotFound` is a 404, `TooLarge` a 413, `Unavailable` a 503,
//! `BodyError` means the client went away (nothing to answer), everything else is a 5xx.

use std::fmt;

/// An error from a [`Store`](super::Store) operation.
#[derive(Debug)]
pub enum StorageError {
    /// No object under that key.
    NotFound,
    /// The store cannot be reached or keeps failing (connection refused, timeouts, 5xx after
    /// the retries): the request may succeed later.
    Unavailable(String),
    /// The body is bigger than allowed (the upload limit, or what S3 can hold in one object).
    TooLarge,
    /// The key is not one this service would make (empty part, `..`, leading `/`).
    InvalidKey(String),
    /// S3 answered with an error document, surfaced with its code.
    Service {
        code: String,
        message: String,
        status: u16,
    },
    /// A local file operation failed.
    Io(std::io::Error),
    /// The body being stored failed (the client disconnected, or it had fewer or more bytes
    /// than announced).
    BodyError(String),
    /// S3 answered something this client does not understand.
    Protocol(String),
}

impl StorageError {
    /// A snake_case reason for logs and the API's error body.
    pub fn kind(&self) -> &'static str {
        match self {
            StorageError::NotFound => "not_found",
            StorageError::Unavailable(_) => "storage_unavailable",
            StorageError::TooLarge => "too_large",
            StorageError::InvalidKey(_) => "invalid_key",
            StorageError::Service { .. } => "storage_error",
            StorageError::Io(_) => "storage_io_error",
            StorageError::BodyError(_) => "body_error",
            StorageError::Protocol(_) => "storage_protocol_error",
        }
    }

    /// The S3 error code, when S3 gave one.
    pub fn s3_code(&self) -> Option<&str> {
        match self {
            StorageError::Service { code, .. } => Some(code),
            _ => None,
        }
    }
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StorageError::NotFound => f.write_str("object not found"),
            StorageError::Unavailable(why) => write!(f, "storage unavailable: {why}"),
            StorageError::TooLarge => f.write_str("body too large"),
            StorageError::InvalidKey(key) => write!(f, "invalid object key {key:?}"),
            StorageError::Service {
                code,
                message,
                status,
            } => write!(f, "S3 error {code} ({status}): {message}"),
            StorageError::Io(e) => write!(f, "storage I/O error: {e}"),
            StorageError::BodyError(why) => write!(f, "body failed: {why}"),
            StorageError::Protocol(why) => write!(f, "unexpected S3 answer: {why}"),
        }
    }
}

impl std::error::Error for StorageError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StorageError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<std::io::Error> for StorageError {
    fn from(e: std::io::Error) -> StorageError {
        StorageError::Io(e)
    }
}
