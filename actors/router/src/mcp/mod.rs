//! MCP: servers as tool providers, through the official SDK (`rmcp`).
//!
//! ```text
//! tools
//! └── mcp                 supervisor of the server actors
//!     ├── github          McpServerActor (tools.mcp): one session, its tools registered
//!     └── files           …
//! ```
//!
//! - A server is configured as a stdio process ([`McpServerConfig::stdio`], optionally in a
//!   sandbox profile) or a streamable HTTP endpoint ([`McpServerConfig::http`]).
//! - Its actor opens a session (`initialize`, then `tools/list` across pages) and registers
//!   each tool with the router as `SERVER.TOOL` (provider `mcp:SERVER`), keeping them in
//!   step when the server announces `notifications/tools/list_changed`.
//! - Calls go straight to the open session with the router's deadline; a call past it is
//!   cancelled at the server (`notifications/cancelled`). The caller's trace goes along as
//!   `traceparent` in the request's `_meta`.
//! - When the session ends (the process died, the connection dropped), the actor opens a
//!   new one after a backoff, within the server's restart intensity, and re-registers the
//!   tools; meanwhile calls fail at once with "server X is unavailable: restarting…".
//!   Past the intensity the server is marked failed until [`McpServers::restart`].
//! - [`McpServers`] reads statuses (also in the node tree and in `neuroflow_mcp_*`
//!   metrics) and reaches resources and prompts.
//! - [`serve`] is the other direction: the node's tools offered to MCP clients (stdio and
//!   streamable HTTP), through [`serve::McpFace`] over a [`serve::Catalog`].

mod actor;
mod config;
mod content;
mod handler;
mod launch;
mod link;
mod metrics;
pub mod serve;
mod servers;
mod session;
mod tools;

pub use actor::{McpMsg, McpReply, McpServerActor};
pub use config::{ElicitationPolicy, McpServerConfig, TransportKind};
pub use content::{resource_text, tool_output};
pub use handler::{answer_elicitation, client_config};
pub use launch::{INHERITED_ENV, Launcher, ServerProcess, Spawned, host_launcher, spawn_on_host};
pub use metrics::McpMetrics;
pub use servers::{McpError, McpParts, McpServers, SUPERVISOR};
pub use tools::router_name;

/// The protocol's types (resources, prompts, contents), as the SDK defines them.
pub use rmcp::model;
