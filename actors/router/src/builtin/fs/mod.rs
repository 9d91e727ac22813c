//! `fs.read`, `fs.write`, `fs.list`: files in the calling agent's workspace.
//!
//! Each agent has its own workspace, `root/<agent name>`, created on first use. Every path
//! a model gives is resolved beneath it by the kernel (`beneath.rs` says how and why), so
//! no `..`, absolute path or symlink reaches anything outside. Reads, writes, file sizes
//! and listings are capped. File work is blocking, so it runs on tokio's blocking pool.

mod beneath;
mod ops;

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use nix::errno::Errno;
use nix::fcntl::{OFlag, open};
use nix::sys::stat::{Mode, mkdirat};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::tool::{Tool, ToolCtx, spec, tool_fn};

/// Where the workspaces are and how much the tools may move.
#[derive(Debug, Clone)]
pub struct FsConfig {
    /// Directory holding one workspace per agent (created if missing).
    pub root: PathBuf,
    /// Most bytes one `fs.read` returns.
    pub max_read_bytes: usize,
    /// Most bytes one `fs.write` writes.
    pub max_write_bytes: usize,
    /// Largest file `fs.write` may leave behind (appends included).
    pub max_file_bytes: u64,
    /// Most entries one `fs.list` returns.
    pub max_list_entries: usize,
}

impl FsConfig {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            max_read_bytes: 1 << 20,
            max_write_bytes: 1 << 20,
            max_file_bytes: 16 << 20,
            max_list_entries: 1000,
        }
    }
}

/// Why a file operation failed, as the model is told.
#[derive(Debug, thiserror::Error)]
pub enum FsError {
    #[error("{0}")]
    InvalidPath(String),
    #[error("{0}: the path leaves the workspace (use a relative path without '..')")]
    Escape(String),
    #[error("{0}: no such file or directory")]
    NotFound(String),
    #[error("{0}: not a regular file")]
    NotAFile(String),
    #[error("{0}: not a directory")]
    NotADirectory(String),
    #[error("{0}: a symbolic link on the way was refused")]
    Symlink(String),
    #[error("{what} would be {size} bytes; the limit is {limit}")]
    TooLarge { what: String, size: u64, limit: u64 },
    #[error("{path}: {errno}")]
    Os { path: String, errno: Errno },
    #[error("no workspace: {0}")]
    Workspace(String),
}

impl FsError {
    pub(crate) fn escape(path: &str) -> Self {
        Self::Escape(path.to_string())
    }

    /// Names what the kernel said about `path` in the model's terms.
    pub(crate) fn os(path: &str, errno: Errno) -> Self {
        let path = path.to_string();
        match errno {
            Errno::EXDEV => Self::Escape(path),
            Errno::ENOENT => Self::NotFound(path),
            Errno::ELOOP => Self::Symlink(path),
            Errno::ENOTDIR => Self::NotADirectory(path),
            Errno::EISDIR => Self::NotAFile(path),
            errno => Self::Os { path, errno },
        }
    }
}

/// The three tools over `config.root`.
pub fn tools(config: FsConfig) -> Vec<Tool> {
    let mut tools = local_tools(config);
    for tool in &mut tools {
        tool.spec.provider = "builtin".into();
    }
    tools
}

fn local_tools(config: FsConfig) -> Vec<Tool> {
    let config = Arc::new(config);
    let path = json!({"type": "string", "description": "Path relative to your workspace."});
    let limit = |max: usize| json!({"type": "integer", "minimum": 1, "maximum": max});
    vec![
        fs_tool(
            spec(
                "fs.read",
                "Read a text file from your workspace.",
                json!({
                    "type": "object",
                    "properties": {
                        "path": path,
                        "offset": {"type": "integer", "minimum": 0},
                        "max_bytes": limit(config.max_read_bytes),
                    },
                    "required": ["path"],
                    "additionalProperties": false
                }),
            ),
            &config,
            ops::read,
        ),
        fs_tool(
            spec(
                "fs.write",
                "Write (or append) a text file in your workspace.",
                json!({
                    "type": "object",
                    "properties": {
                        "path": path,
                        "content": {"type": "string"},
                        "append": {"type": "boolean"},
                        "create_dirs": {"type": "boolean"},
                    },
                    "required": ["path", "content"],
                    "additionalProperties": false
                }),
            ),
            &config,
            ops::write,
        ),
        fs_tool(
            spec(
                "fs.list",
                "List a directory of your workspace.",
                json!({
                    "type": "object",
                    "properties": {"path": path, "max_entries": limit(config.max_list_entries)},
                    "additionalProperties": false
                }),
            ),
            &config,
            ops::list,
        ),
    ]
}

/// A tool running `op` on the caller's workspace in the blocking pool.
fn fs_tool<A>(
    spec: neuroflow_kit::protocol::router::ToolSpec,
    config: &Arc<FsConfig>,
    op: fn(&FsConfig, &OwnedFd, A) -> Result<Value, FsError>,
) -> Tool
where
    A: DeserializeOwned + Send + 'static,
{
    let config = config.clone();
    tool_fn(spec, move |args: Value, ctx: ToolCtx| {
        let config = config.clone();
        async move {
            let args: A = serde_json::from_value(args).map_err(|e| e.to_string())?;
            let caller = ctx
                .caller
                .ok_or_else(|| "file tools act for an agent; this call has none".to_string())?;
            let work = move || {
                let workspace = workspace(&config.root, &caller)?;
                op(&config, &workspace, args)
            };
            match tokio::task::spawn_blocking(work).await {
                Ok(result) => result.map_err(|e| e.to_string()),
                Err(join) => Err(format!("file operation failed: {join}")),
            }
        }
    })
}

/// Opens (creating if needed) the workspace of `caller` under `root`.
pub(crate) fn workspace(root: &Path, caller: &str) -> Result<OwnedFd, FsError> {
    if caller.is_empty()
        || caller == "."
        || caller == ".."
        || caller.len() > 255
        || caller.contains(['/', '\0'])
    {
        return Err(FsError::Workspace(format!(
            "agent name {caller:?} cannot name a directory"
        )));
    }
    let io = |e: &dyn std::fmt::Display| FsError::Workspace(format!("{}: {e}", root.display()));
    std::fs::create_dir_all(root).map_err(|e| io(&e))?;
    let dir = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let root_fd = open(root, dir, Mode::empty()).map_err(|e| io(&e))?;
    match mkdirat(&root_fd, caller, Mode::from_bits_truncate(0o700)) {
        Ok(()) | Err(Errno::EEXIST) => {}
        Err(errno) => return Err(io(&errno)),
    }
    // The workspace itself must be a real directory, not a symlink planted in the root.
    nix::fcntl::openat(&root_fd, caller, dir | OFlag::O_NOFOLLOW, Mode::empty()).map_err(|e| io(&e))
}
