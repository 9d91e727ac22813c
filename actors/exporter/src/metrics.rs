//! The exporter's health, in the node's registry.

use neuroflow_kit::metrics::{Metrics, MetricsError};
use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts};

/// Counters of the span pipeline. Made before the node's registry exists (the tracing
/// pipeline is installed first) and registered into it when the node starts.
#[derive(Clone)]
pub struct ExporterMetrics {
    pub(crate) exported: IntCounter,
    pub(crate) dropped: IntCounter,
    pub(crate) failed: IntCounter,
    pub(crate) queued: IntGauge,
    pub(crate) export_seconds: Histogram,
    pub(crate) pushes_ok: IntCounter,
    pub(crate) pushes_failed: IntCounter,
    spans: IntCounterVec,
    pushes: IntCounterVec,
}

impl ExporterMetrics {
    /// Unregistered families; [`Self::register`] adds them to a registry.
    pub fn new() -> Self {
        // The names and help are fixed here, so these constructors cannot fail.
        let spans = IntCounterVec::new(
            Opts::new(
                "neuroflow_exporter_spans_total",
                "Finished spans by what became of them: exported, dropped (queue full) or failed (the collector refused them after retries).",
            ),
            &["outcome"],
        )
        .expect("valid metric");
        let queued = IntGauge::new(
            "neuroflow_exporter_queue_spans",
            "Spans waiting in the exporter's queue.",
        )
        .expect("valid metric");
        let export_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "neuroflow_exporter_export_duration_seconds",
                "Time to send one batch to the collector, retries included.",
            )
            .buckets(vec![0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0]),
        )
        .expect("valid metric");
        let pushes = IntCounterVec::new(
            Opts::new(
                "neuroflow_exporter_metric_pushes_total",
                "Pushes of the node's metrics to the collector, by outcome (ok, failed).",
            ),
            &["outcome"],
        )
        .expect("valid metric");
        Self {
            pushes_ok: pushes.with_label_values(&["ok"]),
            pushes_failed: pushes.with_label_values(&["failed"]),
            pushes,
            exported: spans.with_label_values(&["exported"]),
            dropped: spans.with_label_values(&["dropped"]),
            failed: spans.with_label_values(&["failed"]),
            queued,
            export_seconds,
            spans,
        }
    }

    /// Adds the families to `registry`.
    pub fn register(&self, registry: &Metrics) -> Result<(), MetricsError> {
        registry.register(self.spans.clone())?;
        registry.register(self.queued.clone())?;
        registry.register(self.export_seconds.clone())?;
        registry.register(self.pushes.clone())?;
        Ok(())
    }
}

impl Default for ExporterMetrics {
    fn default() -> Self {
        Self::new()
    }
}
