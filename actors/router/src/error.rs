//! Errors of the router's local API (calls answer with the protocol's `ToolError`).

use neuroflow_kit::metrics::MetricsError;
use neuroflow_kit::supervisor::SupervisorError;

/// Why a router could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("invalid router config: {0}")]
    Config(String),
    #[error(transparent)]
    Metrics(#[from] MetricsError),
}

/// Why a tool could not be registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegisterError {
    #[error("invalid tool name {name:?}: {reason}")]
    InvalidName { name: String, reason: String },
    #[error("a tool named {0:?} is already registered")]
    Duplicate(String),
    #[error("invalid parameters schema for {tool}: {message}")]
    InvalidSchema { tool: String, message: String },
}

/// Why a shard could not be added.
#[derive(Debug, thiserror::Error)]
pub enum AddShardError {
    #[error("the new shard did not start: {0}")]
    Start(#[from] SupervisorError),
    #[error("another shard was added at the same time; retry")]
    Concurrent,
}
