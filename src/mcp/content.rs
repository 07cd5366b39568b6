//! The content blocks of a tool result, kept whole.
//!
//! Text, images, audio, embedded resources and resource links become typed
//! values; anything else (a newer content type, or a block missing a
//! required field) is kept as the JSON the server sent, so nothing is lost
//! and the caller can show it as unknown. [`Content`] serializes back to the
//! MCP JSON shape.

use serde::{Serialize, Serializer};
use serde_json::{Map, Value, json};

#[derive(Debug, Clone, PartialEq)]
pub enum Content {
    Text {
        text: String,
    },
    /// `data` is base64, as sent.
    Image {
        data: String,
        mime_type: String,
    },
    Audio {
        data: String,
        mime_type: String,
    },
    /// An embedded resource: `text` or `blob` (base64) holds its contents.
    Resource {
        uri: String,
        mime_type: Option<String>,
        text: Option<String>,
        blob: Option<String>,
    },
    ResourceLink {
        uri: String,
        name: Option<String>,
        mime_type: Option<String>,
        description: Option<String>,
    },
    Unknown(Value),
}

impl Content {
    /// Reads one content block; never fails, unknown shapes become [`Content::Unknown`].
    pub fn from_value(value: Value) -> Content {
        typed(&value).unwrap_or(Content::Unknown(value))
    }

    pub fn to_value(&self) -> Value {
        match self {
            Content::Text { text } => json!({"type": "text", "text": text}),
            Content::Image { data, mime_type } => {
                json!({"type": "image", "data": data, "mimeType": mime_type})
            }
            Content::Audio { data, mime_type } => {
                json!({"type": "audio", "data": data, "mimeType": mime_type})
            }
            Content::Resource {
                uri,
                mime_type,
                text,
                blob,
            } => {
                let mut resource = Map::new();
                resource.insert("uri".into(), json!(uri));
                insert_some(&mut resource, "mimeType", mime_type);
                insert_some(&mut resource, "text", text);
                insert_some(&mut resource, "blob", blob);
                json!({"type": "resource", "resource": resource})
            }
            Content::ResourceLink {
                uri,
                name,
                mime_type,
                description,
            } => {
                let mut link = Map::new();
                link.insert("type".into(), json!("resource_link"));
                link.insert("uri".into(), json!(uri));
                insert_some(&mut link, "name", name);
                insert_some(&mut link, "mimeType", mime_type);
                insert_some(&mut link, "description", description);
                Value::Object(link)
            }
            Content::Unknown(value) => value.clone(),
        }
    }
}

impl Serialize for Content {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_value().serialize(serializer)
    }
}

fn insert_some(map: &mut Map<String, Value>, key: &str, value: &Option<String>) {
    if let Some(value) = value {
        map.insert(key.into(), json!(value));
    }
}

fn string(value: &Value, key: &str) -> Option<String> {
    value.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn typed(value: &Value) -> Option<Content> {
    let content = match value.get("type")?.as_str()? {
        "text" => Content::Text {
            text: string(value, "text")?,
        },
        "image" => Content::Image {
            data: string(value, "data")?,
            mime_type: string(value, "mimeType")?,
        },
        "audio" => Content::Audio {
            data: string(value, "data")?,
            mime_type: string(value, "mimeType")?,
        },
        "resource" => {
            let resource = value.get("resource")?;
            Content::Resource {
                uri: string(resource, "uri")?,
                mime_type: string(resource, "mimeType"),
                text: string(resource, "text"),
                blob: string(resource, "blob"),
            }
        }
        "resource_link" => Content::ResourceLink {
            uri: string(value, "uri")?,
            name: string(value, "name"),
            mime_type: string(value, "mimeType"),
            description: string(value, "description"),
        },
        _ => return None,
    };
    Some(content)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(value: Value) -> Content {
        let content = Content::from_value(value.clone());
        assert_eq!(serde_json::to_value(&content).expect("serializable"), value);
        content
    }

    #[test]
    fn every_known_kind_round_trips() {
        let text = round_trip(json!({"type": "text", "text": "hi"}));
        assert_eq!(text, Content::Text { text: "hi".into() });
        round_trip(json!({"type": "image", "data": "iVBO", "mimeType": "image/png"}));
        round_trip(json!({"type": "audio", "data": "UklG", "mimeType": "audio/wav"}));
        round_trip(json!({"type": "resource",
            "resource": {"uri": "file:///a.txt", "mimeType": "text/plain", "text": "a"}}));
        round_trip(json!({"type": "resource", "resource": {"uri": "file:///b", "blob": "AAE="}}));
        let link = round_trip(json!({"type": "resource_link", "uri": "file:///c", "name": "c"}));
        assert!(matches!(
            link,
            Content::ResourceLink {
                name: Some(_),
                mime_type: None,
                ..
            }
        ));
    }

    #[test]
    fn unknown_types_and_incomplete_blocks_are_kept_as_sent() {
        let future = json!({"type": "hologram", "frames": [1, 2]});
        assert_eq!(round_trip(future.clone()), Content::Unknown(future));
        let broken = json!({"type": "image", "data": "x"});
        assert_eq!(round_trip(broken.clone()), Content::Unknown(broken));
    }
}
