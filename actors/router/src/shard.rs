//! The shard actor: owns the tools mapped to it, validates, enforces deadlines, executes.
//!
//! # Why a shard admits calls rather than running them in its handler
//!
//! A kit actor answers from `handle` and handles one message at a time, so a shard that
//! awaited each tool would run one call at a time: one slow tool would stall every tool of
//! the shard. Instead a call is *admitted* in the handler (look the tool up, validate the
//! arguments, take an in-flight permit) and then *runs* in a task of its own under the
//! call's deadline; the task answers on a result port the caller holds. So a shard runs
//! any number of calls at once (up to its in-flight limit), its per-actor metrics still
//! count every call and time the admission work it does (lookup and validation), its
//! mailbox depth shows callers waiting for admission, and a refusal (unknown tool, bad
//! arguments, overload) is the shard's answer to the call message itself.
//!
//! A tool that panics is caught in its task: the call gets a failed result and the shard
//! never sees the panic. A caller that gives up (its future dropped) closes the port,
//! which cancels the tool.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use neuroflow_kit::actor::{Actor, ActorError, Ctx};
use neuroflow_kit::protocol::router::{ToolCallRequest, ToolError, ToolOutput};
use neuroflow_kit::recipient::BoxFuture;
use neuroflow_kit::sampling;
use neuroflow_kit::span_value::int;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::{OwnedSemaphorePermit, oneshot};
use tokio::time::Instant;

use crate::config::RouterConfig;
use crate::metrics::Outcome;
use crate::registry::{Entry, ShardSlot};
use crate::tool::ToolCtx;

/// Where a call's result goes.
pub(crate) type ResultPort = oneshot::Sender<PortMsg>;

/// What comes back on a result port.
#[derive(Debug)]
pub(crate) enum PortMsg {
    Done(Result<ToolOutput, ToolError>),
    /// The shard does not hold the tool: the request comes back unspent, so a caller that
    /// raced with a rebalance can send it to the tool's new shard without having cloned it.
    NotHere(ToolCallRequest),
}

/// A call for a shard to admit. Local to the process: the result port is not serialized
/// (a shard message never leaves the node; remote callers go through the router).
#[derive(Debug, Serialize, Deserialize)]
pub struct ShardCall {
    request: ToolCallRequest,
    #[serde(skip)]
    port: Option<ResultPort>,
}

impl ShardCall {
    pub(crate) fn new(request: ToolCallRequest, port: ResultPort) -> Self {
        Self {
            request,
            port: Some(port),
        }
    }
}

/// A router shard (kind `tools.shard`).
pub struct RouterShard;

/// What a shard starts with: its slot (registry, in-flight permits) and the router's
/// settings, both shared with the router so they survive restarts.
pub struct ShardArgs {
    pub(crate) slot: Arc<ShardSlot>,
    pub(crate) config: Arc<RouterConfig>,
}

impl Actor for RouterShard {
    const KIND: &'static str = "tools.shard";
    type Msg = ShardCall;
    /// `Ok` once the call is running (its result comes on the port), or why it will not run.
    type Reply = Result<(), ToolError>;
    type State = ShardArgs;
    type Args = ShardArgs;

    async fn started(&self, _: &Ctx<Self>, args: ShardArgs) -> Result<ShardArgs, ActorError> {
        Ok(args)
    }

    async fn handle(
        &self,
        _: &Ctx<Self>,
        call: ShardCall,
        state: &mut ShardArgs,
    ) -> Result<Result<(), ToolError>, ActorError> {
        Ok(admit(state, call))
    }
}

fn admit(state: &ShardArgs, call: ShardCall) -> Result<(), ToolError> {
    let ShardCall { request, port } = call;
    let Some(port) = port else {
        return Err(ToolError::Unavailable {
            tool: request.name,
            reason: "a shard call arrived without a result port".into(),
        });
    };
    let Some(entry) = state.slot.get(&request.name) else {
        let err = ToolError::UnknownTool(request.name.clone());
        let _ = port.send(PortMsg::NotHere(request));
        return Err(err);
    };
    let ToolCallRequest {
        name,
        arguments,
        timeout_ms,
        caller,
    } = request;
    // Models often send `null` for a tool without parameters.
    let arguments = match arguments {
        Value::Null => Value::Object(Default::default()),
        other => other,
    };
    if let Err(err) = entry.schema.check(&name, &arguments) {
        entry.counters.count(Outcome::InvalidArguments);
        return Err(err);
    }
    let Ok(permit) = state.slot.in_flight.clone().try_acquire_owned() else {
        entry.counters.count(Outcome::Unavailable);
        return Err(ToolError::Unavailable {
            tool: name,
            reason: "too many calls in flight on its shard".into(),
        });
    };
    let timeout = state.config.timeout_for(timeout_ms);
    // OpenTelemetry GenAI conventions for a tool execution span.
    let traced = sampling::open(None, || {
        tracing::info_span!(
            "tool.execute",
            otel.name = %format_args!("execute_tool {name}"),
            gen_ai.operation.name = "execute_tool",
            gen_ai.tool.name = name.as_str(),
            neuroflow.tool.shard = int(state.slot.index),
        )
    });
    // Read here, in the handler: the spawned task no longer sees the envelope's context.
    let ctx = ToolCtx {
        caller,
        deadline: Instant::now() + timeout,
        trace: traced.trace(),
    };
    tokio::spawn(traced.run(run(entry, arguments, ctx, timeout, port, permit)));
    Ok(())
}

/// Runs one admitted call to its end: result, failure, panic, deadline or cancellation.
async fn run(
    entry: Arc<Entry>,
    args: Value,
    ctx: ToolCtx,
    timeout: Duration,
    mut port: ResultPort,
    _permit: OwnedSemaphorePermit,
) {
    let started = Instant::now();
    let deadline = ctx.deadline;
    let exec = CatchUnwind::new(|| entry.exec.call(args, ctx));
    let ran = tokio::select! {
        ran = tokio::time::timeout_at(deadline, exec) => ran,
        () = port.closed() => {
            entry.counters.finished(Outcome::Cancelled, started.elapsed().as_secs_f64());
            return;
        }
    };
    let name = &entry.spec.name;
    let (outcome, result) = match ran {
        Ok(Ok(output)) if output.is_error => (Outcome::Error, Ok(output)),
        Ok(Ok(output)) => (Outcome::Ok, Ok(output)),
        Ok(Err(panic)) => {
            tracing::error!(tool = %name, %panic, "tool panicked");
            let output = ToolOutput::error(format!("tool {name} failed: it panicked ({panic})"));
            (Outcome::Panicked, Ok(output))
        }
        Err(_) => {
            let err = ToolError::Timeout {
                tool: name.clone(),
                timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
            };
            (Outcome::Timeout, Err(err))
        }
    };
    entry
        .counters
        .finished(outcome, started.elapsed().as_secs_f64());
    let _ = port.send(PortMsg::Done(result));
}

/// A tool's future with panics turned into `Err(message)`, whether the panic happens
/// while the future is made or while it is polled.
struct CatchUnwind<'a, T> {
    inner: Result<BoxFuture<'a, T>, Option<String>>,
}

impl<'a, T> CatchUnwind<'a, T> {
    fn new(make: impl FnOnce() -> BoxFuture<'a, T>) -> Self {
        let inner = catch_unwind(AssertUnwindSafe(make)).map_err(|p| Some(panic_message(&*p)));
        Self { inner }
    }
}

impl<T> Future for CatchUnwind<'_, T> {
    type Output = Result<T, String>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let fut = match &mut self.inner {
            Ok(fut) => fut,
            Err(message) => return Poll::Ready(Err(message.take().unwrap_or_default())),
        };
        // The future is dropped right after a panic and never polled again, so whatever
        // state the panic left it in is never observed.
        match catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
            Ok(poll) => poll.map(Ok),
            Err(payload) => {
                let message = panic_message(&*payload);
                self.inner = Err(None);
                Poll::Ready(Err(message))
            }
        }
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    let text = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("no message");
    text.chars().take(300).collect()
}
