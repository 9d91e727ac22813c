//! Shared by the integration tests: a running router, simple tools, a loopback HTTP server.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use neuroflow_kit::ActorHandle;
use neuroflow_kit::metrics::Metrics;
use neuroflow_kit::protocol::router::{ToolCallRequest, ToolOutput};
use neuroflow_kit::supervisor::{Backoff, Supervisor, SupervisorHandle};
use neuroflow_router::{RouterConfig, Tool, ToolRouter, Tools, spec, tool_fn};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

pub const WAIT: Duration = Duration::from_secs(5);

pub struct Running {
    pub tools: Tools,
    pub router: ActorHandle<ToolRouter>,
    pub supervisor: SupervisorHandle,
    pub metrics: Arc<Metrics>,
}

impl Running {
    pub async fn stop(self) {
        self.supervisor.stop(WAIT).await;
    }
}

/// A router with `shards` shards under a root supervisor that restarts at once.
pub async fn start(shards: usize) -> Running {
    start_with(RouterConfig {
        shards,
        ..RouterConfig::default()
    })
    .await
}

pub async fn start_with(config: RouterConfig) -> Running {
    let metrics = Metrics::new().unwrap();
    let parts = Tools::build(config, &metrics).unwrap();
    let spec = parts.supervisor_spec("tools").backoff(Backoff::NONE);
    let (supervisor, _join) = Supervisor::start_root(spec, metrics.clone()).await.unwrap();
    Running {
        tools: parts.tools,
        router: parts.router,
        supervisor,
        metrics,
    }
}

pub fn object_schema() -> Value {
    json!({"type": "object"})
}

/// Answers with its arguments.
pub fn echo(name: &str) -> Tool {
    tool_fn(
        spec(name, "Echoes its arguments.", object_schema()),
        |args, _| async move { ToolOutput::ok(args.to_string()) },
    )
}

/// Sleeps `ms` then answers "done".
pub fn sleepy(name: &str, ms: u64) -> Tool {
    tool_fn(
        spec(name, "Sleeps.", object_schema()),
        move |_, _| async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            "done"
        },
    )
}

pub fn request(name: &str, arguments: Value) -> ToolCallRequest {
    ToolCallRequest {
        name: name.into(),
        arguments,
        timeout_ms: None,
        caller: None,
    }
}

pub fn as_agent(name: &str, arguments: Value, agent: &str) -> ToolCallRequest {
    ToolCallRequest {
        caller: Some(agent.into()),
        ..request(name, arguments)
    }
}

/// Parses a tool's JSON content.
pub fn content(output: &ToolOutput) -> Value {
    serde_json::from_str(&output.content)
        .unwrap_or_else(|e| panic!("content is not JSON ({e}): {}", output.content))
}

/// What the loopback server does with a request.
pub enum Reply {
    Respond {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// Accept and never answer.
    Hang,
}

impl Reply {
    pub fn ok(body: impl Into<Vec<u8>>) -> Self {
        Reply::Respond {
            status: 200,
            headers: vec![("Content-Type".into(), "text/plain".into())],
            body: body.into(),
        }
    }

    pub fn redirect(to: &str) -> Self {
        Reply::Respond {
            status: 302,
            headers: vec![("Location".into(), to.into())],
            body: Vec::new(),
        }
    }
}

/// One HTTP/1.1 exchange per connection on 127.0.0.1, answered by a handler of
/// (method, path, body). The accept loop dies with the server.
pub struct Server {
    pub addr: SocketAddr,
    pub hits: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    pub async fn start(
        handler: impl Fn(&str, &str, &[u8]) -> Reply + Send + Sync + 'static,
    ) -> Self {
        let handler: Handler = Arc::new(handler);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let counted = hits.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(exchange(stream, handler.clone()));
            }
        });
        Server { addr, hits, task }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

type Handler = Arc<dyn Fn(&str, &str, &[u8]) -> Reply + Send + Sync>;

async fn exchange(mut stream: TcpStream, handler: Handler) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) if buf.len() + n > 65_536 => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut first = head.lines().next().unwrap_or("").split(' ');
    let (method, path) = (first.next().unwrap_or(""), first.next().unwrap_or(""));
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0)
        .min(1 << 20);
    while buf.len() < head_end + length {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let body = &buf[head_end..buf.len().min(head_end + length)];
    match handler(method, path, body) {
        Reply::Hang => tokio::time::sleep(Duration::from_secs(60)).await,
        Reply::Respond {
            status,
            headers,
            body,
        } => {
            let mut out = format!("HTTP/1.1 {status} X\r\nContent-Length: {}\r\n", body.len());
            for (k, v) in headers {
                out.push_str(&format!("{k}: {v}\r\n"));
            }
            out.push_str("Connection: close\r\n\r\n");
            let _ = stream.write_all(out.as_bytes()).await;
            let _ = stream.write_all(&body).await;
            let _ = stream.shutdown().await;
        }
    }
}
