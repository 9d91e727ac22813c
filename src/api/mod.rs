//! The node's HTTP face.
//!
//! [`http::HttpServer`] is the actor that owns the warp server; [`routes`] is the route
//! table (what each path and method reaches, and who may call it); [`dispatch`] routes,
//! authenticates and answers through [`handlers`]; [`mcp`] is the MCP face (the node's
//! tools over streamable HTTP), served in front of the route table. Handlers reach the rest
//! of the node only through what an [`ApiContext`] holds: actor and supervisor handles
//! (messages, never internals) and the node's services.

pub mod dispatch;
pub mod error;
pub mod handlers;
pub mod http;
pub mod mcp;
pub mod request;
pub mod routes;
mod summary;

#[cfg(test)]
mod openapi_tests;

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use neuroflow_kit::actor::ActorHandle;
use neuroflow_kit::metrics::Metrics;
use neuroflow_kit::supervisor::SupervisorHandle;
use neuroflow_router::Tools;

use crate::auth::Auth;
use crate::config::Config;
use crate::node::agents::Agents;
use crate::node::sandboxes::Sandboxes;
use crate::node::telemetry::{MetricsActor, NodeMetrics};
use error::ApiError;

pub use dispatch::api;
pub use http::HttpServer;

/// Longest a handler waits for an actor or supervisor to answer.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// What the HTTP handlers may use. Cheap to clone.
#[derive(Clone)]
pub struct ApiContext {
    inner: Arc<Inner>,
}

/// What an [`ApiContext`] is made of.
pub struct ApiParts {
    pub version: &'static str,
    pub node_metrics: NodeMetrics,
    pub metrics_actor: ActorHandle<MetricsActor>,
    /// The root supervisor; made before the tree starts, attached when it does.
    pub root: SupervisorHandle,
    /// The node's tools (the MCP face offers them).
    pub tools: Tools,
    pub registry: Arc<Metrics>,
    pub auth: Auth,
    pub config: Config,
}

struct Inner {
    parts: ApiParts,
    started: Instant,
    /// The agents and sandboxes exist once the tree runs, after the server has started.
    running: OnceLock<Running>,
    summary: summary::Sampler,
}

struct Running {
    agents: Agents,
    sandboxes: Sandboxes,
}

impl ApiContext {
    pub fn new(parts: ApiParts) -> Self {
        Self {
            inner: Arc::new(Inner {
                started: parts.node_metrics.started(),
                parts,
                running: OnceLock::new(),
                summary: summary::Sampler::default(),
            }),
        }
    }

    /// Hands over the services that exist once the tree runs.
    pub fn attach(&self, agents: Agents, sandboxes: Sandboxes) {
        let _ = self.inner.running.set(Running { agents, sandboxes });
    }

    fn running(&self) -> Result<&Running, ApiError> {
        self.inner
            .running
            .get()
            .ok_or_else(|| ApiError::unavailable("the node is starting"))
    }

    pub fn agents(&self) -> Result<&Agents, ApiError> {
        Ok(&self.running()?.agents)
    }

    pub fn sandboxes(&self) -> Result<&Sandboxes, ApiError> {
        Ok(&self.running()?.sandboxes)
    }

    pub fn root(&self) -> &SupervisorHandle {
        &self.inner.parts.root
    }

    pub fn version(&self) -> &'static str {
        self.inner.parts.version
    }

    pub fn uptime(&self) -> Duration {
        self.inner.started.elapsed()
    }

    /// Whether the fault-injection routes exist.
    pub fn test_hooks(&self) -> bool {
        self.inner.parts.config.debug.test_hooks
    }

    pub fn metrics_actor(&self) -> &ActorHandle<MetricsActor> {
        &self.inner.parts.metrics_actor
    }

    pub fn node_metrics(&self) -> &NodeMetrics {
        &self.inner.parts.node_metrics
    }

    pub fn registry(&self) -> &Metrics {
        &self.inner.parts.registry
    }

    pub fn tools(&self) -> &Tools {
        &self.inner.parts.tools
    }

    pub fn auth(&self) -> &Auth {
        &self.inner.parts.auth
    }

    pub fn config(&self) -> &Config {
        &self.inner.parts.config
    }

    fn summary(&self) -> &summary::Sampler {
        &self.inner.summary
    }
}
