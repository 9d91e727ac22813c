//! The HTTP server actor.
//!
//! The node binds the listening socket once, before the tree starts, and hands it to this
//! actor. Every incarnation serves a duplicate of that socket (`try_clone`), so a restarted
//! server answers on the same address without a gap in which another process could take
//! the port; connections that arrive while it restarts wait in the socket's backlog.
//!
//! The warp server runs in a task the actor owns. Stopping the actor stops accepting and
//! drains in-flight requests, for at most the drain timeout. If the actor fails instead,
//! its state is dropped and [`Serving`]'s `Drop` starts the same shutdown.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use neuroflow_kit::actor::{Actor, ActorError, Ctx};
use neuroflow_kit::protocol::api::{HttpMsg, HttpReply};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use warp::Filter;

use super::handlers::events;
use super::{ApiContext, dispatch, mcp};

/// Owns the warp server of the node's HTTP API.
pub struct HttpServer {
    pub listener: Arc<TcpListener>,
    pub api: ApiContext,
    /// Bound on draining in-flight requests when the server stops.
    pub drain_timeout: Duration,
}

impl HttpServer {
    /// Kind label of the HTTP server actor.
    pub const KIND: &'static str = "api.http";
}

/// State of a running server: the way to stop it and the task that runs it.
pub struct Serving {
    local_addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    drain_timeout: Duration,
}

impl Serving {
    fn start(
        listener: &TcpListener,
        api: ApiContext,
        drain_timeout: Duration,
    ) -> std::io::Result<Self> {
        let listener = listener.try_clone()?;
        listener.set_nonblocking(true)?;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let local_addr = listener.local_addr()?;
        let (shutdown, stop) = oneshot::channel::<()>();
        // Ends the MCP sessions, their SSE streams and the event WebSockets at shutdown,
        // which would otherwise hold the drain open until its timeout.
        let sessions = CancellationToken::new();
        let routes = mcp::node_filter(&api, sessions.clone())
            .or(events::filter(api.clone(), sessions.clone()))
            .unify()
            .or(dispatch::api(api))
            .unify();
        let server = warp::serve(routes)
            .incoming(listener)
            // A send or a dropped sender both end the wait: shutdown happens either way.
            .graceful(async move {
                let _ = stop.await;
                sessions.cancel();
            });
        let task = tokio::spawn(server.run());
        Ok(Self {
            local_addr,
            shutdown: Some(shutdown),
            task: Some(task),
            drain_timeout,
        })
    }

    /// Stops accepting and waits for in-flight requests, at most the drain timeout.
    async fn shut_down(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let Some(mut task) = self.task.take() else {
            return;
        };
        if tokio::time::timeout(self.drain_timeout, &mut task)
            .await
            .is_err()
        {
            tracing::warn!(
                "http: in-flight requests not finished within {:?}; abandoning them",
                self.drain_timeout
            );
            task.abort();
        }
    }
}

impl Drop for Serving {
    /// The failure path: the actor's state is dropped without `stopped` running. Start the
    /// graceful shutdown and bound it from a watchdog task.
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let Some(task) = self.task.take() else {
            return;
        };
        let abort = task.abort_handle();
        let drain = self.drain_timeout;
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    if tokio::time::timeout(drain, task).await.is_err() {
                        abort.abort();
                    }
                });
            }
            Err(_) => abort.abort(),
        }
    }
}

impl Actor for HttpServer {
    const KIND: &'static str = HttpServer::KIND;
    type Msg = HttpMsg;
    type Reply = HttpReply;
    type State = Serving;
    type Args = ();

    async fn started(&self, ctx: &Ctx<Self>, (): ()) -> Result<Serving, ActorError> {
        let serving = Serving::start(&self.listener, self.api.clone(), self.drain_timeout)
            .map_err(|e| format!("cannot serve the listening socket: {e}"))?;
        tracing::debug!(actor = %ctx.path(), addr = %serving.local_addr, "http server started");
        Ok(serving)
    }

    async fn handle(
        &self,
        _: &Ctx<Self>,
        msg: HttpMsg,
        serving: &mut Serving,
    ) -> Result<HttpReply, ActorError> {
        match msg {
            HttpMsg::Status => Ok(HttpReply::Status {
                local_addr: serving.local_addr.to_string(),
                test_hooks: self.api.test_hooks(),
            }),
        }
    }

    async fn stopped(&self, ctx: &Ctx<Self>, serving: &mut Serving) {
        serving.shut_down().await;
        tracing::debug!(actor = %ctx.path(), "http server stopped");
    }
}
