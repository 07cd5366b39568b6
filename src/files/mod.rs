//! Pure pieces of the file upload and download handlers: file names, `Content-Disposition`,
//! `Range`, `multipart/form-data` and upload metering. None of them does I/O (the stream
//! adapters only pass chunks along), so tests, benchmarks and fuzz targets call exactly
//! what the handlers call.

pub mod disposition;
pub mod download;
pub mod multipart;
pub mod name;
pub mod range;
pub mod upload;
