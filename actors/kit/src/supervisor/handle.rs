//! The stable address of a supervisor and what can be asked of it.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use ractor::ActorRef;
use tokio::sync::oneshot;

use super::{ChildSpec, SupervisorMsg, TreeNode};

/// Why a request to a supervisor failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SupervisorError {
    #[error("{0} is unavailable")]
    Unavailable(String),
    #[error("supervisor {0} did not answer in time")]
    Timeout(String),
    #[error("a child named {0:?} already exists")]
    DuplicateChild(String),
    #[error("invalid child name {0:?}: must be non-empty and contain no '/'")]
    InvalidName(String),
    #[error("no actor at {0}")]
    NoSuchChild(String),
    #[error("{child} failed to start: {reason}")]
    StartFailed { child: String, reason: String },
}

/// Handle to a supervisor; follows it across restarts like [`crate::actor::ActorHandle`].
#[derive(Clone)]
pub struct SupervisorHandle {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    /// The live supervisor, or why there is none.
    current: RwLock<Result<ActorRef<SupervisorMsg>, &'static str>>,
}

impl SupervisorHandle {
    /// A handle to a supervisor not started yet; [`super::Supervisor::start_root_with`]
    /// attaches it. Until then, requests fail with [`SupervisorError::Unavailable`].
    pub fn new(name: &str) -> Self {
        Self {
            inner: Arc::new(Inner {
                name: name.to_string(),
                current: RwLock::new(Err("not started")),
            }),
        }
    }

    fn set(&self, current: Result<ActorRef<SupervisorMsg>, &'static str>) {
        *self
            .inner
            .current
            .write()
            .unwrap_or_else(|p| p.into_inner()) = current;
    }

    pub(crate) fn attach(&self, actor: ActorRef<SupervisorMsg>) {
        self.set(Ok(actor));
    }

    pub(crate) fn detach(&self, reason: &'static str) {
        self.set(Err(reason));
    }

    fn current(&self) -> Result<ActorRef<SupervisorMsg>, SupervisorError> {
        self.inner
            .current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .map_err(|reason| self.unavailable(reason))
    }

    fn unavailable(&self, reason: &str) -> SupervisorError {
        SupervisorError::Unavailable(format!("supervisor {} ({reason})", self.inner.name))
    }

    /// Whether the supervisor is up: started (its children are running) and not stopping.
    pub fn is_up(&self) -> bool {
        use ractor::ActorStatus::{Running, Starting, Upgrading};
        // A handle is attached only once start-up has finished, but ractor reports
        // `Running` a moment later, from the actor's own task.
        self.current()
            .is_ok_and(|a| matches!(a.get_status(), Starting | Running | Upgrading))
    }

    async fn ask<T>(
        &self,
        msg: impl FnOnce(oneshot::Sender<T>) -> SupervisorMsg,
        timeout: Duration,
    ) -> Result<T, SupervisorError> {
        let actor = self.current()?;
        let (tx, rx) = oneshot::channel();
        actor
            .send_message(msg(tx))
            .map_err(|_| self.unavailable("stopping"))?;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(_)) => Err(self.unavailable("stopped before answering")),
            Err(_) => Err(SupervisorError::Timeout(self.inner.name.clone())),
        }
    }

    /// A snapshot of the live tree below (and including) this supervisor.
    pub async fn tree(&self, timeout: Duration) -> Result<TreeNode, SupervisorError> {
        self.ask(SupervisorMsg::Tree, timeout).await
    }

    /// Starts a new child at the end of the start order.
    pub async fn start_child(
        &self,
        spec: ChildSpec,
        timeout: Duration,
    ) -> Result<(), SupervisorError> {
        self.ask(|tx| SupervisorMsg::StartChild(spec, tx), timeout)
            .await?
    }

    /// Stops a child and forgets its spec.
    pub async fn stop_child(&self, name: &str, timeout: Duration) -> Result<(), SupervisorError> {
        let name = name.to_string();
        self.ask(|tx| SupervisorMsg::StopChild(name, tx), timeout)
            .await?
    }

    /// Makes the actor at `path` (slash-separated, relative to this supervisor) fail as if
    /// it had crashed. Fault injection for tests and drills; the tree reacts as it would to
    /// a real crash.
    pub async fn inject_failure(
        &self,
        path: &str,
        reason: &str,
        timeout: Duration,
    ) -> Result<(), SupervisorError> {
        let path = path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        self.inject_failure_at(path, reason, timeout).await
    }

    pub(crate) async fn inject_failure_at(
        &self,
        path: Vec<String>,
        reason: &str,
        timeout: Duration,
    ) -> Result<(), SupervisorError> {
        let reason = reason.to_string();
        self.ask(
            |reply| SupervisorMsg::InjectFailure {
                path,
                reason,
                reply,
            },
            timeout,
        )
        .await?
    }

    /// Makes this supervisor itself fail (see [`Self::inject_failure`]).
    pub(crate) fn fail(&self, reason: &str) -> Result<(), SupervisorError> {
        self.current()?
            .send_message(SupervisorMsg::Fail(reason.to_string()))
            .map_err(|_| self.unavailable("stopping"))
    }

    /// Stops the supervisor and its whole subtree (children last-started first), waiting up
    /// to `timeout`; past that, whatever is still running is killed.
    pub async fn stop(&self, timeout: Duration) {
        let Ok(actor) = self.current() else { return };
        if actor
            .stop_and_wait(Some("shutdown".to_string()), Some(timeout))
            .await
            .is_err()
        {
            actor.kill();
        }
        self.detach("stopped");
    }
}
