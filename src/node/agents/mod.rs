//! The node's agents: one supervised [`AgentActor`] per agent under `agents`, each also a
//! tool (`agent.NAME`) that other agents can call.
//!
//! Two lifetimes: an agent [`Agents::spawn`]ed by code lives as long as the node (its code
//! spawns it again next time); an agent [`Agents::create`]d (through the API) is stored,
//! its turns are journaled, and the node brings it back at start ([`Agents::restore`]).

mod stored;
mod tool;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use neuroflow_agent::agent::{AgentActor, AgentDeps, AgentMetrics, AgentState};
use neuroflow_agent::provider::{LlmProvider, Pricing, ProviderConfig, build_provider};
use neuroflow_kit::ActorHandle;
use neuroflow_kit::protocol::agent::{AgentSpec, TurnEvent, Usage};
use neuroflow_kit::protocol::router::{RouterMsg, RouterReply};
use neuroflow_kit::recipient::Recipient;
use neuroflow_kit::supervisor::{ChildSpec, SupervisorError, SupervisorHandle};
use neuroflow_router::Tools;
use neuroflow_router::mcp::serve::MCP_CALLER;
use neuroflow_router::mcp::{McpError, McpServers};
use tokio::sync::broadcast;

use crate::store::{Store, StoreError};

/// Bound on starting or stopping an agent's actor.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(10);
/// Events buffered for each watcher of the node's event stream; one that falls further
/// behind is told how many it missed.
const NODE_EVENT_BUFFER: usize = 1024;

/// The agents of a node.
#[derive(Clone)]
pub struct Agents {
    inner: Arc<Inner>,
}

struct Inner {
    supervisor: SupervisorHandle,
    deps: AgentDeps,
    tools: Tools,
    /// Where context resources are read from.
    mcp: McpServers,
    /// Longest turn an agent called as a tool may take.
    turn_timeout: Duration,
    running: Mutex<BTreeMap<String, Agent>>,
    /// Created agents and their conversations.
    store: Store,
    /// Every agent's events, for whoever watches the node.
    events: broadcast::Sender<TurnEvent>,
    /// Serializes create, update and delete, so that the store and the running agents
    /// agree on which agents exist.
    changes: tokio::sync::Mutex<()>,
}

/// A running agent: its actor and its memory.
#[derive(Clone)]
pub struct Agent {
    pub handle: ActorHandle<AgentActor>,
    pub state: AgentState,
    /// Whether it is stored (created through the API), or spawned by code.
    pub stored: bool,
}

/// Why an agent could not be started.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("an agent named {0:?} already runs")]
    Exists(String),
    #[error("invalid agent name {0:?}: use letters, digits, '-' and '_' (1-64)")]
    InvalidName(String),
    #[error("the agent name {0:?} is reserved (MCP clients act under it)")]
    Reserved(String),
    #[error(
        "agent {name:?} names provider {provider:?}, which this node does not have (known: {known})"
    )]
    UnknownProvider {
        name: String,
        provider: String,
        known: String,
    },
    #[error("agent {name:?}: context resource {uri} of MCP server {server}: {error}")]
    Context {
        name: String,
        server: String,
        uri: String,
        error: McpError,
    },
    #[error("no agent named {0:?}")]
    NotFound(String),
    #[error("agent {0:?} was spawned by code, not created; it cannot be changed here")]
    NotStored(String),
    #[error("agent {0:?} is running a turn; cancel it or wait")]
    Busy(String),
    #[error("the spec names agent {spec:?}, not {path:?}")]
    NameMismatch { path: String, spec: String },
    #[error(transparent)]
    Supervisor(#[from] SupervisorError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The node's LLM providers: the configured ones, and `scripted` whatever the config says.
pub fn providers(
    configured: &BTreeMap<String, ProviderConfig>,
    pricing: &Pricing,
) -> Result<HashMap<String, Arc<dyn LlmProvider>>, String> {
    let pricing = Arc::new(pricing.clone());
    let mut providers = HashMap::new();
    providers.insert(
        "scripted".to_string(),
        build_provider(None, pricing.clone()).map_err(|e| e.to_string())?,
    );
    for (name, config) in configured {
        let provider = build_provider(Some(config), pricing.clone())
            .map_err(|e| format!("providers.{name}: {e}"))?;
        providers.insert(name.clone(), provider);
    }
    Ok(providers)
}

/// What the node's agents are made of.
pub struct AgentsParts {
    /// The `agents` supervisor.
    pub supervisor: SupervisorHandle,
    pub providers: HashMap<String, Arc<dyn LlmProvider>>,
    pub tools: Tools,
    /// The router, as agents call it.
    pub tool_recipient: Recipient<RouterMsg, RouterReply>,
    /// Longest a tool call (and a turn of an agent called as a tool) may take.
    pub tool_timeout: Duration,
    /// Where context resources are read from.
    pub mcp: McpServers,
    pub store: Store,
    pub metrics: Option<AgentMetrics>,
}

impl Agents {
    pub fn new(parts: AgentsParts) -> Self {
        let events = broadcast::channel(NODE_EVENT_BUFFER).0;
        Self {
            inner: Arc::new(Inner {
                supervisor: parts.supervisor,
                deps: AgentDeps {
                    providers: Arc::new(parts.providers),
                    tools: parts.tool_recipient,
                    tool_timeout: parts.tool_timeout,
                    node_spent: Arc::default(),
                    journal: None,
                    events: Some(events.clone()),
                    metrics: parts.metrics,
                },
                tools: parts.tools,
                mcp: parts.mcp,
                turn_timeout: parts.tool_timeout,
                running: Mutex::new(BTreeMap::new()),
                store: parts.store,
                events,
                changes: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// `spec` with its context resources read and placed after its system prompt.
    async fn with_context(&self, mut spec: AgentSpec) -> Result<AgentSpec, AgentError> {
        for resource in &spec.context {
            let text = self
                .inner
                .mcp
                .resource_text(&resource.server, &resource.uri)
                .await
                .map_err(|error| AgentError::Context {
                    name: spec.name.clone(),
                    server: resource.server.clone(),
                    uri: resource.uri.clone(),
                    error,
                })?;
            if !spec.system_prompt.is_empty() {
                spec.system_prompt.push_str("\n\n");
            }
            spec.system_prompt.push_str(&format!(
                "<resource server=\"{}\" uri=\"{}\">\n{text}\n</resource>",
                resource.server, resource.uri
            ));
        }
        Ok(spec)
    }

    fn running(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Agent>> {
        self.inner.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts an agent under `agents` (restarted with its conversation if it crashes) and
    /// registers it as the tool `agent.NAME`. It is not stored: it lives as long as the
    /// node.
    pub async fn spawn(&self, spec: AgentSpec) -> Result<Agent, AgentError> {
        self.check(&spec)?;
        self.start(spec, None).await
    }

    /// Why `spec` cannot be started on this node, if it cannot.
    fn check(&self, spec: &AgentSpec) -> Result<(), AgentError> {
        let name = spec.name.clone();
        if name.is_empty()
            || name.len() > 64
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(AgentError::InvalidName(name));
        }
        if name == MCP_CALLER {
            // The MCP face calls tools as `mcp`: an agent of that name would share its
            // workspace and be the identity of every MCP client.
            return Err(AgentError::Reserved(name));
        }
        if !self.inner.deps.providers.contains_key(&spec.provider) {
            let mut known: Vec<&str> = self
                .inner
                .deps
                .providers
                .keys()
                .map(String::as_str)
                .collect();
            known.sort_unstable();
            return Err(AgentError::UnknownProvider {
                name,
                provider: spec.provider.clone(),
                known: known.join(", "),
            });
        }
        if self.running().contains_key(&name) {
            return Err(AgentError::Exists(name));
        }
        Ok(())
    }

    /// Starts a checked `spec`: journaled and resuming `conversation` when it is stored.
    async fn start(&self, spec: AgentSpec, stored: Option<Resume>) -> Result<Agent, AgentError> {
        let name = spec.name.clone();
        let spec = self.with_context(spec).await?;
        let mut deps = self.inner.deps.clone();
        let state = match &stored {
            Some(resume) => {
                deps.journal = Some(Arc::new(self.inner.store.clone()));
                AgentState::resume(spec, resume.conversation.clone(), resume.messages.clone())
            }
            None => AgentState::new(spec),
        };
        let factory_state = state.clone();
        let (child, handle) = ChildSpec::actor(&name, move || {
            (AgentActor::new(factory_state.clone(), deps.clone()), ())
        });
        self.inner
            .supervisor
            .start_child(child.pooled(), CONTROL_TIMEOUT)
            .await
            .map_err(|e| match e {
                SupervisorError::DuplicateChild(name) => AgentError::Exists(name),
                other => other.into(),
            })?;
        let agent = Agent {
            handle,
            state,
            stored: stored.is_some(),
        };
        // The supervisor refuses a second child of the same name, so of two racing starts
        // only one gets here.
        self.running().insert(name.clone(), agent.clone());
        self.count_running();
        // Registering can only fail on a duplicate name, i.e. a tool of that name exists.
        if let Err(e) = self.inner.tools.register(self.as_tool(&agent)) {
            tracing::warn!(agent = %name, error = %e, "agent not exposed as a tool");
        }
        Ok(agent)
    }

    /// Tokens and cost of every LLM call of every agent since the node started (removed
    /// agents included).
    pub fn spent(&self) -> Usage {
        *self
            .inner
            .deps
            .node_spent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    pub fn get(&self, name: &str) -> Option<Agent> {
        self.running().get(name).cloned()
    }

    pub fn names(&self) -> Vec<String> {
        self.running().keys().cloned().collect()
    }

    /// Every running agent, by name.
    pub fn list(&self) -> Vec<Agent> {
        self.running().values().cloned().collect()
    }

    /// Events of every agent's turns from now on.
    pub fn events(&self) -> broadcast::Receiver<TurnEvent> {
        self.inner.events.subscribe()
    }

    /// The store holding created agents and their conversations.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    fn count_running(&self) {
        if let Some(metrics) = &self.inner.deps.metrics {
            metrics.agents.set(self.running().len() as i64);
        }
    }

    /// Stops an agent and forgets it (its tool goes too); `false` if there was none.
    pub async fn remove(&self, name: &str) -> bool {
        let Some(agent) = self.running().remove(name) else {
            return false;
        };
        self.count_running();
        agent.state.cancel();
        self.inner.tools.unregister(&tool_name(name));
        let _ = self
            .inner
            .supervisor
            .stop_child(name, CONTROL_TIMEOUT)
            .await;
        true
    }
}

/// Where a stored agent picks up: its current conversation.
#[derive(Debug, Clone, Default)]
struct Resume {
    conversation: String,
    messages: Vec<neuroflow_kit::protocol::agent::ChatMessage>,
}

fn tool_name(agent: &str) -> String {
    format!("agent.{agent}")
}
