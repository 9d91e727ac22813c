//! The node as an MCP server: its tools (or a chosen subset) offered to other MCP clients.
//!
//! ```text
//! MCP client ──stdio / streamable HTTP──▶ McpFace (rmcp ServerHandler) ──▶ dyn Catalog
//!                                                                            │
//!                              ToolsCatalog: Tools::list / Tools::call ◀──────┘
//! ```
//!
//! - A [`Catalog`] answers the protocol's requests (tools, resources, templates,
//!   subscriptions, prompts, completion, log level), each with a default, and says what it
//!   [`Offers`]; [`McpFace`] declares exactly that in `initialize` and answers "method not
//!   found" for the rest. Catalog methods get the SDK's request context, so a catalog can
//!   send progress, log messages, sampling and elicitation requests while it answers.
//! - [`ToolsCatalog`] is the node's: the router's tools matching `[mcp.serve] tools`. Output
//!   is text; an unknown (or hidden) tool is invalid params; a failed, refused or timed-out
//!   call is an `isError` result. A `traceparent` in the request's `_meta` continues into
//!   the router call, so the tool (and any MCP server it calls in turn) joins the caller's
//!   trace. Calls run as caller [`MCP_CALLER`].
//! - Transports are the SDK's: stdio (`neuroflow-node mcp serve`) and streamable HTTP,
//!   which the node bridges into its warp server (`neuroflow::api::mcp`).
//! - The face speaks protocol revisions up to [`PROTOCOL_VERSION`].

mod catalog;
mod face;
mod tools;

pub use catalog::{Catalog, Context, Offers, unknown_prompt, unknown_resource, unknown_tool};
pub use face::{McpFace, PROTOCOL_VERSION};
pub use tools::{MCP_CALLER, ToolsCatalog, mcp_tool, result};
