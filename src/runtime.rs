//! The embedding API: NeuroFlow inside your own Rust service.
//!
//! A [`Runtime`] is a node without HTTP faces: the same supervision tree (sandboxes,
//! tools, agents, telemetry), reached through Rust calls.
//!
//! ```no_run
//! use neuroflow::Runtime;
//! use neuroflow::kit::protocol::agent::AgentEvent;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let runtime = Runtime::builder().data_dir("./.neuroflow").build().await?;
//! let agent = runtime.spawn_agent(neuroflow::agent_spec("helper").tools(["time.*"])).await?;
//! let mut chat = agent.chat("What time is it?");
//! while let Some(event) = chat.next_event().await {
//!     if let AgentEvent::TextDelta { text } = event {
//!         print!("{text}");
//!     }
//! }
//! println!("\nanswer: {}", chat.answer().await?);
//! runtime.shutdown().await;
//! # Ok(()) }
//! ```

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use neuroflow_agent::provider::ProviderConfig;
use neuroflow_kit::CallError;
use neuroflow_kit::propagation;
use neuroflow_kit::protocol::agent::ContextResource;
use neuroflow_kit::protocol::agent::{AgentEvent, AgentMsg, AgentReply, AgentSpec, Usage};
use neuroflow_router::mcp::{McpServerConfig, McpServers};
use neuroflow_router::{RegisterError, Tool, Tools};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::node::agents::{Agent, AgentError};
use crate::node::{Node, NodeError};

/// A NeuroFlow runtime inside the calling process.
pub struct Runtime {
    node: Node,
}

/// Builds a [`Runtime`]; every setting has the node's default.
#[derive(Default)]
pub struct RuntimeBuilder {
    config: Config,
}

impl RuntimeBuilder {
    /// Starts from a whole node configuration (e.g. loaded from a file).
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Where state lives (workspaces, sandbox state).
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.config.node.data_dir = dir.into();
        self
    }

    /// Adds an LLM provider agents can name.
    pub fn provider(mut self, name: impl Into<String>, provider: ProviderConfig) -> Self {
        self.config.providers.insert(name.into(), provider);
        self
    }

    /// The program that runs the sandbox init: your service's binary has no
    /// `sandbox-init` subcommand, so point this at `neuroflow-node`.
    /// Adds MCP server `name` (its tools become `name.TOOL`).
    pub fn mcp_server(mut self, name: impl Into<String>, server: McpServerConfig) -> Self {
        self.config.mcp.servers.insert(name.into(), server);
        self
    }

    pub fn sandbox_init(mut self, program: impl Into<PathBuf>) -> Self {
        self.config.sandbox.init_program = Some(program.into());
        self
    }

    pub async fn build(self) -> Result<Runtime, NodeError> {
        self.config
            .validate(&crate::config::Origin::Merged)
            .map_err(|e| NodeError::Setup(e.to_string()))?;
        Ok(Runtime {
            node: Node::start_embedded(&self.config).await?,
        })
    }
}

impl Runtime {
    pub fn builder() -> RuntimeBuilder {
        RuntimeBuilder::default()
    }

    /// Starts an agent (supervised: a crash restarts it with its conversation).
    pub async fn spawn_agent(&self, spec: impl Into<AgentSpec>) -> Result<AgentRef, AgentError> {
        let agent = self.node.agents().spawn(spec.into()).await?;
        Ok(AgentRef { agent })
    }

    /// A running agent by name.
    pub fn agent(&self, name: &str) -> Option<AgentRef> {
        self.node.agents().get(name).map(|agent| AgentRef { agent })
    }

    /// Makes a tool (e.g. a Rust closure: [`neuroflow_router::tool_fn`]) available to
    /// agents whose tool patterns match its name.
    pub fn register_tool(&self, tool: Tool) -> Result<(), RegisterError> {
        self.node.tools().register(tool)
    }

    /// The MCP servers: add one while running, read statuses, resources and prompts.
    pub fn mcp(&self) -> &McpServers {
        self.node.mcp()
    }

    pub fn tools(&self) -> &Tools {
        self.node.tools()
    }

    /// The node underneath, for everything else (sandboxes, metrics, the tree).
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// Stops every agent, tool and sandbox, last started first.
    pub async fn shutdown(self) {
        self.node.stop().await;
    }
}

/// A handle to a running agent.
#[derive(Clone)]
pub struct AgentRef {
    agent: Agent,
}

/// Bound on one turn seen from the embedding API.
const TURN_TIMEOUT: Duration = Duration::from_secs(600);

impl AgentRef {
    pub fn name(&self) -> &str {
        &self.agent.state.spec().name
    }

    /// Starts a turn: `message` from the user. Events stream from the returned [`Chat`]
    /// as the turn runs; [`Chat::answer`] waits for the final answer.
    pub fn chat(&self, message: impl Into<String>) -> Chat {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let turn_id = format!("embedded-{}", NEXT.fetch_add(1, Ordering::Relaxed));
        // Subscribed before the turn is sent, so that no event of it is missed.
        let events = self.agent.state.subscribe();
        let handle = self.agent.handle.clone();
        let msg = AgentMsg::Chat {
            message: message.into(),
            turn_id: Some(turn_id.clone()),
            conversation: None,
        };
        // Where the caller stands in a trace, the turn does too.
        let reply = tokio::spawn(propagation::in_current_scope(async move {
            handle.call(msg, TURN_TIMEOUT).await
        }));
        Chat {
            turn_id,
            events,
            reply,
            done: false,
        }
    }

    /// Cancels the agent's running turn, if any.
    pub fn cancel(&self) -> bool {
        self.agent.state.cancel()
    }

    /// Tokens and cost spent by the agent so far.
    pub fn spent(&self) -> Usage {
        self.agent.state.spent()
    }
}

/// One turn in progress.
pub struct Chat {
    turn_id: String,
    events: broadcast::Receiver<neuroflow_kit::protocol::agent::TurnEvent>,
    reply: JoinHandle<Result<AgentReply, CallError>>,
    done: bool,
}

/// Why a turn gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    #[error("the turn failed: {0}")]
    Failed(String),
    #[error(transparent)]
    Call(#[from] CallError),
    #[error("the turn's task ended abnormally")]
    Aborted,
}

impl Chat {
    /// The turn's next event; `None` after its final answer or error.
    pub async fn next_event(&mut self) -> Option<AgentEvent> {
        while !self.done {
            match self.events.recv().await {
                Ok(e) if e.turn_id.as_deref() == Some(self.turn_id.as_str()) => {
                    self.done =
                        matches!(e.event, AgentEvent::Final { .. } | AgentEvent::Error { .. });
                    return Some(e.event);
                }
                Ok(_) => {} // another turn's (this agent has other callers)
                // Fell behind: events were dropped rather than hold the agent up.
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => self.done = true,
            }
        }
        None
    }

    /// Waits for the turn to end and returns its answer.
    pub async fn answer(self) -> Result<String, ChatError> {
        match self.reply.await {
            Ok(Ok(AgentReply::Answer { text, .. })) => Ok(text),
            Ok(Ok(AgentReply::TurnFailed { message })) => Err(ChatError::Failed(message)),
            Ok(Ok(other)) => Err(ChatError::Failed(format!("unexpected reply {other:?}"))),
            Ok(Err(e)) => Err(ChatError::Call(e)),
            Err(_) => Err(ChatError::Aborted),
        }
    }
}

/// An [`AgentSpec`] under construction: `agent_spec("name").model("…").tools([…])`.
pub fn agent_spec(name: &str) -> SpecBuilder {
    SpecBuilder(AgentSpec {
        name: name.to_string(),
        description: String::new(),
        system_prompt: String::new(),
        provider: "scripted".into(),
        model: String::new(),
        tools: Vec::new(),
        sandbox_profile: "standard".into(),
        max_steps: 8,
        budget: Default::default(),
        context: Vec::new(),
    })
}

/// See [`agent_spec`].
pub struct SpecBuilder(AgentSpec);

impl SpecBuilder {
    pub fn description(mut self, text: &str) -> Self {
        self.0.description = text.into();
        self
    }

    pub fn system_prompt(mut self, text: &str) -> Self {
        self.0.system_prompt = text.into();
        self
    }

    pub fn provider(mut self, name: &str) -> Self {
        self.0.provider = name.into();
        self
    }

    pub fn model(mut self, name: &str) -> Self {
        self.0.model = name.into();
        self
    }

    pub fn tools<I: IntoIterator<Item = S>, S: Into<String>>(mut self, patterns: I) -> Self {
        self.0.tools = patterns.into_iter().map(Into::into).collect();
        self
    }

    pub fn sandbox_profile(mut self, profile: &str) -> Self {
        self.0.sandbox_profile = profile.into();
        self
    }

    pub fn max_steps(mut self, steps: u32) -> Self {
        self.0.max_steps = steps;
        self
    }

    /// Gives the agent MCP resource `uri` of `server` as context: read when the agent is
    /// spawned, placed after its system prompt.
    pub fn context_resource(mut self, server: &str, uri: &str) -> Self {
        self.0.context.push(ContextResource {
            server: server.into(),
            uri: uri.into(),
        });
        self
    }
}

impl From<SpecBuilder> for AgentSpec {
    fn from(builder: SpecBuilder) -> Self {
        builder.0
    }
}
