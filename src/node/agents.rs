//! The node's agents: one supervised [`AgentActor`] per agent under `agents`, each also a
//! tool (`agent.NAME`) that other agents can call.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use neuroflow_agent::agent::{AgentActor, AgentDeps, AgentState};
use neuroflow_agent::provider::{LlmProvider, Pricing, ProviderConfig, build_provider};
use neuroflow_kit::ActorHandle;
use neuroflow_kit::protocol::agent::{AgentMsg, AgentReply, AgentSpec, Usage};
use neuroflow_kit::protocol::router::{RouterMsg, RouterReply, ToolOutput};
use neuroflow_kit::recipient::Recipient;
use neuroflow_kit::supervisor::{ChildSpec, SupervisorError, SupervisorHandle};
use neuroflow_router::mcp::serve::MCP_CALLER;
use neuroflow_router::mcp::{McpError, McpServers};
use neuroflow_router::{Tools, spec, tool_fn};
use serde_json::json;

/// Bound on starting or stopping an agent's actor.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(10);

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
}

/// A running agent: its actor and its memory.
#[derive(Clone)]
pub struct Agent {
    pub handle: ActorHandle<AgentActor>,
    pub state: AgentState,
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
    #[error(transparent)]
    Supervisor(#[from] SupervisorError),
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

impl Agents {
    pub fn new(
        supervisor: SupervisorHandle,
        providers: HashMap<String, Arc<dyn LlmProvider>>,
        tools: Tools,
        tool_recipient: Recipient<RouterMsg, RouterReply>,
        tool_timeout: Duration,
        mcp: McpServers,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                supervisor,
                deps: AgentDeps {
                    providers: Arc::new(providers),
                    tools: tool_recipient,
                    tool_timeout,
                    node_spent: Arc::default(),
                },
                tools,
                mcp,
                turn_timeout: tool_timeout,
                running: Mutex::new(BTreeMap::new()),
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
    /// registers it as the tool `agent.NAME`.
    pub async fn spawn(&self, spec: AgentSpec) -> Result<Agent, AgentError> {
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
        let spec = self.with_context(spec).await?;
        let state = AgentState::new(spec);
        let (factory_state, deps) = (state.clone(), self.inner.deps.clone());
        let (child, handle) = ChildSpec::actor(&name, move || {
            (AgentActor::new(factory_state.clone(), deps.clone()), ())
        });
        self.inner
            .supervisor
            .start_child(child.pooled(), CONTROL_TIMEOUT)
            .await?;
        let agent = Agent { handle, state };
        self.running().insert(name.clone(), agent.clone());
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

    /// Stops an agent and forgets it (its tool goes too); `false` if there was none.
    pub async fn remove(&self, name: &str) -> bool {
        let Some(agent) = self.running().remove(name) else {
            return false;
        };
        agent.state.cancel();
        self.inner.tools.unregister(&tool_name(name));
        let _ = self
            .inner
            .supervisor
            .stop_child(name, CONTROL_TIMEOUT)
            .await;
        true
    }

    /// `agent.NAME`: asks the agent and returns its answer as the tool's result.
    fn as_tool(&self, agent: &Agent) -> neuroflow_router::Tool {
        let spec_ = agent.state.spec();
        let description = if spec_.description.is_empty() {
            format!("Ask the agent {:?}.", spec_.name)
        } else {
            spec_.description.clone()
        };
        let (handle, name, timeout) = (
            agent.handle.clone(),
            spec_.name.clone(),
            self.inner.turn_timeout,
        );
        let mut tool_spec = spec(
            &tool_name(&name),
            &description,
            json!({
                "type": "object",
                "properties": {"message": {"type": "string", "description": "What to ask."}},
                "required": ["message"],
                "additionalProperties": false
            }),
        );
        tool_spec.provider = "agent".into();
        tool_fn(tool_spec, move |args, ctx| {
            let (handle, name) = (handle.clone(), name.clone());
            async move {
                // An agent asking itself would wait on its own busy mailbox.
                if ctx.caller.as_deref() == Some(name.as_str()) {
                    return ToolOutput::error("an agent cannot call itself");
                }
                let message = args["message"].as_str().unwrap_or_default().to_string();
                let chat = AgentMsg::Chat {
                    message,
                    turn_id: None,
                };
                match handle.call(chat, timeout).await {
                    Ok(AgentReply::Answer { text, .. }) => ToolOutput::ok(text),
                    Ok(AgentReply::TurnFailed { message }) => ToolOutput::error(message),
                    Ok(other) => ToolOutput::error(format!("unexpected reply {other:?}")),
                    Err(e) => ToolOutput::error(e.to_string()),
                }
            }
        })
    }
}

fn tool_name(agent: &str) -> String {
    format!("agent.{agent}")
}
