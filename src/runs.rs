//! Agent runs (being built).
use uuid::Uuid;

use crate::app::{App, User};
use crate::error::{Error, Result};
use crate::http::{Request, Response};

pub async fn handle_send(_: &App, _: &User, _: Uuid, _: Uuid, _: Request) -> Result<Response> {
    Err(Error::unavailable("not_built", "runs are being built"))
}
pub async fn handle_events(
    _: &App,
    _: &User,
    _: Uuid,
    _: Uuid,
    _: Uuid,
    _: &Request,
) -> Result<Response> {
    Err(Error::unavailable("not_built", "runs are being built"))
}
pub async fn handle_cancel(_: &App, _: &User, _: Uuid, _: Uuid, _: Uuid) -> Result<Response> {
    Err(Error::unavailable("not_built", "runs are being built"))
}
