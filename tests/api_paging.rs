//! Cursor paging: walking every page of a list shows each item exactly once, in order,
//! and the paging parameters are checked.

mod common;

use std::collections::HashSet;

use common::{Daedalus, TestDb, create_conversation, create_workspace, insert_messages};
use serde_json::Value;

/// Follows `next_cursor` from `first` to the end; returns every page's items.
async fn walk(d: &Daedalus, first: &str) -> Vec<Vec<Value>> {
    let mut pages = Vec::new();
    let mut path = first.to_string();
    loop {
        let page = d.get(&path).await.expect(200);
        pages.push(page["items"].as_array().expect("items").clone());
        let Some(cursor) = page["next_cursor"].as_str() else {
            break;
        };
        assert!(pages.len() < 10, "the cursor never ends");
        let sep = if first.contains('?') { '&' } else { '?' };
        path = format!("{first}{sep}cursor={cursor}");
    }
    pages
}

fn ids(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|i| i["id"].as_str().expect("id").to_string())
        .collect()
}

fn sizes(pages: &[Vec<Value>]) -> Vec<usize> {
    pages.iter().map(Vec::len).collect()
}

#[tokio::test]
async fn workspaces_page_newest_first_without_duplicates_or_gaps() {
    let db = TestDb::create().await;
    let d = Daedalus::start(&db, &[]).await;
    let mut created = Vec::new();
    for i in 0..120 {
        created.push(create_workspace(&d, "local", &format!("ws {i}")).await);
    }
    let pages = walk(&d, "/api/workspaces?limit=50").await;
    assert_eq!(sizes(&pages), [50, 50, 20]);
    let seen = ids(&pages.concat());
    created.reverse();
    assert_eq!(seen, created, "newest first, each once");
}

#[tokio::test]
async fn conversations_page_most_recent_first_without_duplicates_or_gaps() {
    let db = TestDb::create().await;
    let d = Daedalus::start(&db, &[]).await;
    let ws = create_workspace(&d, "local", "Home").await;
    let mut created = Vec::new();
    for i in 0..120 {
        created.push(create_conversation(&d, "local", &ws, &format!("c {i}")).await);
    }
    let pages = walk(&d, &format!("/api/workspaces/{ws}/conversations?limit=50")).await;
    assert_eq!(sizes(&pages), [50, 50, 20]);
    let seen = ids(&pages.concat());
    created.reverse();
    assert_eq!(seen, created);
}

fn contents(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|m| m["content"].as_str().expect("content").to_string())
        .collect()
}

fn numbered(range: impl Iterator<Item = i64>) -> Vec<String> {
    range.map(|n| format!("message {n}")).collect()
}

#[tokio::test]
async fn messages_page_forward_from_the_start_and_backward_from_the_end() {
    let db = TestDb::create().await;
    let d = Daedalus::start(&db, &[]).await;
    let ws = create_workspace(&d, "local", "Home").await;
    let c = create_conversation(&d, "local", &ws, "Chat").await;
    insert_messages(&db, &c, 120).await;
    let base = format!("/api/workspaces/{ws}/conversations/{c}/messages");

    let forward = walk(&d, &format!("{base}?limit=50")).await;
    assert_eq!(sizes(&forward), [50, 50, 20]);
    assert_eq!(contents(&forward.concat()), numbered(1..=120));

    let backward = walk(&d, &format!("{base}?limit=50&from=end")).await;
    assert_eq!(sizes(&backward), [50, 50, 20]);
    assert_eq!(
        contents(&backward[0]),
        numbered(71..=120),
        "newest page, oldest first"
    );
    assert_eq!(contents(&backward[1]), numbered(21..=70));
    assert_eq!(contents(&backward[2]), numbered(1..=20));
    let all: HashSet<String> = ids(&backward.concat()).into_iter().collect();
    assert_eq!(all.len(), 120);
}

#[tokio::test]
async fn a_page_without_more_items_has_no_cursor() {
    let db = TestDb::create().await;
    let d = Daedalus::start(&db, &[]).await;
    for i in 0..3 {
        create_workspace(&d, "local", &format!("ws {i}")).await;
    }
    let page = d.get("/api/workspaces?limit=3").await.expect(200);
    assert_eq!(page["items"].as_array().map(Vec::len), Some(3));
    assert_eq!(page["next_cursor"], Value::Null);
    let default = d.get("/api/workspaces").await.expect(200);
    assert_eq!(default["items"].as_array().map(Vec::len), Some(3));
}

#[tokio::test]
async fn bad_paging_parameters_are_400s() {
    let db = TestDb::create().await;
    let d = Daedalus::start(&db, &[]).await;
    let ws = create_workspace(&d, "local", "Home").await;
    let c = create_conversation(&d, "local", &ws, "Chat").await;
    let messages = format!("/api/workspaces/{ws}/conversations/{c}/messages");
    let cases = [
        ("/api/workspaces?limit=0".to_string(), "invalid_limit"),
        ("/api/workspaces?limit=201".to_string(), "invalid_limit"),
        ("/api/workspaces?limit=ten".to_string(), "invalid_limit"),
        ("/api/workspaces?cursor=!!".to_string(), "invalid_cursor"),
        (
            "/api/workspaces?cursor=bm90LWEta2V5".to_string(),
            "invalid_cursor",
        ),
        ("/api/workspaces?q=%FF".to_string(), "invalid_query"),
        (format!("{messages}?from=middle"), "invalid_query"),
        (format!("{messages}?cursor=eDox"), "invalid_cursor"),
        (
            format!("/api/workspaces/{ws}/conversations?archived=maybe"),
            "invalid_query",
        ),
    ];
    for (path, code) in cases {
        assert_eq!(d.get(&path).await.expect_error(400), code, "{path}");
    }
}
