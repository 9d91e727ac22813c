//! What the node tells the sandbox init, and what the init reports back.
//!
//! Both travel as kit codec frames: the spec on the init's fd 3, events on its fd 4. The
//! init trusts the spec (the node wrote it) but still never panics on a bad frame: it
//! reports the error and exits.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::seccomp::Bpf;

/// File descriptor on which the init reads its [`InitSpec`].
pub const SPEC_FD: i32 = 3;
/// File descriptor on which the init writes its [`InitEvent`]s.
pub const EVENT_FD: i32 = 4;

/// Everything the init needs to build the sandbox and run the command.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InitSpec {
    /// A directory of the host, private to this sandbox, where the init mounts the new
    /// root and the writable layer (inside its own mount namespace).
    pub state_dir: PathBuf,
    pub hostname: String,
    pub lower: Lower,
    /// Bind the lower layers read-only instead of copy-on-write.
    pub read_only_root: bool,
    /// Size of the tmpfs holding the writable layer and /workspace.
    pub disk_bytes: u64,
    /// Size of the tmpfs at /tmp.
    pub tmp_bytes: u64,
    pub mounts: Vec<SpecMount>,
    /// Where the command starts (inside the sandbox).
    pub workdir: PathBuf,
    /// Ids the command runs as, inside the sandbox's user namespace if there is one.
    pub uid: u32,
    pub gid: u32,
    pub rlimits: Rlimits,
    /// The compiled seccomp program, installed right before `exec`.
    pub seccomp: Bpf,
    /// `(uid_map, gid_map)` for a user namespace the init makes and maps from outside it
    /// (a root node mapping the sandbox's root to `nobody`). `None`: the namespaces were
    /// made before exec.
    pub outside_user_maps: Option<(String, String)>,
    /// The way out to the node's egress proxy, when the profile allows any destination.
    pub egress: Option<Egress>,
}

/// Where the sandbox's egress goes: the node's proxy socket (a host path, bound into the
/// sandbox) and the loopback port the bridge serves it on inside.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Egress {
    pub socket: PathBuf,
    pub port: u16,
}

/// The command to run in a built sandbox: the second frame on fd 3, sent when a request
/// comes (a sandbox may be built ahead of it and wait, ready).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CommandSpec {
    /// The command, looked up in `PATH` of `env` when it has no slash.
    pub command: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Where the command starts: relative paths are taken from the spec's `workdir`, which
    /// is also where it starts when this is `None`.
    #[serde(default)]
    pub cwd: Option<PathBuf>,
}

/// The sandbox root's read-only layers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Lower {
    /// Host directories at the same place; symlinks among them (`/bin -> usr/bin`) are
    /// recreated as symlinks.
    HostDirs(Vec<PathBuf>),
    /// A whole tree as `/`.
    Tree(PathBuf),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SpecMount {
    pub source: PathBuf,
    pub target: PathBuf,
    pub writable: bool,
}

/// Per-process limits set on the command (0 = leave the inherited value).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Rlimits {
    pub cpu_seconds: u64,
    pub file_size: u64,
    pub open_files: u64,
}

/// What the init tells the node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum InitEvent {
    /// The sandbox is built and waits for its [`CommandSpec`].
    Ready {
        /// Time the init spent building the sandbox, in microseconds.
        setup_us: u64,
    },
    /// The command has been `exec`ed.
    Started,
    /// The command could not be started: not found, a working directory it cannot enter,
    /// a layer failing at the last step. Its child exits 126 (127: not found) right after,
    /// with the same reason on its stderr.
    ExecFailed { layer: String, message: String },
    /// Building the sandbox failed; the command never ran.
    SetupFailed { layer: String, message: String },
    /// The command ended (the init exits right after, which ends every process left).
    Exited {
        code: Option<i32>,
        signal: Option<i32>,
    },
}
