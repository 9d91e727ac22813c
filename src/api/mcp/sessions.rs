//! [`BoundedSessions`]: the SDK's in-memory session manager with a cap on open sessions.
//!
//! Every `initialize` over HTTP opens a session (a task and its channels) that lives until
//! the client deletes it or it idles out; clients that never send DELETE (the TypeScript
//! SDK's `close()` does not) leave theirs to the idle timeout. The cap keeps that memory
//! bounded whatever the clients do.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};

use futures_util::Stream;
use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};
use rmcp::transport::streamable_http_server::session::ServerSseMessage;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{RestoreOutcome, SessionId, SessionManager};

/// A session manager `M` that refuses new sessions while `max` are open.
#[derive(Debug)]
pub struct BoundedSessions<M = LocalSessionManager> {
    inner: M,
    max: usize,
    /// The ids of the open sessions: a set, so that closing a session twice (a DELETE,
    /// then its worker ending) frees one place, not two.
    open: Mutex<HashSet<SessionId>>,
}

/// Why a session operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SessionsError<E: std::error::Error + Send + 'static> {
    #[error("too many open MCP sessions (the limit is {0}); try again later")]
    Full(usize),
    #[error(transparent)]
    Inner(E),
}

impl<M> BoundedSessions<M> {
    pub fn new(inner: M, max: usize) -> Self {
        Self {
            inner,
            max,
            open: Mutex::new(HashSet::new()),
        }
    }

    fn open(&self) -> MutexGuard<'_, HashSet<SessionId>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sessions open now.
    pub fn len(&self) -> usize {
        self.open().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether a new session would be refused.
    pub fn is_full(&self) -> bool {
        self.len() >= self.max
    }

    pub fn max(&self) -> usize {
        self.max
    }
}

impl<M: SessionManager> SessionManager for BoundedSessions<M> {
    type Error = SessionsError<M::Error>;
    type Transport = M::Transport;

    async fn create_session(&self) -> Result<(SessionId, Self::Transport), Self::Error> {
        if self.is_full() {
            return Err(SessionsError::Full(self.max));
        }
        let (id, transport) = self
            .inner
            .create_session()
            .await
            .map_err(SessionsError::Inner)?;
        self.open().insert(id.clone());
        Ok((id, transport))
    }

    async fn initialize_session(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<ServerJsonRpcMessage, Self::Error> {
        self.inner
            .initialize_session(id, message)
            .await
            .map_err(SessionsError::Inner)
    }

    async fn has_session(&self, id: &SessionId) -> Result<bool, Self::Error> {
        self.inner
            .has_session(id)
            .await
            .map_err(SessionsError::Inner)
    }

    async fn close_session(&self, id: &SessionId) -> Result<(), Self::Error> {
        self.open().remove(id);
        self.inner
            .close_session(id)
            .await
            .map_err(SessionsError::Inner)
    }

    async fn create_stream(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.inner
            .create_stream(id, message)
            .await
            .map_err(SessionsError::Inner)
    }

    async fn accept_message(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<(), Self::Error> {
        self.inner
            .accept_message(id, message)
            .await
            .map_err(SessionsError::Inner)
    }

    async fn create_standalone_stream(
        &self,
        id: &SessionId,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.inner
            .create_standalone_stream(id)
            .await
            .map_err(SessionsError::Inner)
    }

    async fn resume(
        &self,
        id: &SessionId,
        last_event_id: String,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.inner
            .resume(id, last_event_id)
            .await
            .map_err(SessionsError::Inner)
    }

    async fn restore_session(
        &self,
        id: SessionId,
    ) -> Result<RestoreOutcome<Self::Transport>, Self::Error> {
        // Only with an external session store, which this face does not configure; a
        // restored session counts against the cap like a new one.
        if self.is_full() {
            return Err(SessionsError::Full(self.max));
        }
        let outcome = self
            .inner
            .restore_session(id.clone())
            .await
            .map_err(SessionsError::Inner)?;
        if matches!(outcome, RestoreOutcome::Restored(_)) {
            self.open().insert(id);
        }
        Ok(outcome)
    }

    fn event_store(
        &self,
    ) -> Option<Arc<dyn rmcp::transport::streamable_http_server::session::EventStore>> {
        self.inner.event_store()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn refuses_past_the_cap_and_frees_a_place_once_per_session() {
        let sessions = BoundedSessions::new(LocalSessionManager::default(), 2);
        let (a, _ta) = sessions.create_session().await.unwrap();
        let (_b, _tb) = sessions.create_session().await.unwrap();
        assert!(sessions.is_full());
        let refused = sessions.create_session().await.map(|_| ()).unwrap_err();
        assert!(matches!(refused, SessionsError::Full(2)), "{refused}");

        sessions.close_session(&a).await.unwrap();
        sessions.close_session(&a).await.unwrap();
        assert_eq!(sessions.len(), 1, "a second close frees nothing more");
        let (_c, _tc) = sessions.create_session().await.unwrap();
        assert!(sessions.is_full());
    }
}
