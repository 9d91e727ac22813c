//! OTP-style supervision on ractor.
//!
//! A [`Supervisor`] starts its children in order, watches them through ractor's links and
//! restarts them per their [`Restart`] type and its [`Strategy`], with exponential
//! [`Backoff`]. More restarts than its [`Intensity`] allows and it stops its children and
//! fails, so that its own supervisor decides (escalation). Stopping a supervisor stops its
//! children last-started first, each within the shutdown timeout.
//!
//! ```
//! use std::time::Duration;
//! use neuroflow_kit::metrics::Metrics;
//! use neuroflow_kit::supervisor::{Strategy, Supervisor, SupervisorSpec};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let (node, _join) = Supervisor::start_root(
//!     SupervisorSpec::new("node", Strategy::OneForOne),
//!     Metrics::new().unwrap(),
//! )
//! .await
//! .unwrap();
//! let tree = node.tree(Duration::from_secs(1)).await.unwrap();
//! assert_eq!(tree.path, "node");
//! node.stop(Duration::from_secs(1)).await;
//! # }
//! ```

mod handle;
mod spec;
mod tree;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ractor::{ActorCell, ActorProcessingErr, ActorRef, SupervisionEvent};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use handle::{SupervisorError, SupervisorHandle};
pub use spec::{Backoff, ChildSpec, Intensity, Restart, RestartWindow, Strategy, SupervisorSpec};
pub use tree::{ChildStatus, TreeNode};

use crate::actor::ActorError;
use crate::envelope::ActorPath;
use crate::metrics::{ActorMetrics, Metrics, POOLED_NAME};

/// Kind label of supervisors.
pub const KIND: &str = "supervisor";

/// Entry point of supervision trees. Start a tree with [`Supervisor::start_root`]; nest
/// supervisors with [`ChildSpec::supervisor`].
pub struct Supervisor;

/// The ractor actor behind every supervisor.
pub(crate) struct SupervisorActor;

impl Supervisor {
    /// Starts `spec` as the root of a tree (it has no supervisor of its own). The join
    /// handle finishes when the root stops, saying whether it stopped or failed.
    pub async fn start_root(
        spec: SupervisorSpec,
        metrics: Arc<Metrics>,
    ) -> Result<(SupervisorHandle, JoinHandle<RootExit>), ActorError> {
        let handle = SupervisorHandle::new(&spec.name);
        let join = Self::start_root_with(spec, metrics, &handle).await?;
        Ok((handle, join))
    }

    /// Like [`Supervisor::start_root`], attaching a handle made beforehand with
    /// [`SupervisorHandle::new`]: for trees whose children need the root's handle (an HTTP
    /// face that reports the tree, say).
    pub async fn start_root_with(
        spec: SupervisorSpec,
        metrics: Arc<Metrics>,
        handle: &SupervisorHandle,
    ) -> Result<JoinHandle<RootExit>, ActorError> {
        let path = ActorPath::root(&spec.name);
        let own = metrics.actor(KIND, path.as_str());
        let failure = FailureSlot::default();
        let (_, join) = spawn(spec, path, own, metrics, None, handle, failure.clone()).await?;
        let handle = handle.clone();
        Ok(tokio::spawn(async move {
            let _ = join.await;
            handle.detach("stopped");
            match failure.take() {
                Some(reason) => RootExit::Failed(reason),
                None => RootExit::Stopped,
            }
        }))
    }
}

/// How a root supervisor ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootExit {
    /// Stopped on request.
    Stopped,
    /// Gave up (restart intensity exceeded, or a fault injected into it), with the reason.
    Failed(String),
}

/// Where a supervisor leaves the reason it failed, for whoever awaits it.
#[derive(Clone, Default)]
pub(crate) struct FailureSlot(Arc<Mutex<Option<String>>>);

impl FailureSlot {
    fn set(&self, reason: &str) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(reason.to_string());
    }

    fn take(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// Spawns a supervisor linked to `parent` and attaches `handle` to it.
pub(crate) async fn spawn(
    spec: SupervisorSpec,
    path: ActorPath,
    metrics: ActorMetrics,
    registry: Arc<Metrics>,
    parent: Option<ActorCell>,
    handle: &SupervisorHandle,
    failure: FailureSlot,
) -> Result<(ActorCell, JoinHandle<()>), ActorError> {
    let args = Args {
        spec,
        path,
        metrics,
        registry,
        failure,
    };
    let spawned = match parent {
        Some(parent) => ractor::Actor::spawn_linked(None, SupervisorActor, args, parent).await,
        None => ractor::Actor::spawn(None, SupervisorActor, args).await,
    };
    let (actor, join) = spawned.map_err(|e| -> ActorError { e.to_string().into() })?;
    handle.attach(actor.clone());
    Ok((actor.get_cell(), join))
}

pub(crate) struct Args {
    spec: SupervisorSpec,
    path: ActorPath,
    metrics: ActorMetrics,
    registry: Arc<Metrics>,
    failure: FailureSlot,
}

/// Messages a supervisor handles. Local only: `StartChild` carries a factory.
pub(crate) enum SupervisorMsg {
    Tree(oneshot::Sender<TreeNode>),
    StartChild(ChildSpec, oneshot::Sender<Result<(), SupervisorError>>),
    StopChild(String, oneshot::Sender<Result<(), SupervisorError>>),
    InjectFailure {
        path: Vec<String>,
        reason: String,
        reply: oneshot::Sender<Result<(), SupervisorError>>,
    },
    /// Fail this supervisor (fault injection aimed at the supervisor itself).
    Fail(String),
    /// A backoff elapsed: start these children again.
    Restart(Vec<u64>),
}

pub(crate) struct State {
    path: ActorPath,
    strategy: spec::Strategy,
    intensity: Intensity,
    backoff: Backoff,
    shutdown_timeout: Duration,
    metrics: ActorMetrics,
    registry: Arc<Metrics>,
    failure: FailureSlot,
    children: Vec<Child>,
    recent_restarts: RestartWindow,
    next_id: u64,
}

struct Child {
    id: u64,
    spec: ChildSpec,
    path: ActorPath,
    metrics: ActorMetrics,
    run: Run,
    started_at: Instant,
    /// Restarts in a row without staying up for `backoff.reset_after`.
    streak: u32,
}

enum Run {
    Running {
        cell: ActorCell,
        supervisor: Option<SupervisorHandle>,
    },
    Restarting,
    Stopped,
}

enum Exit {
    Normal(Option<String>),
    Failed(String),
}

impl ractor::Actor for SupervisorActor {
    type Msg = SupervisorMsg;
    type State = State;
    type Arguments = Args;

    async fn pre_start(
        &self,
        myself: ActorRef<SupervisorMsg>,
        args: Args,
    ) -> Result<State, ActorProcessingErr> {
        let mut state = State {
            path: args.path,
            strategy: args.spec.strategy,
            intensity: args.spec.intensity,
            backoff: args.spec.backoff,
            shutdown_timeout: args.spec.shutdown_timeout,
            metrics: args.metrics,
            registry: args.registry,
            failure: args.failure,
            children: Vec::new(),
            recent_restarts: args.spec.intensity.window(),
            next_id: 0,
        };
        for spec in args.spec.children {
            if let Err(err) = state.add_child(myself.get_cell(), spec).await {
                state.stop_all("start failed").await;
                return Err(format!("{}: {err}", state.path).into());
            }
        }
        Ok(state)
    }

    async fn post_stop(
        &self,
        _: ActorRef<SupervisorMsg>,
        state: &mut State,
    ) -> Result<(), ActorProcessingErr> {
        state.stop_all("shutdown").await;
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<SupervisorMsg>,
        msg: SupervisorMsg,
        state: &mut State,
    ) -> Result<(), ActorProcessingErr> {
        let started = Instant::now();
        let result = match msg {
            SupervisorMsg::Tree(reply) => {
                let _ = reply.send(state.tree().await);
                Ok(())
            }
            SupervisorMsg::StartChild(spec, reply) => {
                let _ = reply.send(state.add_child(myself.get_cell(), spec).await);
                Ok(())
            }
            SupervisorMsg::StopChild(name, reply) => {
                let _ = reply.send(state.remove_child(&name).await);
                Ok(())
            }
            SupervisorMsg::InjectFailure {
                path,
                reason,
                reply,
            } => {
                let _ = reply.send(state.inject_failure(&path, &reason).await);
                Ok(())
            }
            SupervisorMsg::Fail(reason) => {
                state.stop_all("supervisor failing").await;
                state.failure.set(&reason);
                Err(reason.into())
            }
            SupervisorMsg::Restart(ids) => state.restart(&myself, &ids).await,
        };
        state
            .metrics
            .record_handled(started.elapsed().as_secs_f64());
        result
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<SupervisorMsg>,
        event: SupervisionEvent,
        state: &mut State,
    ) -> Result<(), ActorProcessingErr> {
        let (cell, exit) = match event {
            SupervisionEvent::ActorFailed(cell, err) => (cell, Exit::Failed(err.to_string())),
            // ractor reports a kill as a termination; a kill is not a clean exit.
            SupervisionEvent::ActorTerminated(cell, _, Some(reason)) if reason == "killed" => {
                (cell, Exit::Failed(reason))
            }
            SupervisionEvent::ActorTerminated(cell, _, reason) => (cell, Exit::Normal(reason)),
            _ => return Ok(()),
        };
        let id = cell.get_id();
        let Some(index) = state.children.iter().position(|c| c.cell_id() == Some(id)) else {
            // A child we stopped ourselves (restart group, removal): already accounted for.
            return Ok(());
        };
        match state.child_exited(index, exit).await? {
            Some((ids, delay)) if delay.is_zero() => state.restart(&myself, &ids).await,
            Some((ids, delay)) => {
                myself.send_after(delay, move || SupervisorMsg::Restart(ids));
                Ok(())
            }
            None => Ok(()),
        }
    }
}

impl Child {
    fn cell_id(&self) -> Option<ractor::ActorId> {
        match &self.run {
            Run::Running { cell, .. } => Some(cell.get_id()),
            _ => None,
        }
    }

    fn status(&self) -> ChildStatus {
        match self.run {
            Run::Running { .. } => ChildStatus::Running,
            Run::Restarting => ChildStatus::Restarting,
            Run::Stopped => ChildStatus::Stopped,
        }
    }
}

impl State {
    async fn add_child(&mut self, me: ActorCell, spec: ChildSpec) -> Result<(), SupervisorError> {
        if self.children.iter().any(|c| c.spec.name == spec.name) {
            return Err(SupervisorError::DuplicateChild(spec.name));
        }
        if spec.name.is_empty() || spec.name.contains('/') {
            return Err(SupervisorError::InvalidName(spec.name));
        }
        let path = self.path.child(&spec.name);
        let label = if spec.pooled {
            POOLED_NAME
        } else {
            path.as_str()
        };
        let metrics = self.registry.actor(spec.kind, label);
        let started = self.start(&spec, &path, &metrics, me).await;
        let run = started.map_err(|e| SupervisorError::StartFailed {
            child: path.to_string(),
            reason: e.to_string(),
        })?;
        self.next_id += 1;
        self.children.push(Child {
            id: self.next_id,
            spec,
            path,
            metrics,
            run,
            started_at: Instant::now(),
            streak: 0,
        });
        Ok(())
    }

    async fn start(
        &self,
        spec: &ChildSpec,
        path: &ActorPath,
        metrics: &ActorMetrics,
        me: ActorCell,
    ) -> Result<Run, ActorError> {
        let started = spec
            .starter
            .start(me, path.clone(), metrics.clone(), self.registry.clone())
            .await?;
        Ok(Run::Running {
            cell: started.cell,
            supervisor: started.supervisor,
        })
    }

    async fn remove_child(&mut self, name: &str) -> Result<(), SupervisorError> {
        let index = self
            .children
            .iter()
            .position(|c| c.spec.name == name)
            .ok_or_else(|| SupervisorError::NoSuchChild(self.path.child(name).to_string()))?;
        self.stop_child(index, "removed").await;
        self.children.remove(index);
        Ok(())
    }

    /// Stops one child, waiting up to the shutdown timeout before killing it. The child is
    /// marked down first, so the exit event that follows is not mistaken for a crash.
    async fn stop_child(&mut self, index: usize, reason: &'static str) {
        let timeout = self.shutdown_timeout;
        let child = &mut self.children[index];
        let run = std::mem::replace(&mut child.run, Run::Restarting);
        child.spec.starter.down(reason);
        if let Run::Running { cell, .. } = run
            && cell
                .stop_and_wait(Some(reason.to_string()), Some(timeout))
                .await
                .is_err()
        {
            tracing::warn!(actor = %child.path, "did not stop within {timeout:?}; killing it");
            cell.kill();
        }
    }

    async fn stop_all(&mut self, reason: &'static str) {
        for index in (0..self.children.len()).rev() {
            self.stop_child(index, reason).await;
            self.children[index].run = Run::Stopped;
        }
    }

    /// Applies the child's restart type, the intensity and the strategy to an exit. Returns
    /// the children to start again and after what delay, or `None` if none are.
    async fn child_exited(
        &mut self,
        index: usize,
        exit: Exit,
    ) -> Result<Option<(Vec<u64>, Duration)>, ActorProcessingErr> {
        let child = &mut self.children[index];
        child.run = Run::Restarting;
        let failed = matches!(exit, Exit::Failed(_));
        match &exit {
            Exit::Failed(reason) => {
                child.metrics.record_failure();
                tracing::warn!(actor = %child.path, %reason, "actor failed");
            }
            Exit::Normal(reason) => {
                tracing::debug!(actor = %child.path, ?reason, "actor exited");
            }
        }
        let restart = match child.spec.restart {
            Restart::Permanent => true,
            Restart::Transient => failed,
            Restart::Temporary => false,
        };
        if !restart {
            child.spec.starter.down("stopped");
            if child.spec.restart == Restart::Temporary {
                self.children.remove(index);
            } else {
                child.run = Run::Stopped;
            }
            return Ok(None);
        }
        child.spec.starter.down("restarting");
        if child.started_at.elapsed() >= self.backoff.reset_after {
            child.streak = 0;
        }
        let delay = self.backoff.delay(child.streak);

        if !self.within_intensity() {
            let reason = match exit {
                Exit::Failed(reason) => reason,
                Exit::Normal(reason) => reason.unwrap_or_else(|| "normal exit".into()),
            };
            let message = format!(
                "{}: restart intensity exceeded (more than {} restarts within {:?}); last exit of {}: {reason}",
                self.path,
                self.intensity.max_restarts,
                self.intensity.within,
                self.children[index].path,
            );
            tracing::error!("{message}");
            self.stop_all("supervisor escalating").await;
            self.failure.set(&message);
            return Err(message.into());
        }

        let group: Vec<usize> = match self.strategy {
            Strategy::OneForOne => vec![index],
            Strategy::OneForAll => (0..self.children.len()).collect(),
            Strategy::RestForOne => (index..self.children.len()).collect(),
        };
        for &sibling in group.iter().rev() {
            if sibling != index {
                self.stop_child(sibling, "restarting with sibling").await;
            }
        }
        let ids = group.iter().map(|&i| self.children[i].id).collect();
        Ok(Some((ids, delay)))
    }

    /// Records one restart and says whether the supervisor may still perform it.
    fn within_intensity(&mut self) -> bool {
        self.recent_restarts.admit()
    }

    /// Starts the children `ids` that are still waiting, in start order. A child that fails
    /// to start is handled like a child that crashed (counted, backed off, escalated).
    async fn restart(
        &mut self,
        myself: &ActorRef<SupervisorMsg>,
        ids: &[u64],
    ) -> Result<(), ActorProcessingErr> {
        for &id in ids {
            let Some(index) = self.children.iter().position(|c| c.id == id) else {
                continue;
            };
            if !matches!(self.children[index].run, Run::Restarting) {
                continue;
            }
            let child = &self.children[index];
            match self
                .start(&child.spec, &child.path, &child.metrics, myself.get_cell())
                .await
            {
                Ok(run) => {
                    let child = &mut self.children[index];
                    child.run = run;
                    child.started_at = Instant::now();
                    child.streak = child.streak.saturating_add(1);
                    child.metrics.record_restart();
                    tracing::info!(actor = %child.path, restarts = child.metrics.restarts(), "actor restarted");
                }
                Err(err) => {
                    // Go through the mailbox rather than recursing, so that a child that
                    // never starts cannot spin here: intensity stops it soon enough.
                    let exit = Exit::Failed(format!("restart failed: {err}"));
                    if let Some((ids, delay)) = self.child_exited(index, exit).await? {
                        myself.send_after(delay, move || SupervisorMsg::Restart(ids));
                    }
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    async fn inject_failure(&self, path: &[String], reason: &str) -> Result<(), SupervisorError> {
        let (first, rest) = path
            .split_first()
            .ok_or_else(|| SupervisorError::NoSuchChild(self.path.to_string()))?;
        let child = self
            .children
            .iter()
            .find(|c| &c.spec.name == first)
            .ok_or_else(|| SupervisorError::NoSuchChild(self.path.child(first).to_string()))?;
        let unavailable = || {
            SupervisorError::Unavailable(format!("{} ({})", child.path, child.status().as_str()))
        };
        match (&child.run, rest.is_empty()) {
            (Run::Running { .. }, true) => child
                .spec
                .starter
                .inject_failure(reason)
                .map_err(|_| unavailable()),
            (
                Run::Running {
                    supervisor: Some(sup),
                    ..
                },
                false,
            ) => {
                sup.inject_failure_at(rest.to_vec(), reason, self.shutdown_timeout)
                    .await
            }
            (Run::Running { .. }, false) => Err(SupervisorError::NoSuchChild(format!(
                "{}/{}",
                child.path,
                rest.join("/")
            ))),
            _ => Err(unavailable()),
        }
    }

    async fn tree(&self) -> TreeNode {
        let mut children = Vec::with_capacity(self.children.len());
        for child in &self.children {
            let mut node = TreeNode {
                kind: child.spec.kind.to_string(),
                name: child.spec.name.clone(),
                path: child.path.to_string(),
                status: child.status(),
                restarts: child.metrics.restarts(),
                detail: child.spec.detail.as_ref().map(|read| read()),
                children: Vec::new(),
            };
            if let Run::Running {
                supervisor: Some(sup),
                ..
            } = &child.run
                && let Ok(sub) = sup.tree(self.shutdown_timeout).await
            {
                node.children = sub.children;
            }
            children.push(node);
        }
        TreeNode {
            kind: KIND.to_string(),
            name: self.path.name().to_string(),
            path: self.path.to_string(),
            status: ChildStatus::Running,
            restarts: self.metrics.restarts(),
            detail: None,
            children,
        }
    }
}
