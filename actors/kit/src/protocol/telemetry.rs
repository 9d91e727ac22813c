//! Protocol of the telemetry actors.

use serde::{Deserialize, Serialize};

/// Requests to the metrics actor, which owns the rendering of the node's metrics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetricsMsg {
    /// Render every registered family in the Prometheus text format.
    Render,
}

/// Replies of the metrics actor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetricsReply {
    /// Prometheus text exposition format, version 0.0.4.
    Text(String),
}

/// Requests to the span exporter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExporterMsg {
    /// Export every span queued so far, then answer with the counters.
    Flush,
    /// The counters, now.
    Status,
}

/// What the span exporter has done since the node started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExporterStatus {
    /// Spans the collector accepted.
    pub exported: u64,
    /// Spans refused at the queue because it was full.
    pub dropped: u64,
    /// Spans given up on after every retry failed.
    pub failed: u64,
    /// Spans waiting in the queue.
    pub queued: u64,
}
