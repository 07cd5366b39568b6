//! Daedalus: a self-hosted workspace for chatting with FastAgent agents over MCP.
//!
//! The binary in `main.rs` is a thin shell over this library, so that tests,
//! benchmarks and fuzz targets call exactly the code the server runs.

pub mod agents;
pub mod api;
pub mod app;
pub mod config;
pub mod db;
pub mod error;
pub mod files;
pub mod http;
pub mod identity;
pub mod logging;
pub mod mcp;
pub mod metrics;
pub mod runs;
pub mod storage;
