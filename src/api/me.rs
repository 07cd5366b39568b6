//! The signed-in user and their preferences (theme, default workspace).

use ::http::StatusCode;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::app::{App, User};
use crate::error::{Error, Result};
use crate::http::{self, Request, Response};

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preferences {
    #[serde(default = "system")]
    pub theme: String,
    #[serde(default)]
    pub default_workspace_id: Option<Uuid>,
}

fn system() -> String {
    "system".into()
}

async fn load_preferences(app: &App, user: &User) -> Result<Preferences> {
    let db = app.db.get().await?;
    let row = db
        .query_opt(
            "SELECT theme, default_workspace_id FROM user_preferences WHERE user_id = $1",
            &[&user.id],
        )
        .await?;
    Ok(row.map_or_else(
        || Preferences {
            theme: system(),
            default_workspace_id: None,
        },
        |r| Preferences {
            theme: r.get(0),
            default_workspace_id: r.get(1),
        },
    ))
}

pub async fn handle_get_me(app: &App, user: &User) -> Result<Response> {
    let prefs = load_preferences(app, user).await?;
    let body = serde_json::json!({"id": user.id, "name": user.name, "preferences": prefs});
    http::json(StatusCode::OK, &body)
}

pub async fn handle_get_preferences(app: &App, user: &User) -> Result<Response> {
    http::json(StatusCode::OK, &load_preferences(app, user).await?)
}

/// Replaces the preferences; a default workspace must be one of the user's.
pub async fn handle_put_preferences(app: &App, user: &User, req: Request) -> Result<Response> {
    let prefs: Preferences = http::read_json(req).await?;
    if !["light", "dark", "system"].contains(&prefs.theme.as_str()) {
        return Err(Error::bad_request(
            "invalid_theme",
            "theme must be light, dark or system",
        ));
    }
    if let Some(ws) = prefs.default_workspace_id {
        crate::api::workspaces::check_owner(app, user, ws)
            .await
            .map_err(|_| {
                Error::bad_request(
                    "invalid_workspace",
                    "default_workspace_id is not one of your workspaces",
                )
            })?;
    }
    let db = app.db.get().await?;
    db.execute(
        "INSERT INTO user_preferences (user_id, theme, default_workspace_id) VALUES ($1, $2, $3)
         ON CONFLICT (user_id) DO UPDATE SET theme = $2, default_workspace_id = $3, updated_at = now()",
        &[&user.id, &prefs.theme, &prefs.default_workspace_id],
    )
    .await?;
    http::json(StatusCode::OK, &prefs)
}
