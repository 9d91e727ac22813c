//! The agent actor: one per agent, under the node's `agents` supervisor.
//!
//! An agent's memory (spec, conversation, spending) lives in an [`AgentState`] shared with
//! the factory that starts its incarnations, so a crash mid-turn loses the turn, never the
//! conversation: the supervisor's replacement picks it up as it was. Idle, an agent is
//! that state and an idle mailbox.
//!
//! A turn runs inside the actor's handler (one turn at a time per agent); its events go to
//! every subscriber of the agent as they happen, and it can be cancelled from outside
//! through the shared state, since the mailbox is busy with the turn itself.

mod turn;

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

#[derive(Default)]
struct Memory {
    conversation: Vec<ChatMessage>,
    spent: Usage,
    /// The running turn's cancellation, if a turn is running.
    running: Option<CancellationToken>,
}

impl AgentState {
    pub fn new(spec: AgentSpec) -> Self {
        Self {
            inner: Arc::new(Shared {
                spec,
                memory: Mutex::new(Memory::default()),
                events: Mutex::new(None),
            }),
        }
    }

    pub fn spec(&self) -> &AgentSpec {
        &self.inner.spec
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

    fn emit(&self, turn_id: &Option<String>, event: AgentEvent) {
        let events = self.inner.events.lock().unwrap_or_else(|p| p.into_inner());
        // No subscriber is not an error: the turn's outcome is also its reply.
        if let Some(events) = events.as_ref()
            && events.receiver_count() > 0
        {
            let _ = events.send(TurnEvent {
                turn_id: turn_id.clone(),
                event,
            });
        }
    }
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
            AgentMsg::Chat { message, turn_id } => {
                Box::pin(turn::run(&self.state, &self.deps, message, turn_id)).await
            }
            AgentMsg::History => AgentReply::History(self.state.conversation()),
            AgentMsg::Spent => AgentReply::Spent(self.state.spent()),
        })
    }
}
