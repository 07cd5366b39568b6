//! The API handlers, one file per resource. `dispatch` calls one handler per route;
//! identity is settled here for every route that needs a user.

pub mod conversations;
pub mod files;
pub mod health;
pub mod me;
pub mod messages;
pub mod paging;
pub mod static_files;
pub mod telemetry;
pub mod validate;
pub mod workspaces;

use std::sync::Arc;

use ::http::Method;

use crate::app::App;
use crate::error::Result;
use crate::http::route::Route;
use crate::http::server::RequestContext;
use crate::http::{Request, Response};
use crate::runs;

/// Calls the handler of `route`; the method is already known to be allowed.
pub async fn dispatch(
    app: &Arc<App>,
    route: Route,
    req: Request,
    ctx: &mut RequestContext,
) -> Result<Response> {
    match route {
        Route::Health => health::handle_health(),
        Route::Ready => health::handle_ready(app).await,
        Route::Metrics => health::handle_metrics(),
        Route::Static => static_files::handle_static(app, &req).await,
        _ => {
            let user = app.identify(req.headers(), ctx).await?;
            dispatch_user(app, route, req, &user).await
        }
    }
}

async fn dispatch_user(
    app: &Arc<App>,
    route: Route,
    req: Request,
    user: &crate::app::User,
) -> Result<Response> {
    let m = req.method().clone();
    let reading = m == Method::GET || m == Method::HEAD;
    match route {
        Route::Me => me::handle_get_me(app, user).await,
        Route::Preferences if reading => me::handle_get_preferences(app, user).await,
        Route::Preferences => me::handle_put_preferences(app, user, req).await,
        Route::Workspaces if reading => workspaces::handle_list(app, user, &req).await,
        Route::Workspaces => workspaces::handle_create(app, user, req).await,
        Route::Workspace { ws } if reading => workspaces::handle_get(app, user, ws).await,
        Route::Workspace { ws } if m == Method::PATCH => {
            workspaces::handle_update(app, user, ws, req).await
        }
        Route::Workspace { ws } => workspaces::handle_delete(app, user, ws).await,
        Route::Conversations { ws } if reading => {
            conversations::handle_list(app, user, ws, &req).await
        }
        Route::Conversations { ws } => conversations::handle_create(app, user, ws, req).await,
        Route::Conversation { ws, c } if reading => {
            conversations::handle_get(app, user, ws, c).await
        }
        Route::Conversation { ws, c } if m == Method::PATCH => {
            conversations::handle_update(app, user, ws, c, req).await
        }
        Route::Conversation { ws, c } => conversations::handle_delete(app, user, ws, c).await,
        Route::Messages { ws, c } if reading => messages::handle_list(app, user, ws, c, &req).await,
        Route::Messages { ws, c } => runs::handle_send(app, user, ws, c, req).await,
        Route::RunEvents { ws, c, r } => runs::handle_events(app, user, ws, c, r, &req).await,
        Route::RunCancel { ws, c, r } => runs::handle_cancel(app, user, ws, c, r).await,
        Route::Agents { ws } => workspaces::handle_agents(app, user, ws).await,
        Route::Files { ws } if reading => files::handle_list(app, user, ws, &req).await,
        Route::Files { ws } => files::handle_upload(app, user, ws, req).await,
        Route::File { ws, f } if reading => files::handle_get(app, user, ws, f).await,
        Route::File { ws, f } => files::handle_delete(app, user, ws, f).await,
        Route::FileContent { ws, f } => files::handle_content(app, user, ws, f, &req).await,
        Route::Telemetry => telemetry::handle_telemetry(app, &user.name, req).await,
        Route::Health | Route::Ready | Route::Metrics | Route::Static => {
            unreachable!("answered before identification")
        }
    }
}
