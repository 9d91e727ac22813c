//! # neuroflow-exporter
//!
//! Finished spans leave the node through two pieces:
//!
//! ```text
//! tracing spans ─▶ tracing-opentelemetry ─▶ SDK tracer (sampler) ─▶ SpanQueue ──bounded──▶ ExporterActor ─▶ OTLP/HTTP collector
//!                                                                   (drops counted)          (batches, SDK retries, counts)
//! ```
//!
//! - [`SpanQueue`] is the SDK's span processor: it hands each finished span to a bounded
//!   channel and never blocks the code that ended it, nor wakes anyone (the pump is
//!   notified only once a batch's worth waits); a full queue drops the span and counts it.
//! - [`ExporterActor`] (supervised under the node's `telemetry`) drains the queue once
//!   per linger, or when notified, in batches, and sends them through a [`SpanSink`], in
//!   production OTLP/HTTP protobuf ([`OtlpSink`], `opentelemetry-otlp` with its retry
//!   policy). A restarted actor picks up the same queue. With the collector down the
//!   node keeps working: the queue fills, further spans are dropped, and
//!   `neuroflow_exporter_spans_total` says how many.

mod actor;
mod metrics;
mod otlp_metrics;
mod queue;
mod sink;

pub use actor::{ExportSettings, ExporterActor, MetricsSource};
pub use metrics::ExporterMetrics;
pub use otlp_metrics::MetricsPush;
pub use queue::{SpanInbox, SpanQueue, span_queue};
pub use sink::{OtlpSink, SinkFuture, SpanSink};
