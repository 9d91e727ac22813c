//! The kit's actor trait and the adapter that hosts it on ractor.
//!
//! An [`Actor`] states its message, reply, state and arguments, and writes `handle`. The kit
//! wraps it in a ractor actor that, for every message: drops it (and counts it) if its
//! deadline has passed, opens a span parented on the envelope's trace context, times the
//! handler, records the per-actor metrics, and answers the caller. Because that work lives in
//! one adapter, no actor can forget it.
//!
//! Messages and replies are `Serialize + DeserializeOwned`: the same types cross peer links,
//! the sandbox pipe and journals without a second definition.
//!
//! ```
//! use neuroflow_kit::actor::{Actor, ActorError, Ctx};
//!
//! struct Counter;
//!
//! impl Actor for Counter {
//!     const KIND: &'static str = "counter";
//!     type Msg = u64;
//!     type Reply = u64;
//!     type State = u64;
//!     type Args = u64;
//!
//!     async fn started(&self, _: &Ctx<Self>, start: u64) -> Result<u64, ActorError> {
//!         Ok(start)
//!     }
//!
//!     async fn handle(&self, _: &Ctx<Self>, add: u64, total: &mut u64) -> Result<u64, ActorError> {
//!         *total += add;
//!         Ok(*total)
//!     }
//! }
//! ```

use std::sync::{Arc, RwLock};
use std::time::Duration;

use ractor::{ActorCell, ActorProcessingErr, ActorRef};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::oneshot;
use tracing::Instrument;

use crate::envelope::{ActorPath, Envelope};
use crate::metrics::{ActorMetrics, QueuedToken};
use crate::propagation::{self, Handling};

/// Why an actor's lifecycle hook or handler failed. The actor then fails and its supervisor
/// decides what happens next.
pub type ActorError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A NeuroFlow actor.
pub trait Actor: Send + Sync + Sized + 'static {
    /// Label for metrics, spans and the supervision tree (e.g. `"agent"`, `"sandbox"`).
    const KIND: &'static str;
    type Msg: Serialize + DeserializeOwned + Send + 'static;
    type Reply: Serialize + DeserializeOwned + Send + 'static;
    type State: Send + 'static;
    type Args: Send + 'static;

    /// Builds the state; runs at every (re)start.
    fn started(
        &self,
        ctx: &Ctx<Self>,
        args: Self::Args,
    ) -> impl Future<Output = Result<Self::State, ActorError>> + Send;

    /// Handles one message. An `Err` fails the actor (the caller gets the error too).
    fn handle(
        &self,
        ctx: &Ctx<Self>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> impl Future<Output = Result<Self::Reply, ActorError>> + Send;

    /// Runs when the actor is stopped normally. After a failure the state is simply
    /// dropped, so resources that must always be released belong in `Drop`.
    fn stopped(&self, ctx: &Ctx<Self>, state: &mut Self::State) -> impl Future<Output = ()> + Send {
        let _ = (ctx, state);
        async {}
    }
}

/// What a caller gets instead of a reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum CallError {
    #[error("actor {actor} is unavailable ({reason})")]
    Unavailable { actor: String, reason: String },
    #[error("actor {actor} stopped before replying")]
    Stopped { actor: String },
    #[error("actor {actor} failed while handling the message: {reason}")]
    Failed { actor: String, reason: String },
    #[error("actor {actor} did not reply within {timeout_ms} ms")]
    Timeout { actor: String, timeout_ms: u64 },
    #[error("message to {actor} expired before it was handled")]
    Expired { actor: String },
}

type ReplyTx<A> = oneshot::Sender<Result<<A as Actor>::Reply, CallError>>;

/// The ractor-level message of a hosted actor.
pub struct Mail<A: Actor> {
    kind: MailKind<A>,
    _queued: QueuedToken,
}

enum MailKind<A: Actor> {
    Deliver {
        envelope: Envelope<A::Msg>,
        reply: Option<ReplyTx<A>>,
    },
    /// Fault injection: the actor fails with this reason (tests, chaos drills).
    Fail(String),
}

/// Per-incarnation context handed to an actor's hooks.
pub struct Ctx<A: Actor> {
    path: ActorPath,
    myself: ActorRef<Mail<A>>,
    metrics: ActorMetrics,
}

impl<A: Actor> Ctx<A> {
    pub fn path(&self) -> &ActorPath {
        &self.path
    }

    pub fn metrics(&self) -> &ActorMetrics {
        &self.metrics
    }

    /// Stops this actor normally once the current message is handled.
    pub fn stop(&self, reason: &str) {
        self.myself.stop(Some(reason.to_string()));
    }

    /// A handle to this very incarnation, e.g. to give to a task it spawns.
    pub fn handle(&self) -> ActorHandle<A> {
        let handle = ActorHandle::new(self.path.name());
        handle.attach(self.path.clone(), self.myself.clone(), self.metrics.clone());
        handle
    }
}

/// The ractor actor that hosts a kit [`Actor`].
pub(crate) struct Hosted<A: Actor> {
    actor: A,
}

pub(crate) struct HostedArgs<A: Actor> {
    pub path: ActorPath,
    pub metrics: ActorMetrics,
    pub args: A::Args,
}

pub(crate) struct HostedState<A: Actor> {
    ctx: Ctx<A>,
    inner: A::State,
}

impl<A: Actor> ractor::Actor for Hosted<A> {
    type Msg = Mail<A>;
    type State = HostedState<A>;
    type Arguments = HostedArgs<A>;

    async fn pre_start(
        &self,
        myself: ActorRef<Mail<A>>,
        args: HostedArgs<A>,
    ) -> Result<HostedState<A>, ActorProcessingErr> {
        let ctx = Ctx {
            path: args.path,
            myself,
            metrics: args.metrics,
        };
        let inner = self.actor.started(&ctx, args.args).await?;
        Ok(HostedState { ctx, inner })
    }

    async fn post_stop(
        &self,
        _: ActorRef<Mail<A>>,
        state: &mut HostedState<A>,
    ) -> Result<(), ActorProcessingErr> {
        self.actor.stopped(&state.ctx, &mut state.inner).await;
        Ok(())
    }

    async fn handle(
        &self,
        _: ActorRef<Mail<A>>,
        mail: Mail<A>,
        state: &mut HostedState<A>,
    ) -> Result<(), ActorProcessingErr> {
        let Some(Prepared {
            payload,
            reply,
            span,
            handling,
        }) = prepare(&state.ctx, mail)?
        else {
            return Ok(());
        };
        // quanta reads the TSC: two std clock reads cost ~50 ns a message on this kind of
        // machine, a fifth of the kit's whole per-message cost.
        let started = quanta::Instant::now();
        let result = propagation::scope(
            handling,
            self.actor
                .handle(&state.ctx, payload, &mut state.inner)
                .instrument(span),
        )
        .await;
        let ctx = &state.ctx;
        ctx.metrics.record_handled(started.elapsed().as_secs_f64());
        match result {
            Ok(value) => {
                if let Some(tx) = reply {
                    let _ = tx.send(Ok(value));
                }
                Ok(())
            }
            Err(err) => {
                if let Some(tx) = reply {
                    let _ = tx.send(Err(CallError::Failed {
                        actor: ctx.path.to_string(),
                        reason: err.to_string(),
                    }));
                }
                Err(err)
            }
        }
    }
}

/// A delivery ready to be handled: what the handler future needs and nothing more (the
/// future is moved on every message, so its size is paid per message).
struct Prepared<A: Actor> {
    payload: A::Msg,
    reply: Option<ReplyTx<A>>,
    span: tracing::Span,
    handling: Handling,
}

/// Unpacks a mail: `Err` for an injected fault, `None` for a message whose deadline has
/// passed (counted, and its caller told).
fn prepare<A: Actor>(
    ctx: &Ctx<A>,
    mail: Mail<A>,
) -> Result<Option<Prepared<A>>, ActorProcessingErr> {
    let Mail { kind, _queued } = mail;
    drop(_queued);
    let (envelope, reply) = match kind {
        MailKind::Fail(reason) => return Err(reason.into()),
        MailKind::Deliver { envelope, reply } => (envelope, reply),
    };
    // A caller waiting on a reply gives up exactly at the deadline, so a closed reply
    // channel is the deadline having passed, known without reading the clock. Without a
    // reply channel (tells, envelopes from other nodes) the wall clock decides.
    let expired = match &reply {
        Some(tx) => tx.is_closed(),
        None => envelope.is_expired(),
    };
    if expired {
        ctx.metrics.record_expired();
        if let Some(tx) = reply {
            let _ = tx.send(Err(CallError::Expired {
                actor: ctx.path.to_string(),
            }));
        }
        return Ok(None);
    }
    let span = propagation::handling_span(A::KIND, &ctx.path, &envelope);
    let handling = Handling {
        actor: ctx.path.clone(),
        trace: envelope.trace,
        deadline: envelope.deadline,
    };
    Ok(Some(Prepared {
        payload: envelope.payload,
        reply,
        span,
        handling,
    }))
}

impl<A: Actor> Hosted<A> {
    pub(crate) async fn spawn(
        actor: A,
        args: HostedArgs<A>,
        parent: ActorCell,
    ) -> Result<ActorRef<Mail<A>>, ActorError> {
        let (actor_ref, _join) = ractor::Actor::spawn_linked(None, Hosted { actor }, args, parent)
            .await
            .map_err(|e| -> ActorError { e.to_string().into() })?;
        Ok(actor_ref)
    }
}

/// A stable address of a supervised actor.
///
/// The handle outlives incarnations: when the supervisor restarts the actor, the handle
/// points at the replacement. While the actor is down, calls fail at once with
/// [`CallError::Unavailable`] instead of waiting.
pub struct ActorHandle<A: Actor> {
    inner: Arc<HandleInner<A>>,
}

impl<A: Actor> Clone for ActorHandle<A> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

struct HandleInner<A: Actor> {
    name: String,
    slot: RwLock<Slot<A>>,
}

impl<A: Actor> HandleInner<A> {
    // A panic while holding the lock cannot leave the slot half-written (each write is a
    // plain assignment), so a poisoned lock is still safe to use.
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Slot<A>> {
        self.slot.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Slot<A>> {
        self.slot.write().unwrap_or_else(|p| p.into_inner())
    }
}

struct Slot<A: Actor> {
    path: Option<ActorPath>,
    /// The live incarnation and its metrics; `None` while the actor is down.
    current: Option<(ActorRef<Mail<A>>, ActorMetrics)>,
    metrics: Option<ActorMetrics>,
    down_reason: &'static str,
}

impl<A: Actor> ActorHandle<A> {
    pub(crate) fn new(name: &str) -> Self {
        Self {
            inner: Arc::new(HandleInner {
                name: name.to_string(),
                slot: RwLock::new(Slot {
                    path: None,
                    current: None,
                    metrics: None,
                    down_reason: "not started",
                }),
            }),
        }
    }

    pub(crate) fn attach(&self, path: ActorPath, actor: ActorRef<Mail<A>>, metrics: ActorMetrics) {
        let mut slot = self.inner.write();
        slot.path = Some(path);
        slot.metrics = Some(metrics.clone());
        slot.current = Some((actor, metrics));
    }

    pub(crate) fn detach(&self, reason: &'static str) {
        let mut slot = self.inner.write();
        slot.current = None;
        slot.down_reason = reason;
    }

    /// The actor's path once it has been started, else its name.
    pub fn path(&self) -> String {
        self.path_of(&self.inner.read())
    }

    /// Metrics of this actor (shared by all its incarnations), once it has been started.
    pub fn metrics(&self) -> Option<ActorMetrics> {
        let slot = self.inner.read();
        slot.metrics.clone()
    }

    /// Whether an incarnation is running (not stopped, not between restarts).
    pub fn is_up(&self) -> bool {
        let slot = self.inner.read();
        slot.current.is_some()
    }

    fn path_of(&self, slot: &Slot<A>) -> String {
        slot.path
            .as_ref()
            .map_or_else(|| self.inner.name.clone(), ToString::to_string)
    }

    /// Posts to the live incarnation. The send happens under the read lock, so the hot path
    /// clones no handle: a restart waits for at most one `send_message`.
    fn post(&self, kind: MailKind<A>) -> Result<(), CallError> {
        let slot = self.inner.read();
        let Some((actor, metrics)) = &slot.current else {
            return Err(CallError::Unavailable {
                actor: self.path_of(&slot),
                reason: slot.down_reason.to_string(),
            });
        };
        let mail = Mail {
            kind,
            _queued: metrics.enqueue(),
        };
        actor
            .send_message(mail)
            .map_err(|_| CallError::Unavailable {
                actor: self.path_of(&slot),
                reason: "stopping".to_string(),
            })
    }

    /// Sends `msg` without waiting for a reply.
    pub fn tell(&self, msg: A::Msg) -> Result<(), CallError> {
        self.tell_envelope(Envelope::new(msg))
    }

    /// Sends a prepared envelope (e.g. one that arrived from another node) without waiting.
    pub fn tell_envelope(&self, envelope: Envelope<A::Msg>) -> Result<(), CallError> {
        self.post(MailKind::Deliver {
            envelope,
            reply: None,
        })
    }

    /// Sends `msg` and waits for the reply for at most `timeout` (less if the message being
    /// handled by the caller has a nearer deadline).
    pub async fn call(&self, msg: A::Msg, timeout: Duration) -> Result<A::Reply, CallError> {
        let timeout = propagation::inherited_budget().map_or(timeout, |left| left.min(timeout));
        self.request(Envelope::new(msg).with_timeout(timeout), timeout)
            .await
    }

    /// Sends a prepared envelope (e.g. one that arrived from another node) and waits for the
    /// reply for at most `timeout`, or less if the envelope's own deadline is nearer; an
    /// envelope already past its deadline is not sent at all.
    pub async fn call_envelope(
        &self,
        envelope: Envelope<A::Msg>,
        timeout: Duration,
    ) -> Result<A::Reply, CallError> {
        let timeout = envelope
            .deadline
            .map_or(timeout, |d| d.remaining().min(timeout));
        if timeout.is_zero() {
            return Err(CallError::Expired { actor: self.path() });
        }
        self.request(envelope, timeout).await
    }

    async fn request(
        &self,
        envelope: Envelope<A::Msg>,
        timeout: Duration,
    ) -> Result<A::Reply, CallError> {
        let (tx, rx) = oneshot::channel();
        self.post(MailKind::Deliver {
            envelope,
            reply: Some(tx),
        })?;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(_)) => Err(CallError::Stopped { actor: self.path() }),
            Err(_) => Err(CallError::Timeout {
                actor: self.path(),
                timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
            }),
        }
    }

    /// Makes the current incarnation fail with `reason`, as a crash would. For fault
    /// injection in tests and drills; the supervisor restarts the actor per its spec.
    pub fn inject_failure(&self, reason: &str) -> Result<(), CallError> {
        self.post(MailKind::Fail(reason.to_string()))
    }
}
