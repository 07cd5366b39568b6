//! Daedalus: a self-hosted workspace for chatting with FastAgent agents over MCP.
//!
//! The binary in `main.rs` is a thin shell over this library, so that tests,
//! benchmarks and fuzz targets call exactly the code the server runs.
pub mod mcp;
pub mod metrics;
