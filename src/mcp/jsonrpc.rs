//! JSON-RPC 2.0 framing for MCP: building messages, classifying what a
//! server sends, and routing each response to the request that waits for it.
//!
//! Ids are kept exactly as they were sent, with their JSON type: a reply
//! with id `"1"` does not answer the request with id `1`. Requests from the
//! server are echoed back with their id untouched (whatever its type).

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::{Map, Value, json};
use tokio::sync::oneshot;

/// JSON-RPC "method not found".
pub const METHOD_NOT_FOUND: i64 = -32601;
/// JSON-RPC "invalid params".
pub const INVALID_PARAMS: i64 = -32602;

/// A request id as the client sent it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Id {
    Number(i64),
    String(String),
}

impl Id {
    /// Reads an id from a message; floats, objects and the like match no request of ours.
    pub fn from_value(value: &Value) -> Option<Id> {
        match value {
            Value::Number(n) => n.as_i64().filter(|_| !n.is_f64()).map(Id::Number),
            Value::String(s) => Some(Id::String(s.clone())),
            _ => None,
        }
    }

    pub fn to_value(&self) -> Value {
        match self {
            Id::Number(n) => Value::from(*n),
            Id::String(s) => Value::from(s.as_str()),
        }
    }
}

/// An error object from a response.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcError {
    pub code: i64,
    pub message: String,
    pub data: Option<Value>,
}

/// What a response carried: its result or its error.
pub type Reply = Result<Value, RpcError>;

/// One message received from the server, by kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// A response; `id` is `None` when the server could not tell which request failed
    /// (`"id": null`) or sent an id of a type no request of ours uses.
    Response {
        id: Option<Id>,
        reply: Reply,
    },
    /// A request from the server; `id` is echoed back unchanged in the answer.
    Request {
        id: Value,
        method: String,
        params: Value,
    },
    Notification {
        method: String,
        params: Value,
    },
}

/// A message that is not JSON-RPC 2.0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed(pub String);

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Parses a body or an SSE event's data: one message or a batch of them.
pub fn parse(bytes: &[u8]) -> Result<Vec<Incoming>, Malformed> {
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| Malformed(format!("not JSON: {e}")))?;
    match value {
        Value::Array(items) => items.into_iter().map(classify).collect(),
        single => Ok(vec![classify(single)?]),
    }
}

/// Sorts one JSON value into response, request or notification.
pub fn classify(value: Value) -> Result<Incoming, Malformed> {
    let Value::Object(mut object) = value else {
        return Err(Malformed("a message is not a JSON object".into()));
    };
    if object.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(Malformed("a message lacks \"jsonrpc\": \"2.0\"".into()));
    }
    let params = object.remove("params").unwrap_or(Value::Null);
    match (object.remove("method"), object.remove("id")) {
        (Some(Value::String(method)), Some(id)) => Ok(Incoming::Request { id, method, params }),
        (Some(Value::String(method)), None) => Ok(Incoming::Notification { method, params }),
        (Some(_), _) => Err(Malformed("a message's method is not a string".into())),
        (None, id) => response(object, id.unwrap_or(Value::Null)),
    }
}

fn response(mut object: Map<String, Value>, id: Value) -> Result<Incoming, Malformed> {
    let id = Id::from_value(&id);
    let reply = match (object.remove("result"), object.remove("error")) {
        (Some(result), None) => Ok(result),
        (None, Some(error)) => Err(rpc_error(error)?),
        _ => {
            return Err(Malformed(
                "a response needs exactly one of result and error".into(),
            ));
        }
    };
    Ok(Incoming::Response { id, reply })
}

fn rpc_error(error: Value) -> Result<RpcError, Malformed> {
    let code = error.get("code").and_then(Value::as_i64);
    let message = error.get("message").and_then(Value::as_str);
    match (code, message) {
        (Some(code), Some(message)) => Ok(RpcError {
            code,
            message: message.to_owned(),
            data: error.get("data").cloned(),
        }),
        _ => Err(Malformed(
            "an error response lacks a code or a message".into(),
        )),
    }
}

pub fn request(id: &Id, method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id.to_value(), "method": method, "params": params})
}

pub fn notification(method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "method": method, "params": params})
}

/// A successful answer to a server request; `id` is the server's id as received.
pub fn result_response(id: Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

pub fn error_response(id: Value, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

/// Whether a `Content-Type` value names `expected` (`type/subtype`): case-insensitive,
/// parameters such as `charset` ignored.
pub fn media_type_is(content_type: &str, expected: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case(expected)
}

/// Whether an HTTP status acknowledges a notification or a response we posted.
/// The specification asks for 202; servers also answer 200 or 204, and all mean "taken".
pub fn notification_accepted(status: u16) -> bool {
    matches!(status, 200 | 202 | 204)
}

/// Waiting requests by id, so a response reaching any stream finds its own waiter.
#[derive(Debug, Default)]
pub struct Router {
    pending: Mutex<HashMap<Id, oneshot::Sender<Reply>>>,
}

impl Router {
    /// Registers a waiter for `id`; the request's owner must call [`Router::forget`] when done.
    pub fn register(&self, id: Id) -> oneshot::Receiver<Reply> {
        let (sender, receiver) = oneshot::channel();
        self.lock().insert(id, sender);
        receiver
    }

    /// Hands a response to its waiter. False when nobody waits (a late or unknown reply).
    pub fn deliver(&self, id: &Id, reply: Reply) -> bool {
        match self.lock().remove(id) {
            Some(sender) => sender.send(reply).is_ok(),
            None => false,
        }
    }

    pub fn forget(&self, id: &Id) {
        self.lock().remove(id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Id, oneshot::Sender<Reply>>> {
        // A panic while holding this lock cannot leave the map half-updated.
        self.pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(bytes: &[u8]) -> Incoming {
        let mut all = parse(bytes).expect("valid message");
        assert_eq!(all.len(), 1);
        all.remove(0)
    }

    #[test]
    fn ids_keep_their_type() {
        let number = one(br#"{"jsonrpc":"2.0","id":1,"result":{}}"#);
        let string = one(br#"{"jsonrpc":"2.0","id":"1","result":{}}"#);
        assert!(matches!(
            number,
            Incoming::Response {
                id: Some(Id::Number(1)),
                ..
            }
        ));
        assert!(
            matches!(string, Incoming::Response { id: Some(Id::String(ref s)), .. } if s == "1")
        );
        assert_ne!(Id::Number(1), Id::String("1".into()));
    }

    #[test]
    fn float_ids_match_no_request() {
        let reply = one(br#"{"jsonrpc":"2.0","id":1.0,"result":{}}"#);
        assert!(matches!(reply, Incoming::Response { id: None, .. }));
    }

    #[test]
    fn error_response_with_null_id() {
        let reply =
            one(br#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error"}}"#);
        let Incoming::Response {
            id: None,
            reply: Err(error),
        } = reply
        else {
            panic!("expected an error response without id, got {reply:?}");
        };
        assert_eq!(
            (error.code, error.message.as_str()),
            (-32700, "Parse error")
        );
    }

    #[test]
    fn server_request_id_is_echoed_unchanged() {
        let incoming = one(br#"{"jsonrpc":"2.0","id":"srv-7","method":"ping"}"#);
        let Incoming::Request { id, method, .. } = incoming else {
            panic!("expected a request");
        };
        assert_eq!(method, "ping");
        let answer = result_response(id, json!({}));
        assert_eq!(answer, json!({"jsonrpc":"2.0","id":"srv-7","result":{}}));
        let Incoming::Request { id, .. } = one(br#"{"jsonrpc":"2.0","id":2.5,"method":"x"}"#)
        else {
            panic!("expected a request");
        };
        assert_eq!(error_response(id, METHOD_NOT_FOUND, "no")["id"], json!(2.5));
    }

    #[test]
    fn notifications_and_batches() {
        let all = parse(
            br#"[{"jsonrpc":"2.0","method":"notifications/progress","params":{"progress":1}},
                 {"jsonrpc":"2.0","id":3,"result":{"ok":true}}]"#,
        )
        .expect("valid batch");
        let progress = "notifications/progress";
        assert!(matches!(&all[0], Incoming::Notification { method, .. } if method == progress));
        assert!(matches!(
            &all[1],
            Incoming::Response {
                id: Some(Id::Number(3)),
                reply: Ok(_)
            }
        ));
    }

    #[test]
    fn malformed_messages_are_rejected() {
        assert!(parse(b"{not json").is_err());
        assert!(parse(br#"{"id":1,"result":{}}"#).is_err());
        assert!(
            parse(br#"{"jsonrpc":"2.0","id":1,"result":{},"error":{"code":1,"message":"m"}}"#)
                .is_err()
        );
        assert!(parse(br#"{"jsonrpc":"2.0","id":1,"error":{"message":"m"}}"#).is_err());
        assert!(parse(br#"42"#).is_err());
    }

    #[test]
    fn media_types_compare_case_insensitively_without_parameters() {
        assert!(media_type_is("text/event-stream", "text/event-stream"));
        assert!(media_type_is(
            "Text/Event-Stream; charset=utf-8",
            "text/event-stream"
        ));
        assert!(media_type_is(
            " application/JSON ;charset=UTF-8",
            "application/json"
        ));
        assert!(!media_type_is("application/json-seq", "application/json"));
        assert!(!media_type_is("", "application/json"));
    }

    #[test]
    fn notification_acknowledgements() {
        assert!([200, 202, 204].into_iter().all(notification_accepted));
        assert!(![201, 400, 404, 500].into_iter().any(notification_accepted));
    }

    #[tokio::test]
    async fn responses_reach_their_own_waiter_out_of_order() {
        let router = std::sync::Arc::new(Router::default());
        let waiters: Vec<_> = (0..50)
            .map(|n| (n, router.register(Id::Number(n))))
            .collect();
        let string_waiter = router.register(Id::String("0".into()));
        let delivering = {
            let router = router.clone();
            tokio::spawn(async move {
                for n in (0..50).rev() {
                    assert!(router.deliver(&Id::Number(n), Ok(json!(n))));
                }
                assert!(router.deliver(&Id::String("0".into()), Ok(json!("string"))));
            })
        };
        for (n, waiter) in waiters {
            assert_eq!(waiter.await.expect("delivered"), Ok(json!(n)));
        }
        assert_eq!(string_waiter.await.expect("delivered"), Ok(json!("string")));
        delivering.await.expect("delivery task");
    }

    #[test]
    fn late_replies_find_no_waiter() {
        let router = Router::default();
        let waiter = router.register(Id::Number(9));
        router.forget(&Id::Number(9));
        drop(waiter);
        assert!(!router.deliver(&Id::Number(9), Ok(json!({}))));
        assert!(!router.deliver(&Id::Number(10), Ok(json!({}))));
    }
}
