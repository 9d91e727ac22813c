//! What a supervisor is told: its strategy, its limits and its children.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use ractor::ActorCell;

use super::SupervisorHandle;
use crate::actor::{Actor, ActorError, ActorHandle, Hosted, HostedArgs};
use crate::envelope::ActorPath;
use crate::metrics::ActorMetrics;

/// Which siblings restart with a failed child (OTP semantics).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Only the child that exited.
    OneForOne,
    /// Every child: they depend on each other.
    OneForAll,
    /// The child that exited and every child started after it (which depend on it).
    RestForOne,
}

/// When a child that exited is restarted (OTP semantics).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Restart {
    /// Always.
    Permanent,
    /// Only after an abnormal exit (failure, panic, kill).
    Transient,
    /// Never; the child is forgotten once it exits.
    Temporary,
}

/// Restart intensity: more than `max_restarts` restarts within `within` and the supervisor
/// gives up, stops its children and fails, escalating to its own supervisor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Intensity {
    pub max_restarts: u32,
    pub within: Duration,
}

impl Intensity {
    /// A fresh record of restarts judged against this intensity.
    pub fn window(self) -> RestartWindow {
        RestartWindow {
            intensity: self,
            recent: std::collections::VecDeque::new(),
        }
    }
}

/// The restarts within the last [`Intensity::within`]: one place decides whether one more
/// restart is allowed, for supervisors and for actors that restart what they manage (an
/// MCP server's process).
#[derive(Debug, Clone)]
pub struct RestartWindow {
    intensity: Intensity,
    recent: std::collections::VecDeque<std::time::Instant>,
}

impl RestartWindow {
    /// Records one restart and says whether it is still within the intensity.
    pub fn admit(&mut self) -> bool {
        let now = std::time::Instant::now();
        self.recent.push_back(now);
        while self
            .recent
            .front()
            .is_some_and(|t| now.duration_since(*t) > self.intensity.within)
        {
            self.recent.pop_front();
        }
        self.recent.len() <= self.intensity.max_restarts as usize
    }

    /// Forgets every recorded restart (after an operator asks for a fresh start).
    pub fn clear(&mut self) {
        self.recent.clear();
    }

    pub fn intensity(&self) -> Intensity {
        self.intensity
    }
}

impl Default for Intensity {
    fn default() -> Self {
        Self {
            max_restarts: 5,
            within: Duration::from_secs(10),
        }
    }
}

/// Exponential backoff between restarts of one child: `initial`, doubling per restart in a
/// row, capped at `max`. The run resets once the child has stayed up for `reset_after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
    pub reset_after: Duration,
}

impl Backoff {
    /// Restart at once, every time.
    pub const NONE: Backoff = Backoff {
        initial: Duration::ZERO,
        max: Duration::ZERO,
        reset_after: Duration::ZERO,
    };

    /// Delay before the restart that follows `previous` restarts in a row.
    pub fn delay(&self, previous: u32) -> Duration {
        let factor = 1u32.checked_shl(previous.min(31)).unwrap_or(u32::MAX);
        self.initial.saturating_mul(factor).min(self.max)
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(50),
            max: Duration::from_secs(5),
            reset_after: Duration::from_secs(30),
        }
    }
}

/// How a supervisor runs.
#[derive(Clone)]
pub struct SupervisorSpec {
    pub name: String,
    pub strategy: Strategy,
    pub intensity: Intensity,
    pub backoff: Backoff,
    /// How long a child may take to stop before it is killed.
    pub shutdown_timeout: Duration,
    pub children: Vec<ChildSpec>,
}

impl SupervisorSpec {
    pub fn new(name: &str, strategy: Strategy) -> Self {
        Self {
            name: name.to_string(),
            strategy,
            intensity: Intensity::default(),
            backoff: Backoff::default(),
            shutdown_timeout: Duration::from_secs(5),
            children: Vec::new(),
        }
    }

    pub fn intensity(mut self, max_restarts: u32, within: Duration) -> Self {
        self.intensity = Intensity {
            max_restarts,
            within,
        };
        self
    }

    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// Adds a child; children start in the order they are added and stop in reverse.
    pub fn child(mut self, child: ChildSpec) -> Self {
        self.children.push(child);
        self
    }
}

/// One child of a supervisor: how to start it, when to restart it.
#[derive(Clone)]
pub struct ChildSpec {
    pub(crate) name: String,
    pub(crate) kind: &'static str,
    pub(crate) restart: Restart,
    pub(crate) pooled: bool,
    pub(crate) starter: Arc<dyn Starter>,
    pub(crate) detail: Option<DetailFn>,
}

/// Reads what a child reports about the thing it manages, for the tree.
pub(crate) type DetailFn = Arc<dyn Fn() -> serde_json::Value + Send + Sync>;

impl ChildSpec {
    /// A kit actor, built afresh by `make` at every (re)start. Returns the spec and the
    /// actor's stable handle.
    pub fn actor<A, F>(name: &str, make: F) -> (Self, ActorHandle<A>)
    where
        A: Actor,
        F: Fn() -> (A, A::Args) + Send + Sync + 'static,
    {
        let handle = ActorHandle::new(name);
        let starter = ActorStarter {
            make,
            handle: handle.clone(),
        };
        (Self::with_starter(name, A::KIND, starter), handle)
    }

    /// A nested supervisor. Returns the spec and the supervisor's stable handle.
    pub fn supervisor(spec: SupervisorSpec) -> (Self, SupervisorHandle) {
        let handle = SupervisorHandle::new(&spec.name);
        let name = spec.name.clone();
        let starter = SupervisorStarter {
            spec,
            handle: handle.clone(),
        };
        (Self::with_starter(&name, super::KIND, starter), handle)
    }

    fn with_starter(name: &str, kind: &'static str, starter: impl Starter) -> Self {
        Self {
            name: name.to_string(),
            kind,
            restart: Restart::Permanent,
            pooled: false,
            starter: Arc::new(starter),
            detail: None,
        }
    }

    pub fn restart(mut self, restart: Restart) -> Self {
        self.restart = restart;
        self
    }

    /// Marks the child as one of an unbounded population of its kind: its metrics are
    /// reported under `name="*"` rather than its own path.
    pub fn pooled(mut self) -> Self {
        self.pooled = true;
        self
    }

    /// Adds what the child reports about the thing it manages (an MCP server's state, a
    /// peer link's) to its node in the tree. `read` must not block: it runs while the
    /// supervisor builds the tree, so it reads shared state rather than asking the actor.
    pub fn detail(mut self, read: impl Fn() -> serde_json::Value + Send + Sync + 'static) -> Self {
        self.detail = Some(Arc::new(read));
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A started incarnation of a child.
pub(crate) struct Started {
    pub cell: ActorCell,
    /// Set when the child is itself a supervisor, to walk the tree.
    pub supervisor: Option<SupervisorHandle>,
}

/// Type-erased start / fault-injection for one child, so that one supervisor can own
/// children of any actor type.
pub(crate) trait Starter: Send + Sync + 'static {
    fn start(
        &self,
        parent: ActorCell,
        path: ActorPath,
        metrics: ActorMetrics,
        registry: Arc<crate::metrics::Metrics>,
    ) -> BoxFuture<'_, Result<Started, ActorError>>;

    /// The incarnation is gone; calls through the handle now fail with `reason`.
    fn down(&self, reason: &'static str);

    fn inject_failure(&self, reason: &str) -> Result<(), ActorError>;
}

struct ActorStarter<A: Actor, F> {
    make: F,
    handle: ActorHandle<A>,
}

impl<A, F> Starter for ActorStarter<A, F>
where
    A: Actor,
    F: Fn() -> (A, A::Args) + Send + Sync + 'static,
{
    fn start(
        &self,
        parent: ActorCell,
        path: ActorPath,
        metrics: ActorMetrics,
        _: Arc<crate::metrics::Metrics>,
    ) -> BoxFuture<'_, Result<Started, ActorError>> {
        Box::pin(async move {
            let (actor, args) = (self.make)();
            let hosted = HostedArgs {
                path: path.clone(),
                metrics: metrics.clone(),
                args,
            };
            let actor_ref = Hosted::spawn(actor, hosted, parent).await?;
            self.handle.attach(path, actor_ref.clone(), metrics);
            Ok(Started {
                cell: actor_ref.get_cell(),
                supervisor: None,
            })
        })
    }

    fn down(&self, reason: &'static str) {
        self.handle.detach(reason);
    }

    fn inject_failure(&self, reason: &str) -> Result<(), ActorError> {
        Ok(self.handle.inject_failure(reason)?)
    }
}

struct SupervisorStarter {
    spec: SupervisorSpec,
    handle: SupervisorHandle,
}

impl Starter for SupervisorStarter {
    fn start(
        &self,
        parent: ActorCell,
        path: ActorPath,
        metrics: ActorMetrics,
        registry: Arc<crate::metrics::Metrics>,
    ) -> BoxFuture<'_, Result<Started, ActorError>> {
        Box::pin(async move {
            let (cell, _join) = super::spawn(
                self.spec.clone(),
                path,
                metrics,
                registry,
                Some(parent),
                &self.handle,
                // A nested supervisor's failure reaches its parent as ractor's failure event.
                super::FailureSlot::default(),
            )
            .await?;
            Ok(Started {
                cell,
                supervisor: Some(self.handle.clone()),
            })
        })
    }

    fn down(&self, reason: &'static str) {
        self.handle.detach(reason);
    }

    fn inject_failure(&self, reason: &str) -> Result<(), ActorError> {
        Ok(self.handle.fail(reason)?)
    }
}
