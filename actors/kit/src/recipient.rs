//! Addressing an actor by the protocol it speaks rather than by its type.
//!
//! An [`ActorHandle<A>`] names the actor type `A`, which lives in the crate that implements
//! it. Actor crates must not link each other (an agent calls tools without linking the
//! router, a tool runs code without linking the sandbox), so they hold a
//! [`Recipient<M, R>`] instead: any actor whose messages are `M` and replies are `R`, with
//! the same call semantics (deadlines, fail-fast while down).
//!
//! ```
//! use neuroflow_kit::actor::Actor;
//! use neuroflow_kit::recipient::Recipient;
//! # use neuroflow_kit::actor::{ActorError, Ctx};
//! # struct Echo;
//! # impl Actor for Echo {
//! #     const KIND: &'static str = "echo";
//! #     type Msg = String; type Reply = String; type State = (); type Args = ();
//! #     async fn started(&self, _: &Ctx<Self>, (): ()) -> Result<(), ActorError> { Ok(()) }
//! #     async fn handle(&self, _: &Ctx<Self>, m: String, _: &mut ()) -> Result<String, ActorError> { Ok(m) }
//! # }
//! fn wants_a_string_service(echo: Recipient<String, String>) { let _ = echo; }
//! # fn demo(handle: neuroflow_kit::ActorHandle<Echo>) {
//! wants_a_string_service(handle.recipient());
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::actor::{Actor, ActorHandle, CallError};

/// A boxed, sendable future (the standard library has no alias for it).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Any actor that takes `M` and answers `R`.
pub struct Recipient<M, R> {
    inner: Arc<dyn Deliver<M, R>>,
}

impl<M, R> Clone for Recipient<M, R> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<M, R> fmt::Debug for Recipient<M, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Recipient")
            .field(&self.inner.path())
            .finish()
    }
}

impl<M: Send + 'static, R: Send + 'static> Recipient<M, R> {
    /// Like [`ActorHandle::call`].
    pub async fn call(&self, msg: M, timeout: Duration) -> Result<R, CallError> {
        self.inner.call(msg, timeout).await
    }

    /// Like [`ActorHandle::tell`].
    pub fn tell(&self, msg: M) -> Result<(), CallError> {
        self.inner.tell(msg)
    }

    /// The actor's path (or name, before it has started).
    pub fn path(&self) -> String {
        self.inner.path()
    }
}

impl<M: Send + 'static, R: Send + 'static> Recipient<M, R> {
    /// A recipient served by an async function instead of a mailbox: for a service whose
    /// requests must not wait for each other (each call runs on its own), and for test
    /// doubles. `name` stands in for an actor path. The call's timeout still applies.
    pub fn from_fn<F>(name: &str, serve: F) -> Self
    where
        F: Fn(M) -> BoxFuture<'static, Result<R, CallError>> + Send + Sync + 'static,
    {
        Self {
            inner: Arc::new(FnDeliver {
                name: name.to_string(),
                serve,
            }),
        }
    }
}

struct FnDeliver<F> {
    name: String,
    serve: F,
}

impl<M, R, F> Deliver<M, R> for FnDeliver<F>
where
    M: Send + 'static,
    R: Send + 'static,
    F: Fn(M) -> BoxFuture<'static, Result<R, CallError>> + Send + Sync + 'static,
{
    fn call(&self, msg: M, timeout: Duration) -> BoxFuture<'_, Result<R, CallError>> {
        let served = (self.serve)(msg);
        Box::pin(async move {
            match tokio::time::timeout(timeout, served).await {
                Ok(result) => result,
                Err(_) => Err(CallError::Timeout {
                    actor: self.name.clone(),
                    timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
                }),
            }
        })
    }

    fn tell(&self, msg: M) -> Result<(), CallError> {
        let runtime =
            tokio::runtime::Handle::try_current().map_err(|_| CallError::Unavailable {
                actor: self.name.clone(),
                reason: "no async runtime to run it on".into(),
            })?;
        let served = (self.serve)(msg);
        // Served where it was told: in the sender's trace.
        runtime.spawn(crate::propagation::in_current_scope(async move {
            // A tell has nobody to give the answer (or the error) to.
            let _ = served.await;
        }));
        Ok(())
    }

    fn path(&self) -> String {
        self.name.clone()
    }
}

trait Deliver<M, R>: Send + Sync {
    fn call(&self, msg: M, timeout: Duration) -> BoxFuture<'_, Result<R, CallError>>;
    fn tell(&self, msg: M) -> Result<(), CallError>;
    fn path(&self) -> String;
}

impl<A: Actor> Deliver<A::Msg, A::Reply> for ActorHandle<A> {
    fn call(&self, msg: A::Msg, timeout: Duration) -> BoxFuture<'_, Result<A::Reply, CallError>> {
        Box::pin(ActorHandle::call(self, msg, timeout))
    }

    fn tell(&self, msg: A::Msg) -> Result<(), CallError> {
        ActorHandle::tell(self, msg)
    }

    fn path(&self) -> String {
        ActorHandle::path(self)
    }
}

impl<A: Actor> ActorHandle<A> {
    /// This handle as a [`Recipient`] of the actor's protocol.
    pub fn recipient(&self) -> Recipient<A::Msg, A::Reply> {
        Recipient {
            inner: Arc::new(self.clone()),
        }
    }
}
