//! `[telemetry]`: where the node's traces go, and how many of them.

use serde::{Deserialize, Serialize};

use super::in_range;

/// Environment variable giving `telemetry.otlp_endpoint`.
pub const ENV_OTLP_ENDPOINT: &str = "NEUROFLOW_OTLP_ENDPOINT";

/// `[telemetry]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryConfig {
    /// OTLP/HTTP traces URL of a collector (`http://127.0.0.1:4318/v1/traces`); no
    /// traces are recorded without one.
    pub otlp_endpoint: Option<String>,
    /// Share of new traces recorded, 0 to 1; a request carrying a sampled `traceparent`
    /// is recorded whatever this says (parent-based).
    pub sample_ratio: f64,
    /// `service.name` of the node's spans.
    pub service_name: String,
    /// Finished spans waiting for the exporter at most; past it they are dropped (and
    /// counted).
    pub queue_spans: usize,
    /// Bound on sending one batch, retries included.
    pub export_timeout_ms: u64,
    /// Retries of a batch the collector could not take (refused connection, 429, 5xx).
    pub export_retries: usize,
    /// OTLP/HTTP metrics URL; by default the traces URL with `/v1/metrics` for
    /// `/v1/traces`.
    pub otlp_metrics_endpoint: Option<String>,
    /// Between two pushes of the node's metrics to the collector.
    pub metrics_interval_secs: u64,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            otlp_endpoint: None,
            sample_ratio: 1.0,
            service_name: "neuroflow-node".into(),
            queue_spans: 8192,
            export_timeout_ms: 10_000,
            export_retries: 3,
            otlp_metrics_endpoint: None,
            metrics_interval_secs: 15,
        }
    }
}

impl TelemetryConfig {
    /// Where metrics go: the configured URL, else the traces URL's `/v1/metrics`.
    pub fn metrics_endpoint(&self) -> Option<String> {
        if let Some(url) = &self.otlp_metrics_endpoint {
            return Some(url.clone());
        }
        let traces = self.otlp_endpoint.as_ref()?;
        Some(match traces.strip_suffix("/v1/traces") {
            Some(base) => format!("{base}/v1/metrics"),
            None => format!("{}/v1/metrics", traces.trim_end_matches('/')),
        })
    }

    /// Checks the values; errors are `(key, message)`.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        in_range("telemetry.sample_ratio", self.sample_ratio, 0.0, 1.0)?;
        if let Some(url) = &self.otlp_endpoint
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err((
                "telemetry.otlp_endpoint",
                format!("must be an http:// or https:// URL (got {url:?})"),
            ));
        }
        if self.service_name.trim().is_empty() {
            return Err(("telemetry.service_name", "must not be empty".into()));
        }
        in_range("telemetry.queue_spans", self.queue_spans, 1, 1_000_000)?;
        in_range(
            "telemetry.export_timeout_ms",
            self.export_timeout_ms,
            100,
            600_000,
        )?;
        in_range(
            "telemetry.metrics_interval_secs",
            self.metrics_interval_secs,
            1,
            3600,
        )?;
        in_range("telemetry.export_retries", self.export_retries, 0, 10)?;
        Ok(())
    }
}
