//! Where batches go: a collector over OTLP/HTTP, or anything else implementing
//! [`SpanSink`] (the tests' recorder).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};

/// What an export returns: boxed, so that sinks are object-safe.
pub type SinkFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// Takes batches of finished spans.
pub trait SpanSink: Send + Sync + 'static {
    fn export(&self, batch: Vec<SpanData>) -> SinkFuture;
}

/// OTLP over HTTP with protobuf bodies, through `opentelemetry-otlp` and its retry policy.
pub struct OtlpSink {
    exporter: std::sync::Arc<opentelemetry_otlp::SpanExporter>,
}

impl OtlpSink {
    /// Spans to `endpoint` (the full traces URL, e.g. `http://127.0.0.1:4318/v1/traces`),
    /// each batch bounded by `timeout`, retried `retries` times on errors the collector
    /// may recover from (refused connections, 429, 5xx), and described by `resource`.
    pub fn http(
        endpoint: &str,
        timeout: Duration,
        retries: usize,
        resource: &Resource,
    ) -> Result<Self, String> {
        let policy = opentelemetry_otlp::RetryPolicy::default()
            .with_max_retries(retries)
            .with_initial_delay(Duration::from_millis(100))
            .with_max_delay(Duration::from_secs(5));
        let mut exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(endpoint)
            .with_timeout(timeout)
            .with_retry_policy(policy)
            .build()
            .map_err(|e| format!("OTLP exporter for {endpoint}: {e}"))?;
        exporter.set_resource(resource);
        Ok(Self {
            exporter: std::sync::Arc::new(exporter),
        })
    }
}

impl SpanSink for OtlpSink {
    fn export(&self, batch: Vec<SpanData>) -> SinkFuture {
        let exporter = self.exporter.clone();
        Box::pin(async move { exporter.export(batch).await.map_err(|e| e.to_string()) })
    }
}
