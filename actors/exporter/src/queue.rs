//! The SDK side: a span processor that queues finished spans for the exporter actor.
//!
//! Ending a span must cost the code that ended it as little as possible, so the queue
//! wakes nobody per span: the exporter's pump comes round on its own schedule (the
//! batch linger), and is woken early only when a whole batch is waiting. A channel that
//! woke its receiver on every send cost more than the span itself: a task wake-up, often
//! a parked worker's, and a timer re-armed, per span.

use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::time::Duration;

use opentelemetry::Context;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Span, SpanData, SpanProcessor};
use tokio::sync::Notify;

use crate::metrics::ExporterMetrics;

/// The queue's sending end, installed in the SDK's tracer provider.
#[derive(Debug)]
pub struct SpanQueue {
    tx: SyncSender<SpanData>,
    ready: Arc<Notify>,
    /// Depth at which the pump is woken before its linger is up.
    wake_at: i64,
    metrics: ExporterMetricsRef,
}

/// The queue's receiving end, shared by every incarnation of the exporter actor.
#[derive(Clone)]
pub struct SpanInbox {
    /// Held by the running pump; a restarted actor's pump takes it over.
    pub(crate) rx: Arc<tokio::sync::Mutex<Receiver<SpanData>>>,
    /// Signalled when a batch's worth is queued, or when a flush is asked for.
    pub(crate) ready: Arc<Notify>,
    pub(crate) metrics: ExporterMetrics,
    capacity: usize,
}

/// A queue of `capacity` spans that wakes its pump early once `batch` of them wait.
pub fn span_queue(
    capacity: usize,
    batch: usize,
    metrics: ExporterMetrics,
) -> (SpanQueue, SpanInbox) {
    let capacity = capacity.max(1);
    let (tx, rx) = mpsc::sync_channel(capacity);
    let ready = Arc::new(Notify::new());
    let queue = SpanQueue {
        tx,
        ready: ready.clone(),
        wake_at: i64::try_from(batch.clamp(1, capacity)).unwrap_or(i64::MAX),
        metrics: ExporterMetricsRef(metrics.clone()),
    };
    let inbox = SpanInbox {
        rx: Arc::new(tokio::sync::Mutex::new(rx)),
        ready,
        metrics,
        capacity,
    };
    (queue, inbox)
}

impl SpanInbox {
    pub fn metrics(&self) -> &ExporterMetrics {
        &self.metrics
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

/// `Debug` for the metrics, which the SDK's trait bound asks of the processor.
#[derive(Clone)]
struct ExporterMetricsRef(ExporterMetrics);

impl std::fmt::Debug for ExporterMetricsRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ExporterMetrics")
    }
}

impl SpanProcessor for SpanQueue {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        if !span.span_context.is_sampled() {
            return;
        }
        match self.tx.try_send(span) {
            Ok(()) => {
                let queued = &self.metrics.0.queued;
                queued.inc();
                if queued.get() >= self.wake_at {
                    self.ready.notify_one();
                }
            }
            // Never wait here: this runs in whatever code ended the span.
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.metrics.0.dropped.inc()
            }
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        // The actor flushes (`ExporterMsg::Flush`); the SDK side holds nothing.
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
}
