//! What a server's actor shares with the tools it registered: the open session, if any,
//! and the server's status. Calls read it without going through the actor's mailbox, so
//! they run at once, and fail at once while the server is down.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use neuroflow_kit::protocol::mcp::{McpServerStatus, McpState};
use rmcp::Peer;
use rmcp::RoleClient;
use tokio_util::sync::CancellationToken;

use super::config::TransportKind;
use super::metrics::McpMetrics;

/// Lines of a stdio server's stderr kept to explain why it died.
const STDERR_LINES: usize = 20;

pub(crate) struct Link {
    name: String,
    transport: TransportKind,
    metrics: McpMetrics,
    inner: Mutex<Inner>,
}

struct Inner {
    state: McpState,
    /// Bumped at every session opened, so that news of an older session is ignored.
    generation: u64,
    peer: Option<Peer<RoleClient>>,
    /// Closes the open session.
    session: Option<CancellationToken>,
    restarts: u64,
    tools: usize,
    pid: Option<u32>,
    protocol_version: Option<String>,
    server: Option<String>,
    last_error: Option<String>,
    retry_at: Option<Instant>,
    stderr: VecDeque<String>,
}

/// What opening a session found.
pub(crate) struct Opened {
    pub peer: Peer<RoleClient>,
    pub pid: Option<u32>,
    pub protocol_version: Option<String>,
    pub server: Option<String>,
}

impl Link {
    pub fn new(name: &str, transport: TransportKind, metrics: McpMetrics) -> Arc<Self> {
        metrics.set_state(name, McpState::Starting);
        Arc::new(Self {
            name: name.to_string(),
            transport,
            metrics,
            inner: Mutex::new(Inner {
                state: McpState::Starting,
                generation: 0,
                peer: None,
                session: None,
                restarts: 0,
                tools: 0,
                pid: None,
                protocol_version: None,
                server: None,
                last_error: None,
                retry_at: None,
                stderr: VecDeque::new(),
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn metrics(&self) -> &McpMetrics {
        &self.metrics
    }

    /// A new attempt begins; returns its generation.
    pub fn next_generation(&self) -> u64 {
        let mut inner = self.lock();
        inner.generation += 1;
        inner.stderr.clear();
        inner.generation
    }

    fn set(&self, inner: &mut Inner, state: McpState) {
        inner.state = state;
        self.metrics.set_state(&self.name, state);
    }

    /// The session of `generation` is open.
    pub fn up(&self, generation: u64, opened: Opened, session: CancellationToken) {
        let mut inner = self.lock();
        if inner.generation != generation {
            return;
        }
        inner.peer = Some(opened.peer);
        inner.session = Some(session);
        inner.pid = opened.pid;
        inner.protocol_version = opened.protocol_version;
        inner.server = opened.server;
        inner.retry_at = None;
        self.set(&mut inner, McpState::Up);
    }

    /// The session of `generation` is gone; another is tried at `retry_at`. Returns false
    /// (and changes nothing) for news of an older session.
    pub fn restarting(&self, generation: u64, error: &str, retry_at: Instant) -> bool {
        let mut inner = self.lock();
        if inner.generation != generation {
            return false;
        }
        inner.peer = None;
        inner.session = None;
        inner.pid = None;
        inner.last_error = Some(self.explain(&inner, error));
        inner.retry_at = Some(retry_at);
        self.set(&mut inner, McpState::Restarting);
        true
    }

    /// A restart is starting now.
    pub fn restart_begins(&self) {
        let mut inner = self.lock();
        inner.restarts += 1;
        inner.retry_at = None;
        self.metrics.restarted(&self.name);
    }

    /// Given up on: too many restarts.
    pub fn failed(&self, error: &str) {
        let mut inner = self.lock();
        inner.peer = None;
        inner.session = None;
        inner.pid = None;
        inner.retry_at = None;
        inner.last_error = Some(self.explain(&inner, error));
        self.set(&mut inner, McpState::Failed);
    }

    pub fn stopped(&self) {
        let mut inner = self.lock();
        inner.peer = None;
        inner.session = None;
        inner.pid = None;
        inner.retry_at = None;
        self.set(&mut inner, McpState::Stopped);
    }

    pub fn set_tools(&self, count: usize) {
        self.lock().tools = count;
        self.metrics.set_tools(&self.name, count);
    }

    pub fn note_stderr(&self, generation: u64, line: String) {
        let mut inner = self.lock();
        if inner.generation != generation {
            return;
        }
        if inner.stderr.len() == STDERR_LINES {
            inner.stderr.pop_front();
        }
        inner.stderr.push_back(line);
    }

    /// `error`, with the last lines the server wrote to stderr when there are any.
    fn explain(&self, inner: &Inner, error: &str) -> String {
        match inner.stderr.back() {
            None => error.to_string(),
            Some(_) => {
                let tail: Vec<&str> = inner.stderr.iter().map(String::as_str).collect();
                format!("{error}; its stderr ended with: {}", tail.join(" | "))
            }
        }
    }

    /// A call found the session of `generation` broken: close it, so that the actor
    /// notices now rather than at the next read from the server.
    pub fn lost(&self, generation: u64, error: &str) {
        let inner = self.lock();
        if inner.generation == generation
            && let Some(session) = &inner.session
        {
            tracing::warn!(mcp.server = %self.name, %error, "MCP session lost during a call");
            session.cancel();
        }
    }

    /// The open session and its generation, or why there is none, in words for whoever
    /// made the call.
    pub fn peer(&self) -> Result<(Peer<RoleClient>, u64), String> {
        let inner = self.lock();
        if let Some(peer) = &inner.peer {
            return Ok((peer.clone(), inner.generation));
        }
        let name = &self.name;
        let last = inner
            .last_error
            .as_deref()
            .map(|e| format!("; last error: {e}"))
            .unwrap_or_default();
        Err(match inner.state {
            McpState::Starting => format!("MCP server {name} is unavailable: still starting"),
            McpState::Restarting => {
                let when = inner
                    .retry_at
                    .map(|at| at.saturating_duration_since(Instant::now()).as_millis())
                    .map(|ms| format!(", next attempt in {ms} ms"))
                    .unwrap_or_else(|| ", attempt under way".into());
                format!(
                    "MCP server {name} is unavailable: restarting (restart {}{when}){last}",
                    inner.restarts + 1
                )
            }
            McpState::Failed => format!(
                "MCP server {name} is unavailable: it failed and is no longer restarted{last}"
            ),
            McpState::Up | McpState::Stopped => {
                format!("MCP server {name} is unavailable: stopped")
            }
        })
    }

    pub fn status(&self) -> McpServerStatus {
        let inner = self.lock();
        McpServerStatus {
            name: self.name.clone(),
            transport: self.transport.as_str().to_string(),
            state: inner.state,
            restarts: inner.restarts,
            tools: inner.tools,
            pid: inner.pid,
            protocol_version: inner.protocol_version.clone(),
            server: inner.server.clone(),
            last_error: inner.last_error.clone(),
            retry_in_ms: inner.retry_at.map(|at| {
                u64::try_from(at.saturating_duration_since(Instant::now()).as_millis())
                    .unwrap_or(u64::MAX)
            }),
        }
    }
}
