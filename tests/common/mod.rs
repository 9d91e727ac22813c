//! Helpers shared by the node's integration tests: start the real `neuroflow-node` binary on
//! a loopback port, talk to it, signal it, and look at what it left behind. Every wait is
//! bounded.
#![allow(dead_code)]

pub mod api;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_neuroflow-node");

/// Bound on the node printing its listening line.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on the node exiting after a shutdown signal (its default shutdown timeout is 10s).
pub const EXIT_TIMEOUT: Duration = Duration::from_secs(15);
/// Bound on a state the tests poll for (a restart, a counter).
pub const POLL_TIMEOUT: Duration = Duration::from_secs(10);

/// Configuration variables the node reads; cleared for every node a test starts, so that
/// the caller's environment cannot change what a test sees.
const CONFIG_VARS: [&str; 7] = [
    "NEUROFLOW_LISTEN",
    "NEUROFLOW_DATA_DIR",
    "NEUROFLOW_LOG",
    "NEUROFLOW_SHUTDOWN_TIMEOUT",
    "NEUROFLOW_TEST_HOOKS",
    "NEUROFLOW_JWT_SECRET",
    "NEUROFLOW_ADMIN_PASSWORD",
];

/// The HS256 secret of every node a test starts, so that a test can mint its tokens.
pub const JWT_SECRET: &str = "test-secret-test-secret-test-secret-0123";
/// The password of the `admin` user of every node a test starts.
pub const ADMIN_PASSWORD: &str = "test-admin-password";

/// A token for `username` with `role`, as the test nodes issue them.
pub fn token(username: &str, role: neuroflow::auth::Role) -> String {
    neuroflow::auth::TokenIssuer::hs256(JWT_SECRET.as_bytes(), Duration::from_secs(3600))
        .expect("issuer")
        .issue(username, role)
        .expect("token")
        .token
}

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!(
            "neuroflow-test-{tag}-{}-{}-{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let path = std::env::temp_dir().join(name);
        std::fs::create_dir_all(&path).expect("create temp dir");
        Self(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Writes `text` to `name` inside the directory and returns its path.
    pub fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).expect("write file");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// How to start a node.
pub struct NodeBuilder {
    args: Vec<String>,
    env: Vec<(String, String)>,
    dir: TempDir,
}

impl NodeBuilder {
    /// `neuroflow-node serve --listen 127.0.0.1:0 --data-dir <temp>`.
    pub fn serve() -> Self {
        let dir = TempDir::new("node");
        let data = dir.path().join("data");
        Self {
            args: vec![
                "serve".into(),
                "--listen".into(),
                "127.0.0.1:0".into(),
                "--data-dir".into(),
                data.display().to_string(),
            ],
            env: vec![
                ("NEUROFLOW_JWT_SECRET".into(), JWT_SECRET.into()),
                ("NEUROFLOW_ADMIN_PASSWORD".into(), ADMIN_PASSWORD.into()),
            ],
            dir,
        }
    }

    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    pub fn test_hooks(self) -> Self {
        self.env("NEUROFLOW_TEST_HOOKS", "1")
    }

    /// Adds `--config <file>` with `text` as the file.
    pub fn config(self, text: &str) -> Self {
        let path = self.dir.file("node.toml", text);
        self.arg("--config").arg(path.display().to_string())
    }

    /// Starts the node and waits (bounded) for its listening line.
    pub fn start(self) -> Node {
        let mut process = Process::spawn(&self.args, &self.env);
        let line = process
            .first_line(START_TIMEOUT)
            .unwrap_or_else(|| panic!("no listening line; stderr:\n{}", process.stderr()));
        let url = line
            .strip_prefix("neuroflow-node listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        assert!(url.starts_with("http://127.0.0.1:"), "{url}");
        Node {
            process,
            url,
            dir: self.dir,
            args: self.args,
            env: self.env,
        }
    }

    /// Runs the node expecting it to exit by itself (e.g. a bad configuration).
    pub fn run_to_exit(self) -> (ExitStatus, String) {
        let mut process = Process::spawn(&self.args, &self.env);
        let status = process
            .wait_exit(EXIT_TIMEOUT)
            .unwrap_or_else(|| panic!("node did not exit; stderr:\n{}", process.stderr()));
        let stderr = process.stderr();
        (status, stderr)
    }
}

/// The node's process with its output collected by background threads (so that a full pipe
/// can never block it). Killed on drop if still running.
pub struct Process {
    child: Child,
    lines: mpsc::Receiver<String>,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
}

impl Process {
    pub fn spawn(args: &[String], env: &[(String, String)]) -> Self {
        let mut command = Command::new(BIN);
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for var in CONFIG_VARS {
            command.env_remove(var);
        }
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("spawn neuroflow-node");
        let (tx, lines) = mpsc::channel();
        let stdout = Arc::new(Mutex::new(String::new()));
        let out = child.stdout.take().expect("stdout");
        let sink = stdout.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap().push_str(&format!("{line}\n"));
                let _ = tx.send(line);
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err = child.stderr.take().expect("stderr");
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Self {
            child,
            lines,
            stdout,
            stderr,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn first_line(&mut self, timeout: Duration) -> Option<String> {
        self.lines.recv_timeout(timeout).ok()
    }

    /// Waits at most `timeout` for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                // Let the reader threads take the last output.
                std::thread::sleep(Duration::from_millis(50));
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    pub fn signal(&self, signal: Signal) {
        let pid = i32::try_from(self.pid()).expect("pid fits i32");
        kill(Pid::from_raw(pid), signal).expect("send signal");
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A running node started by a test.
pub struct Node {
    pub process: Process,
    /// `http://127.0.0.1:PORT`
    pub url: String,
    pub dir: TempDir,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

impl Node {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        self.url
            .trim_start_matches("http://")
            .parse()
            .expect("socket address")
    }

    /// `GET path` as admin (panics on a transport error).
    async fn admin_get(&self, http: &reqwest::Client, path: &str) -> reqwest::Response {
        http.get(self.url(path))
            .bearer_auth(token("admin", neuroflow::auth::Role::Admin))
            .send()
            .await
            .expect("GET")
    }

    /// `GET path` as admin → the body as text.
    pub async fn get_text(&self, http: &reqwest::Client, path: &str) -> String {
        self.admin_get(http, path).await.text().await.expect("body")
    }

    /// `GET path` as admin → the body as JSON (panics on a non-JSON body).
    pub async fn get_json(&self, http: &reqwest::Client, path: &str) -> serde_json::Value {
        self.admin_get(http, path)
            .await
            .json()
            .await
            .expect("JSON body")
    }

    /// Stops the node with `signal` and starts it again on the same data directory (and a
    /// new port).
    pub fn restart(mut self, signal: Signal) -> Node {
        self.process.signal(signal);
        self.process.wait_exit(EXIT_TIMEOUT).unwrap_or_else(|| {
            panic!(
                "node did not exit on {signal}; stderr:\n{}",
                self.process.stderr()
            )
        });
        let builder = NodeBuilder {
            args: std::mem::take(&mut self.args),
            env: std::mem::take(&mut self.env),
            dir: std::mem::replace(&mut self.dir, TempDir::new("moved")),
        };
        builder.start()
    }

    /// Sends `signal` and waits (bounded) for the exit status.
    pub fn stop_with(mut self, signal: Signal) -> (ExitStatus, Duration, String) {
        let begun = Instant::now();
        self.process.signal(signal);
        let status = self.process.wait_exit(EXIT_TIMEOUT).unwrap_or_else(|| {
            panic!(
                "node did not exit within {EXIT_TIMEOUT:?} of {signal}; stderr:\n{}",
                self.process.stderr()
            )
        });
        (status, begun.elapsed(), self.process.stderr())
    }
}

/// An HTTP client for loopback only: no proxy, short timeouts; it calls as admin.
pub fn client() -> reqwest::Client {
    client_as(Some(neuroflow::auth::Role::Admin))
}

/// [`client`] calling with a token of `role` (`user-ROLE`), or with none.
pub fn client_as(role: Option<neuroflow::auth::Role>) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(role) = role {
        let bearer = format!("Bearer {}", token(&format!("user-{}", role.as_str()), role));
        headers.insert(
            reqwest::header::AUTHORIZATION,
            bearer.parse().expect("header value"),
        );
    }
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .default_headers(headers)
        .build()
        .expect("http client")
}

/// One turn of agent `agent` of an in-process node, answered within 30 s.
pub async fn ask(
    node: &neuroflow::Node,
    agent: &str,
    message: &str,
) -> neuroflow::kit::protocol::agent::AgentReply {
    let agent = node.agents().get(agent).expect("the agent runs");
    let chat = neuroflow::kit::protocol::agent::AgentMsg::Chat {
        message: message.into(),
        turn_id: None,
        conversation: None,
    };
    agent
        .handle
        .call(chat, Duration::from_secs(30))
        .await
        .expect("the agent answers")
}

/// Polls `check` every 50 ms until it returns `Some`, for at most `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A process: its pid and start time (field 22 of /proc/PID/stat), which together name it
/// even if the pid is reused.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ProcId {
    pub pid: u32,
    pub start: u64,
}

impl ProcId {
    pub fn of(pid: u32) -> Option<Self> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The command name (field 2) is in parentheses and may hold spaces.
        let rest = &stat[stat.rfind(')')? + 2..];
        let start = rest.split_whitespace().nth(19)?.parse().ok()?;
        Some(Self { pid, start })
    }

    /// Whether this very process still exists (zombies included).
    pub fn alive(&self) -> bool {
        Self::of(self.pid).as_ref() == Some(self)
    }
}

/// Every descendant of `pid` (children, grandchildren, ...), from
/// /proc/PID/task/*/children.
pub fn descendants(pid: u32) -> BTreeSet<ProcId> {
    let mut found = BTreeSet::new();
    let mut queue = vec![pid];
    while let Some(parent) = queue.pop() {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{parent}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            let children =
                std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            for child in children
                .split_whitespace()
                .filter_map(|c| c.parse::<u32>().ok())
            {
                if let Some(id) = ProcId::of(child)
                    && found.insert(id)
                {
                    queue.push(child);
                }
            }
        }
    }
    found
}

/// Whether a test that needs a host tool must fail rather than skip when it is missing.
pub fn require_isolation() -> bool {
    std::env::var("NEUROFLOW_REQUIRE_ISOLATION").is_ok_and(|v| v == "1")
}

/// Runs `promtool check metrics` on `text`. `None` if promtool is not installed.
pub fn promtool_check(text: &str) -> Option<(bool, String)> {
    let mut child = match Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => panic!("cannot run promtool: {e}"),
    };
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(text.as_bytes()).expect("write to promtool");
    drop(stdin);
    let output = child.wait_with_output().expect("promtool output");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Some((output.status.success(), report))
}
