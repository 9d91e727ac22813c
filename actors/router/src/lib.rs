//! # neuroflow-router
//!
//! The tool router: tools mapped onto K shard actors by consistent hashing, arguments
//! validated against each tool's JSON Schema, a deadline on every call, built-in tools.
//!
//! ```text
//! tools (supervisor, one-for-one)
//! ├── shard-0 … shard-K-1   RouterShard (tools.shard): owns the tools hashed to it
//! └── router                ToolRouter (tools.router): answers RouterMsg (List / Call)
//! ```
//!
//! - A [`Tool`] is a [`ToolSpec`](neuroflow_kit::protocol::router::ToolSpec) plus a
//!   [`ToolExec`]; [`tool_fn`] makes one from an async closure.
//! - [`Tools`] is the local handle: `register`, `unregister`, `list`, `call`, exports, and
//!   [`Tools::add_shard`]. Executors are Rust values, so registering is this local API,
//!   never a message. [`Tools::build`] returns the handle, the router actor's handle and
//!   the child specs to supervise.
//! - Tool names map to shards by rendezvous hashing ([`hash`]): adding a shard moves only
//!   the tools that now belong to it.
//! - A shard admits a call (lookup, validation, in-flight permit) in its handler and runs
//!   it in a task of its own under the call's deadline ([`shard`] explains why), so slow
//!   tools never queue behind each other and a panicking tool never reaches the shard.
//! - [`export`] renders tool lists for the OpenAI and Anthropic APIs, with a reversible
//!   name mapping (`.` ↔ `__`).
//! - [`builtin`]: `time.now`, `fs.read` / `fs.write` / `fs.list`, `http.fetch`,
//!   `sandbox.exec`.
//!
//! ## Concurrency of the two entry points
//!
//! [`Tools::call`] (in-process callers) runs any number of calls at once. The
//! [`ToolRouter`] actor answers `RouterMsg::Call` from its handler, as every kit actor
//! answers, so it holds each call until the result: calls sent as messages to one router
//! actor run one after another. Lifting that needs a kit change (an actor replying after
//! its handler returns, or a `Recipient` made from a function such as [`Tools::serve`]).

pub mod builtin;
mod config;
mod error;
pub mod export;
pub mod hash;
pub mod mcp;
mod metrics;
pub mod pattern;
mod registry;
mod router;
mod schema;
pub mod shard;
mod tool;
mod tools;

pub use config::RouterConfig;
pub use error::{AddShardError, BuildError, RegisterError};
pub use metrics::ToolMetrics;
pub use router::ToolRouter;
pub use shard::RouterShard;
pub use tool::{IntoToolOutput, Tool, ToolCtx, ToolExec, spec, tool_fn};
pub use tools::{RouterParts, Tools};
