//! # neuroflow-sandbox
//!
//! Runs untrusted code in a real Linux sandbox: new PID, mount, network, UTS, IPC and cgroup
//! namespaces (and a user namespace when not root), an overlayfs copy-on-write root, a fresh
//! /proc and a minimal /dev, cgroup limits, every capability dropped, no_new_privs and a
//! seccomp allowlist. A small init (a hidden subcommand of the node binary) performs the
//! isolation and stays as PID 1; the node side talks to it in MessagePack frames.
//!
//! - [`Sandbox`]: the Rust face (builder, `exec`, `exec_streaming`, `spawn`);
//! - [`SandboxProcess`]: a long-lived process with live stdin/stdout/stderr (an MCP server
//!   over stdio), under every layer and limit of its profile, ended when its owner lets go;
//! - [`profile`]: built-in and configured profiles; [`host`]: what this host supports;
//! - [`init`]: the init (`sandbox-init`); [`seccomp`] and [`cgroup`]: those two layers.

pub mod actor;
pub mod cgroup;
mod control;
mod error;
pub mod host;
pub mod init;
mod minimal;
pub mod net;
mod output;
mod pool;
mod prepare;
mod process;
pub mod profile;
mod run;
mod sandbox;
pub mod seccomp;
mod spawn;
mod teardown;
pub mod units;

pub use actor::{SandboxActor, SandboxMetrics, exec_supervised};
pub use error::SandboxError;
pub use host::{HostSupport, Layer};
pub use output::{OutputChunk, Stream};
pub use process::{ProcessExit, SandboxProcess, SpawnRequest};
pub use profile::Profile;
pub use sandbox::{Sandbox, SandboxBuilder};
pub use spawn::InitProgram;
pub use units::{ByteSize, Span};
