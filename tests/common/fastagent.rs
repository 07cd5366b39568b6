//! Real FastAgent servers for the run tests. Most tests share the one that `tests/run`
//! starts (`DAEDALUS_TEST_FASTAGENT_URL`); fault tests start their own with
//! `FastAgent::start`, so they can kill and restart it without disturbing anyone.
//!
//! Each instance runs from a fresh folder of its own: FastAgent keeps session state in
//! `.fast-agent/` under its working folder, and two servers sharing one fail with
//! "Session 'default' is active".

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::process::{Child, Command};

/// The pinned FastAgent version, as installed by `tests/services/fastagent.sh install`.
const VERSION: &str = "0.10.48";
/// Start-up takes 6–12 s on a quiet machine; this bounds a hang, it times nothing.
const START_PATIENCE: Duration = Duration::from_secs(120);

/// The MCP URL of the FastAgent that `tests/run` started for every test to share.
pub fn shared_url() -> String {
    std::env::var("DAEDALUS_TEST_FASTAGENT_URL").expect(
        "DAEDALUS_TEST_FASTAGENT_URL is not set: start the test agents first with \
         eval \"$(tests/services/fastagent.sh start)\" (or run tests/run)",
    )
}

/// A FastAgent server serving `tests/agents/agents.py`, owned by one test; killed on drop.
pub struct FastAgent {
    child: Option<Child>,
    pub port: u16,
    /// Working folder of the server (its logs and `.fast-agent/` state); removed on drop.
    pub dir: PathBuf,
}

impl FastAgent {
    /// Starts a server on a free port and waits until it answers.
    pub async fn start() -> FastAgent {
        let dir = std::env::temp_dir().join(format!("daedalus-fastagent-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("creating the FastAgent folder");
        std::fs::copy(agents_file(), dir.join("agents.py")).expect("copying agents.py");
        let mut fa = FastAgent {
            child: None,
            port: free_port(),
            dir,
        };
        fa.launch().await;
        fa
    }

    /// The MCP endpoint, as a workspace's agent server names it.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/mcp", self.port)
    }

    /// Kills the server at once (SIGKILL), as a crash would, and waits until it is gone.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.start_kill().expect("killing FastAgent");
            child.wait().await.expect("waiting for FastAgent to die");
        }
    }

    /// Starts the server again on the same port, with none of its old sessions.
    pub async fn restart(&mut self) {
        self.kill().await;
        let _ = std::fs::remove_dir_all(self.dir.join(".fast-agent"));
        self.launch().await;
    }

    /// The server's output so far, for panic messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    async fn launch(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("server.log"))
            .expect("opening the FastAgent log");
        let err = log.try_clone().expect("cloning the log handle");
        let port = self.port.to_string();
        let child = Command::new(python())
            .args([
                "agents.py",
                "--transport",
                "http",
                "--host",
                "127.0.0.1",
                "--port",
                &port,
            ])
            .current_dir(&self.dir)
            .env("FASTMCP_CHECK_FOR_UPDATES", "off")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start FastAgent ({e}); run tests/services/fastagent.sh install")
            });
        self.child = Some(child);
        self.wait_ready().await;
    }

    /// Polls `GET /` until it answers; panics with the log if the server dies or hangs.
    async fn wait_ready(&mut self) {
        let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
        let uri: http::Uri = format!("http://127.0.0.1:{}/", self.port)
            .parse()
            .expect("a valid URI");
        let started = std::time::Instant::now();
        loop {
            if client.get(uri.clone()).await.is_ok() {
                return;
            }
            let child = self.child.as_mut().expect("the server was launched");
            if let Ok(Some(status)) = child.try_wait() {
                panic!("FastAgent exited during start ({status})\n{}", self.log());
            }
            if started.elapsed() > START_PATIENCE {
                panic!(
                    "FastAgent not ready after {START_PATIENCE:?}\n{}",
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for FastAgent {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("FastAgent log of the failed test:\n{}", self.log());
        }
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `tests/agents/agents.py` of this checkout.
fn agents_file() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/agents/agents.py")
}

/// The venv's Python, where `fastagent.sh install` puts it.
fn python() -> PathBuf {
    let cache = std::env::var_os("DAEDALUS_TEST_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME").expect("HOME is set");
            PathBuf::from(home).join(".cache/daedalus-test")
        });
    cache.join(format!("fastagent-{VERSION}/bin/python"))
}

/// A port nobody listens on now (the OS's pick, released at once).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("binding a free port")
        .port()
}

/// Creates a workspace (as the local user) whose agent servers are `servers`, as
/// `(name, MCP URL)` pairs; returns its id.
pub async fn workspace_with(d: &super::Daedalus, servers: &[(&str, &str)]) -> String {
    let servers: Vec<serde_json::Value> = servers
        .iter()
        .map(|(name, url)| serde_json::json!({"name": name, "url": url}))
        .collect();
    let body = serde_json::json!({"name": "Agents", "agent_servers": servers});
    let created = d.post_json("/api/workspaces", &body).await.expect(201);
    created["id"].as_str().expect("workspace id").to_string()
}

/// Creates a conversation with `agent` in `ws`; returns its id.
pub async fn conversation_with(d: &super::Daedalus, ws: &str, agent: &str) -> String {
    let body = serde_json::json!({"title": "Chat", "agent": agent});
    let path = format!("/api/workspaces/{ws}/conversations");
    let created = d.post_json(&path, &body).await.expect(201);
    created["id"].as_str().expect("conversation id").to_string()
}

/// Every message of the conversation, oldest first.
pub async fn messages(d: &super::Daedalus, ws: &str, c: &str) -> Vec<serde_json::Value> {
    let path = format!("/api/workspaces/{ws}/conversations/{c}/messages?limit=200");
    let list = d.get(&path).await.expect(200);
    list["items"].as_array().expect("items").clone()
}
