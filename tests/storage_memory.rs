//! Memory stays flat while 200 MiB go through each store and back: bodies stream and are
//! never held whole. A test binary of its own, so that no other test's allocations count
//! in the process's peak memory (`VmHWM`).

use bytes::Bytes;
use daedalus::storage::{ByteStream, S3Config, Store};
use futures_util::{StreamExt, stream};

const MIB: u64 = 1024 * 1024;
const SIZE: u64 = 200 * MIB;
const CHUNK: u64 = 64 * 1024;

/// Peak growth allowed: the S3 multipart path holds two 8 MiB parts, plus runtime slack.
const ALLOWED_GROWTH: u64 = 40 * MIB;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: start the service with tests/services/*.sh start (tests/run)")
    })
}

/// The process's peak resident memory so far, in bytes.
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("Linux /proc");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .expect("VmHWM line");
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("a number");
    kib * 1024
}

/// `SIZE` bytes, chunk `i` filled with the byte `i % 251`, made as they are sent.
fn generated() -> ByteStream {
    let chunks = (0..SIZE / CHUNK).map(|i| Ok(Bytes::from(vec![(i % 251) as u8; CHUNK as usize])));
    stream::iter(chunks).boxed()
}

/// Reads a body to its end, checking every byte against [`generated`].
async fn check_generated(mut body: ByteStream) {
    let mut offset = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.expect("the download reads");
        for byte in chunk.iter() {
            assert_eq!(*byte, ((offset / CHUNK) % 251) as u8, "byte {offset}");
            offset += 1;
        }
    }
    assert_eq!(offset, SIZE);
}

async fn round_trip(store: &Store, key: &str, len: Option<u64>) {
    store
        .put(key, "application/octet-stream", len, generated())
        .await
        .expect("upload");
    let object = store.get(key, None).await.expect("download");
    assert_eq!(object.size, SIZE);
    check_generated(object.body).await;
    store.delete(key).await.expect("delete");
}

#[tokio::test(flavor = "multi_thread")]
async fn memory_does_not_grow_with_the_body_size() {
    let root = std::env::temp_dir().join(format!("daedalus-memory-{}", uuid::Uuid::new_v4()));
    let local = Store::local(root.clone());
    local.ensure_ready().await.expect("local folder");
    let s3s = Store::s3(S3Config::new(
        &env("DAEDALUS_TEST_S3S_URL"),
        &env("DAEDALUS_TEST_S3S_ACCESS_KEY"),
        &env("DAEDALUS_TEST_S3S_SECRET_KEY"),
        "daedalus-test",
    ))
    .expect("config");
    s3s.ensure_ready().await.expect("bucket");
    let before = peak_rss();
    let key = format!("memory/{}", uuid::Uuid::new_v4());
    round_trip(&local, &key, Some(SIZE)).await;
    round_trip(&local, &key, None).await;
    round_trip(&s3s, &key, Some(SIZE)).await;
    round_trip(&s3s, &key, None).await;
    let growth = peak_rss().saturating_sub(before);
    let _ = std::fs::remove_dir_all(root);
    eprintln!("peak memory growth over 4 × 200 MiB: {} KiB", growth / 1024);
    assert!(
        growth < ALLOWED_GROWTH,
        "peak memory grew by {} MiB",
        growth / MIB
    );
}
