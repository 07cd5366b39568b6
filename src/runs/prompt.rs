//! What an agent is sent for one turn: the person's message, their attached files (text
//! inline within a budget, others described), and, when the agent's session has no
//! memory of the conversation, the stored transcript in front of it.

use serde_json::Value;
use uuid::Uuid;

use crate::app::App;
use crate::error::Result;
use crate::mcp::Content;

/// Most transcript text sent with one turn; older turns beyond it are left out.
const TRANSCRIPT_BUDGET: usize = 32 * 1024;
/// Most earlier messages considered for the transcript.
const TRANSCRIPT_MESSAGES: i64 = 40;

/// The message with its attachments described after it.
pub async fn message(app: &App, ws: Uuid, content: &str, file_ids: &[Uuid]) -> Result<String> {
    if file_ids.is_empty() {
        return Ok(content.to_string());
    }
    let attachments = crate::files::attachments::describe(app, ws, file_ids).await?;
    Ok(format!("{content}\n\n{attachments}"))
}

/// The transcript of earlier turns followed by `message`, or `None` when there are none.
pub async fn with_transcript(
    app: &App,
    c: Uuid,
    before_seq: i64,
    message: &str,
) -> Result<Option<String>> {
    let db = app.db.get().await?;
    let rows = db
        .query(
            "SELECT role, content, agent FROM messages
             WHERE conversation_id = $1 AND seq < $2 AND status = 'complete' AND content <> ''
             ORDER BY seq DESC LIMIT $3",
            &[&c, &before_seq, &TRANSCRIPT_MESSAGES],
        )
        .await?;
    let turns: Vec<(String, String)> = rows
        .iter()
        .map(|r| {
            let role: &str = r.get(0);
            let speaker = if role == "user" {
                "User".to_string()
            } else {
                "Assistant".to_string()
            };
            (speaker, r.get::<_, String>(1))
        })
        .collect();
    Ok(transcript(&turns, message))
}

/// Newest turns first in `turns`; the text keeps them in conversation order, within budget.
pub fn transcript(turns: &[(String, String)], message: &str) -> Option<String> {
    let mut kept = Vec::new();
    let mut used = 0;
    for (speaker, text) in turns {
        let cost = speaker.len() + text.len() + 4;
        if used + cost > TRANSCRIPT_BUDGET {
            break;
        }
        used += cost;
        kept.push(format!("{speaker}: {text}"));
    }
    if kept.is_empty() {
        return None;
    }
    kept.reverse();
    let skipped = turns.len() - kept.len();
    let note = if skipped > 0 {
        format!(" ({skipped} older turns left out)")
    } else {
        String::new()
    };
    Some(format!(
        "[Earlier in this conversation{note}]\n{}\n\n[The new message]\n{message}",
        kept.join("\n\n")
    ))
}

/// The answer's content blocks as stored: binary data (images, audio, blob resources)
/// is saved as workspace files and replaced by a reference to the file.
pub async fn keep_parts(app: &App, ws: Uuid, content: &[Content]) -> Result<(Value, Vec<Uuid>)> {
    let mut parts = Vec::with_capacity(content.len());
    let mut file_ids = Vec::new();
    for (i, block) in content.iter().enumerate() {
        let stored = crate::files::agent_output::store(app, ws, i, block).await?;
        if let Some(id) = stored.file_id {
            file_ids.push(id);
        }
        parts.push(stored.part);
    }
    Ok((Value::Array(parts), file_ids))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transcript_reads_in_order_and_ends_with_the_new_message() {
        let turns = vec![
            ("Assistant".to_string(), "hello".to_string()),
            ("User".to_string(), "hi".to_string()),
        ];
        let text = transcript(&turns, "how are you").expect("has turns");
        let hi = text.find("User: hi").expect("user turn");
        let hello = text.find("Assistant: hello").expect("assistant turn");
        assert!(hi < hello);
        assert!(text.ends_with("how are you"));
        assert_eq!(transcript(&[], "x"), None);
    }

    #[test]
    fn a_long_history_is_cut_to_the_budget_keeping_the_newest() {
        let long = "x".repeat(TRANSCRIPT_BUDGET / 2);
        let turns: Vec<(String, String)> =
            (0..5).map(|_| ("User".to_string(), long.clone())).collect();
        let text = transcript(&turns, "m").expect("has turns");
        assert!(text.len() < TRANSCRIPT_BUDGET + 200);
        assert!(text.contains("older turns left out"));
    }
}
