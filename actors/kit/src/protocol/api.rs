//! Protocol of the node's HTTP server actor.

use serde::{Deserialize, Serialize};

/// Requests to the HTTP server actor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum HttpMsg {
    /// What the server is serving.
    Status,
}

/// Replies of the HTTP server actor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum HttpReply {
    Status {
        /// The bound address, `IP:PORT`.
        local_addr: String,
        /// Whether the fault-injection routes exist.
        test_hooks: bool,
    },
}
