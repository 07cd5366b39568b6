//! The MCP client: how Daedalus talks to FastAgent agent servers over
//! Streamable HTTP. This first part holds the pure parsers over bytes.

pub mod jsonrpc;
pub mod sse;
