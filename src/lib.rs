//! # neuroflow
//!
//! NeuroFlow is an actor-system runtime for AI agents: agents, code sandboxes, tool routers,
//! peer links and telemetry exporters are supervised actors that talk through typed,
//! traced messages.
//!
//! This crate assembles those actors into a node and gives it its outside faces:
//!
//! - [`kit`]: the actor kit (envelopes, supervision, metrics, message protocols);
//! - [`config`]: the node's configuration (defaults, TOML file, environment, flags);
//! - [`runtime`]: the embedding API ([`Runtime`]: agents, tools, chats in your service);
//! - [`node`]: the node's supervision tree and its lifecycle ([`node::Node`]);
//! - [`api`]: the HTTP API, served by a supervised actor;
//! - [`cli`]: the `neuroflow-node` command line;
//! - [`observability`] and [`shutdown`]: logs and traces, and the signals that stop a node.

pub use neuroflow_kit as kit;

pub mod api;
pub mod auth;
pub mod cli;
pub mod config;
pub mod node;
pub mod observability;
pub mod runtime;
pub mod shutdown;
pub mod store;

pub use config::Config;
pub use node::{Node, NodeError, VERSION};
pub use runtime::{AgentRef, Chat, ChatError, Runtime, RuntimeBuilder, agent_spec};
