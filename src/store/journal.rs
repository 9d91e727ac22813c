//! The store as the agents' journal: each turn's messages, recorded before it answers.

use neuroflow_agent::agent::{Journal, JournalEntry, JournalFuture};
use neuroflow_kit::protocol::agent::ChatMessage;

use super::Store;

impl Journal for Store {
    fn record(
        &self,
        agent: &str,
        conversation: &str,
        entries: Vec<JournalEntry>,
    ) -> JournalFuture<()> {
        let (store, agent, conversation) =
            (self.clone(), agent.to_string(), conversation.to_string());
        Box::pin(async move {
            let messages = entries.into_iter().map(|e| (e.message, e.usage)).collect();
            store
                .append_messages(&conversation, &agent, messages)
                .await
                .map(drop)
                .map_err(|e| e.to_string())
        })
    }

    fn load(&self, agent: &str, conversation: &str) -> JournalFuture<Option<Vec<ChatMessage>>> {
        let (store, agent, conversation) =
            (self.clone(), agent.to_string(), conversation.to_string());
        Box::pin(async move {
            let Some(found) = store
                .conversation(&conversation)
                .await
                .map_err(|e| e.to_string())?
            else {
                return Ok(None);
            };
            if found.agent != agent {
                return Err(format!(
                    "conversation {conversation} belongs to agent {:?}",
                    found.agent
                ));
            }
            let messages = store
                .messages(&conversation)
                .await
                .map_err(|e| e.to_string())?;
            Ok(Some(messages.into_iter().map(|m| m.message).collect()))
        })
    }
}
