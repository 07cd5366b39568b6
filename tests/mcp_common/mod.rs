//! Helpers shared by the MCP integration tests: service addresses from the
//! environment, and private server instances a test may kill and restart.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use daedalus::mcp::{Content, McpError, Pool, ServerSpec, ToolOutcome};

/// The URL of a service started by `tests/run`; panics with what to do when missing.
pub fn service_url(var: &str, script: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: start the service with `eval \"$(tests/services/{script} start)\"` or run tests/run")
    })
}

pub fn spec(label: &str, url: &str) -> ServerSpec {
    ServerSpec {
        label: label.into(),
        url: url.into(),
        headers: Vec::new(),
    }
}

/// The text of every text block of a result, joined.
pub fn text_of(outcome: &ToolOutcome) -> String {
    outcome
        .content
        .iter()
        .filter_map(|c| match c {
            Content::Text { text } => Some(text.as_str()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("")
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("bound address").port()
}

/// A server of its own for a test that kills and restarts it; killed on drop.
pub struct OwnServer {
    script: &'static str,
    pub port: u16,
    child: Option<Child>,
}

impl OwnServer {
    /// Starts `tests/services/<script> run PORT` and waits until it answers.
    pub async fn start(script: &'static str) -> OwnServer {
        let mut server = OwnServer {
            script,
            port: free_port(),
            child: None,
        };
        server.restart().await;
        server
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/mcp", self.port)
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // The script execs the server, so the child is the server itself.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub async fn restart(&mut self) {
        self.kill();
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/services")
            .join(self.script);
        let child = Command::new(script)
            .arg("run")
            .arg(self.port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the service script runs");
        self.child = Some(child);
        self.wait_listening().await;
    }

    async fn wait_listening(&mut self) {
        // Bounded readiness wait (start-up takes up to ~20 s for FastAgent).
        for _ in 0..600 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("{} exited during start: {status}", self.script);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "{} did not listen on port {} within 60 s",
            self.script, self.port
        );
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Retries `discover` until the server answers, stepping over the pool's backoff;
/// a bounded readiness wait, not a timing assertion.
pub async fn discover_until_up(pool: &Pool, server: &ServerSpec) {
    let mut last = None;
    for _ in 0..120 {
        match pool.discover(server).await {
            Ok(_) => return,
            Err(error @ (McpError::Unreachable { .. } | McpError::BackingOff { .. })) => {
                last = Some(error)
            }
            Err(other) => panic!("unexpected error while waiting for the server: {other}"),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("the server never came back: {last:?}");
}
