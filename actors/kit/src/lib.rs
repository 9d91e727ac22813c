//! # neuroflow-kit
//!
//! The pieces every NeuroFlow actor is built from:
//!
//! - [`trace_context`]: W3C Trace Context (`traceparent` / `tracestate`);
//! - [`envelope`]: the [`Envelope`] every message travels in;
//! - [`codec`]: length-prefixed, versioned MessagePack frames for envelopes that leave the
//!   process;
//! - [`actor`]: the [`Actor`] trait, hosted on ractor with spans and metrics for free;
//! - [`supervisor`]: OTP-style supervision (strategies, restart types, intensity, backoff);
//! - [`metrics`]: per-actor metrics rendered as Prometheus text;
//! - [`propagation`]: how trace context and deadlines flow from message to message;
//! - [`protocol`]: the message protocol of each actor kind;
//! - [`recipient`]: an actor addressed by its protocol, for crates that must not link it.
//!
//! This crate depends on no other crate of the workspace; actor crates depend on it and talk
//! to each other only through the message types in [`protocol`].

pub mod actor;
pub mod codec;
pub mod envelope;
mod error_chain;
pub mod metrics;
pub mod propagation;
pub mod protocol;
pub mod recipient;
pub mod sampling;
pub mod span_value;
pub mod supervisor;
pub mod timer_anchor;
pub mod trace_context;

pub use actor::{Actor, ActorError, ActorHandle, CallError, Ctx};
pub use envelope::{ActorPath, Envelope, MessageId, Timestamp};
pub use error_chain::error_chain;
pub use recipient::Recipient;
pub use trace_context::TraceContext;
