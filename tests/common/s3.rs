//! What the files suites share: the three stores a `daedalus` can keep files in (its local
//! data folder, moto and s3s-fs from `tests/services/{moto,s3s}.sh`), a view into each from
//! outside the service to see which objects really exist, S3 servers of a test's own that
//! it may stop and restart, and streamed request bodies for transfers too large to hold.
//!
//! A missing service variable fails the test with a message saying how to start it.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use daedalus::storage::{S3Config, Store};
use futures_util::{Stream, StreamExt, stream};
use http::{HeaderMap, Method, Request, Response};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use super::{Daedalus, TestDb};

/// How long a server of our own may take to listen; a guard against hangs.
const PATIENCE: Duration = Duration::from_secs(30);

/// A variable exported by a service script, or a loud failure saying how to get it.
pub fn service_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: start the S3 test servers first with \
             eval \"$(tests/services/moto.sh start)\" and \
             eval \"$(tests/services/s3s.sh start)\" (or run tests/run)"
        )
    })
}

/// Where a `daedalus` under test keeps file bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// The embedded default: files under `{data dir}/files`.
    Local,
    Moto,
    S3s,
}

impl Backend {
    /// The S3 settings of the shared server, `None` for the local store.
    pub fn s3_config(self) -> Option<S3Config> {
        let (url, access, secret, bucket) = match self {
            Backend::Local => return None,
            Backend::Moto => (
                service_env("DAEDALUS_TEST_MOTO_URL"),
                "moto-access".to_string(),
                "moto-secret".to_string(),
                service_env("DAEDALUS_TEST_MOTO_BUCKET"),
            ),
            Backend::S3s => (
                service_env("DAEDALUS_TEST_S3S_URL"),
                service_env("DAEDALUS_TEST_S3S_ACCESS_KEY"),
                service_env("DAEDALUS_TEST_S3S_SECRET_KEY"),
                service_env("DAEDALUS_TEST_S3S_BUCKET"),
            ),
        };
        Some(S3Config::new(&url, &access, &secret, &bucket))
    }

    /// Starts `daedalus` on this store, with `extra` settings besides.
    pub async fn start(self, db: &TestDb, extra: &[(&str, &str)]) -> Daedalus {
        let s3 = self.s3_config().map(|cfg| daedalus_s3_env(&cfg));
        let mut env: Vec<(&str, &str)> = extra.to_vec();
        if let Some(s3) = &s3 {
            env.extend(s3.iter().map(|(k, v)| (*k, v.as_str())));
        }
        Daedalus::start(db, &env).await
    }

    /// The same bucket or folder `d` writes to, opened from outside the service.
    pub fn view(self, d: &Daedalus) -> View {
        match self.s3_config() {
            Some(cfg) => {
                let s3s_data = (self == Backend::S3s)
                    .then(|| PathBuf::from(service_env("DAEDALUS_TEST_S3S_DATA")));
                View::s3(cfg, s3s_data)
            }
            None => View {
                store: Store::local(d.dir.join("files")),
                bucket: String::new(),
                s3s_data: None,
            },
        }
    }
}

/// The `DAEDALUS_S3_*` settings that point `daedalus` at `cfg`.
pub fn daedalus_s3_env(cfg: &S3Config) -> Vec<(&'static str, String)> {
    vec![
        ("DAEDALUS_S3_ENDPOINT", cfg.endpoint.clone()),
        ("DAEDALUS_S3_ACCESS_KEY", cfg.access_key.clone()),
        ("DAEDALUS_S3_SECRET_KEY", cfg.secret_key.clone()),
        ("DAEDALUS_S3_BUCKET", cfg.bucket.clone()),
    ]
}

/// A store's contents as seen from outside `daedalus`.
pub struct View {
    pub store: Store,
    bucket: String,
    /// The data folder of an s3s-fs, where unfinished uploads show.
    s3s_data: Option<PathBuf>,
}

impl View {
    pub fn s3(cfg: S3Config, s3s_data: Option<PathBuf>) -> View {
        View {
            bucket: cfg.bucket.clone(),
            store: Store::s3(cfg).expect("a valid S3 configuration"),
            s3s_data,
        }
    }

    /// Keys of the objects under `prefix`, with their sizes.
    pub async fn objects_under(&self, prefix: &str) -> Vec<(String, u64)> {
        let listed = self
            .store
            .list(prefix)
            .await
            .unwrap_or_else(|e| panic!("listing {prefix}: {e}"));
        listed.into_iter().map(|o| (o.key, o.size)).collect()
    }

    /// No object, no unfinished multipart upload and no partial file under `prefix`.
    pub async fn assert_nothing_stored(&self, prefix: &str) {
        assert_eq!(self.objects_under(prefix).await, vec![], "objects left");
        let unfinished = self.unfinished(prefix).await;
        assert_eq!(unfinished, Vec::<String>::new(), "unfinished uploads left");
    }

    /// Multipart uploads under `prefix` neither completed nor aborted (S3), or partial
    /// files (the local store, whose partial folder is not per prefix).
    pub async fn unfinished(&self, prefix: &str) -> Vec<String> {
        match (&self.store, &self.s3s_data) {
            (Store::S3(_), Some(data)) => s3s_pending_uploads(data, &self.bucket, prefix),
            (Store::S3(s3), None) => {
                let pending = s3.pending_uploads(prefix).await.expect("listing uploads");
                pending.into_iter().map(|(key, _)| key).collect()
            }
            (Store::Local(local), _) => std::fs::read_dir(local.root().join(".partial"))
                .map(|d| d.map(|e| e.expect("entry").file_name().to_string_lossy().into()))
                .map(Iterator::collect)
                .unwrap_or_default(),
        }
    }
}

/// Keys with an unfinished upload in an s3s-fs data folder, which does not implement
/// ListMultipartUploads but keeps one metadata file per upload, named
/// `.bucket-{base64 bucket}.object-{base64 key}.upload-{id}.metadata.json`.
pub fn s3s_pending_uploads(data: &std::path::Path, bucket: &str, prefix: &str) -> Vec<String> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let start = format!(".bucket-{}.object-", b64.encode(bucket));
    let entries = std::fs::read_dir(data).expect("the s3s-fs data folder");
    let key_of = |name: String| -> Option<String> {
        let (key, _) = name.strip_prefix(&start)?.split_once(".upload-")?;
        String::from_utf8(b64.decode(key).ok()?).ok()
    };
    entries
        .filter_map(|e| key_of(e.expect("entry").file_name().to_string_lossy().into_owned()))
        .filter(|key| key.starts_with(prefix))
        .collect()
}

/// The `bytes`-th byte of every generated file: a pattern whose period (251) is prime, so
/// a chunk landing at the wrong offset shows.
pub fn pattern_byte(i: u64) -> u8 {
    (i % 251) as u8
}

/// The first `len` bytes of the pattern, in memory, for small files.
pub fn pattern(len: u64) -> Vec<u8> {
    (0..len).map(pattern_byte).collect()
}

/// The SHA-256 (lower-case hex) of the first `len` bytes of the pattern.
pub fn pattern_sha256(len: u64) -> String {
    let mut hasher = Sha256::new();
    for chunk in pattern_chunks(len) {
        hasher.update(&chunk);
    }
    hex::encode(hasher.finalize())
}

/// The pattern in chunks of 64 KiB, made one at a time.
pub fn pattern_chunks(len: u64) -> impl Iterator<Item = Bytes> + Send + 'static {
    const CHUNK: u64 = 64 * 1024;
    (0..len).step_by(CHUNK as usize).map(move |start| {
        let end = (start + CHUNK).min(len);
        Bytes::from((start..end).map(pattern_byte).collect::<Vec<u8>>())
    })
}

/// A request body that is never held whole.
pub type Streamed = UnsyncBoxBody<Bytes, Infallible>;

/// A body made of `chunks`, sent as they come.
pub fn streamed(chunks: impl Stream<Item = Bytes> + Send + 'static) -> Streamed {
    BodyExt::boxed_unsync(StreamBody::new(chunks.map(|c| Ok(Frame::data(c)))))
}

/// `streamed` over an iterator.
pub fn streamed_iter(chunks: impl Iterator<Item = Bytes> + Send + 'static) -> Streamed {
    streamed(stream::iter(chunks))
}

/// A body the test feeds by hand: it ends when the sender is dropped.
pub fn fed_body() -> (mpsc::Sender<Bytes>, Streamed) {
    let (tx, rx) = mpsc::channel::<Bytes>(4);
    let chunks = stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) });
    (tx, streamed(chunks))
}

/// Sends one request with a streamed body to `d` and hands back the response unread.
pub async fn send_streamed(
    d: &Daedalus,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Streamed,
) -> Result<Response<Incoming>, hyper_util::client::legacy::Error> {
    let mut req = Request::builder().method(method).uri(d.url(path));
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let req = req.body(body).expect("a valid test request");
    let client: Client<HttpConnector, Streamed> =
        Client::builder(TokioExecutor::new()).build_http();
    client.request(req).await
}

/// The size and SHA-256 of a response body, read chunk by chunk; an error if it broke off.
pub async fn digest_body(mut body: Incoming) -> Result<(u64, String), hyper::Error> {
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            size += data.len() as u64;
            hasher.update(&data);
        }
    }
    Ok((size, hex::encode(hasher.finalize())))
}

/// A streamed response whose body is read to its end: status, headers, size and digest.
pub struct Digested {
    pub status: http::StatusCode,
    pub headers: HeaderMap,
    pub size: u64,
    pub sha256: String,
}

pub async fn digest_response(resp: Response<Incoming>) -> Digested {
    let (parts, body) = resp.into_parts();
    let (size, sha256) = digest_body(body).await.expect("the body reads to its end");
    Digested {
        status: parts.status,
        headers: parts.headers,
        size,
        sha256,
    }
}

/// An S3 server of the test's own, so that stopping it leaves the shared ones running.
pub struct OwnS3 {
    pub backend: Backend,
    addr: SocketAddr,
    /// The s3s-fs data folder (unused by moto, which keeps objects in memory).
    pub data: PathBuf,
    child: Option<std::process::Child>,
}

impl OwnS3 {
    pub const ACCESS_KEY: &str = "own-s3-access";
    pub const SECRET_KEY: &str = "own-s3-secret-key";
    pub const BUCKET: &str = "daedalus-own";

    pub async fn start(backend: Backend) -> OwnS3 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        let addr = listener.local_addr().expect("the address");
        drop(listener);
        let data = std::env::temp_dir().join(format!("daedalus-own-s3-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(data.join(OwnS3::BUCKET)).expect("the data folder");
        let mut own = OwnS3 {
            backend,
            addr,
            data,
            child: None,
        };
        own.run().await;
        own
    }

    /// Its bucket as seen from outside `daedalus`.
    pub fn view(&self) -> View {
        let s3s_data = (self.backend == Backend::S3s).then(|| self.data.clone());
        View::s3(self.config(), s3s_data)
    }

    pub fn config(&self) -> S3Config {
        let url = format!("http://{}", self.addr);
        S3Config::new(&url, OwnS3::ACCESS_KEY, OwnS3::SECRET_KEY, OwnS3::BUCKET)
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Kills the server, as a crash or an outage would.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("killing the S3 server");
            child.wait().expect("reaping the S3 server");
        }
    }

    /// Starts it again on the same port (and, for s3s-fs, the same data folder).
    pub async fn restart(&mut self) {
        self.stop();
        self.run().await;
    }

    async fn run(&mut self) {
        let port = self.addr.port().to_string();
        let mut cmd = match self.backend {
            Backend::Moto => {
                let mut cmd = std::process::Command::new(moto_server());
                cmd.args(["-H", "127.0.0.1", "-p", &port]);
                cmd
            }
            Backend::S3s => {
                let mut cmd = std::process::Command::new("s3s-fs");
                cmd.args(["--host", "127.0.0.1", "--port", &port])
                    .args(["--access-key", OwnS3::ACCESS_KEY])
                    .args(["--secret-key", OwnS3::SECRET_KEY])
                    .arg(&self.data);
                cmd
            }
            Backend::Local => unreachable!("the local store has no server"),
        };
        let child = cmd
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {:?}: {e} (tests/services/*.sh install)", cmd));
        self.child = Some(child);
        self.wait_listening().await;
        // moto forgets everything when it stops; provisioning makes the bucket again.
        let store = Store::s3(self.config()).expect("a valid S3 configuration");
        store
            .ensure_ready()
            .await
            .expect("the bucket exists or is made");
    }

    async fn wait_listening(&self) {
        let waited = tokio::time::timeout(PATIENCE, async {
            while tokio::net::TcpStream::connect(self.addr).await.is_err() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
        assert!(
            waited.is_ok(),
            "{:?} did not listen on {}",
            self.backend,
            self.addr
        );
    }
}

impl Drop for OwnS3 {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

/// The moto server of the venv `tests/services/moto.sh install` made: from
/// `DAEDALUS_TEST_MOTO_SERVER` when set, else the path that script uses.
fn moto_server() -> PathBuf {
    if let Ok(path) = std::env::var("DAEDALUS_TEST_MOTO_SERVER") {
        return PathBuf::from(path);
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/services/moto.sh");
    let text = std::fs::read_to_string(script).expect("reading tests/services/moto.sh");
    let version = text
        .lines()
        .find_map(|l| l.strip_prefix("MOTO_VERSION="))
        .expect("moto.sh pins MOTO_VERSION");
    let cache = std::env::var("DAEDALUS_TEST_CACHE").unwrap_or_else(|_| {
        let home = std::env::var("HOME").expect("HOME is set");
        format!("{home}/.cache/daedalus-test")
    });
    let path = PathBuf::from(format!("{cache}/moto-{version}/bin/moto_server"));
    assert!(
        path.exists(),
        "{} is missing: run tests/services/moto.sh install",
        path.display()
    );
    path
}
