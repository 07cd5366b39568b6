//! Conversations of a workspace: listed most recently active first, found by title,
//! archived or deleted (deleting removes their messages and runs).

use ::http::StatusCode;
use serde::Deserialize;
use tokio_postgres::Row;
use uuid::Uuid;

use super::paging::{Key, Window};
use super::validate;
use super::workspaces::{check_owner, rfc3339};
use crate::app::{App, User};
use crate::error::{Error, Result};
use crate::http::{self, Request, Response, query};

const COLUMNS: &str =
    "c.id, c.workspace_id, c.title, c.agent, c.archived, c.created_at, c.updated_at";

fn to_json(row: &Row) -> serde_json::Value {
    serde_json::json!({
        "id": row.get::<_, Uuid>(0),
        "workspace_id": row.get::<_, Uuid>(1),
        "title": row.get::<_, String>(2),
        "agent": row.get::<_, Option<String>>(3),
        "archived": row.get::<_, bool>(4),
        "created_at": rfc3339(row.get(5)),
        "updated_at": rfc3339(row.get(6)),
    })
}

/// Loads one conversation of a workspace of this user; anything else is 404.
pub async fn load_row(app: &App, user: &User, ws: Uuid, c: Uuid) -> Result<Row> {
    let db = app.db.get().await?;
    let sql = format!(
        "SELECT {COLUMNS} FROM conversations c JOIN workspaces w ON w.id = c.workspace_id
         WHERE c.id = $1 AND c.workspace_id = $2 AND w.owner_id = $3"
    );
    let stmt = db.prepare_cached(&sql).await?;
    db.query_opt(&stmt, &[&c, &ws, &user.id])
        .await?
        .ok_or(Error::NotFound)
}

/// Which conversations a list shows.
enum Archived {
    Hide,
    Only,
    All,
}

fn archived_filter(value: Option<&str>) -> Result<Archived> {
    match value {
        None | Some("false") => Ok(Archived::Hide),
        Some("true") => Ok(Archived::Only),
        Some("all") => Ok(Archived::All),
        Some(_) => Err(Error::bad_request(
            "invalid_query",
            "archived must be true, false or all",
        )),
    }
}

/// `?q=` finds titles containing the text; `?archived=false|true|all` (default false).
pub async fn handle_list(app: &App, user: &User, ws: Uuid, req: &Request) -> Result<Response> {
    let pairs = query::parse(req.uri().query())?;
    let window = Window::from_pairs(&pairs)?;
    let search = query::get(&pairs, "q")
        .map(|q| validate::text("q", q, 200, true))
        .transpose()?;
    let pattern = search
        .filter(|q| !q.is_empty())
        .map(|q| format!("%{}%", like_escape(&q)));
    let archived = match archived_filter(query::get(&pairs, "archived"))? {
        Archived::Hide => Some(false),
        Archived::Only => Some(true),
        Archived::All => None,
    };
    check_owner(app, user, ws).await?;
    let db = app.db.get().await?;
    let sql = format!(
        "SELECT {COLUMNS} FROM conversations c
         WHERE c.workspace_id = $1 AND (c.updated_at, c.id) < ($2, $3)
           AND ($4::text IS NULL OR c.title ILIKE $4)
           AND ($5::boolean IS NULL OR c.archived = $5)
         ORDER BY c.updated_at DESC, c.id DESC LIMIT $6"
    );
    let (after, fetch) = (&window.after, window.fetch());
    let rows = db
        .query(
            &sql,
            &[&ws, &after.at, &after.id, &pattern, &archived, &fetch],
        )
        .await?;
    window.respond(
        rows,
        |r| Key {
            at: r.get(6),
            id: r.get(0),
        },
        to_json,
    )
}

fn like_escape(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConversationInput {
    title: Option<String>,
    #[serde(default, deserialize_with = "validate::nullable")]
    agent: Option<Option<String>>,
    archived: Option<bool>,
}

const DEFAULT_TITLE: &str = "New conversation";

pub async fn handle_create(app: &App, user: &User, ws: Uuid, req: Request) -> Result<Response> {
    let input: ConversationInput = http::read_json(req).await?;
    let title = validate::text(
        "title",
        input.title.as_deref().unwrap_or(DEFAULT_TITLE),
        500,
        false,
    )?;
    let agent = input
        .agent
        .flatten()
        .map(|a| validate::text("agent", &a, 200, false))
        .transpose()?;
    check_owner(app, user, ws).await?;
    let db = app.db.get().await?;
    let sql = format!(
        "INSERT INTO conversations AS c (id, workspace_id, title, agent, archived)
         VALUES ($1, $2, $3, $4, $5) RETURNING {COLUMNS}"
    );
    let archived = input.archived.unwrap_or(false);
    let row = db
        .query_one(&sql, &[&Uuid::new_v4(), &ws, &title, &agent, &archived])
        .await?;
    http::json(StatusCode::CREATED, &to_json(&row))
}

pub async fn handle_get(app: &App, user: &User, ws: Uuid, c: Uuid) -> Result<Response> {
    http::json(StatusCode::OK, &to_json(&load_row(app, user, ws, c).await?))
}

pub async fn handle_update(
    app: &App,
    user: &User,
    ws: Uuid,
    c: Uuid,
    req: Request,
) -> Result<Response> {
    let input: ConversationInput = http::read_json(req).await?;
    let title = input
        .title
        .map(|t| validate::text("title", &t, 500, false))
        .transpose()?;
    let agent = match input.agent {
        None => None,
        Some(a) => Some(
            a.map(|a| validate::text("agent", &a, 200, false))
                .transpose()?,
        ),
    };
    load_row(app, user, ws, c).await?;
    let db = app.db.get().await?;
    let sql = format!(
        "UPDATE conversations AS c SET
           title = coalesce($2, c.title),
           agent = CASE WHEN $3 THEN $4 ELSE c.agent END,
           archived = coalesce($5, c.archived),
           updated_at = now()
         WHERE c.id = $1 RETURNING {COLUMNS}"
    );
    let set_agent = agent.is_some();
    let agent = agent.flatten();
    let row = db
        .query_opt(&sql, &[&c, &title, &set_agent, &agent, &input.archived])
        .await?
        .ok_or(Error::NotFound)?;
    http::json(StatusCode::OK, &to_json(&row))
}

/// Deletes the conversation with its messages and runs; a run still going is stopped.
pub async fn handle_delete(app: &App, user: &User, ws: Uuid, c: Uuid) -> Result<Response> {
    let db = app.db.get().await?;
    let row = db
        .query_one(
            "WITH gone AS (
                DELETE FROM conversations c USING workspaces w
                WHERE c.id = $1 AND c.workspace_id = $2 AND w.id = c.workspace_id AND w.owner_id = $3
                RETURNING c.id)
             SELECT (SELECT count(*) FROM gone),
                    array(SELECT r.id FROM runs r JOIN gone ON r.conversation_id = gone.id
                          WHERE r.status = 'running')",
            &[&c, &ws, &user.id],
        )
        .await?;
    drop(db);
    if row.get::<_, i64>(0) == 0 {
        return Err(Error::NotFound);
    }
    crate::runs::cancel_all(app, &row.get::<_, Vec<Uuid>>(1)).await;
    Ok(http::no_content())
}
