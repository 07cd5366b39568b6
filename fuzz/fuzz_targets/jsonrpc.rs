//! What an agent server sends, through `mcp::jsonrpc::parse` as each SSE event or JSON
//! body is decoded. Properties: a response's id survives the round trip through its JSON
//! form with its type; a routed reply reaches exactly its own waiter.
#![no_main]

use daedalus::mcp::jsonrpc::{self, Id, Incoming, Router};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(messages) = jsonrpc::parse(data) else {
        return;
    };
    let router = Router::default();
    for message in messages {
        if let Incoming::Response {
            id: Some(id),
            reply,
        } = message
        {
            assert_eq!(Id::from_value(&id.to_value()), Some(id.clone()));
            let mut waiter = router.register(id.clone());
            assert!(router.deliver(&id, reply.clone()));
            assert_eq!(waiter.try_recv().ok(), Some(reply));
            assert!(
                !router.deliver(&id, Ok(serde_json::Value::Null)),
                "delivered twice"
            );
        }
    }
});
