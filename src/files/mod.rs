//! Pure pieces of the file upload and download handlers: file names, `Content-Disposition`,
//! `Range`, `multipart/form-data` and upload metering. None of them does I/O, so tests,
//! benchmarks and fuzz targets call exactly what the handlers call.

pub mod agent_output;
pub mod attachments;
pub mod name;
