//! Conversations as the API lists them.

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::users::clamp;
use super::{Store, StoreError};

/// A conversation without its messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConversationSummary {
    pub id: String,
    pub agent: String,
    /// Unix milliseconds of its first message.
    pub created_at: i64,
    /// Unix milliseconds of its last message.
    pub updated_at: i64,
    /// How many messages it has.
    pub messages: u64,
}

/// The columns of a [`ConversationSummary`], from `conversations c` and its messages.
const SUMMARY: &str = "SELECT c.id, c.agent, c.created_at,
        COALESCE(MAX(m.created_at), c.created_at), COUNT(m.seq)
    FROM conversations c LEFT JOIN messages m ON m.conversation = c.id";

fn summary(row: &rusqlite::Row<'_>) -> rusqlite::Result<ConversationSummary> {
    Ok(ConversationSummary {
        id: row.get(0)?,
        agent: row.get(1)?,
        created_at: row.get(2)?,
        updated_at: row.get(3)?,
        messages: u64::try_from(row.get::<_, i64>(4)?).unwrap_or(0),
    })
}

impl Store {
    /// Up to `limit` conversations of `agent` after `offset`, most recently active first.
    pub async fn conversations(
        &self,
        agent: &str,
        offset: u64,
        limit: u64,
    ) -> Result<Vec<ConversationSummary>, StoreError> {
        let agent = agent.to_string();
        let (offset, limit) = (clamp(offset), clamp(limit));
        self.read(move |conn| {
            let mut query = conn.prepare_cached(&format!(
                "{SUMMARY} WHERE c.agent = ?1 GROUP BY c.id
                 ORDER BY 4 DESC, c.id LIMIT ?2 OFFSET ?3"
            ))?;
            let rows = query.query_map(params![agent, limit, offset], summary)?;
            rows.map(|row| row.map_err(StoreError::from)).collect()
        })
        .await
    }

    /// Conversation `id`, without its messages.
    pub async fn conversation(&self, id: &str) -> Result<Option<ConversationSummary>, StoreError> {
        let id = id.to_string();
        self.read(move |conn| {
            let mut query =
                conn.prepare_cached(&format!("{SUMMARY} WHERE c.id = ?1 GROUP BY c.id"))?;
            Ok(query.query_row(params![id], summary).optional()?)
        })
        .await
    }

    /// Id of the conversation of `agent` with the latest message, if it has any.
    pub async fn latest_conversation(&self, agent: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conversations(agent, 0, 1)
            .await?
            .into_iter()
            .next()
            .map(|c| c.id))
    }
}
