//! The storage layer against real stores: the same cases run on the local-disk store, on
//! moto and on s3s-fs (started by `tests/services/{moto,s3s}.sh`, which export their URLs).
//! A missing service fails the test loudly.

use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use daedalus::files::upload::metered;
use daedalus::storage::{ByteRange, ByteStream, S3Config, S3Store, StorageError, Store};
use futures_util::{StreamExt, stream};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const MIB: usize = 1024 * 1024;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: start the service with tests/services/*.sh start (tests/run)")
    })
}

async fn local_store() -> Store {
    let root = std::env::temp_dir().join(format!("daedalus-storage-{}", uuid::Uuid::new_v4()));
    let store = Store::local(root);
    store
        .ensure_ready()
        .await
        .expect("the local folder can be made");
    store
}

fn moto_config(bucket: &str) -> S3Config {
    S3Config::new(
        &env("DAEDALUS_TEST_MOTO_URL"),
        "moto-access",
        "moto-secret",
        bucket,
    )
}

fn s3s_config(bucket: &str) -> S3Config {
    S3Config::new(
        &env("DAEDALUS_TEST_S3S_URL"),
        &env("DAEDALUS_TEST_S3S_ACCESS_KEY"),
        &env("DAEDALUS_TEST_S3S_SECRET_KEY"),
        bucket,
    )
}

async fn ready(cfg: S3Config) -> Store {
    let store = Store::s3(cfg).expect("a valid S3 configuration");
    store
        .ensure_ready()
        .await
        .expect("the bucket exists or is made");
    store
}

async fn moto_store() -> Store {
    ready(moto_config("daedalus-test")).await
}

async fn s3s_store() -> Store {
    ready(s3s_config("daedalus-test")).await
}

/// A fresh key prefix, so that cases never see each other's objects.
fn prefix() -> String {
    format!("workspaces/{}/files/", uuid::Uuid::new_v4())
}

fn body_of(chunks: Vec<&'static [u8]>) -> ByteStream {
    stream::iter(chunks.into_iter().map(|c| Ok(Bytes::from_static(c)))).boxed()
}

/// `len` bytes of a repeating pattern, made on the fly in 64 KiB chunks.
fn patterned(len: usize) -> ByteStream {
    let chunks = (0..len).step_by(64 * 1024).map(move |start| {
        let end = (start + 64 * 1024).min(len);
        Ok(Bytes::from(
            (start..end).map(pattern_byte).collect::<Vec<u8>>(),
        ))
    });
    stream::iter(chunks).boxed()
}

fn pattern_byte(i: usize) -> u8 {
    (i % 251) as u8
}

/// `good` bytes of the pattern, then the error a vanished client gives.
fn failing_after(good: usize) -> ByteStream {
    let failure = stream::once(async { Err(StorageError::BodyError("client went away".into())) });
    patterned(good).chain(failure).boxed()
}

async fn read_all(body: ByteStream) -> Vec<u8> {
    let chunks: Vec<Bytes> = body.map(|c| c.expect("the body reads")).collect().await;
    chunks.concat()
}

async fn get_bytes(store: &Store, key: &str) -> Vec<u8> {
    read_all(store.get(key, None).await.expect("get").body).await
}

/// No object and no unfinished upload under `prefix`.
async fn assert_nothing_left(store: &Store, prefix: &str) {
    assert_eq!(store.list(prefix).await.expect("list"), vec![]);
    match store {
        Store::S3(s3) => {
            let pending = match s3.pending_uploads(prefix).await {
                Err(e) if e.s3_code() == Some("NotImplemented") => s3s_pending_uploads(prefix),
                listed => listed.expect("list uploads"),
            };
            assert_eq!(pending, vec![], "multipart uploads left behind");
        }
        Store::Local(local) => {
            let partial = local.root().join(".partial");
            let left = std::fs::read_dir(partial).expect("partial folder").count();
            assert_eq!(left, 0, "partial files left behind");
        }
    }
}

/// s3s-fs does not list multipart uploads, but keeps a metadata file per upload in its data
/// folder, named `.bucket-{base64 bucket}.object-{base64 key}.upload-{id}.metadata.json`.
fn s3s_pending_uploads(prefix: &str) -> Vec<(String, String)> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let bucket = format!(".bucket-{}.object-", b64.encode("daedalus-test"));
    let data = std::fs::read_dir(env("DAEDALUS_TEST_S3S_DATA")).expect("s3s-fs data folder");
    let names = data.map(|e| e.expect("entry").file_name().to_string_lossy().into_owned());
    let upload = |name: String| -> Option<(String, String)> {
        let (key, rest) = name.strip_prefix(&bucket)?.split_once(".upload-")?;
        let key = String::from_utf8(b64.decode(key).ok()?).ok()?;
        let id = rest.strip_suffix(".metadata.json")?;
        Some((key, id.to_owned())).filter(|(key, _)| key.starts_with(prefix))
    };
    names.filter_map(upload).collect()
}

async fn put_get_head_delete(store: Store) {
    let key = format!("{}hello.txt", prefix());
    let body = body_of(vec![b"hello ", b"world"]);
    store
        .put(&key, "text/plain", Some(11), body)
        .await
        .expect("put");
    assert_eq!(get_bytes(&store, &key).await, b"hello world");
    let meta = store.head(&key).await.expect("head");
    assert_eq!((meta.key.as_str(), meta.size), (key.as_str(), 11));
    store.delete(&key).await.expect("delete");
    assert!(matches!(
        store.head(&key).await,
        Err(StorageError::NotFound)
    ));
    assert!(matches!(
        store.get(&key, None).await,
        Err(StorageError::NotFound)
    ));
    store
        .delete(&key)
        .await
        .expect("deleting a missing key succeeds");
}

async fn empty_and_one_byte_objects(store: Store) {
    let p = prefix();
    let cases: [(&str, Option<u64>, &'static [u8]); 4] = [
        ("empty-known", Some(0), b""),
        ("empty-unknown", None, b""),
        ("one-known", Some(1), b"x"),
        ("one-unknown", None, b"x"),
    ];
    for (name, len, bytes) in cases {
        let key = format!("{p}{name}");
        store
            .put(&key, "application/octet-stream", len, body_of(vec![bytes]))
            .await
            .expect(name);
        assert_eq!(get_bytes(&store, &key).await, bytes, "{name}");
        assert_eq!(
            store.head(&key).await.expect("head").size,
            bytes.len() as u64
        );
    }
}

async fn odd_keys_stay_distinct(store: Store) {
    let p = prefix();
    let names = [
        "a b.txt",
        "a+b.txt",
        "résumé 東京.pdf",
        "C++ notes 100%~.txt",
        "x~y",
        "a&b=c?.txt",
    ];
    for name in names {
        let key = format!("{p}{name}");
        let body = stream::iter([Ok(Bytes::from(name.as_bytes().to_vec()))]).boxed();
        store
            .put(&key, "text/plain", Some(name.len() as u64), body)
            .await
            .expect(name);
    }
    for name in names {
        assert_eq!(
            get_bytes(&store, &format!("{p}{name}")).await,
            name.as_bytes(),
            "{name}"
        );
    }
    let mut listed: Vec<String> = store
        .list(&p)
        .await
        .expect("list")
        .into_iter()
        .map(|m| m.key)
        .collect();
    let mut expected: Vec<String> = names.iter().map(|n| format!("{p}{n}")).collect();
    listed.sort();
    expected.sort();
    assert_eq!(listed, expected);
}

async fn ranges_read_part_of_an_object(store: Store) {
    let key = format!("{}range.bin", prefix());
    store
        .put(&key, "application/octet-stream", Some(100), patterned(100))
        .await
        .expect("put");
    let object = store
        .get(
            &key,
            Some(ByteRange {
                first: 10,
                last: 19,
            }),
        )
        .await
        .expect("get");
    assert_eq!((object.size, object.total_size), (10, 100));
    let expected: Vec<u8> = (10..20).map(pattern_byte).collect();
    assert_eq!(read_all(object.body).await, expected);
    let tail = store
        .get(
            &key,
            Some(ByteRange {
                first: 90,
                last: 99,
            }),
        )
        .await
        .expect("tail");
    assert_eq!(
        read_all(tail.body).await,
        (90..100).map(pattern_byte).collect::<Vec<u8>>()
    );
}

async fn large_body_of_unknown_length_goes_multipart(store: Store) {
    let p = prefix();
    let key = format!("{p}big.bin");
    let len = 12 * MIB + 12_345;
    store
        .put(&key, "application/octet-stream", None, patterned(len))
        .await
        .expect("put");
    assert_eq!(store.head(&key).await.expect("head").size, len as u64);
    let got = store.get(&key, None).await.expect("get");
    assert_eq!(got.size, len as u64);
    let expected = Sha256::digest((0..len).map(pattern_byte).collect::<Vec<u8>>());
    assert_eq!(Sha256::digest(read_all(got.body).await), expected);
    store.delete(&key).await.expect("delete");
    assert_nothing_left(&store, &p).await;
}

async fn exactly_one_part_and_one_byte_more(store: Store) {
    let p = prefix();
    for len in [5 * MIB, 5 * MIB + 1, 8 * MIB, 8 * MIB + 1] {
        let key = format!("{p}{len}");
        store
            .put(&key, "application/octet-stream", None, patterned(len))
            .await
            .expect("put");
        assert_eq!(
            store.head(&key).await.expect("head").size,
            len as u64,
            "{len}"
        );
        let got = read_all(store.get(&key, None).await.expect("get").body).await;
        assert!(got.len() == len && got.iter().enumerate().all(|(i, b)| *b == pattern_byte(i)));
        store.delete(&key).await.expect("delete");
    }
    assert_nothing_left(&store, &p).await;
}

async fn failed_body_leaves_nothing(store: Store) {
    let p = prefix();
    let cases = [
        ("streamed", Some(4 * MIB as u64), MIB),
        ("multipart", None, 10 * MIB),
    ];
    for (name, len, good) in cases {
        let key = format!("{p}{name}");
        let err = store
            .put(&key, "application/octet-stream", len, failing_after(good))
            .await;
        match err {
            Err(StorageError::BodyError(why)) => assert!(why.contains("client went away"), "{why}"),
            other => panic!("{name}: expected the body's error, got {other:?}"),
        }
        assert!(
            matches!(store.head(&key).await, Err(StorageError::NotFound)),
            "{name}"
        );
    }
    assert_nothing_left(&store, &p).await;
}

async fn body_shorter_than_announced_is_refused(store: Store) {
    let p = prefix();
    let key = format!("{p}short");
    let err = store
        .put(&key, "text/plain", Some(10), body_of(vec![b"12345"]))
        .await;
    assert!(matches!(err, Err(StorageError::BodyError(_))), "{err:?}");
    let key = format!("{p}long");
    let err = store
        .put(&key, "text/plain", Some(3), body_of(vec![b"12345"]))
        .await;
    assert!(matches!(err, Err(StorageError::BodyError(_))), "{err:?}");
    assert_nothing_left(&store, &p).await;
}

async fn ranges_past_the_end_are_refused(store: Store) {
    let key = format!("{}short.bin", prefix());
    store
        .put(&key, "application/octet-stream", Some(10), patterned(10))
        .await
        .expect("put");
    let past = store
        .get(
            &key,
            Some(ByteRange {
                first: 10,
                last: 20,
            }),
        )
        .await;
    match past {
        Err(StorageError::Service { code, status, .. }) => {
            assert_eq!((code.as_str(), status), ("InvalidRange", 416))
        }
        other => panic!("expected InvalidRange, got {:?}", other.map(|o| o.size)),
    }
}

/// The upload limit is enforced by the metering stream on the bytes received; the store
/// hands its `TooLarge` back and keeps nothing, with or without an announced length.
async fn upload_over_the_limit_leaves_nothing(store: Store) {
    let p = prefix();
    for (name, len) in [("unknown", None), ("lying", Some(MIB as u64 * 12))] {
        let key = format!("{p}{name}");
        let (body, receipt) = metered(patterned(12 * MIB), 9 * MIB as u64);
        let err = store.put(&key, "application/octet-stream", len, body).await;
        assert!(
            matches!(err, Err(StorageError::TooLarge)),
            "{name}: {err:?}"
        );
        assert_eq!(receipt.measured(), None);
    }
    assert_nothing_left(&store, &p).await;
}

async fn metered_upload_reports_size_and_checksum(store: Store) {
    let key = format!("{}measured.txt", prefix());
    let (body, receipt) = metered(body_of(vec![b"hello ", b"world"]), 100);
    store
        .put(&key, "text/plain", None, body)
        .await
        .expect("put");
    let measured = receipt.measured().expect("the store read the whole body");
    assert_eq!(measured.size, 11);
    let expected = "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9";
    assert_eq!(measured.sha256, expected);
}

/// A download already streaming keeps its bytes when the object is deleted meanwhile.
async fn delete_while_a_download_streams(store: Store) {
    let key = format!("{}deleted-while-read.bin", prefix());
    let len = 3 * MIB;
    store
        .put(
            &key,
            "application/octet-stream",
            Some(len as u64),
            patterned(len),
        )
        .await
        .expect("put");
    let mut body = store.get(&key, None).await.expect("get").body;
    let mut got = body
        .next()
        .await
        .expect("a first chunk")
        .expect("readable")
        .to_vec();
    store.delete(&key).await.expect("delete");
    got.extend(read_all(body).await);
    assert!(got.len() == len && got.iter().enumerate().all(|(i, b)| *b == pattern_byte(i)));
    assert!(matches!(
        store.head(&key).await,
        Err(StorageError::NotFound)
    ));
}

async fn ready_checks_pass(store: Store) {
    store.check().await.expect("a ready store");
}

macro_rules! against_every_store {
    ($($case:ident),* $(,)?) => {
        mod local {
            $(#[tokio::test(flavor = "multi_thread")]
            async fn $case() { super::$case(super::local_store().await).await })*
        }
        mod moto {
            $(#[tokio::test(flavor = "multi_thread")]
            async fn $case() { super::$case(super::moto_store().await).await })*
        }
        mod s3s {
            $(#[tokio::test(flavor = "multi_thread")]
            async fn $case() { super::$case(super::s3s_store().await).await })*
        }
    };
}

against_every_store!(
    put_get_head_delete,
    empty_and_one_byte_objects,
    odd_keys_stay_distinct,
    ranges_read_part_of_an_object,
    large_body_of_unknown_length_goes_multipart,
    exactly_one_part_and_one_byte_more,
    failed_body_leaves_nothing,
    body_shorter_than_announced_is_refused,
    ready_checks_pass,
    ranges_past_the_end_are_refused,
    upload_over_the_limit_leaves_nothing,
    metered_upload_reports_size_and_checksum,
    delete_while_a_download_streams,
);

/// A free port with nothing listening: what a stopped server looks like.
fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

#[tokio::test]
async fn stopped_s3_server_is_unavailable() {
    let cfg = S3Config::new(&closed_port_url(), "a", "b", "daedalus-test");
    let store = Store::s3(cfg).expect("config");
    for result in [
        store.head("k").await.map(drop),
        store.check().await,
        store.delete("k").await,
    ] {
        assert!(
            matches!(result, Err(StorageError::Unavailable(_))),
            "{result:?}"
        );
    }
    let put = store
        .put("k", "text/plain", Some(5), body_of(vec![b"12345"]))
        .await;
    assert!(matches!(put, Err(StorageError::Unavailable(_))), "{put:?}");
}

#[tokio::test]
async fn unwritable_data_folder_is_unavailable() {
    let file = std::env::temp_dir().join(format!("daedalus-not-a-folder-{}", uuid::Uuid::new_v4()));
    std::fs::write(&file, b"").expect("a plain file");
    let store = Store::local(file);
    assert!(matches!(
        store.check().await,
        Err(StorageError::Unavailable(_))
    ));
}

/// A bucket name no earlier run has used (s3s-fs makes the bucket on a PUT into it).
fn missing_bucket() -> String {
    format!(
        "daedalus-missing-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

async fn missing_bucket_is_reported_with_its_code(cfg: S3Config) {
    let store = Store::s3(cfg).expect("config");
    let list = store.list("").await;
    assert_eq!(
        list.as_ref().err().and_then(|e| e.s3_code()),
        Some("NoSuchBucket"),
        "{list:?}"
    );
}

#[tokio::test]
async fn moto_missing_bucket_is_reported_with_its_code() {
    let cfg = moto_config(&missing_bucket());
    missing_bucket_is_reported_with_its_code(cfg.clone()).await;
    // s3s-fs accepts a PUT into a missing bucket (it only checks on reads); moto refuses it.
    let store = Store::s3(cfg).expect("config");
    let put = store
        .put("k", "text/plain", Some(2), body_of(vec![b"hi"]))
        .await;
    assert_eq!(
        put.as_ref().err().and_then(|e| e.s3_code()),
        Some("NoSuchBucket"),
        "{put:?}"
    );
}

#[tokio::test]
async fn s3s_missing_bucket_is_reported_with_its_code() {
    missing_bucket_is_reported_with_its_code(s3s_config(&missing_bucket())).await;
}

#[tokio::test]
async fn s3s_wrong_secret_is_refused_with_its_code() {
    let mut cfg = s3s_config("daedalus-test");
    cfg.secret_key = "not-the-secret".into();
    let store = Store::s3(cfg).expect("config");
    let err = store.head("anything").await.expect_err("refused");
    assert!(
        matches!(err, StorageError::Service { status: 403, .. }),
        "{err:?}"
    );
}

fn an_hour_late() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc() - time::Duration::hours(1)
}

/// s3s-fs checks the request time (moto does not): a clock an hour off is corrected once
/// from the server's `Date`, and the store keeps working.
#[tokio::test]
async fn s3s_clock_skew_is_corrected_from_the_server_time() {
    let store = S3Store::with_clock(s3s_config("daedalus-test"), an_hour_late).expect("config");
    let store = Store::S3(store);
    let key = format!("{}skew.txt", prefix());
    assert!(matches!(
        store.head(&key).await,
        Err(StorageError::NotFound)
    ));
    store
        .put(&key, "text/plain", Some(2), body_of(vec![b"ok"]))
        .await
        .expect("put");
    assert_eq!(get_bytes(&store, &key).await, b"ok");
}

#[tokio::test]
async fn every_s3_request_is_counted() {
    let metrics = daedalus::metrics::get();
    let counter = metrics
        .s3_requests
        .with_label_values(&["HeadObject", "error"]);
    let before = counter.get();
    let store = s3s_store().await;
    let _ = store.head(&format!("{}missing", prefix())).await;
    assert!(counter.get() > before);
}

/// A stand-in S3 server that answers each request with the next scripted answer (the last
/// one repeating) and counts the requests it got. Real servers cannot be made to fail on
/// cue; this checks what the client does when one does.
async fn scripted_server(answers: Vec<&'static str>) -> (String, std::sync::Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let count = std::sync::Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let n = seen.fetch_add(1, Ordering::SeqCst);
            let answer = answers[n.min(answers.len() - 1)];
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && socket.read(&mut byte).await.unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            let _ = socket.write_all(answer.as_bytes()).await;
        }
    });
    (url, count)
}

const SLOW_DOWN: &str = "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n\
    Content-Type: application/xml\r\nContent-Length: 79\r\n\r\n\
    <Error><Code>SlowDown</Code><Message>Please reduce your rate.</Message></Error>";
const OK_EMPTY: &str = "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";

#[tokio::test]
async fn server_errors_are_retried_with_backoff() {
    let (url, count) = scripted_server(vec![SLOW_DOWN, SLOW_DOWN, OK_EMPTY]).await;
    let store = Store::s3(S3Config::new(&url, "a", "b", "bucket")).expect("config");
    store.check().await.expect("the third attempt succeeds");
    assert_eq!(count.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn persistent_server_errors_become_unavailable_with_the_code() {
    let (url, count) = scripted_server(vec![SLOW_DOWN]).await;
    let store = Store::s3(S3Config::new(&url, "a", "b", "bucket")).expect("config");
    // A GET, as an answer to HEAD has no body to carry the code.
    match store.list("").await {
        Err(StorageError::Unavailable(why)) => assert!(why.contains("SlowDown"), "{why}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert_eq!(count.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn streamed_puts_are_not_replayed() {
    let (url, count) = scripted_server(vec![SLOW_DOWN]).await;
    let store = Store::s3(S3Config::new(&url, "a", "b", "bucket")).expect("config");
    let put = store
        .put("k", "text/plain", Some(5), body_of(vec![b"12345"]))
        .await;
    assert!(matches!(put, Err(StorageError::Unavailable(_))), "{put:?}");
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

/// Nothing sticks after an outage: once a server listens again, the same store works.
#[tokio::test]
async fn store_works_again_after_the_server_comes_back() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address");
    drop(listener);
    let url = format!("http://{address}");
    let store = Store::s3(S3Config::new(&url, "a", "b", "bucket")).expect("config");
    assert!(matches!(
        store.check().await,
        Err(StorageError::Unavailable(_))
    ));
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .expect("rebind");
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut head = [0u8; 4096];
            let _ = socket.read(&mut head).await;
            let _ = socket.write_all(OK_EMPTY.as_bytes()).await;
        }
    });
    store.check().await.expect("reachable again");
}
