//! The built-in tools.
//!
//! - `time.now` ([`time`]);
//! - `fs.read`, `fs.write`, `fs.list` in the calling agent's workspace ([`fs`]);
//! - `http.fetch` to allowlisted hosts ([`http`]);
//! - `sandbox.exec`, a shell command or Python snippet in a sandbox ([`sandbox`]).
//!
//! Agents as tools are built by the agent crate as ordinary [`crate::ToolExec`]s.

pub mod fs;
pub mod http;
pub mod sandbox;
mod text;
pub mod time;
