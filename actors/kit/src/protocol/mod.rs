//! Message protocols, one module per actor kind.
//!
//! An actor crate implements a protocol; other crates (and the node's HTTP handlers) use it
//! by sending these messages through an [`crate::ActorHandle`], never by linking the crate
//! that implements it.

pub mod agent;
pub mod api;
pub mod mcp;
pub mod router;
pub mod sandbox;
pub mod telemetry;
