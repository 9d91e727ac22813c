//! Trace and deadline propagation between actors.
//!
//! Sending captures the caller's context into the envelope ([`current_trace`]); handling
//! opens a span whose parent is the envelope's context ([`handling_span`]). With the
//! `tracing-opentelemetry` layer installed, the spans of one request therefore form one
//! trace across actors. Without it, the kit still carries the incoming trace context and
//! deadline through each handler (a task-local [`Handling`] scope), so a node that records
//! nothing itself still hands a caller's trace on unbroken.

use std::time::Duration;

use opentelemetry::trace::{SpanContext, TraceContextExt};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::envelope::{ActorPath, Envelope, Timestamp};
use crate::trace_context::TraceContext;

/// What the kit knows about the message an actor is handling right now.
#[derive(Clone, Debug)]
pub struct Handling {
    pub actor: ActorPath,
    pub trace: Option<TraceContext>,
    pub deadline: Option<Timestamp>,
}

tokio::task_local! {
    static HANDLING: Handling;
}

/// Runs `fut` with `handling` as the current handling scope.
pub(crate) async fn scope<F: Future>(handling: Handling, fut: F) -> F::Output {
    HANDLING.scope(handling, fut).await
}

/// The trace context a message sent from here should carry: the current tracing span's
/// OpenTelemetry context when there is one, else the context of the envelope being handled.
pub fn current_trace() -> Option<TraceContext> {
    if !tracing::dispatcher::has_been_set() {
        // No subscriber, so no span carries an OpenTelemetry context.
        return HANDLING.try_with(|h| h.trace.clone()).ok().flatten();
    }
    let cx = tracing::Span::current().context();
    let span = cx.span();
    let sc = span.span_context();
    if sc.is_valid() {
        return TraceContext::from_span_context(sc);
    }
    HANDLING.try_with(|h| h.trace.clone()).ok().flatten()
}

/// The actor whose handler is running, if any: the sender of messages sent from here.
pub fn current_sender() -> Option<ActorPath> {
    HANDLING.try_with(|h| h.actor.clone()).ok()
}

/// Time left before the deadline of the message being handled, if it has one. Calls made
/// while handling never wait past it.
pub fn inherited_budget() -> Option<Duration> {
    HANDLING
        .try_with(|h| h.deadline.map(Timestamp::remaining))
        .ok()
        .flatten()
}

/// The span under which an actor handles `envelope`, parented on the envelope's context.
pub fn handling_span<M>(
    kind: &'static str,
    actor: &ActorPath,
    envelope: &Envelope<M>,
) -> tracing::Span {
    // With no subscriber anywhere in the process nobody can record the span: skip building
    // it (about 50 ns a message, measured by the paired call bench).
    if !tracing::dispatcher::has_been_set() {
        return tracing::Span::none();
    }
    let span = tracing::info_span!(
        "actor.handle",
        otel.name = %format_args!("process {kind}"),
        otel.kind = "consumer",
        neuroflow.actor.kind = kind,
        neuroflow.actor.path = %actor,
        messaging.message.id = %envelope.id,
    );
    if let Some(trace) = &envelope.trace
        && !span.is_disabled()
    {
        let parent =
            opentelemetry::Context::new().with_remote_span_context(SpanContext::from(trace));
        // Fails only when no OpenTelemetry layer is installed; the task-local scope still
        // carries the context onward in that case.
        let _ = span.set_parent(parent);
    }
    span
}
