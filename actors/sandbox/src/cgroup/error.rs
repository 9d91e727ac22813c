//! Typed errors of the cgroup layer. Every variant names the file or controller involved and,
//! where the kernel refused something, carries the OS error.

use std::io;
use std::path::PathBuf;

use super::Controller;

/// Why a cgroup operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// A file could not be read (a /proc file during detection, or a cgroup control file).
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },

    /// The kernel refused a value written to a cgroup control file.
    #[error("cannot write {value:?} to {path}: {source}")]
    Write {
        path: PathBuf,
        value: String,
        source: io::Error,
    },

    /// A cgroup directory could not be created.
    #[error("cannot create cgroup {path}: {source}")]
    Create { path: PathBuf, source: io::Error },

    /// A cgroup directory with this sandbox's name already exists (a stale sandbox, or two
    /// sandboxes given the same name); it is left alone rather than adopted.
    #[error("cgroup {path} already exists")]
    Exists { path: PathBuf },

    /// A cgroup directory could not be removed, even after killing its processes and retrying.
    #[error("cannot remove cgroup {path}: {source}")]
    Remove { path: PathBuf, source: io::Error },

    /// No cgroup hierarchy this layer can use is mounted.
    #[error("no usable cgroup hierarchy: {reason}")]
    NoHierarchy { reason: String },

    /// The node's own cgroup (from /proc/self/cgroup) lies outside the mounted part of the
    /// hierarchy, so there is no directory to nest sandboxes under.
    #[error(
        "own cgroup {own} of {hierarchy} is not visible under its mount (mount root {mount_root})"
    )]
    OutsideMount {
        hierarchy: String,
        own: String,
        mount_root: String,
    },

    /// The sandbox name would not be a single, plain directory name.
    #[error("invalid sandbox cgroup name {name:?}: {reason}")]
    InvalidName { name: String, reason: &'static str },

    /// A requested limit cannot be expressed (zero, too large, or missing a companion limit).
    #[error("invalid {limit} limit: {reason}")]
    InvalidLimit {
        limit: &'static str,
        reason: &'static str,
    },

    /// A limit was requested whose controller the host does not give this node.
    #[error("{controller} controller is not available to this node ({layout} cgroup layout)")]
    ControllerUnavailable {
        controller: Controller,
        layout: &'static str,
    },

    /// A swap limit was requested but the kernel has no swap accounting (the file is absent).
    #[error("swap limit requested but swap accounting is unavailable ({file} is missing)")]
    SwapAccountingUnavailable { file: PathBuf },

    /// cgroup v2 "no internal processes" rule: the node's own cgroup holds processes, so it
    /// cannot hand controllers down to children. Run the node in a delegated cgroup whose
    /// processes live in a leaf (as systemd's Delegate=yes services and container runtimes do),
    /// or with the controllers already enabled in its cgroup.subtree_control.
    #[error(
        "cannot enable {controllers} in {path}: the node's cgroup contains processes \
         (cgroup v2 no-internal-processes rule); start the node in a leaf of a delegated cgroup"
    )]
    InternalProcesses {
        path: PathBuf,
        controllers: String,
        source: io::Error,
    },

    /// Freezing did not complete within its time bound.
    #[error("cgroup {path} did not freeze within {millis} ms")]
    FreezeTimeout { path: PathBuf, millis: u64 },

    /// The requested kill method is not available for this sandbox's cgroups.
    #[error("kill method {method:?} is not available here")]
    KillMethodUnavailable { method: super::KillMethod },

    /// Processes remained in the sandbox's cgroups after every kill method was tried.
    #[error("{remaining} process(es) survived killing the sandbox cgroup (e.g. pid {example})")]
    Survivors { remaining: usize, example: u32 },
}

impl CgroupError {
    pub(crate) fn read(path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self::Read {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn write(
        path: impl Into<PathBuf>,
        value: impl Into<String>,
        source: io::Error,
    ) -> Self {
        Self::Write {
            path: path.into(),
            value: value.into(),
            source,
        }
    }

    /// Converts an error of the cgroups-rs crate (which keeps the OS error as its `source`)
    /// into a `Write` naming our own path and value, so callers see one error shape.
    pub(crate) fn from_crate(
        path: PathBuf,
        value: String,
        err: &cgroups_rs::fs::error::Error,
    ) -> Self {
        let os = std::error::Error::source(err)
            .and_then(|s| s.downcast_ref::<io::Error>())
            .and_then(io::Error::raw_os_error)
            .map(io::Error::from_raw_os_error)
            .unwrap_or_else(|| io::Error::other(err.to_string()));
        Self::write(path, value, os)
    }
}
