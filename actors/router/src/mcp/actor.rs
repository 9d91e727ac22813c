//! The actor that keeps one MCP server's session open.
//!
//! It opens a session, registers the server's tools, and watches the session. When the
//! session ends (the process died, the connection dropped) it opens a new one after a
//! backoff, as long as the restarts stay within the server's restart intensity; past it the
//! server is marked failed and left alone until [`McpMsg::Restart`]. The process is the
//! actor's to restart, not the supervisor's: a server that keeps crashing marks itself
//! failed instead of taking its siblings (and the `tools` supervisor) down with it.
//!
//! Calls never pass through this actor: the tools it registered reach the open session
//! through the shared [`Link`], and fail at once, saying why, while there is none.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use neuroflow_kit::actor::{Actor, ActorError, ActorHandle, Ctx};
use neuroflow_kit::protocol::mcp::McpServerStatus;
use neuroflow_kit::supervisor::RestartWindow;
use rmcp::service::QuitReason;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::config::{McpServerConfig, TransportKind};
use super::handler::NodeClient;
use super::launch::{Launcher, ServerProcess};
use super::link::Link;
use super::session::{self, Session};
use super::tools::{self, Registered};
use crate::tools::Tools;

/// Messages of a server's actor. `Connect`, `Ended` and `ToolsChanged` come from the
/// actor's own timers and tasks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum McpMsg {
    /// Open a session: attempt number `attempt` (older timers are ignored).
    Connect {
        attempt: u64,
    },
    /// The session of `generation` ended, for `reason`.
    Ended {
        generation: u64,
        reason: String,
    },
    /// The server of session `generation` says its tool list changed.
    ToolsChanged {
        generation: u64,
    },
    /// Open a session now, forgetting past restarts (e.g. after the server failed).
    Restart,
    Status,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum McpReply {
    Status(McpServerStatus),
    Done,
}

/// What a server's actor is started with; shared by all its incarnations.
#[derive(Clone)]
pub struct ServerArgs {
    pub(crate) config: Arc<McpServerConfig>,
    pub(crate) kind: TransportKind,
    pub(crate) link: Arc<Link>,
    pub(crate) tools: Tools,
    pub(crate) launcher: Launcher,
    /// The server's tools in the router; outlives an incarnation that crashed.
    pub(crate) registered: Arc<Mutex<Registered>>,
}

pub struct McpServerActor;

pub struct ServerState {
    args: ServerArgs,
    window: RestartWindow,
    /// Restarts in a row, for the backoff.
    streak: u32,
    /// The connect attempt a timer may start; older timers are stale.
    attempt: u64,
    /// Whether a session was tried before (later ones are restarts).
    tried: bool,
    session: Option<Live>,
}

struct Live {
    generation: u64,
    cancel: CancellationToken,
    since: Instant,
    /// A stdio server's process: owned here, so that the actor that ends the session also
    /// ends the process and waits for it.
    process: Option<Box<dyn ServerProcess>>,
}

impl Live {
    /// Closes the session and ends the server's process, waiting for it to be gone.
    async fn end(mut self) {
        self.cancel.cancel();
        if let Some(process) = self.process.take() {
            process.stop().await;
        }
    }
}

impl Drop for ServerState {
    fn drop(&mut self) {
        // Also after a crash, when `stopped` does not run: never leave a server behind
        // (dropping the process kills it, without waiting).
        if let Some(live) = &self.session {
            live.cancel.cancel();
        }
    }
}

impl Actor for McpServerActor {
    const KIND: &'static str = "tools.mcp";
    type Msg = McpMsg;
    type Reply = McpReply;
    type State = ServerState;
    type Args = ServerArgs;

    async fn started(&self, ctx: &Ctx<Self>, args: ServerArgs) -> Result<ServerState, ActorError> {
        let state = ServerState {
            window: args.config.intensity().window(),
            args,
            streak: 0,
            attempt: 1,
            tried: false,
            session: None,
        };
        ctx.handle().tell(McpMsg::Connect { attempt: 1 })?;
        Ok(state)
    }

    async fn handle(
        &self,
        ctx: &Ctx<Self>,
        msg: McpMsg,
        state: &mut ServerState,
    ) -> Result<McpReply, ActorError> {
        match msg {
            McpMsg::Connect { attempt } => {
                if attempt == state.attempt && state.session.is_none() {
                    state.connect(&ctx.handle()).await;
                }
            }
            McpMsg::Ended { generation, reason } => {
                if let Some(live) = state.session.take_if(|s| s.generation == generation) {
                    if live.since.elapsed() >= state.args.config.backoff().reset_after {
                        state.streak = 0;
                    }
                    live.end().await;
                    tracing::warn!(mcp.server = state.args.link.name(), %reason, "MCP session ended");
                    state.retry_later(&ctx.handle(), generation, &reason);
                }
            }
            McpMsg::ToolsChanged { generation } => {
                if state.session.as_ref().map(|s| s.generation) == Some(generation) {
                    state.refresh_tools().await;
                }
            }
            McpMsg::Restart => {
                state.window.clear();
                state.streak = 0;
                if state.session.is_none() {
                    state.attempt += 1;
                    state.connect(&ctx.handle()).await;
                }
            }
            McpMsg::Status => return Ok(McpReply::Status(state.args.link.status())),
        }
        Ok(McpReply::Done)
    }

    async fn stopped(&self, _ctx: &Ctx<Self>, state: &mut ServerState) {
        if let Some(live) = state.session.take() {
            live.end().await;
        }
        let mut registered = state
            .args
            .registered
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        tools::clear(&state.args.tools, &state.args.link, &mut registered);
        state.args.link.stopped();
    }
}

impl ServerState {
    /// Opens a session; on failure, schedules the next attempt.
    async fn connect(&mut self, me: &ActorHandle<McpServerActor>) {
        let link = &self.args.link;
        if self.tried {
            link.restart_begins();
        }
        self.tried = true;
        let generation = link.next_generation();
        let notify = me.clone();
        let client = NodeClient::new(
            link.name(),
            self.args.config.elicitation,
            Arc::new(move || {
                let _ = notify.tell(McpMsg::ToolsChanged { generation });
            }),
        );
        let args = &self.args;
        let opening = session::open(
            link.clone(),
            generation,
            args.config.clone(),
            args.kind,
            args.launcher.clone(),
            client,
        );
        match opening.await {
            Ok(session) => self.opened(me, generation, session),
            Err(error) => {
                tracing::warn!(mcp.server = link.name(), %error, "MCP session did not open");
                self.retry_later(me, generation, &error);
            }
        }
    }

    fn opened(&mut self, me: &ActorHandle<McpServerActor>, generation: u64, session: Session) {
        let Session {
            running,
            cancel,
            process,
            opened,
            tools: listed,
        } = session;
        let link = &self.args.link;
        tracing::info!(
            mcp.server = link.name(),
            tools = listed.len(),
            "MCP session open"
        );
        // Tools first: once the server shows as up, its tools are there to call.
        self.sync_tools(listed);
        link.up(generation, opened, cancel.clone());
        self.session = Some(Live {
            generation,
            cancel: cancel.clone(),
            since: Instant::now(),
            process,
        });
        let me = me.clone();
        tokio::spawn(async move {
            let reason = match running.waiting().await {
                Ok(QuitReason::Closed) => {
                    "the server closed the session (its process ended or the connection dropped)"
                        .to_string()
                }
                Ok(QuitReason::Cancelled) => "the session was closed".to_string(),
                Ok(other) => format!("the session ended: {other:?}"),
                Err(e) => format!("the session task failed: {e}"),
            };
            let _ = me.tell(McpMsg::Ended { generation, reason });
        });
    }

    /// Schedules the next attempt after the backoff, or gives up past the intensity.
    fn retry_later(&mut self, me: &ActorHandle<McpServerActor>, generation: u64, error: &str) {
        let link = &self.args.link;
        if !self.window.admit() {
            let intensity = self.window.intensity();
            let why = format!(
                "gave up after more than {} restarts within {} s: {error}",
                intensity.max_restarts,
                intensity.within.as_secs()
            );
            tracing::error!(mcp.server = link.name(), "MCP server failed: {why}");
            link.failed(&why);
            return;
        }
        let delay: Duration = self.args.config.backoff().delay(self.streak);
        self.streak = self.streak.saturating_add(1);
        self.attempt += 1;
        link.restarting(generation, error, Instant::now() + delay);
        let (me, attempt) = (me.clone(), self.attempt);
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = me.tell(McpMsg::Connect { attempt });
        });
    }

    async fn refresh_tools(&mut self) {
        let link = &self.args.link;
        let Ok((peer, _)) = link.peer() else {
            return;
        };
        match peer.list_all_tools().await {
            Ok(listed) => {
                tracing::info!(
                    mcp.server = link.name(),
                    tools = listed.len(),
                    "MCP tool list changed"
                );
                self.sync_tools(listed);
            }
            Err(error) => {
                tracing::warn!(mcp.server = link.name(), %error, "MCP tools/list after a change failed");
            }
        }
    }

    fn sync_tools(&self, listed: Vec<rmcp::model::Tool>) {
        let args = &self.args;
        let mut registered = args.registered.lock().unwrap_or_else(|p| p.into_inner());
        tools::sync(
            &args.tools,
            &args.link,
            &args.config,
            listed,
            &mut registered,
        );
    }
}
