//! Files produced by agents: binary content in an answer (images, audio, embedded
//! resources with a blob) is stored as a workspace file like an upload, and the stored
//! answer keeps a reference to that file instead of the bytes.

use base64::Engine;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::app::App;
use crate::error::{Error, Result};
use crate::mcp::Content;

/// One content block as stored, and the file it became, if any.
pub struct StoredPart {
    pub part: Value,
    pub file_id: Option<Uuid>,
}

/// Stores the block's bytes, if it has any, and returns the block to keep.
pub async fn store(app: &App, ws: Uuid, index: usize, block: &Content) -> Result<StoredPart> {
    let (data, mime, name) = match block {
        Content::Image { data, mime_type } => (data, mime_type.clone(), format!("image-{index}")),
        Content::Audio { data, mime_type } => (data, mime_type.clone(), format!("audio-{index}")),
        Content::Resource {
            uri,
            mime_type,
            blob: Some(blob),
            ..
        } => {
            let name = uri
                .rsplit('/')
                .next()
                .filter(|n| !n.is_empty())
                .unwrap_or("resource");
            (
                blob,
                mime_type
                    .clone()
                    .unwrap_or_else(|| "application/octet-stream".into()),
                name.to_string(),
            )
        }
        other => {
            return Ok(StoredPart {
                part: other.to_value(),
                file_id: None,
            });
        }
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .map_err(|_| Error::BadGateway {
            code: "invalid_agent_output",
            message: "the agent sent binary content that is not base64".into(),
        })?;
    let name = with_extension(&name, &mime);
    let file =
        crate::api::files::store_bytes(app, ws, None, &name, &mime, bytes.into(), "agent").await?;
    let mut part = block.to_value();
    strip_bytes(&mut part);
    part["file_id"] = json!(file);
    Ok(StoredPart {
        part,
        file_id: Some(file),
    })
}

/// Removes the base64 payload from a stored block.
fn strip_bytes(part: &mut Value) {
    if let Some(obj) = part.as_object_mut() {
        obj.remove("data");
        if let Some(resource) = obj.get_mut("resource").and_then(Value::as_object_mut) {
            resource.remove("blob");
        }
    }
}

fn with_extension(name: &str, mime: &str) -> String {
    if name.contains('.') {
        return name.to_string();
    }
    let ext = match mime.split(';').next().unwrap_or("").trim() {
        "image/png" => "png",
        "image/jpeg" => "jpg",
        "image/gif" => "gif",
        "image/webp" => "webp",
        "audio/wav" | "audio/x-wav" => "wav",
        "audio/mpeg" => "mp3",
        "application/pdf" => "pdf",
        _ => "bin",
    };
    format!("{name}.{ext}")
}
