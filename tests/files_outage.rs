//! The S3 server going away in the middle of an upload, on moto and on s3s-fs: each test
//! runs an S3 server of its own (so the shared ones stay up), kills it while the upload
//! streams, and expects a clear 503 JSON error, no row and, once the server is back,
//! nothing half-written in the bucket and uploads that work again.

mod common;

use bytes::Bytes;
use common::s3::{Backend, OwnS3, View, daedalus_s3_env, fed_body, pattern, pattern_chunks};
use common::s3::{send_streamed, streamed_iter};
use common::{Daedalus, Reply, TestDb, create_workspace};
use http::Method;
use http_body_util::BodyExt;

const USER: &str = "alice";
/// Larger than one S3 multipart part (8 MiB), so the form upload goes multipart.
const LEN: u64 = 24 * 1024 * 1024;
/// What the client sends before the server is killed: part of the one streamed PUT, or a
/// first multipart part and some of the second.
const RAW_BEFORE_STOP: u64 = 2 * 1024 * 1024;
const FORM_BEFORE_STOP: u64 = 12 * 1024 * 1024;
const BOUNDARY: &str = "daedalus-outage-test-9e4a";

#[derive(Clone, Copy, Debug)]
enum Upload {
    /// A raw body with its `Content-Length`: one streamed PUT.
    RawWithLength,
    /// A chunked multipart form: S3 multipart upload.
    ChunkedForm,
}

struct Setup {
    server: OwnS3,
    db: TestDb,
    d: Daedalus,
    ws: String,
}

async fn setup(b: Backend) -> Setup {
    let server = OwnS3::start(b).await;
    let db = TestDb::create().await;
    let env = daedalus_s3_env(&server.config());
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let d = Daedalus::start(&db, &env).await;
    let ws = create_workspace(&d, USER, "outage").await;
    Setup { server, db, d, ws }
}

impl Setup {
    fn files(&self) -> String {
        format!("/api/workspaces/{}/files", self.ws)
    }

    /// A small raw upload, chunked (a declared length has its own test in `files_api`).
    async fn upload_small(&self, name: &str) -> Reply {
        let path = format!("{}?name={name}", self.files());
        let headers = [("x-forwarded-user", USER)];
        let body = streamed_iter(std::iter::once(Bytes::from(pattern(1000))));
        let resp = send_streamed(&self.d, Method::POST, &path, &headers, body).await;
        read_reply(resp.unwrap_or_else(|e| panic!("no answer ({e:?})\n{}", self.d.dump()))).await
    }

    async fn rows(&self) -> i64 {
        let ws: uuid::Uuid = self.ws.parse().expect("a UUID");
        let sql = "SELECT count(*) FROM files WHERE workspace_id = $1";
        let row = self.db.client().await.query_one(sql, &[&ws]).await;
        row.expect("counting rows").get(0)
    }

    /// Starts an upload of `LEN` bytes, kills the S3 server after some of them, and
    /// keeps sending until the service answers.
    async fn upload_through_an_outage(&mut self, kind: Upload) -> Answer {
        let (tx, body) = fed_body();
        let form_type = format!("multipart/form-data; boundary={BOUNDARY}");
        let len = LEN.to_string();
        let before_stop = match kind {
            Upload::RawWithLength => RAW_BEFORE_STOP,
            Upload::ChunkedForm => FORM_BEFORE_STOP,
        };
        let (path, headers, chunks) = match kind {
            Upload::RawWithLength => (
                format!("{}?name=cut.bin", self.files()),
                vec![("x-forwarded-user", USER), ("content-length", len.as_str())],
                Box::new(pattern_chunks(LEN)) as Box<dyn Iterator<Item = Bytes> + Send>,
            ),
            Upload::ChunkedForm => (
                self.files(),
                vec![
                    ("x-forwarded-user", USER),
                    ("content-type", form_type.as_str()),
                ],
                Box::new(form(LEN)) as Box<dyn Iterator<Item = Bytes> + Send>,
            ),
        };
        let request = send_streamed(&self.d, Method::POST, &path, &headers, body);
        let (view, prefix) = (self.server.view(), format!("workspaces/{}/", self.ws));
        let server = &mut self.server;
        let feeding = async move {
            let mut sent = 0u64;
            for chunk in chunks {
                if sent >= before_stop && server.is_running() {
                    if matches!(kind, Upload::ChunkedForm) {
                        wait_for_an_open_upload(&view, &prefix).await;
                    }
                    server.stop();
                }
                sent += chunk.len() as u64;
                if tx.send(chunk).await.is_err() {
                    break;
                }
            }
            // Keep the body open: the answer must come from the failure, not the end.
            // (A send fails once the client has dropped the body; the answer decides.)
            std::future::pending::<()>().await;
        };
        let resp = tokio::select! {
            resp = request => resp,
            () = feeding => unreachable!("feeding never ends on its own"),
        };
        match resp {
            Ok(resp) => Answer::Reply(read_reply(resp).await),
            Err(e) => self.answer_from_the_log(&e).await,
        }
    }

    /// The server may answer and close while the client is still writing the body; the
    /// client then sees a broken pipe, not the answer. What daedalus answered is in its
    /// access line and error line, which stand in for the lost reply.
    async fn answer_from_the_log(&self, e: &dyn std::fmt::Debug) -> Answer {
        let access = self
            .d
            .wait_for_log(|l| {
                l["target"] == "access"
                    && l["route"] == "/api/workspaces/{ws}/files"
                    && l["status"].as_u64().is_some_and(|s| s >= 400)
            })
            .await;
        let status = access["status"].as_u64().expect("a status") as u16;
        let code = self
            .d
            .logs()
            .iter()
            .rev()
            .find(|l| l["request_id"] == access["request_id"] && l["code"].is_string())
            .and_then(|l| l["code"].as_str().map(str::to_string))
            .unwrap_or_else(|| panic!("no error code logged after {e:?}\n{}", self.d.dump()));
        Answer::Logged { status, code }
    }
}

/// The whole answer; a body cut off by the closing connection reads as empty.
/// What the client got: the reply, or, when the reply was lost to a broken pipe, the
/// status and error code daedalus logged for it.
enum Answer {
    Reply(Reply),
    Logged { status: u16, code: String },
}

impl Answer {
    /// The error code of an error answer with this status (a reply must be JSON).
    fn expect_error(&self, want: u16) -> String {
        match self {
            Answer::Reply(reply) => reply.expect_error(want),
            Answer::Logged { status, code } => {
                assert_eq!(*status, want, "logged status");
                code.clone()
            }
        }
    }
}

async fn read_reply(resp: http::Response<hyper::body::Incoming>) -> Reply {
    let (parts, body) = resp.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

/// Waits until the multipart upload under `prefix` has begun, so that the server dies with
/// it open rather than before it starts. Bounded, as a guard against hangs.
async fn wait_for_an_open_upload(view: &View, prefix: &str) {
    let waited = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        while view.unfinished(prefix).await.is_empty() {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    });
    assert!(
        waited.await.is_ok(),
        "no multipart upload began under {prefix}"
    );
}

fn form(file_len: u64) -> impl Iterator<Item = Bytes> + Send + 'static {
    let head = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"cut.bin\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    );
    let tail = format!("\r\n--{BOUNDARY}--\r\n");
    std::iter::once(Bytes::from(head))
        .chain(pattern_chunks(file_len))
        .chain(std::iter::once(Bytes::from(tail)))
}

/// Cuts an upload by killing the server, checks the answer and that no row or object of it
/// is left, and brings the server back.
async fn cut_upload(b: Backend, kind: Upload) -> Setup {
    let mut s = setup(b).await;
    s.upload_small("before.bin").await.expect(201);
    let before = s.rows().await;
    let reply = s.upload_through_an_outage(kind).await;
    assert_eq!(reply.expect_error(503), "storage_unavailable", "{kind:?}");
    assert_eq!(s.rows().await, before, "a row of the cut upload is left");
    let ready = s.d.get("/api/ready").await;
    assert_eq!(ready.status, 503, "ready with storage down");
    s.server.restart().await;
    let keys: Vec<String> = s
        .server
        .view()
        .objects_under(&format!("workspaces/{}/", s.ws))
        .await
        .into_iter()
        .map(|(key, _)| key)
        .filter(|key| !key.ends_with("/before.bin"))
        .collect();
    assert_eq!(keys, Vec::<String>::new(), "objects of the cut upload");
    s
}

/// A clear 503, nothing stored, and once the server is back the service works again.
async fn storage_stopped_during_an_upload(b: Backend, kind: Upload) {
    let s = cut_upload(b, kind).await;
    s.d.get("/api/ready").await.expect(200);
    let again = s.upload_small("after.bin").await.expect(201);
    let id = again["id"].as_str().expect("file id");
    let content = format!("{}/{id}/content", s.files());
    let got = s.d.get_as(USER, &content).await;
    assert_eq!(got.status, 200, "downloading after the restart");
    assert!(
        got.body == pattern(1000),
        "a different file after the restart"
    );
    let panicked = s.d.stderr_lines().iter().any(|l| l.contains("panicked"));
    assert!(!panicked, "{}", s.d.dump());
}

#[tokio::test(flavor = "multi_thread")]
async fn moto_stopped_during_a_raw_upload() {
    storage_stopped_during_an_upload(Backend::Moto, Upload::RawWithLength).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn moto_stopped_during_a_multipart_upload() {
    storage_stopped_during_an_upload(Backend::Moto, Upload::ChunkedForm).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn s3s_stopped_during_a_raw_upload() {
    storage_stopped_during_an_upload(Backend::S3s, Upload::RawWithLength).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn s3s_stopped_during_a_multipart_upload() {
    storage_stopped_during_an_upload(Backend::S3s, Upload::ChunkedForm).await;
}

/// A multipart upload whose abort could not reach the stopped server must not stay open
/// once the server is back (its parts are stored bytes nobody will ever complete or list).
/// Only s3s-fs shows it: moto forgets every upload when it stops.
#[tokio::test(flavor = "multi_thread")]
async fn s3s_multipart_upload_cut_by_an_outage_is_not_left_unfinished() {
    let s = cut_upload(Backend::S3s, Upload::ChunkedForm).await;
    let prefix = format!("workspaces/{}/", s.ws);
    // The abort is retried in the background with backoff; give it a bounded while.
    let mut unfinished = s.server.view().unfinished(&prefix).await;
    for _ in 0..60 {
        if unfinished.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        unfinished = s.server.view().unfinished(&prefix).await;
    }
    assert_eq!(
        unfinished,
        Vec::<String>::new(),
        "unfinished multipart uploads"
    );
}
