//! Criterion benchmarks of the code Daedalus runs on every request or every MCP message,
//! each called exactly as the server calls it. `cargo bench --bench hot_paths` runs them;
//! `cargo bench --bench hot_paths -- sse` runs the ones whose name contains `sse`.
//!
//! Inputs are fixed (captured FastAgent streams under `bench/fixtures/`, fixed ids and a
//! fixed clock), so results stay comparable between commits.

mod files;
mod http;
mod mcp;
mod metrics;
mod storage;

criterion::criterion_main!(
    http::benches,
    mcp::benches,
    storage::benches,
    files::benches,
    metrics::benches
);
