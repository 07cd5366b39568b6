//! Agent discovery (being built).
use crate::api::workspaces::Workspace;
use crate::app::App;
use crate::error::{Error, Result};
use crate::http::Response;

pub async fn list_agents(_: &App, _: &Workspace) -> Result<Response> {
    Err(Error::unavailable("not_built", "agents are being built"))
}
