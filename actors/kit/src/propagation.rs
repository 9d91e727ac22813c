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
    /// Boxed, as in the envelope: the scope is moved with every handler future.
    pub trace: Option<Box<TraceContext>>,
    pub deadline: Option<Timestamp>,
}

tokio::task_local! {
    static HANDLING: Handling;
}

/// Runs `fut` with `handling` as the current handling scope.
pub(crate) async fn scope<F: Future>(handling: Handling, fut: F) -> F::Output {
    HANDLING.scope(handling, fut).await
}

/// Runs `fut` as a continuation of `trace`, a trace context that arrived from outside the
/// actor system (a `traceparent` in an HTTP header, or in the `_meta` of an MCP request).
///
/// Inside, messages sent and router calls made carry `trace`, exactly as they would from
/// the handler of an envelope that carried it. `span` should be a new span not yet
/// entered (the face's server span; `tracing::Span::none()` for none): it is made a child
/// of `trace` and entered around `fut`, so with an OpenTelemetry layer installed the spans
/// opened inside join the caller's trace as well. The deadline of the scope this is called
/// from, if any, still bounds the calls made inside; the sender of their envelopes is the
/// enclosing actor, or `external` outside any handler.
pub async fn with_trace<F: Future>(trace: TraceContext, span: tracing::Span, fut: F) -> F::Output {
    use tracing::Instrument;
    if !span.is_disabled() {
        let parent =
            opentelemetry::Context::new().with_remote_span_context(SpanContext::from(&trace));
        // Fails only without an OpenTelemetry layer; the scope below still carries the trace.
        let _ = span.set_parent(parent);
    }
    let (actor, deadline) = HANDLING
        .try_with(|h| (h.actor.clone(), h.deadline))
        .unwrap_or_else(|_| (ActorPath::root(EXTERNAL), None));
    let handling = Handling {
        actor,
        trace: Some(Box::new(trace)),
        deadline,
    };
    HANDLING.scope(handling, fut.instrument(span)).await
}

/// `fut`, about to be spawned, made to continue where it was made: in the current span,
/// and in the current handling scope (the trace context, which is all that says so when
/// the trace is not sampled and no span records it; the actor; the deadline).
pub fn in_current_scope<F: Future>(fut: F) -> impl Future<Output = F::Output> {
    use tracing::Instrument;
    let span = tracing::Span::current();
    let handling = HANDLING.try_with(Handling::clone).ok();
    async move {
        match handling {
            Some(handling) => HANDLING.scope(handling, fut.instrument(span)).await,
            None => fut.instrument(span).await,
        }
    }
}

/// Sender path of envelopes sent under [`with_trace`] from outside any actor.
const EXTERNAL: &str = "external";

/// The trace context a message sent from here should carry: the current tracing span's
/// OpenTelemetry context when there is one, else the context of the envelope being handled.
pub fn current_trace() -> Option<TraceContext> {
    if !tracing::dispatcher::has_been_set() {
        // No subscriber, so no span carries an OpenTelemetry context.
        return handled_trace();
    }
    let cx = tracing::Span::current().context();
    let span = cx.span();
    let sc = span.span_context();
    if sc.is_valid() {
        return TraceContext::from_span_context(sc);
    }
    handled_trace()
}

/// The `traceparent` (and `tracestate`) headers an outgoing HTTP request made from here
/// carries, so that the service it calls continues the trace: those of
/// [`current_trace`], or none outside any trace.
pub fn trace_headers() -> Vec<(&'static str, String)> {
    let Some(trace) = current_trace() else {
        return Vec::new();
    };
    let mut headers = vec![("traceparent", trace.traceparent_header())];
    if let Some(state) = trace.tracestate_header() {
        headers.push(("tracestate", state));
    }
    headers
}

/// The trace context of the message being handled (or of the [`with_trace`] scope), if
/// it carried one.
pub fn handled_trace() -> Option<TraceContext> {
    HANDLING
        .try_with(|h| h.trace.as_deref().cloned())
        .ok()
        .flatten()
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
///
/// A message that carries no trace opens no span: an actor's own housekeeping (a metrics
/// render, a status query, a timer) is not a request anyone traces, and recording a root
/// span for each such message would cost more than the message itself. Anything that
/// starts a trace (an HTTP request, an agent's turn) does so with a span of its own, and
/// every message sent inside it carries the trace.
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
    // Nor does one whose trace is not sampled (see [`crate::sampling`]): the handler's
    // scope still carries the context, unsampled, to what it calls.
    let Some(trace) = envelope.trace.as_ref().filter(|t| t.parent.flags.sampled()) else {
        return tracing::Span::none();
    };
    let span = tracing::info_span!(
        "actor.handle",
        otel.name = %format_args!("process {kind}"),
        otel.kind = "consumer",
        neuroflow.actor.kind = kind,
        neuroflow.actor.path = actor.as_str(),
        messaging.message.id = %envelope.id,
    );
    if !span.is_disabled() {
        let parent =
            opentelemetry::Context::new().with_remote_span_context(SpanContext::from(&**trace));
        // Fails only when no OpenTelemetry layer is installed; the task-local scope still
        // carries the context onward in that case.
        let _ = span.set_parent(parent);
    }
    span
}

#[cfg(test)]
mod tests {
    use super::*;

    const CALLER: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

    #[tokio::test]
    async fn outgoing_requests_carry_the_trace_they_are_made_in() {
        assert!(trace_headers().is_empty(), "no trace outside any");
        let trace = TraceContext::parse(CALLER, Some("vendor=1")).unwrap();
        let headers = with_trace(trace, tracing::Span::none(), async { trace_headers() }).await;
        assert_eq!(
            headers,
            [
                ("traceparent", CALLER.to_string()),
                ("tracestate", "vendor=1".to_string())
            ]
        );
    }

    #[tokio::test]
    async fn with_trace_is_the_trace_of_what_is_sent_inside() {
        let trace = TraceContext::parse(CALLER, None).unwrap();
        assert!(HANDLING.try_with(|_| ()).is_err(), "no scope outside");
        let (sent, sender) = with_trace(trace.clone(), tracing::Span::none(), async {
            let envelope = Envelope::new(());
            (envelope.trace, envelope.sender)
        })
        .await;
        let sent = sent.expect("an envelope sent inside carries the trace");
        // Same trace whether or not a tracing layer made a span of its own in between.
        assert_eq!(sent.parent.trace_id, trace.parent.trace_id);
        assert_eq!(sender.map(String::from).as_deref(), Some(EXTERNAL));
        assert!(
            HANDLING.try_with(|_| ()).is_err(),
            "the scope ends with the future"
        );
    }
}
