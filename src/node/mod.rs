//! The node: binds its socket, starts its supervision tree, runs until asked to stop.
//!
//! ```no_run
//! use neuroflow::config::Config;
//! use neuroflow::node::Node;
//!
//! # async fn run() -> Result<(), neuroflow::node::NodeError> {
//! let node = Node::start(&Config::default()).await?;
//! println!("serving on {:?}", node.local_addr());
//! // Runs until the future completes; its output is logged as the reason.
//! node.run_until(async {
//!     let _ = tokio::signal::ctrl_c().await;
//!     "ctrl-c"
//! })
//! .await
//! # }
//! ```

pub mod agents;
pub mod sandboxes;
pub mod telemetry;
pub mod tools;
pub mod tree;

use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use neuroflow_kit::actor::ActorHandle;
use neuroflow_kit::metrics::{Metrics, MetricsError};
use neuroflow_kit::supervisor::{RootExit, Supervisor, SupervisorHandle};
use neuroflow_kit::timer_anchor::TimerAnchor;
use tokio::task::JoinHandle;

use neuroflow_exporter::{
    ExportSettings, ExporterActor, MetricsPush, MetricsSource, OtlpSink, SpanSink,
};
use neuroflow_kit::supervisor::ChildSpec;

use crate::api::HttpServer;
use crate::auth::Auth;
use crate::config::Config;
use crate::shutdown::Signals;
use crate::store::Store;
use agents::Agents;
use neuroflow_router::Tools;
use neuroflow_router::mcp::McpServers;
use sandboxes::Sandboxes;
use telemetry::{MetricsActor, NodeMetrics};

/// Version of this node, as reported by `/healthz`, `neuroflow_node_info` and `--version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Why a node could not start, or stopped on its own.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("auth: {0}")]
    Auth(String),
    #[error("cannot install the signal handlers: {0}")]
    Signals(std::io::Error),
    #[error(transparent)]
    Metrics(#[from] MetricsError),
    #[error("invalid setup: {0}")]
    Setup(String),
    #[error("the supervision tree failed to start: {0}")]
    Start(String),
    #[error("the root supervisor failed; the node stops: {0}")]
    RootFailed(String),
}

/// A running node.
pub struct Node {
    config: Config,
    local_addr: Option<SocketAddr>,
    root: SupervisorHandle,
    root_join: JoinHandle<RootExit>,
    registry: Arc<Metrics>,
    metrics: ActorHandle<MetricsActor>,
    http: Option<ActorHandle<HttpServer>>,
    supervisors: Vec<(&'static str, SupervisorHandle)>,
    sandboxes: Sandboxes,
    agents: Agents,
    tools: Tools,
    mcp: McpServers,
    exporter: Option<ActorHandle<ExporterActor>>,
    /// Keeps call deadlines from waking the runtime's time driver (see the kit's
    /// `timer_anchor`).
    _timer_anchor: TimerAnchor,
    /// Kept open for the node's whole life: every HTTP server incarnation serves a duplicate.
    _listener: Option<Arc<TcpListener>>,
}

impl Node {
    /// Creates the data directory, binds the listener and starts the supervision tree.
    pub async fn start(config: &Config) -> Result<Self, NodeError> {
        Self::start_with(config, true).await
    }

    /// A node with no HTTP faces (nothing listens): what an embedding service runs.
    pub async fn start_embedded(config: &Config) -> Result<Self, NodeError> {
        Self::start_with(config, false).await
    }

    async fn start_with(config: &Config, http: bool) -> Result<Self, NodeError> {
        let started = Instant::now();
        let data_dir = &config.node.data_dir;
        std::fs::create_dir_all(data_dir).map_err(|source| NodeError::DataDir {
            path: data_dir.clone(),
            source,
        })?;
        let (listener, local_addr) = if http {
            let addr = config.node.listen;
            let listener =
                TcpListener::bind(addr).map_err(|source| NodeError::Bind { addr, source })?;
            let local_addr = listener
                .local_addr()
                .map_err(|source| NodeError::Bind { addr, source })?;
            (Some(Arc::new(listener)), Some(local_addr))
        } else {
            (None, None)
        };

        // Before any actor: their calls' deadlines are cheap only with it running.
        let timer_anchor = TimerAnchor::start();
        let store = Store::open(data_dir)?;
        let registry = Metrics::new()?;
        let node_metrics = NodeMetrics::register(registry.clone(), VERSION, started)?;
        // Tools need the sandboxes and the agents (for `sandbox.exec` profiles), which
        // exist only once the tree runs; they are handed over then.
        let late_sandboxes: Arc<OnceLock<Sandboxes>> = Arc::default();
        let late_agents: Arc<OnceLock<Agents>> = Arc::default();
        let agents_for_profiles = late_agents.clone();
        let profile_of = Arc::new(move |caller: Option<&str>| {
            let agents = agents_for_profiles.get()?;
            Some(agents.get(caller?)?.state.spec().sandbox_profile.clone())
        });
        let node_tools = tools::build_all(config, &registry, late_sandboxes.clone(), profile_of)
            .map_err(NodeError::Setup)?;
        let router = &node_tools.router;
        let providers =
            agents::providers(&config.providers, &config.pricing).map_err(NodeError::Setup)?;
        let auth = Auth::new(&config.auth, data_dir, store.clone()).map_err(NodeError::Auth)?;
        let exporter = exporter(config, &registry)?;
        if http {
            bootstrap_admin(&auth, config).await?;
        }
        let tree = tree::build(tree::Parts {
            config: config.clone(),
            version: VERSION,
            listener: listener.clone(),
            metrics: node_metrics,
            tools: node_tools.children.clone(),
            router: router.tools.clone(),
            registry: registry.clone(),
            auth,
            exporter: exporter.as_ref().map(|(spec, _)| spec.clone()),
        });
        let root = tree.root;
        let root_join = Supervisor::start_root_with(tree.spec, registry.clone(), &root)
            .await
            .map_err(|e| NodeError::Start(e.to_string()))?;
        let sandboxes_supervisor = tree
            .supervisors
            .iter()
            .find(|(name, _)| *name == "sandboxes")
            .map(|(_, handle)| handle.clone())
            .ok_or_else(|| NodeError::Start("the tree has no sandboxes supervisor".into()))?;
        let sandboxes = Sandboxes::new(config, sandboxes_supervisor, &registry)?;
        let _ = late_sandboxes.set(sandboxes.clone());
        let agents_supervisor = tree
            .supervisors
            .iter()
            .find(|(name, _)| *name == "agents")
            .map(|(_, handle)| handle.clone())
            .ok_or_else(|| NodeError::Start("the tree has no agents supervisor".into()))?;
        let agents = Agents::new(agents::AgentsParts {
            supervisor: agents_supervisor,
            providers,
            tools: router.tools.clone(),
            tool_recipient: tools::recipient(router.tools.clone()),
            tool_timeout: Duration::from_millis(config.tools.timeout_ms),
            mcp: node_tools.mcp.clone(),
            store: store.clone(),
            metrics: Some(neuroflow_agent::agent::AgentMetrics::register(&registry)?),
        });
        let _ = late_agents.set(agents.clone());
        tree.api.attach(agents.clone(), sandboxes.clone());
        let restored = agents
            .restore()
            .await
            .map_err(|e| NodeError::Start(format!("cannot restore the stored agents: {e}")))?;
        if !restored.started.is_empty() || !restored.failed.is_empty() {
            tracing::info!(
                started = restored.started.len(),
                failed = restored.failed.len(),
                "stored agents restored"
            );
        }
        if config.debug.test_hooks {
            tracing::warn!(
                "test hooks enabled: POST /api/v1/node/actors/{{path}}/fail makes the actor at {{path}} fail"
            );
        }
        tracing::info!(
            addr = %local_addr.map_or_else(|| "none (embedded)".to_string(), |a| a.to_string()),
            data_dir = %data_dir.display(),
            version = VERSION,
            "node started"
        );
        Ok(Self {
            config: config.clone(),
            local_addr,
            root,
            root_join,
            registry,
            metrics: tree.metrics,
            http: tree.http,
            supervisors: tree.supervisors,
            sandboxes,
            agents,
            tools: router.tools.clone(),
            mcp: node_tools.mcp,
            exporter: exporter.map(|(_, handle)| handle),
            _timer_anchor: timer_anchor,
            _listener: listener,
        })
    }

    /// The address the HTTP API is served on (the real port when `listen` asked for 0);
    /// `None` for an embedded node.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The root supervisor (`node`).
    pub fn root(&self) -> &SupervisorHandle {
        &self.root
    }

    /// One of the root's child supervisors by name (`telemetry`, ..., `api`).
    pub fn supervisor(&self, name: &str) -> Option<&SupervisorHandle> {
        self.supervisors
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, handle)| handle)
    }

    /// The node's metric registry.
    pub fn registry(&self) -> &Arc<Metrics> {
        &self.registry
    }

    /// The metrics actor (`node/telemetry/metrics`).
    pub fn metrics(&self) -> &ActorHandle<MetricsActor> {
        &self.metrics
    }

    /// The node's sandboxes: run a command under one of its profiles.
    pub fn sandboxes(&self) -> &Sandboxes {
        &self.sandboxes
    }

    /// The node's agents: spawn, find, remove.
    pub fn agents(&self) -> &Agents {
        &self.agents
    }

    /// The node's tools: register your own, list, call.
    pub fn tools(&self) -> &Tools {
        &self.tools
    }

    /// The node's MCP servers: add and remove servers, their status, resources, prompts.
    pub fn mcp(&self) -> &McpServers {
        &self.mcp
    }

    /// The span exporter (`node/telemetry/exporter`), when traces go to a collector.
    pub fn exporter(&self) -> Option<&ActorHandle<ExporterActor>> {
        self.exporter.as_ref()
    }

    /// The HTTP server actor (`node/api/http`).
    pub fn http(&self) -> Option<&ActorHandle<HttpServer>> {
        self.http.as_ref()
    }

    /// Runs until `shutdown` completes (its output is logged as the reason), then stops
    /// gracefully: `Ok`. If the root supervisor
    /// fails first (its restart intensity was exceeded), returns [`NodeError::RootFailed`].
    pub async fn run_until<F>(mut self, shutdown: F) -> Result<(), NodeError>
    where
        F: Future<Output: std::fmt::Display>,
    {
        tokio::select! {
            reason = shutdown => {
                tracing::info!(%reason, "shutting down");
                self.stop().await;
                Ok(())
            }
            exit = &mut self.root_join => {
                let reason = match exit {
                    Ok(RootExit::Failed(reason)) => reason,
                    Ok(RootExit::Stopped) => "it stopped on its own".to_string(),
                    Err(err) => err.to_string(),
                };
                tracing::error!(%reason, "the root supervisor failed; stopping the node");
                Err(NodeError::RootFailed(reason))
            }
        }
    }

    /// Stops the tree, children last-started first (the HTTP server drains and goes first),
    /// within the configured shutdown timeout.
    pub async fn stop(self) {
        let timeout = self.config.shutdown_timeout();
        let begun = Instant::now();
        if tokio::time::timeout(timeout, self.root.stop(timeout))
            .await
            .is_err()
        {
            tracing::warn!("the tree did not stop within {timeout:?}; exiting anyway");
        }
        let left = timeout
            .saturating_sub(begun.elapsed())
            .max(Duration::from_millis(100));
        let _ = tokio::time::timeout(left, self.root_join).await;
        tracing::info!(elapsed = ?begun.elapsed(), "node stopped");
    }
}

/// `neuroflow-node serve`: starts the node, prints `neuroflow-node listening on http://ADDR`
/// on stdout, and runs until SIGINT or SIGTERM.
pub async fn serve(config: Config) -> Result<(), NodeError> {
    let mut signals = Signals::install().map_err(NodeError::Signals)?;
    let node = Node::start(&config).await?;
    if let Some(addr) = node.local_addr() {
        announce(addr);
    }
    node.run_until(signals.recv()).await
}

/// The exporter actor's spec, when `[telemetry] otlp_endpoint` is set and this process
/// installed the span pipeline ([`crate::observability::init`]).
fn exporter(
    config: &Config,
    registry: &Arc<Metrics>,
) -> Result<Option<(ChildSpec, ActorHandle<ExporterActor>)>, NodeError> {
    let telemetry = &config.telemetry;
    let Some(endpoint) = &telemetry.otlp_endpoint else {
        return Ok(None);
    };
    let Some(pipeline) = crate::observability::pipeline() else {
        tracing::warn!(
            endpoint,
            "telemetry.otlp_endpoint is set but this process's tracing subscriber is not the node's; no spans are exported"
        );
        return Ok(None);
    };
    pipeline.inbox.metrics().register(registry)?;
    let sink: Arc<dyn SpanSink> = Arc::new(
        OtlpSink::http(
            endpoint,
            Duration::from_millis(telemetry.export_timeout_ms),
            telemetry.export_retries,
            &pipeline.resource,
        )
        .map_err(NodeError::Setup)?,
    );
    let metrics = match telemetry.metrics_endpoint() {
        Some(url) => Some(MetricsSource {
            registry: registry.clone(),
            push: Arc::new(
                MetricsPush::new(
                    &url,
                    Duration::from_millis(telemetry.export_timeout_ms),
                    &pipeline.resource,
                    std::time::SystemTime::now(),
                )
                .map_err(NodeError::Setup)?,
            ),
            interval: Duration::from_secs(telemetry.metrics_interval_secs),
        }),
        None => None,
    };
    let inbox = pipeline.inbox.clone();
    Ok(Some(ChildSpec::actor(tree::EXPORTER, move || {
        let actor = ExporterActor {
            inbox: inbox.clone(),
            sink: sink.clone(),
            settings: ExportSettings::default(),
            metrics: metrics.clone(),
        };
        (actor, ())
    })))
}

/// Creates the `admin` user on first start. A generated password is shown once, on
/// stderr, since no log setting may hide it and stdout is for the listening line.
async fn bootstrap_admin(auth: &Auth, config: &Config) -> Result<(), NodeError> {
    let password = config.auth.admin_password.as_ref().map(|s| s.expose());
    let generated = auth.bootstrap(password).await.map_err(NodeError::Auth)?;
    if let Some(password) = generated {
        eprintln!(
            "neuroflow-node: created user \"admin\" with password {password}\n\
             neuroflow-node: it is shown this once; set {} to choose it instead",
            crate::config::ENV_ADMIN_PASSWORD
        );
    } else if password.is_some() {
        tracing::info!("user \"admin\" created with the configured password");
    }
    Ok(())
}

/// The one line a supervisor of the process (or a test) waits for.
fn announce(addr: SocketAddr) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "neuroflow-node listening on http://{addr}");
    let _ = out.flush();
}
