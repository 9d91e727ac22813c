//! Head sampling: whether the spans of a piece of work are recorded, decided before any
//! of them is opened.
//!
//! The OpenTelemetry SDK's sampler runs only once `tracing` has made the span, the
//! registry has stored it and `tracing-opentelemetry` has built its data; an unsampled
//! span costs nearly what a recorded one does (see docs/performance.md). So the node
//! decides first, with [`open`] at every place where work that has a span begins: if the
//! trace is not sampled, no span is made at all, and the work runs under the unsampled
//! trace context instead (the task-local scope of [`crate::propagation`]). What it calls
//! then finds that context, opens no span either, and sends it on with its `sampled` flag
//! clear, so a downstream service follows the decision too.
//!
//! The decision follows the parent: a caller's `traceparent`, else the recorded span the
//! work starts in, else the trace of the message being handled. Only work that starts a
//! trace (a request without a `traceparent`, a turn asked for outside any trace) rolls
//! against the ratio ([`set_ratio`], the `[telemetry] sample_ratio` of the node).

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};

use tracing::Instrument;

use crate::propagation;
use crate::trace_context::{SpanId, TraceContext, TraceFlags, TraceId, TraceParent, TraceState};

/// The module-path prefix of the spans the node records: its own crates'. The
/// OpenTelemetry layer's filter is built from it too.
pub const RECORDED_TARGETS: &str = "neuroflow";

/// The ratio of new traces recorded, as `f64` bits; 1.0 until set.
static RATIO: AtomicU64 = AtomicU64::new(0x3FF0_0000_0000_0000);

/// Sets the share of new traces that are recorded (clamped to 0..=1). Traces continued
/// from a caller keep the caller's decision.
pub fn set_ratio(ratio: f64) {
    let ratio = if ratio.is_nan() {
        1.0
    } else {
        ratio.clamp(0.0, 1.0)
    };
    RATIO.store(ratio.to_bits(), Ordering::Relaxed);
}

/// The share of new traces recorded.
pub fn ratio() -> f64 {
    f64::from_bits(RATIO.load(Ordering::Relaxed))
}

/// The span of a piece of work, or the unsampled trace it runs in instead.
pub struct Traced {
    span: tracing::Span,
    /// The context to run the work under: the caller's, or an unsampled one.
    scope: Option<TraceContext>,
}

/// Decides for work starting here, continuing `incoming` (a caller's trace context, when
/// one came with the request), and opens its span with `make` only if it is recorded.
pub fn open(incoming: Option<TraceContext>, make: impl FnOnce() -> tracing::Span) -> Traced {
    open_with(incoming, make, ratio())
}

fn open_with(
    incoming: Option<TraceContext>,
    make: impl FnOnce() -> tracing::Span,
    ratio: f64,
) -> Traced {
    let recorded = |scope| Traced {
        span: make(),
        scope,
    };
    let skipped = |trace| Traced {
        span: tracing::Span::none(),
        scope: Some(trace),
    };
    if let Some(trace) = incoming {
        return if trace.parent.flags.sampled() {
            recorded(Some(trace))
        } else {
            skipped(trace)
        };
    }
    if tracing::Span::current()
        .metadata()
        .is_some_and(|m| m.target().starts_with(RECORDED_TARGETS))
    {
        // Inside a span of the node's own: unsampled work never opens one. (A library's
        // span, ractor's `Actor` around every actor task, says nothing about the trace.)
        return recorded(None);
    }
    match propagation::handled_trace() {
        Some(trace) if trace.parent.flags.sampled() => recorded(None),
        Some(trace) => skipped(trace),
        None if ratio >= 1.0 || (ratio > 0.0 && roll() < ratio) => recorded(None),
        None => skipped(unsampled_root()),
    }
}

impl Traced {
    /// The span, to record attributes on; a disabled one when not recorded.
    pub fn span(&self) -> &tracing::Span {
        &self.span
    }

    /// The trace context that messages and requests made for this work carry.
    pub fn trace(&self) -> Option<TraceContext> {
        match &self.scope {
            Some(trace) if self.span.is_none() => Some(trace.clone()),
            scope => self
                .span
                .in_scope(propagation::current_trace)
                .or_else(|| scope.clone()),
        }
    }

    /// Runs `fut` in the span, or, when not recorded, in the unsampled trace.
    pub async fn run<F: Future>(self, fut: F) -> F::Output {
        match self.scope {
            Some(trace) => propagation::with_trace(trace, self.span, fut).await,
            None => fut.instrument(self.span).await,
        }
    }
}

/// A uniform draw in [0, 1): the low 53 bits of a v4 UUID (all random; its version and
/// variant bits are above them), from the process's fast RNG.
fn roll() -> f64 {
    const BITS: u64 = (1 << 53) - 1;
    (uuid::Uuid::new_v4().as_u128() as u64 & BITS) as f64 / (BITS + 1) as f64
}

/// A new trace that is not sampled, with random ids.
fn unsampled_root() -> TraceContext {
    let trace = uuid::Uuid::new_v4().as_u128().max(1);
    let span = (uuid::Uuid::new_v4().as_u128() as u64).max(1);
    TraceContext {
        parent: TraceParent {
            trace_id: TraceId(trace.to_be_bytes()),
            parent_id: SpanId(span.to_be_bytes()),
            flags: TraceFlags(0),
        },
        state: TraceState::new(),
    }
}

#[cfg(test)]
mod tests;
