//! [`McpServers`]: the node's MCP servers, as one handle — add and remove servers, read
//! their status, restart a failed one, and use their resources and prompts.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

use neuroflow_kit::actor::ActorHandle;
use neuroflow_kit::metrics::{Metrics, MetricsError};
use neuroflow_kit::protocol::mcp::McpServerStatus;
use neuroflow_kit::supervisor::{
    ChildSpec, Restart, Strategy, SupervisorError, SupervisorHandle, SupervisorSpec,
};
use rmcp::model::{
    GetPromptRequestParams, GetPromptResult, Prompt, ReadResourceRequestParams, Resource,
    ResourceContents,
};
use serde_json::Value;

use super::actor::{McpMsg, McpServerActor, ServerArgs};
use super::config::McpServerConfig;
use super::content::resource_text;
use super::launch::Launcher;
use super::link::Link;
use super::metrics::McpMetrics;
use crate::tools::Tools;

/// Name of the supervisor of the server actors, under the router's supervisor.
pub const SUPERVISOR: &str = "mcp";

/// How long adding or removing a server may wait on the supervisor.
const SUPERVISOR_TIMEOUT: Duration = Duration::from_secs(10);

/// Why an MCP operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum McpError {
    #[error("invalid MCP server config: {0}")]
    Config(String),
    #[error("no MCP server named {0:?}")]
    NoSuchServer(String),
    #[error("an MCP server named {0:?} already exists")]
    Duplicate(String),
    /// The server has no open session (starting, restarting, failed).
    #[error("{0}")]
    Unavailable(String),
    /// The server answered with an error.
    #[error("MCP server {server}: {message}")]
    Server { server: String, message: String },
    #[error("the MCP supervisor: {0}")]
    Supervisor(String),
}

/// Handle to the node's MCP servers; cheap to clone.
#[derive(Clone)]
pub struct McpServers {
    inner: Arc<Inner>,
}

struct Inner {
    tools: Tools,
    metrics: McpMetrics,
    launcher: Launcher,
    /// Set once the supervisor's spec is complete (its handle is made with it).
    supervisor: OnceLock<SupervisorHandle>,
    servers: RwLock<BTreeMap<String, Server>>,
}

#[derive(Clone)]
struct Server {
    link: Arc<Link>,
    actor: ActorHandle<McpServerActor>,
}

/// Built MCP servers: the handle, and the `mcp` supervisor (with the configured servers as
/// its children) to start under the router's supervisor.
pub struct McpParts {
    pub servers: McpServers,
    pub supervisor: ChildSpec,
}

impl McpServers {
    /// Validates `configured`, registers the MCP metrics in `metrics` and builds the
    /// supervisor of the servers' actors. Stdio servers are started by `launcher`.
    pub fn build(
        tools: Tools,
        metrics: &Metrics,
        launcher: Launcher,
        configured: &BTreeMap<String, McpServerConfig>,
    ) -> Result<McpParts, McpError> {
        let metrics = McpMetrics::register(metrics)
            .map_err(|e: MetricsError| McpError::Config(e.to_string()))?;
        // The actors restart their servers themselves and rarely fail; this only guards
        // against an actor that keeps crashing.
        let mut spec = SupervisorSpec::new(SUPERVISOR, Strategy::OneForOne)
            .intensity(10, Duration::from_secs(60));
        let servers = McpServers {
            inner: Arc::new(Inner {
                tools,
                metrics,
                launcher,
                supervisor: OnceLock::new(),
                servers: RwLock::new(BTreeMap::new()),
            }),
        };
        for (name, config) in configured {
            spec = spec.child(servers.child(name, config.clone())?);
        }
        let (supervisor, handle) = ChildSpec::supervisor(spec);
        let _ = servers.inner.supervisor.set(handle);
        Ok(McpParts {
            servers,
            supervisor,
        })
    }

    /// The child spec of server `name`, with its link recorded here.
    fn child(&self, name: &str, config: McpServerConfig) -> Result<ChildSpec, McpError> {
        let kind = config.validate(name).map_err(McpError::Config)?;
        let mut servers = self.write();
        if servers.contains_key(name) {
            return Err(McpError::Duplicate(name.to_string()));
        }
        let inner = &self.inner;
        let link = Link::new(name, kind, inner.metrics.clone());
        let args = ServerArgs {
            config: Arc::new(config),
            kind,
            link: link.clone(),
            tools: inner.tools.clone(),
            launcher: inner.launcher.clone(),
            registered: Arc::new(Mutex::new(BTreeMap::new())),
        };
        let (spec, actor) = ChildSpec::actor(name, move || (McpServerActor, args.clone()));
        let server = Server {
            link: link.clone(),
            actor,
        };
        servers.insert(name.to_string(), server);
        let detail = link.clone();
        Ok(spec
            .restart(Restart::Transient)
            .detail(move || serde_json::to_value(detail.status()).unwrap_or(Value::Null)))
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Server>> {
        self.inner
            .servers
            .write()
            .unwrap_or_else(|p| p.into_inner())
    }

    fn server(&self, name: &str) -> Result<Server, McpError> {
        self.inner
            .servers
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
            .ok_or_else(|| McpError::NoSuchServer(name.to_string()))
    }

    fn link(&self, name: &str) -> Result<Arc<Link>, McpError> {
        self.server(name).map(|s| s.link)
    }

    fn supervisor(&self) -> Result<&SupervisorHandle, McpError> {
        self.inner
            .supervisor
            .get()
            .ok_or_else(|| McpError::Supervisor("not built yet".into()))
    }

    /// Adds a server while the node runs; its session opens in the background.
    pub async fn add(&self, name: &str, config: McpServerConfig) -> Result<(), McpError> {
        let spec = self.child(name, config)?;
        if let Err(err) = self
            .supervisor()?
            .start_child(spec, SUPERVISOR_TIMEOUT)
            .await
        {
            self.write().remove(name);
            return Err(supervisor_error(err));
        }
        Ok(())
    }

    /// Stops a server, unregisters its tools and forgets it.
    pub async fn remove(&self, name: &str) -> Result<(), McpError> {
        self.link(name)?;
        let stopped = self
            .supervisor()?
            .stop_child(name, SUPERVISOR_TIMEOUT)
            .await;
        if let Some(server) = self.write().remove(name) {
            server.link.metrics().forget(name);
        }
        stopped.map_err(supervisor_error)
    }

    /// Opens a new session with a server now, forgetting its past restarts: how a failed
    /// server is brought back.
    pub async fn restart(&self, name: &str) -> Result<(), McpError> {
        let server = self.server(name)?;
        server
            .actor
            .tell(McpMsg::Restart)
            .map_err(|e| McpError::Unavailable(e.to_string()))
    }

    /// Status of one server.
    pub fn status(&self, name: &str) -> Result<McpServerStatus, McpError> {
        Ok(self.link(name)?.status())
    }

    /// Status of every server, by name.
    pub fn list(&self) -> Vec<McpServerStatus> {
        let servers = self.inner.servers.read().unwrap_or_else(|p| p.into_inner());
        servers.values().map(|s| s.link.status()).collect()
    }

    fn peer(&self, name: &str) -> Result<rmcp::Peer<rmcp::RoleClient>, McpError> {
        let (peer, _) = self.link(name)?.peer().map_err(McpError::Unavailable)?;
        Ok(peer)
    }

    /// Every resource the server lists, across pages.
    pub async fn resources(&self, server: &str) -> Result<Vec<Resource>, McpError> {
        let peer = self.peer(server)?;
        peer.list_all_resources()
            .await
            .map_err(|e| server_error(server, "resources/list", e))
    }

    /// The contents of resource `uri`.
    pub async fn read_resource(
        &self,
        server: &str,
        uri: &str,
    ) -> Result<Vec<ResourceContents>, McpError> {
        let peer = self.peer(server)?;
        peer.read_resource(ReadResourceRequestParams::new(uri))
            .await
            .map(|result| result.contents)
            .map_err(|e| server_error(server, "resources/read", e))
    }

    /// Resource `uri` as text for a model: text parts as they are, binary ones named.
    pub async fn resource_text(&self, server: &str, uri: &str) -> Result<String, McpError> {
        let contents = self.read_resource(server, uri).await?;
        Ok(contents
            .iter()
            .map(resource_text)
            .collect::<Vec<_>>()
            .join("\n"))
    }

    /// Every prompt the server lists, across pages.
    pub async fn prompts(&self, server: &str) -> Result<Vec<Prompt>, McpError> {
        let peer = self.peer(server)?;
        peer.list_all_prompts()
            .await
            .map_err(|e| server_error(server, "prompts/list", e))
    }

    /// Prompt `name` filled with `arguments`.
    pub async fn get_prompt(
        &self,
        server: &str,
        name: &str,
        arguments: serde_json::Map<String, Value>,
    ) -> Result<GetPromptResult, McpError> {
        let peer = self.peer(server)?;
        let mut params = GetPromptRequestParams::new(name);
        if !arguments.is_empty() {
            params = params.with_arguments(arguments);
        }
        peer.get_prompt(params)
            .await
            .map_err(|e| server_error(server, "prompts/get", e))
    }
}

fn supervisor_error(err: SupervisorError) -> McpError {
    McpError::Supervisor(err.to_string())
}

fn server_error(server: &str, what: &str, err: rmcp::ServiceError) -> McpError {
    McpError::Server {
        server: server.to_string(),
        message: format!("{what} failed: {err}"),
    }
}
