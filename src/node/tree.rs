//! The shape of the node's supervision tree.
//!
//! ```text
//! node                  one-for-one
//! ├── telemetry         metrics (telemetry.metrics)
//! ├── sandboxes         sandbox-N per running command
//! ├── tools             shard-0 … shard-K-1 (tools.shard), router (tools.router)
//! ├── agents            one agent actor per agent
//! ├── mesh
//! └── api               http (api.http)
//! ```
//!
//! Children start in this order and stop in the reverse one, so on shutdown the HTTP server
//! goes first and telemetry last.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use neuroflow_kit::actor::ActorHandle;
use neuroflow_kit::supervisor::{ChildSpec, Strategy, SupervisorHandle, SupervisorSpec};

use neuroflow_router::Tools;

use crate::api::{ApiContext, ApiParts, HttpServer};
use crate::auth::Auth;
use crate::config::Config;
use crate::node::telemetry::{MetricsActor, NodeMetrics};
use neuroflow_kit::metrics::Metrics;

/// Name of the root supervisor.
pub const ROOT: &str = "node";
/// The root's child supervisors, in start order.
pub const SUPERVISORS: [&str; 6] = ["telemetry", "sandboxes", "tools", "agents", "mesh", "api"];
/// Name of the metrics actor under `telemetry`.
pub const METRICS: &str = "metrics";
/// Name of the HTTP server actor under `api`.
pub const HTTP: &str = "http";
pub const EXPORTER: &str = "exporter";

/// What the tree needs from the node.
pub struct Parts {
    pub config: Config,
    pub version: &'static str,
    /// The HTTP listener; `None` for a node without HTTP faces (embedded).
    pub listener: Option<Arc<TcpListener>>,
    pub metrics: NodeMetrics,
    /// The tool router's actors (shards, router, the `mcp` supervisor), supervised by
    /// `tools`.
    pub tools: Vec<ChildSpec>,
    /// The router's handle, for the faces that offer the node's tools.
    pub router: Tools,
    pub registry: Arc<Metrics>,
    pub auth: Auth,
    /// The span exporter, when the node sends traces to a collector.
    pub exporter: Option<ChildSpec>,
}

/// The root's spec and the handles of what it will run.
pub struct Tree {
    pub spec: SupervisorSpec,
    pub api: ApiContext,
    pub metrics: ActorHandle<MetricsActor>,
    pub http: Option<ActorHandle<HttpServer>>,
    /// The root's handle, made before the root starts so the HTTP face can hold it.
    pub root: SupervisorHandle,
    pub supervisors: Vec<(&'static str, SupervisorHandle)>,
}

/// Builds the tree; nothing starts until the root spec is started.
pub fn build(parts: Parts) -> Tree {
    let config = &parts.config;
    let supervisor = |name: &str| {
        SupervisorSpec::new(name, Strategy::OneForOne)
            .intensity(config.supervision.max_restarts, config.restart_window())
            .backoff(config.backoff())
            .shutdown_timeout(config.shutdown_timeout())
    };

    let node_metrics = parts.metrics.clone();
    let (metrics_spec, metrics) = ChildSpec::actor(METRICS, move || {
        let metrics = node_metrics.clone();
        (MetricsActor { metrics }, ())
    });

    let root = SupervisorHandle::new(ROOT);
    let api = ApiContext::new(ApiParts {
        version: parts.version,
        node_metrics: parts.metrics,
        metrics_actor: metrics.clone(),
        root: root.clone(),
        tools: parts.router.clone(),
        registry: parts.registry,
        auth: parts.auth,
        config: config.clone(),
    });
    let drain_timeout = drain_timeout(config.shutdown_timeout());
    let http_api = api.clone();
    let http = parts.listener.clone().map(|listener| {
        ChildSpec::actor(HTTP, move || {
            let server = HttpServer {
                listener: listener.clone(),
                api: http_api.clone(),
                drain_timeout,
            };
            (server, ())
        })
    });

    let mut spec = supervisor(ROOT);
    let mut supervisors = Vec::with_capacity(SUPERVISORS.len());
    for name in SUPERVISORS {
        let mut child = supervisor(name);
        match name {
            "telemetry" => {
                child = child.child(metrics_spec.clone());
                if let Some(exporter) = &parts.exporter {
                    child = child.child(exporter.clone());
                }
            }
            "api" => {
                if let Some((http_spec, _)) = &http {
                    child = child.child(http_spec.clone());
                }
            }
            "tools" => {
                for tool_actor in &parts.tools {
                    child = child.child(tool_actor.clone());
                }
            }
            _ => {}
        }
        let (child_spec, handle) = ChildSpec::supervisor(child);
        spec = spec.child(child_spec);
        supervisors.push((name, handle));
    }
    Tree {
        spec,
        api,
        metrics,
        http: http.map(|(_, handle)| handle),
        root,
        supervisors,
    }
}

/// Share of the shutdown timeout given to draining HTTP requests; the rest is left for
/// stopping the other actors.
fn drain_timeout(shutdown_timeout: Duration) -> Duration {
    shutdown_timeout.mul_f64(0.75)
}
