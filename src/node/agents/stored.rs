//! Agents created through the API: stored, journaled, and brought back at start.

use neuroflow_agent::agent::new_conversation_id;
use neuroflow_kit::protocol::agent::AgentSpec;

use super::{Agent, AgentError, Agents, Resume};

/// What [`Agents::restore`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Restored {
    /// Agents running again.
    pub started: Vec<String>,
    /// Agents left stored but not running, and why (a provider no longer configured, an
    /// MCP server down, a name taken by code).
    pub failed: Vec<(String, String)>,
}

impl Agents {
    /// Creates an agent: stored first, then started. Succeeds only once both are done, so
    /// an agent reported created comes back after a crash.
    pub async fn create(&self, spec: AgentSpec) -> Result<Agent, AgentError> {
        let _change = self.inner.changes.lock().await;
        self.check(&spec)?;
        let name = spec.name.clone();
        if self.inner.store.agent(&name).await?.is_some() {
            // Stored but not running (it failed to come back at start): the name is taken.
            return Err(AgentError::Exists(name));
        }
        let resume = Resume {
            conversation: new_conversation_id(),
            messages: Vec::new(),
        };
        let agent = self.start(spec.clone(), Some(resume)).await?;
        if let Err(e) = self.inner.store.put_agent(spec).await {
            self.remove(&name).await;
            return Err(e.into());
        }
        Ok(agent)
    }

    /// Replaces the spec of a created agent: it restarts with the new one and continues
    /// its current conversation. Refused while a turn runs.
    pub async fn update(&self, spec: AgentSpec) -> Result<Agent, AgentError> {
        let _change = self.inner.changes.lock().await;
        let name = spec.name.clone();
        let old = self
            .get(&name)
            .ok_or_else(|| AgentError::NotFound(name.clone()))?;
        if !old.stored {
            return Err(AgentError::NotStored(name));
        }
        if old.state.busy() {
            return Err(AgentError::Busy(name));
        }
        // Checked against the node before the old one stops, so that a bad spec leaves
        // the agent as it was.
        self.remove(&name).await;
        if let Err(e) = self.check(&spec) {
            self.restart_as_was(&old).await;
            return Err(e);
        }
        let resume = Resume {
            conversation: old.state.conversation_id(),
            messages: old.state.conversation(),
        };
        let agent = match self.start(spec.clone(), Some(resume)).await {
            Ok(agent) => agent,
            Err(e) => {
                self.restart_as_was(&old).await;
                return Err(e);
            }
        };
        self.inner.store.put_agent(spec).await?;
        Ok(agent)
    }

    /// Brings `old` back after a refused update.
    async fn restart_as_was(&self, old: &Agent) {
        let resume = Resume {
            conversation: old.state.conversation_id(),
            messages: old.state.conversation(),
        };
        let spec = old.state.spec().clone();
        if let Err(e) = self.start(spec, Some(resume)).await {
            tracing::error!(agent = %old.state.spec().name, error = %e, "agent not restarted after a refused update");
        }
    }

    /// Stops an agent and forgets it, stored spec and conversations included; whether
    /// there was one.
    pub async fn delete(&self, name: &str) -> Result<bool, AgentError> {
        let _change = self.inner.changes.lock().await;
        let running = self.remove(name).await;
        let stored = self.inner.store.delete_agent(name).await?;
        Ok(running || stored)
    }

    /// Starts every stored agent, each in its most recent conversation. One that cannot
    /// start stays stored and is reported, and the others start regardless.
    pub async fn restore(&self) -> Result<Restored, AgentError> {
        let _change = self.inner.changes.lock().await;
        let mut restored = Restored::default();
        for spec in self.inner.store.agents().await? {
            let name = spec.name.clone();
            match self.restore_one(spec).await {
                Ok(_) => restored.started.push(name),
                Err(e) => {
                    tracing::warn!(agent = %name, error = %e, "stored agent not restarted");
                    restored.failed.push((name, e.to_string()));
                }
            }
        }
        Ok(restored)
    }

    async fn restore_one(&self, spec: AgentSpec) -> Result<Agent, AgentError> {
        self.check(&spec)?;
        let store = &self.inner.store;
        let resume = match store.latest_conversation(&spec.name).await? {
            Some(conversation) => Resume {
                messages: store
                    .messages(&conversation)
                    .await?
                    .into_iter()
                    .map(|m| m.message)
                    .collect(),
                conversation,
            },
            None => Resume {
                conversation: new_conversation_id(),
                messages: Vec::new(),
            },
        };
        self.start(spec, Some(resume)).await
    }
}
