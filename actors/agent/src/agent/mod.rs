//! The agent actor: one per agent, under the node's `agents` supervisor.
//!
//! An agent's memory (spec, conversation, spending) lives in an [`AgentState`] shared with
//! the factory that starts its incarnations, so a crash mid-turn loses the turn, never the
//! conversation: the supervisor's replacement picks it up as it was. Idle, an agent is
//! that state and an idle mailbox.
//!
//! A turn runs inside the actor's handler (one turn at a time per agent); its events go to
//! every subscriber of the agent (and of the node) as they happen, and it can be cancelled
//! from outside through the shared state, since the mailbox is busy with the turn itself.
//!
//! An agent talks in conversations. It holds its current one in memory; a turn naming
//! another switches to it. With a [`Journal`] (the node's store) every turn's messages are
//! recorded before the turn answers, and a conversation switched to is read back from it;
//! without one, the conversations switched away from are kept in memory.

mod journal;
mod metrics;
mod turn;

pub use journal::{Journal, JournalEntry, JournalFuture};
pub use metrics::AgentMetrics;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use neuroflow_kit::actor::{Actor, ActorError, Ctx};
use neuroflow_kit::protocol::agent::{
    AgentEvent, AgentMsg, AgentReply, AgentSpec, ChatMessage, TurnEvent, Usage,
};
use neuroflow_kit::protocol::router::{RouterMsg, RouterReply};
use neuroflow_kit::recipient::Recipient;
use tokio::sync::broadcast;

use crate::provider::{CancellationToken, LlmProvider};

/// Events buffered per subscriber; a subscriber that falls further behind misses events
/// (and is told how many, by the channel) rather than holding the agent up.
const EVENT_BUFFER: usize = 256;

/// What an agent needs from its node: its model provider and the tool router.
#[derive(Clone)]
pub struct AgentDeps {
    /// Providers by the name an [`AgentSpec`] uses.
    pub providers: Arc<HashMap<String, Arc<dyn LlmProvider>>>,
    pub tools: Recipient<RouterMsg, RouterReply>,
    /// Longest a tool call may take.
    pub tool_timeout: Duration,
    /// What every agent of the node has spent, together.
    pub node_spent: Arc<Mutex<Usage>>,
    /// Where turns are recorded, if anywhere.
    pub journal: Option<Arc<dyn Journal>>,
    /// The node's stream of every agent's events, if anyone may watch it.
    pub events: Option<broadcast::Sender<TurnEvent>>,
    /// LLM calls and turns, counted, when the node keeps metrics.
    pub metrics: Option<AgentMetrics>,
}

/// An agent's memory, kept across restarts of its actor.
#[derive(Clone)]
pub struct AgentState {
    inner: Arc<Shared>,
}

struct Shared {
    spec: AgentSpec,
    memory: Mutex<Memory>,
    /// Made at the first subscription: the channel's buffer is most of what an idle agent
    /// would otherwise cost, and most agents are never watched.
    events: Mutex<Option<broadcast::Sender<TurnEvent>>>,
}

struct Memory {
    /// Id of the current conversation.
    conversation_id: String,
    conversation: Vec<ChatMessage>,
    /// Conversations switched away from, when there is no journal to read them back from.
    parked: HashMap<String, Vec<ChatMessage>>,
    spent: Usage,
    /// The running turn's cancellation, if a turn is running.
    running: Option<CancellationToken>,
}

impl AgentState {
    /// A new agent, in a new (empty) conversation.
    pub fn new(spec: AgentSpec) -> Self {
        Self::resume(spec, new_conversation_id(), Vec::new())
    }

    /// An agent picking up conversation `id` where `messages` left it.
    pub fn resume(spec: AgentSpec, id: String, messages: Vec<ChatMessage>) -> Self {
        Self {
            inner: Arc::new(Shared {
                spec,
                memory: Mutex::new(Memory {
                    conversation_id: id,
                    conversation: messages,
                    parked: HashMap::new(),
                    spent: Usage::default(),
                    running: None,
                }),
                events: Mutex::new(None),
            }),
        }
    }

    pub fn spec(&self) -> &AgentSpec {
        &self.inner.spec
    }

    /// Id of the conversation the next turn continues unless it names another.
    pub fn conversation_id(&self) -> String {
        self.memory().conversation_id.clone()
    }

    /// Whether a turn is running.
    pub fn busy(&self) -> bool {
        self.memory().running.is_some()
    }

    /// Events of every turn from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<TurnEvent> {
        let mut events = self.inner.events.lock().unwrap_or_else(|p| p.into_inner());
        events
            .get_or_insert_with(|| broadcast::channel(EVENT_BUFFER).0)
            .subscribe()
    }

    /// Cancels the running turn, if any; returns whether there was one.
    pub fn cancel(&self) -> bool {
        match &self.memory().running {
            Some(token) => {
                token.cancel();
                true
            }
            None => false,
        }
    }

    pub fn conversation(&self) -> Vec<ChatMessage> {
        self.memory().conversation.clone()
    }

    pub fn spent(&self) -> Usage {
        self.memory().spent
    }

    fn memory(&self) -> std::sync::MutexGuard<'_, Memory> {
        // Only whole values are written under the lock; a poisoned one is still sound.
        self.inner.memory.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sends `event` to the agent's subscribers and to the node's. No subscriber is not an
    /// error: the turn's outcome is also its reply.
    fn emit(
        &self,
        node: Option<&broadcast::Sender<TurnEvent>>,
        conversation: &str,
        turn_id: &Option<String>,
        event: AgentEvent,
    ) {
        let own = self.inner.events.lock().unwrap_or_else(|p| p.into_inner());
        let own = own.as_ref().filter(|tx| tx.receiver_count() > 0);
        let node = node.filter(|tx| tx.receiver_count() > 0);
        if own.is_none() && node.is_none() {
            return;
        }
        let event = TurnEvent {
            agent: self.inner.spec.name.clone(),
            conversation: conversation.to_string(),
            turn_id: turn_id.clone(),
            event,
        };
        if let Some(node) = node {
            let _ = node.send(event.clone());
        }
        if let Some(own) = own {
            let _ = own.send(event);
        }
    }
}

/// A fresh conversation id.
pub fn new_conversation_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The actor: built afresh per incarnation from the shared state and the node's deps.
pub struct AgentActor {
    state: AgentState,
    deps: AgentDeps,
}

impl AgentActor {
    pub fn new(state: AgentState, deps: AgentDeps) -> Self {
        Self { state, deps }
    }
}

impl Actor for AgentActor {
    const KIND: &'static str = "agent";
    type Msg = AgentMsg;
    type Reply = AgentReply;
    type State = ();
    type Args = ();

    async fn started(&self, _: &Ctx<Self>, (): ()) -> Result<(), ActorError> {
        // A turn cut short by a crash left its token behind.
        self.state.memory().running = None;
        Ok(())
    }

    async fn handle(
        &self,
        _: &Ctx<Self>,
        msg: AgentMsg,
        (): &mut (),
    ) -> Result<AgentReply, ActorError> {
        Ok(match msg {
            // Boxed: the actor's task is sized for its largest handler future, and a turn's
            // is large; on the heap it costs memory only while a turn runs, not while idle.
            AgentMsg::Chat {
                message,
                turn_id,
                conversation,
            } => {
                let turn = turn::TurnRequest {
                    message,
                    turn_id,
                    conversation,
                };
                Box::pin(turn::run(&self.state, &self.deps, turn)).await
            }
            AgentMsg::History => AgentReply::History(self.state.conversation()),
            AgentMsg::Spent => AgentReply::Spent(self.state.spent()),
        })
    }
}
