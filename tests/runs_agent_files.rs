//! Binary content in an agent's answer (an image, an embedded resource with a blob)
//! becomes a workspace file like an upload, and the stored answer refers to it instead of
//! holding the bytes. The MCP reference server's tools produce such answers.

mod common;

use common::fastagent::{conversation_with, workspace_with};
use common::sse;
use common::{Daedalus, TestDb};

fn everything_url() -> String {
    std::env::var("DAEDALUS_TEST_EVERYTHING_URL").unwrap_or_else(|_| {
        panic!("DAEDALUS_TEST_EVERYTHING_URL is not set: start tests/services/everything.sh (tests/run)")
    })
}

#[tokio::test]
async fn an_image_from_an_agent_is_kept_as_a_workspace_file() {
    let db = TestDb::create().await;
    let d = Daedalus::start(&db, &[]).await;
    let ws = workspace_with(&d, &[("reference", &everything_url())]).await;
    let c = conversation_with(&d, &ws, "get-tiny-image").await;

    let events = sse::send(&d, &ws, &c, "an image, please")
        .await
        .until_end()
        .await;
    let message = sse::completed(&events);

    let file_ids = message["file_ids"].as_array().expect("file ids");
    assert_eq!(file_ids.len(), 1, "{message}");
    let file = file_ids[0].as_str().expect("an id");
    let image = message["parts"]
        .as_array()
        .expect("parts")
        .iter()
        .find(|p| p["type"] == "image")
        .expect("an image part");
    assert_eq!(image["file_id"], file);
    assert!(
        image.get("data").is_none(),
        "the bytes stay out of the message: {image}"
    );

    let meta = d
        .get(&format!("/api/workspaces/{ws}/files/{file}"))
        .await
        .expect(200);
    assert_eq!(meta["origin"], "agent");
    assert_eq!(meta["content_type"], "image/png");
    let content = d
        .get(&format!("/api/workspaces/{ws}/files/{file}/content"))
        .await;
    assert_eq!(content.status, 200);
    assert_eq!(content.header("content-type"), Some("image/png"));
    assert_eq!(
        content.body.len() as u64,
        meta["size"].as_u64().expect("a size")
    );
    assert!(content.body.starts_with(b"\x89PNG"), "not a PNG");
}
