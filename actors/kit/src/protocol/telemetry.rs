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
