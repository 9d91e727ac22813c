//! Protocol of the sandbox actors: run a command in an isolated process tree.
//!
//! Agents and tools run code by sending [`SandboxMsg::Exec`] to a sandbox actor; the
//! [`ExecOutcome`] says how the command ended and what it cost, whichever limit ended it.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Requests to a sandbox actor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SandboxMsg {
    /// Run one command to completion in a fresh isolated process tree.
    Exec(ExecRequest),
}

/// Replies of a sandbox actor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SandboxReply {
    /// The command ran (successfully or not: see [`ExecOutcome::end`]).
    Done(ExecOutcome),
    /// The sandbox could not run the command at all.
    Refused(SandboxFailure),
}

/// One command to run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecRequest {
    /// Program to run: a path inside the sandbox, or a name looked up in its `PATH`.
    pub command: String,
    pub args: Vec<String>,
    /// Bytes fed to the command's standard input (closed after them).
    #[serde(with = "serde_bytes", default)]
    pub stdin: Vec<u8>,
    /// Extra environment variables, on top of what the profile allows.
    #[serde(default)]
    pub env: Vec<(String, String)>,
    /// Wall-clock limit for this command, if tighter than the profile's.
    #[serde(default)]
    pub timeout_ms: Option<u64>,
}

/// How a command ended and what it used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecOutcome {
    pub end: EndReason,
    /// Exit status when the command exited on its own.
    pub exit_code: Option<i32>,
    /// Signal that killed the command, if one did.
    pub signal: Option<i32>,
    #[serde(with = "serde_bytes")]
    pub stdout: Vec<u8>,
    #[serde(with = "serde_bytes")]
    pub stderr: Vec<u8>,
    /// Whether output beyond the cap was cut off (the command was then ended).
    pub output_truncated: bool,
    pub usage: ResourceUsage,
}

impl ExecOutcome {
    /// The exit status a shell would report: the exit code, or 128 + the signal number.
    pub fn shell_status(&self) -> i32 {
        match (self.exit_code, self.signal) {
            (Some(code), _) => code,
            (None, Some(sig)) => 128 + sig,
            (None, None) => 125,
        }
    }
}

/// Why a sandboxed command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EndReason {
    /// The command exited by itself (any exit code).
    Exited,
    /// The command was killed by a signal that no limit sent.
    Signaled,
    /// The wall-clock limit passed.
    Timeout,
    /// The memory limit was hit and the kernel killed a process.
    OomKilled,
    /// The CPU-time limit was hit.
    CpuTime,
    /// The process-count limit refused a fork.
    PidsExhausted,
    /// The command wrote more output than allowed.
    OutputCapped,
}

impl EndReason {
    /// Stable label for metrics and logs (`oom-killed`, `timeout`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Exited => "exited",
            Self::Signaled => "signaled",
            Self::Timeout => "timeout",
            Self::OomKilled => "oom-killed",
            Self::CpuTime => "cpu-time",
            Self::PidsExhausted => "pids-exhausted",
            Self::OutputCapped => "output-capped",
        }
    }

    pub const ALL: [EndReason; 7] = [
        Self::Exited,
        Self::Signaled,
        Self::Timeout,
        Self::OomKilled,
        Self::CpuTime,
        Self::PidsExhausted,
        Self::OutputCapped,
    ];
}

impl fmt::Display for EndReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a sandboxed command used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceUsage {
    /// From the request to the command's `exec`, in microseconds.
    pub start_latency_us: u64,
    /// From the request to the end of the sandbox, in microseconds.
    pub wall_time_us: u64,
    /// User + system CPU time of the whole process tree, in microseconds.
    pub cpu_time_us: u64,
    /// Peak memory of the whole process tree, in bytes (0 where the host cannot tell).
    pub peak_memory_bytes: u64,
    /// Processes alive at the peak (0 where the host cannot tell).
    pub peak_pids: u64,
    /// Bytes the command wrote to stdout and stderr, including any cut off.
    pub bytes_out: u64,
}

/// Why a sandbox refused to run a command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("sandbox refused: {message}")]
pub struct SandboxFailure {
    /// The isolation layer or setting at fault (`seccomp`, `cgroup`, `overlay`, ...), if one.
    pub layer: Option<String>,
    pub message: String,
}
