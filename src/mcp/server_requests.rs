//! Answers to requests the server sends the client.
//!
//! `ping` is always answered; `elicitation/create` only when the client
//! declared it (then the form is accepted with its schema's defaults, which
//! is what an unattended client can honestly do); anything else is -32601,
//! since the client declared no other capability.

use serde_json::{Map, Value, json};

use super::jsonrpc::{self, METHOD_NOT_FOUND};
use super::protocol::ClientFeatures;

/// The full JSON-RPC answer to one server request.
pub fn answer(id: Value, method: &str, params: &Value, features: &ClientFeatures) -> Value {
    match method {
        "ping" => jsonrpc::result_response(id, json!({})),
        "elicitation/create" if features.elicitation_with_defaults => {
            jsonrpc::result_response(id, accept_with_defaults(params))
        }
        _ => jsonrpc::error_response(id, METHOD_NOT_FOUND, "Method not found"),
    }
}

fn accept_with_defaults(params: &Value) -> Value {
    let properties = params
        .pointer("/requestedSchema/properties")
        .and_then(Value::as_object);
    let content: Map<String, Value> = properties
        .into_iter()
        .flatten()
        .filter_map(|(name, schema)| Some((name.clone(), schema.get("default")?.clone())))
        .collect();
    json!({"action": "accept", "content": content})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ping_is_answered_with_an_empty_result() {
        let answer = answer(json!(5), "ping", &Value::Null, &ClientFeatures::default());
        assert_eq!(answer, json!({"jsonrpc": "2.0", "id": 5, "result": {}}));
    }

    #[test]
    fn undeclared_methods_are_method_not_found() {
        let features = ClientFeatures::default();
        for method in ["sampling/createMessage", "roots/list", "elicitation/create"] {
            let answer = answer(json!("x"), method, &json!({}), &features);
            assert_eq!(answer["error"]["code"], METHOD_NOT_FOUND, "{method}");
            assert_eq!(answer["id"], "x");
        }
    }

    #[test]
    fn elicitation_is_accepted_with_schema_defaults() {
        let params = json!({"message": "?", "requestedSchema": {"type": "object", "properties": {
            "name": {"type": "string", "default": "Ada"},
            "age": {"type": "integer", "default": 36},
            "colour": {"type": "string", "enum": ["red"], "default": "red"},
            "nickname": {"type": "string"}
        }}});
        let features = ClientFeatures {
            elicitation_with_defaults: true,
        };
        let answer = answer(json!(1), "elicitation/create", &params, &features);
        assert_eq!(
            answer["result"],
            json!({"action": "accept", "content": {"name": "Ada", "age": 36, "colour": "red"}})
        );
    }
}
