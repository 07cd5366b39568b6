//! Files attached to a message, as the agent is told of them: small text files inline
//! within a budget, every other file described by name, type and size.

use uuid::Uuid;

use crate::app::App;
use crate::error::Result;

/// Most attached text sent inline with one message.
const INLINE_BUDGET: u64 = 64 * 1024;

/// True for types whose bytes a language model can read as text.
pub fn is_text(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence.starts_with("text/")
        || matches!(
            essence.as_str(),
            "application/json"
                | "application/xml"
                | "application/x-yaml"
                | "application/yaml"
                | "application/toml"
                | "application/javascript"
                | "application/sql"
        )
}

/// The attachment section of a message.
pub async fn describe(app: &App, ws: Uuid, file_ids: &[Uuid]) -> Result<String> {
    let db = app.db.get().await?;
    let rows = db
        .query(
            "SELECT id, name, content_type, size, storage_key FROM files
             WHERE workspace_id = $1 AND id = ANY($2)",
            &[&ws, &file_ids],
        )
        .await?;
    drop(db);
    let mut budget = INLINE_BUDGET;
    let mut out = String::from("[Attached files]");
    for row in &rows {
        let name: String = row.get(1);
        let content_type: String = row.get(2);
        let size = row.get::<_, i64>(3).max(0) as u64;
        let key: String = row.get(4);
        out.push_str(&format!("\n- {name} ({content_type}, {size} bytes)"));
        if is_text(&content_type)
            && size <= budget
            && let Some(text) = read_text(app, &key).await
        {
            budget -= size;
            out.push_str(&format!(":\n~~~~\n{text}\n~~~~"));
            continue;
        }
        out.push_str(": not included; ask the person if you need its contents");
    }
    Ok(out)
}

/// A small text file's contents, if it is readable UTF-8.
async fn read_text(app: &App, key: &str) -> Option<String> {
    use futures_util::TryStreamExt;
    let object = app.store.get(key, None).await.ok()?;
    let chunks: Vec<bytes::Bytes> = object.body.try_collect().await.ok()?;
    String::from_utf8(chunks.concat()).ok()
}
