//! The SDK side: a span processor that queues finished spans for the exporter actor.

use std::sync::Arc;
use std::time::Duration;

use opentelemetry::Context;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Span, SpanData, SpanProcessor};
use tokio::sync::mpsc::{self, error::TrySendError};

use crate::metrics::ExporterMetrics;

/// The queue's sending end, installed in the SDK's tracer provider.
#[derive(Debug)]
pub struct SpanQueue {
    tx: mpsc::Sender<SpanData>,
    metrics: ExporterMetricsRef,
}

/// The queue's receiving end, shared by every incarnation of the exporter actor.
#[derive(Clone)]
pub struct SpanInbox {
    pub(crate) rx: Arc<tokio::sync::Mutex<mpsc::Receiver<SpanData>>>,
    pub(crate) metrics: ExporterMetrics,
    capacity: usize,
}

/// A queue of `capacity` spans.
pub fn span_queue(capacity: usize, metrics: ExporterMetrics) -> (SpanQueue, SpanInbox) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    let queue = SpanQueue {
        tx,
        metrics: ExporterMetricsRef(metrics.clone()),
    };
    let inbox = SpanInbox {
        rx: Arc::new(tokio::sync::Mutex::new(rx)),
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
            Ok(()) => self.metrics.0.queued.inc(),
            // Never wait here: this runs in whatever code ended the span.
            Err(TrySendError::Full(_) | TrySendError::Closed(_)) => self.metrics.0.dropped.inc(),
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
