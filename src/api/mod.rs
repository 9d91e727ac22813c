//! The node's HTTP face.
//!
//! [`http::HttpServer`] is the actor that owns the warp server; [`routes`] maps requests to
//! endpoints and [`handlers`] answers them; [`mcp`] is the MCP face (the node's tools over
//! streamable HTTP), served in front of the route table. Handlers reach the rest of the node only through
//! what an [`ApiContext`] holds: actor and supervisor handles (messages, never internals)
//! and a few facts about the node.

pub mod handlers;
pub mod http;
pub mod mcp;
pub mod routes;

use std::sync::Arc;
use std::time::{Duration, Instant};

use neuroflow_kit::actor::ActorHandle;
use neuroflow_kit::supervisor::SupervisorHandle;
use neuroflow_router::Tools;

use crate::config::Config;

use crate::node::telemetry::{MetricsActor, NodeMetrics};

pub use http::HttpServer;

/// Longest a handler waits for an actor or supervisor to answer.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// What the HTTP handlers may use. Cheap to clone.
#[derive(Clone)]
pub struct ApiContext {
    inner: Arc<Inner>,
}

struct Inner {
    version: &'static str,
    started: Instant,
    test_hooks: bool,
    node_metrics: NodeMetrics,
    metrics_actor: ActorHandle<MetricsActor>,
    /// The root supervisor; made before the tree starts, attached when it does.
    root: SupervisorHandle,
    /// The node's tools (the MCP face offers them).
    tools: Tools,
    config: Config,
}

impl ApiContext {
    pub fn new(
        version: &'static str,
        test_hooks: bool,
        node_metrics: NodeMetrics,
        metrics_actor: ActorHandle<MetricsActor>,
        root: SupervisorHandle,
        tools: Tools,
        config: Config,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                version,
                started: node_metrics.started(),
                test_hooks,
                node_metrics,
                metrics_actor,
                root,
                tools,
                config,
            }),
        }
    }

    pub fn root(&self) -> &SupervisorHandle {
        &self.inner.root
    }

    pub fn version(&self) -> &'static str {
        self.inner.version
    }

    pub fn uptime(&self) -> Duration {
        self.inner.started.elapsed()
    }

    /// Whether the fault-injection routes exist.
    pub fn test_hooks(&self) -> bool {
        self.inner.test_hooks
    }

    pub fn metrics_actor(&self) -> &ActorHandle<MetricsActor> {
        &self.inner.metrics_actor
    }

    pub fn node_metrics(&self) -> &NodeMetrics {
        &self.inner.node_metrics
    }

    pub fn tools(&self) -> &Tools {
        &self.inner.tools
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }
}
