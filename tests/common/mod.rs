//! What every integration test stands on: a throwaway database on the test cluster
//! (`TestDb`), the real `daedalus` binary started against it (`Daedalus`), an HTTP client
//! that answers status, headers and body (`Call`, `Reply`), and raw TCP for requests no
//! well-behaved client would send (`Daedalus::raw`).
//!
//! The cluster comes from `tests/services/postgres.sh start`, which prints
//! `DAEDALUS_TEST_DATABASE_URL`; without it every test panics, saying so.

// Each test file uses a different part of this module.
#![allow(dead_code)]

pub mod fastagent;
pub mod s3;
pub mod sse;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::Notify;

/// How long a test waits for something that should happen at once (a start, a log line)
/// before it gives up with the logs in hand; a guard against hangs, not a speed check.
const PATIENCE: Duration = Duration::from_secs(60);

/// A database of its own for one test, dropped with it.
pub struct TestDb {
    /// URL of this test's database.
    pub url: String,
    name: String,
    /// URL of the cluster's maintenance database, for creating and dropping.
    admin_url: String,
}

impl TestDb {
    pub async fn create() -> TestDb {
        let admin_url = std::env::var("DAEDALUS_TEST_DATABASE_URL").expect(
            "DAEDALUS_TEST_DATABASE_URL is not set: start the test cluster first with \
             eval \"$(tests/services/postgres.sh start)\" (or run tests/run)",
        );
        let name = format!("daedalus_test_{}", uuid::Uuid::new_v4().simple());
        let admin = connect(&admin_url).await;
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("creating the test database");
        let (base, _) = admin_url
            .split('?')
            .next()
            .and_then(|u| u.rsplit_once('/'))
            .expect("DAEDALUS_TEST_DATABASE_URL ends in /database");
        TestDb {
            url: format!("{base}/{name}"),
            name,
            admin_url,
        }
    }

    /// A direct connection, for arranging rows and checking what the service stored.
    pub async fn client(&self) -> tokio_postgres::Client {
        connect(&self.url).await
    }

    /// This database's URL with a password in it (trust auth ignores it).
    pub fn url_with_password(&self, password: &str) -> String {
        self.url
            .replacen("postgres@", &format!("postgres:{password}@"), 1)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        // Drop cannot await; a thread with its own runtime can.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a current-thread runtime builds");
            rt.block_on(async { connect(&admin_url).await.batch_execute(&sql).await })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop test database {}", self.name);
        }
    }
}

async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot reach the test PostgreSQL at {url}: {e}"));
    tokio::spawn(connection);
    client
}

/// Everything the process printed so far, and a signal for each new line.
#[derive(Default)]
struct Output {
    stdout: Mutex<Vec<String>>,
    stderr: Mutex<Vec<String>>,
    /// Set once stdout has closed (the process is gone or going).
    closed: Mutex<bool>,
    changed: Notify,
}

/// The `daedalus` binary running against a test database; killed when dropped.
pub struct Daedalus {
    child: Child,
    output: Arc<Output>,
    addr: Option<SocketAddr>,
    /// Working and data folder of the process, removed on drop.
    pub dir: PathBuf,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Daedalus {
    /// Starts the binary and waits until it listens.
    pub async fn start(db: &TestDb, extra_env: &[(&str, &str)]) -> Daedalus {
        let mut d = Daedalus::spawn(&db.url, extra_env);
        d.wait_listening().await;
        d
    }

    /// Starts the binary without waiting for anything. The environment holds no
    /// `DAEDALUS_*` variable but these, and the working folder is a fresh one, so no
    /// `.env` or `www/build` of the checkout leaks in.
    pub fn spawn(database_url: &str, extra_env: &[(&str, &str)]) -> Daedalus {
        Daedalus::spawn_with_args(&[], database_url, extra_env)
    }

    /// Like `spawn`, with command-line arguments (`migrate`, `migrate --status`).
    pub fn spawn_with_args(
        args: &[&str],
        database_url: &str,
        extra_env: &[(&str, &str)],
    ) -> Daedalus {
        let dir = std::env::temp_dir().join(format!("daedalus-test-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("creating the test data folder");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_daedalus"));
        for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("DAEDALUS_")) {
            cmd.env_remove(key);
        }
        cmd.args(args)
            .current_dir(&dir)
            .env("RUST_LOG", "info")
            .env("DAEDALUS_LISTEN", "127.0.0.1:0")
            .env("DAEDALUS_DATABASE_URL", database_url)
            .env("DAEDALUS_DATA_DIR", &dir)
            .envs(extra_env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().expect("the daedalus binary starts");
        let output = Arc::new(Output::default());
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        tokio::spawn(collect(stdout, output.clone(), true));
        tokio::spawn(collect(stderr, output.clone(), false));
        let client = Client::builder(TokioExecutor::new()).build_http();
        Daedalus {
            child,
            output,
            addr: None,
            dir,
            client,
        }
    }

    /// Waits for the `listening` line and takes the bound address from its `addr` field.
    pub async fn wait_listening(&mut self) -> SocketAddr {
        let line = self
            .wait_for_log(|l| {
                l["msg"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("listening"))
            })
            .await;
        let addr = line["addr"]
            .as_str()
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("the listening line has no usable addr: {line}"));
        self.addr = Some(addr);
        addr
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
            .expect("the service listens (call wait_listening first)")
    }

    /// Every stdout line so far, raw.
    pub fn log_lines(&self) -> Vec<String> {
        self.output.stdout.lock().expect("log lock").clone()
    }

    /// Every stdout line so far, each parsed as JSON (panics on one that is not).
    pub fn logs(&self) -> Vec<Value> {
        self.log_lines()
            .iter()
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| panic!("log line not JSON ({e}): {l}"))
            })
            .collect()
    }

    pub fn stderr_lines(&self) -> Vec<String> {
        self.output.stderr.lock().expect("log lock").clone()
    }

    /// Waits for a JSON log line matching `pred`; panics with the output if the process
    /// ends first or nothing comes within `PATIENCE`.
    pub async fn wait_for_log(&self, pred: impl Fn(&Value) -> bool) -> Value {
        let waited = tokio::time::timeout(PATIENCE, async {
            loop {
                let notified = self.output.changed.notified();
                let found = self
                    .log_lines()
                    .iter()
                    .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                    .find(|v| pred(v));
                if let Some(v) = found {
                    return Some(v);
                }
                if *self.output.closed.lock().expect("log lock") {
                    return None;
                }
                notified.await;
            }
        })
        .await;
        match waited {
            Ok(Some(v)) => v,
            Ok(None) => panic!(
                "daedalus ended before the awaited log line\n{}",
                self.dump()
            ),
            Err(_) => panic!("no awaited log line after {PATIENCE:?}\n{}", self.dump()),
        }
    }

    /// The captured output, for panic messages.
    pub fn dump(&self) -> String {
        format!(
            "--- stdout\n{}\n--- stderr\n{}",
            self.log_lines().join("\n"),
            self.stderr_lines().join("\n")
        )
    }

    /// Sends SIGTERM, as systemd does on stop.
    pub fn terminate(&self) {
        let pid = self.child.id().expect("the process is still running");
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("running kill");
        assert!(status.success(), "kill -TERM {pid} failed");
    }

    /// Waits for the process to exit on its own.
    pub async fn wait_exit(&mut self) -> ExitStatus {
        let status = tokio::time::timeout(PATIENCE, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("daedalus did not exit\n{}", self.dump()))
            .expect("waiting for daedalus");
        // Let the readers take the last lines.
        for _ in 0..100 {
            if *self.output.closed.lock().expect("log lock") {
                break;
            }
            self.output.changed.notified().await;
        }
        status
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr())
    }

    /// A request to this instance; send it with `.send()`.
    pub fn call(&self, method: Method, path: &str) -> Call<'_> {
        Call {
            d: self,
            builder: http::Request::builder().method(method).uri(self.url(path)),
            body: Bytes::new(),
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.call(Method::GET, path).send().await
    }

    pub async fn get_as(&self, user: &str, path: &str) -> Reply {
        self.call(Method::GET, path).user(user).send().await
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Reply {
        self.call(Method::POST, path).json(body).send().await
    }

    /// Writes `request` on a fresh connection and reads everything until the server
    /// closes it. Add `Connection: close` to the request, or the read waits for the
    /// server's idle timeout.
    pub async fn raw(&self, request: &[u8]) -> RawReply {
        let stream = tokio::net::TcpStream::connect(self.addr())
            .await
            .expect("connecting to daedalus");
        let (mut read, mut write) = stream.into_split();
        let request = request.to_vec();
        // Writing goes on beside reading: the server may answer (413, 431) and close
        // before it has read everything.
        let writer = tokio::spawn(async move {
            let _ = write.write_all(&request).await;
            let _ = write.flush().await;
            write
        });
        let mut buf = Vec::new();
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match read.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        drop(writer.await);
        RawReply::parse(&buf)
    }
}

async fn collect(stream: impl tokio::io::AsyncRead + Unpin, out: Arc<Output>, stdout: bool) {
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let sink = if stdout { &out.stdout } else { &out.stderr };
        sink.lock().expect("log lock").push(line);
        out.changed.notify_waiters();
    }
    if stdout {
        *out.closed.lock().expect("log lock") = true;
        out.changed.notify_waiters();
    }
}

impl Drop for Daedalus {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("daedalus output of the failed test:\n{}", self.dump());
        }
        let _ = self.child.start_kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A request being built.
pub struct Call<'a> {
    d: &'a Daedalus,
    builder: http::request::Builder,
    body: Bytes,
}

impl Call<'_> {
    /// Acts as `user`, through the identity header a trusted proxy sets.
    pub fn user(self, user: &str) -> Self {
        self.header("x-forwarded-user", user)
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.builder = self.builder.header(name, value);
        self
    }

    pub fn json(self, value: &Value) -> Self {
        self.header("content-type", "application/json")
            .body(serde_json::to_vec(value).expect("JSON encodes"))
    }

    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    pub async fn send(self) -> Reply {
        let req = self
            .builder
            .body(Full::new(self.body))
            .expect("a valid test request");
        let resp = self
            .d
            .client
            .request(req)
            .await
            .unwrap_or_else(|e| panic!("request failed: {e:?}\n{}", self.d.dump()));
        let (parts, body) = resp.into_parts();
        let body = body.collect().await.expect("reading the body").to_bytes();
        Reply {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }
}

/// A whole response.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    /// The body as JSON; panics (showing the body) when it is not.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "{} answered a body that is not JSON ({e}): {:?}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// Asserts the status and returns the JSON body.
    pub fn expect(&self, status: u16) -> Value {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            String::from_utf8_lossy(&self.body)
        );
        if self.body.is_empty() {
            Value::Null
        } else {
            self.json()
        }
    }

    /// Asserts the status and the JSON error shape; returns the error code.
    pub fn expect_error(&self, status: u16) -> String {
        let body = self.expect(status);
        assert_error_shape(&body);
        assert_eq!(
            self.header("content-type"),
            Some("application/json"),
            "errors are JSON"
        );
        body["error"]["code"].as_str().expect("code").to_string()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// `{"error": {"code": "snake_case", "message": "..."}}` and nothing else.
pub fn assert_error_shape(body: &Value) {
    let err = &body["error"];
    let code = err["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error.code in {body}"));
    assert!(
        !code.is_empty() && code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
        "error code is not snake_case: {code}"
    );
    assert!(err["message"].is_string(), "no error.message in {body}");
    assert_eq!(
        body.as_object().map(|o| o.len()),
        Some(1),
        "extra fields: {body}"
    );
}

/// A response read off a raw connection.
#[derive(Debug)]
pub struct RawReply {
    /// 0 when the server answered nothing (closed or reset the connection).
    pub status: u16,
    /// Lower-case header names with their values, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawReply {
    fn parse(bytes: &[u8]) -> RawReply {
        let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") else {
            return RawReply {
                status: 0,
                headers: Vec::new(),
                body: bytes.to_vec(),
            };
        };
        let head = String::from_utf8_lossy(&bytes[..end]);
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        RawReply {
            status,
            headers,
            body: bytes[end + 4..].to_vec(),
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON, if it is.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// A GET on a raw connection that the server closes after answering.
pub fn raw_get(target: &str, extra_headers: &str) -> Vec<u8> {
    format!("GET {target} HTTP/1.1\r\nHost: test\r\n{extra_headers}Connection: close\r\n\r\n")
        .into_bytes()
}

/// Creates a workspace as `user` and returns its id.
pub async fn create_workspace(d: &Daedalus, user: &str, name: &str) -> String {
    let body = d
        .call(Method::POST, "/api/workspaces")
        .user(user)
        .json(&serde_json::json!({ "name": name }))
        .send()
        .await
        .expect(201);
    body["id"].as_str().expect("workspace id").to_string()
}

/// Creates a conversation as `user` and returns its id.
pub async fn create_conversation(d: &Daedalus, user: &str, ws: &str, title: &str) -> String {
    let body = d
        .call(Method::POST, &format!("/api/workspaces/{ws}/conversations"))
        .user(user)
        .json(&serde_json::json!({ "title": title }))
        .send()
        .await
        .expect(201);
    body["id"].as_str().expect("conversation id").to_string()
}

/// Inserts `count` complete user messages numbered 1..=count straight into the database
/// (sending needs an agent; listing does not).
pub async fn insert_messages(db: &TestDb, conversation: &str, count: i64) {
    let c: uuid::Uuid = conversation.parse().expect("conversation id");
    db.client()
        .await
        .execute(
            "INSERT INTO messages (id, conversation_id, seq, role, content, status)
             SELECT gen_random_uuid(), $1, g, 'user', 'message ' || g, 'complete'
             FROM generate_series(1, $2::bigint) g",
            &[&c, &count],
        )
        .await
        .expect("inserting messages");
}
