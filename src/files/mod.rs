//! Files in workspaces. The pure pieces of the upload and download handlers (file names,
//! `Content-Disposition`, `Range`, `multipart/form-data`, upload metering) do no I/O of
//! their own (the stream adapters only pass chunks along), so tests, benchmarks and fuzz
//! targets call exactly what the handlers call. `attachments` and `agent_output` connect
//! files to agent runs.

pub mod agent_output;
pub mod attachments;
pub mod disposition;
pub mod download;
pub mod multipart;
pub mod name;
pub mod range;
pub mod upload;
