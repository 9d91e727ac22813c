//! The node-side egress proxy of one sandbox: a Unix socket, served until dropped.
//!
//! Each connection is one client byte stream forwarded by the bridge inside the sandbox.
//! Its first byte tells the protocol (0x05: SOCKS5, anything else: HTTP proxy requests);
//! [`super::http`] and [`super::socks`] read the request, [`super::upstream`] decides and
//! connects, and the bytes are then spliced both ways until either side is done.

use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UnixListener, UnixStream};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::{Instant, timeout_at};

use super::allowlist::Allowlist;
use super::{http, socks};

/// Bounds on what one proxy spends on its clients.
#[derive(Debug, Clone)]
pub struct ProxyLimits {
    /// Largest HTTP request head (request line and headers).
    pub max_head: usize,
    /// Time a client has to send its whole request (HTTP head, SOCKS greeting + request).
    pub head_timeout: Duration,
    /// Time for resolving a name, and again for connecting to it.
    pub connect_timeout: Duration,
    /// Connections served at once; more are closed on arrival and counted.
    pub max_connections: usize,
}

impl Default for ProxyLimits {
    fn default() -> Self {
        ProxyLimits {
            max_head: 16 * 1024,
            head_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(10),
            max_connections: 256,
        }
    }
}

/// What a proxy has done so far. Every served connection ends up in exactly one of
/// `allowed` (spliced to its destination), `denied` (refused by the allowlist) or `failed`
/// (bad or incomplete request, resolution or connection failure); connections closed on
/// arrival because too many were open count in `refused_busy`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProxyStats {
    pub allowed: u64,
    pub denied: u64,
    pub failed: u64,
    pub refused_busy: u64,
}

#[derive(Debug, Default)]
struct Counters {
    allowed: AtomicU64,
    denied: AtomicU64,
    failed: AtomicU64,
    refused_busy: AtomicU64,
}

/// How one connection ended, before any splicing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Allowed,
    Denied,
    Failed,
}

/// What every connection of one proxy shares.
pub(crate) struct Ctx {
    pub allowlist: Arc<Allowlist>,
    pub limits: ProxyLimits,
    counters: Counters,
}

impl Ctx {
    /// Counts the verdict. Called before the client is answered, so that a client that has
    /// its answer sees it counted.
    pub fn record(&self, verdict: Verdict) {
        let c = match verdict {
            Verdict::Allowed => &self.counters.allowed,
            Verdict::Denied => &self.counters.denied,
            Verdict::Failed => &self.counters.failed,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }
}

/// A running egress proxy. Dropping it stops it: the listener and every open connection
/// are closed and the socket file is removed.
pub struct EgressProxy {
    path: PathBuf,
    /// Device and inode of the socket file, so that Drop removes only our own.
    file_id: (u64, u64),
    ctx: Arc<Ctx>,
    task: JoinHandle<()>,
}

impl EgressProxy {
    /// Serves `allowlist` at a new Unix socket `socket_path` with the default limits.
    /// Needs to be called within a tokio runtime with I/O enabled (any flavour).
    pub fn start(socket_path: &Path, allowlist: Arc<Allowlist>) -> io::Result<EgressProxy> {
        Self::start_with(socket_path, allowlist, ProxyLimits::default())
    }

    pub fn start_with(
        socket_path: &Path,
        allowlist: Arc<Allowlist>,
        limits: ProxyLimits,
    ) -> io::Result<EgressProxy> {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|e| io::Error::other(format!("egress proxy needs a tokio runtime: {e}")))?;
        let listener = UnixListener::bind(socket_path)?;
        // The sandbox's user (often nobody) connects through the bind mount; who may reach
        // the socket at all is settled by its private parent directory.
        std::fs::set_permissions(socket_path, std::fs::Permissions::from_mode(0o666))?;
        let meta = std::fs::symlink_metadata(socket_path)?;
        let ctx = Arc::new(Ctx {
            allowlist,
            limits,
            counters: Counters::default(),
        });
        let task = runtime.spawn(accept_loop(listener, ctx.clone()));
        Ok(EgressProxy {
            path: socket_path.to_path_buf(),
            file_id: (meta.dev(), meta.ino()),
            ctx,
            task,
        })
    }

    pub fn socket_path(&self) -> &Path {
        &self.path
    }

    pub fn allowlist(&self) -> &Allowlist {
        &self.ctx.allowlist
    }

    pub fn stats(&self) -> ProxyStats {
        let c = &self.ctx.counters;
        ProxyStats {
            allowed: c.allowed.load(Ordering::Relaxed),
            denied: c.denied.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            refused_busy: c.refused_busy.load(Ordering::Relaxed),
        }
    }
}

impl std::fmt::Debug for EgressProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EgressProxy")
            .field("socket", &self.path)
            .field("allowlist", &self.ctx.allowlist.to_string())
            .field("stats", &self.stats())
            .finish()
    }
}

impl Drop for EgressProxy {
    fn drop(&mut self) {
        // Aborting the accept task drops its JoinSet, which aborts every connection task.
        self.task.abort();
        if let Ok(meta) = std::fs::symlink_metadata(&self.path)
            && (meta.dev(), meta.ino()) == self.file_id
        {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

async fn accept_loop(listener: UnixListener, ctx: Arc<Ctx>) {
    let mut tasks = JoinSet::new();
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of descriptors and the like: wait instead of spinning.
                tracing::warn!(error = %e, "egress proxy accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        while tasks.try_join_next().is_some() {}
        if tasks.len() >= ctx.limits.max_connections {
            ctx.counters.refused_busy.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(
                limit = ctx.limits.max_connections,
                "sandbox egress: too many connections, closing a new one"
            );
            drop(stream);
            continue;
        }
        tasks.spawn(serve(stream, ctx.clone()));
    }
}

async fn serve(mut client: UnixStream, ctx: Arc<Ctx>) {
    // One deadline for the whole request, however the client spreads its bytes.
    let deadline = Instant::now() + ctx.limits.head_timeout;
    let mut first = [0u8; 1];
    match timeout_at(deadline, client.read(&mut first)).await {
        Ok(Ok(1)) if first[0] == socks::VERSION => socks::serve(client, &ctx, deadline).await,
        Ok(Ok(1)) => http::serve(client, first[0], &ctx, deadline).await,
        // Closed, broken or silent before the first byte: nothing to answer.
        _ => ctx.record(Verdict::Failed),
    }
}

/// Sends `pending` (a rewritten head, bytes the client sent past its request) upstream
/// within `limit`, then copies both ways until both sides are done. Buffers are
/// copy_bidirectional's fixed ones.
pub(crate) async fn splice(
    mut client: UnixStream,
    mut upstream: TcpStream,
    pending: &[u8],
    limit: Duration,
) {
    if !pending.is_empty() {
        match tokio::time::timeout(limit, upstream.write_all(pending)).await {
            Ok(Ok(())) => {}
            _ => return,
        }
    }
    if let Err(e) = tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
        tracing::trace!(error = %e, "sandbox egress connection ended with an error");
    }
}

/// Closes after an error answer without resetting it away: shuts the write side, then
/// reads what the client still sends for a short, bounded while (closing a socket with
/// unread input makes the peer's read fail before it sees the answer).
pub(crate) async fn linger_close(mut client: UnixStream) {
    let _ = client.shutdown().await;
    let drain = async {
        let mut buf = [0u8; 4096];
        for _ in 0..16 {
            match client.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
}
