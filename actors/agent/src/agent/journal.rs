//! Where an agent's turns are recorded: the node's store, seen from an agent that must not
//! depend on it.

use std::future::Future;
use std::pin::Pin;

use neuroflow_kit::protocol::agent::{ChatMessage, Usage};

/// What a journal call returns: a boxed future, so that the trait stays object-safe.
pub type JournalFuture<T> = Pin<Box<dyn Future<Output = Result<T, String>> + Send + 'static>>;

/// One message of a turn as recorded: the message, and the usage of the model call that
/// wrote it (assistant messages only).
#[derive(Debug, Clone, PartialEq)]
pub struct JournalEntry {
    pub message: ChatMessage,
    pub usage: Option<Usage>,
}

/// A durable record of conversations.
pub trait Journal: Send + Sync + 'static {
    /// Appends a turn's messages to `conversation` of `agent`; done only once they are
    /// durable. A conversation of another agent is an error.
    fn record(
        &self,
        agent: &str,
        conversation: &str,
        entries: Vec<JournalEntry>,
    ) -> JournalFuture<()>;

    /// Every message of `conversation` of `agent`, or `None` if it has none yet. A
    /// conversation of another agent is an error.
    fn load(&self, agent: &str, conversation: &str) -> JournalFuture<Option<Vec<ChatMessage>>>;
}
