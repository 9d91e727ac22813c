//! A tool: what the model sees ([`ToolSpec`]) and what runs ([`ToolExec`]).
//!
//! Executors are Rust values (closures, clients, handles), so they are registered through
//! the local [`crate::Tools`] handle, never sent as messages; only specs, calls and results
//! travel in [`neuroflow_kit::protocol::router`] messages.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use neuroflow_kit::protocol::router::{ToolOutput, ToolSpec};
use neuroflow_kit::recipient::BoxFuture;
use neuroflow_kit::trace_context::TraceContext;
use serde_json::Value;
use tokio::time::Instant;

/// What a running tool knows about its call.
#[derive(Debug, Clone)]
pub struct ToolCtx {
    /// The agent on whose behalf the call is made, if any.
    pub caller: Option<String>,
    /// When the router gives up on the call; a tool that waits on something should give
    /// up a little earlier and say why.
    pub deadline: Instant,
    /// The trace the call belongs to, for tools that pass it on (an MCP server gets it as
    /// `traceparent` in the request's `_meta`).
    pub trace: Option<TraceContext>,
}

impl ToolCtx {
    /// A context whose deadline is `timeout` from now.
    pub fn with_timeout(caller: Option<&str>, timeout: Duration) -> Self {
        Self {
            caller: caller.map(str::to_string),
            deadline: Instant::now() + timeout,
            trace: None,
        }
    }

    pub fn caller(&self) -> Option<&str> {
        self.caller.as_deref()
    }

    /// Time left before the deadline (zero once it has passed).
    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }
}

/// Runs one tool. The future may borrow the executor: the router keeps it alive for the
/// whole call, even if the tool is unregistered meanwhile.
pub trait ToolExec: Send + Sync + 'static {
    fn call(&self, args: Value, ctx: ToolCtx) -> BoxFuture<'_, ToolOutput>;
}

/// A tool ready to register: its spec and its executor.
#[derive(Clone)]
pub struct Tool {
    pub spec: ToolSpec,
    pub exec: Arc<dyn ToolExec>,
}

impl Tool {
    pub fn new(spec: ToolSpec, exec: impl ToolExec) -> Self {
        Self {
            spec,
            exec: Arc::new(exec),
        }
    }

    pub fn name(&self) -> &str {
        &self.spec.name
    }
}

impl fmt::Debug for Tool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tool").field("spec", &self.spec).finish()
    }
}

/// A [`ToolSpec`] in one line, provided `local`ly (in-process).
pub fn spec(name: &str, description: &str, parameters: Value) -> ToolSpec {
    ToolSpec {
        name: name.to_string(),
        description: description.to_string(),
        parameters,
        provider: "local".into(),
    }
}

/// A tool from an async closure or function:
///
/// ```
/// use neuroflow_router::{spec, tool_fn};
/// use serde_json::json;
///
/// let add = tool_fn(
///     spec("math.add", "Adds two numbers.", json!({
///         "type": "object",
///         "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
///         "required": ["a", "b"]
///     })),
///     |args, _ctx| async move {
///         // The router validated `args` against the schema before calling.
///         let sum = args["a"].as_f64().unwrap_or(0.0) + args["b"].as_f64().unwrap_or(0.0);
///         json!({ "sum": sum })
///     },
/// );
/// assert_eq!(add.name(), "math.add");
/// ```
pub fn tool_fn<F, Fut, O>(spec: ToolSpec, f: F) -> Tool
where
    F: Fn(Value, ToolCtx) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = O> + Send + 'static,
    O: IntoToolOutput,
{
    Tool::new(spec, FnExec(f))
}

struct FnExec<F>(F);

impl<F, Fut, O> ToolExec for FnExec<F>
where
    F: Fn(Value, ToolCtx) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = O> + Send + 'static,
    O: IntoToolOutput,
{
    fn call(&self, args: Value, ctx: ToolCtx) -> BoxFuture<'_, ToolOutput> {
        let fut = (self.0)(args, ctx);
        Box::pin(async move { fut.await.into_tool_output() })
    }
}

/// What a tool function may return.
pub trait IntoToolOutput {
    fn into_tool_output(self) -> ToolOutput;
}

impl IntoToolOutput for ToolOutput {
    fn into_tool_output(self) -> ToolOutput {
        self
    }
}

impl IntoToolOutput for String {
    fn into_tool_output(self) -> ToolOutput {
        ToolOutput::ok(self)
    }
}

impl IntoToolOutput for &'static str {
    fn into_tool_output(self) -> ToolOutput {
        ToolOutput::ok(self)
    }
}

/// A JSON document, as its text.
impl IntoToolOutput for Value {
    fn into_tool_output(self) -> ToolOutput {
        ToolOutput::ok(self.to_string())
    }
}

/// `Err` becomes a failed result the model sees (`is_error`), with the error's text.
impl<T: IntoToolOutput, E: fmt::Display> IntoToolOutput for Result<T, E> {
    fn into_tool_output(self) -> ToolOutput {
        match self {
            Ok(value) => value.into_tool_output(),
            Err(err) => ToolOutput::error(err.to_string()),
        }
    }
}
