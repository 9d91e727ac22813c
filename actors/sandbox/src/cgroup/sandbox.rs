//! [`SandboxCgroup`]: the directories of one sandbox, one per hierarchy, and their lifecycle.

use std::ffi::CString;
use std::fs;
use std::io::ErrorKind;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::Duration;

use super::layout::{V2_ENABLED, Version};
use super::{
    CgroupError, Controller, HostCgroups, KillMethod, PARENT_DIR, Usage, fsio, kill, usage, v2,
};

/// The sandbox's cgroup in one hierarchy.
#[derive(Debug)]
pub(crate) struct Dir {
    pub(crate) version: Version,
    pub(crate) mount: PathBuf,
    pub(crate) path: PathBuf,
    pub(crate) controllers: Vec<Controller>,
    procs: CString,
}

/// The cgroups of one sandbox. Dropping it without [`destroy`](Self::destroy) still kills the
/// processes and removes the directories, best effort, logging what failed.
#[derive(Debug)]
pub struct SandboxCgroup {
    name: String,
    layout: &'static str,
    dirs: Vec<Dir>,
    torn_down: bool,
}

/// rmdir retries on EBUSY: killed processes take a moment to leave. About 1.3 s in all.
const RMDIR_DELAYS_MS: [u64; 10] = [5, 10, 20, 40, 80, 160, 250, 250, 250, 250];

impl SandboxCgroup {
    /// Creates `<node cgroup>/neuroflow/<name>` in every hierarchy. On error the directories
    /// made so far are removed again (by `Drop`).
    pub(crate) fn create_dirs(host: &HostCgroups, name: &str) -> Result<Self, CgroupError> {
        let mut cgroup = Self {
            name: name.to_owned(),
            layout: host.layout_name(),
            dirs: Vec::new(),
            torn_down: false,
        };
        for h in host.hierarchies() {
            let parent = h.node_dir.join(PARENT_DIR);
            match h.version {
                Version::V2 => {
                    let wanted: Vec<Controller> = h
                        .controllers
                        .iter()
                        .copied()
                        .filter(|c| V2_ENABLED.contains(c))
                        .collect();
                    v2::prepare_parent(&h.node_dir, &parent, &wanted)?;
                }
                Version::V1 => fsio::mkdir_shared(&parent)?,
            }
            let path = parent.join(name);
            let procs =
                CString::new(path.join("cgroup.procs").as_os_str().as_bytes()).map_err(|_| {
                    CgroupError::Create {
                        path: path.clone(),
                        source: ErrorKind::InvalidInput.into(),
                    }
                })?;
            match fs::create_dir(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                    return Err(CgroupError::Exists { path });
                }
                Err(source) => return Err(CgroupError::Create { path, source }),
            }
            let (version, mount, controllers) = (h.version, h.mount.clone(), h.controllers.clone());
            cgroup.dirs.push(Dir {
                version,
                mount,
                path,
                controllers,
                procs,
            });
        }
        Ok(cgroup)
    }

    /// The sandbox name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `"v2"`, `"v1"` or `"hybrid"`.
    pub fn layout_name(&self) -> &'static str {
        self.layout
    }

    /// The sandbox's cgroup directories, one per hierarchy.
    pub fn paths(&self) -> Vec<&Path> {
        self.dirs.iter().map(|d| d.path.as_path()).collect()
    }

    /// Absolute paths of every hierarchy's `cgroup.procs` for this sandbox. A child between
    /// fork and exec joins all of them by writing "0" to each (open/write/close only).
    pub fn procs_files(&self) -> Vec<CString> {
        self.dirs.iter().map(|d| d.procs.clone()).collect()
    }

    /// Moves process `pid` (all its threads) into the sandbox's cgroups.
    pub fn add_pid(&self, pid: u32) -> Result<(), CgroupError> {
        let value = pid.to_string();
        self.dirs
            .iter()
            .try_for_each(|d| fsio::write_value(&d.path.join("cgroup.procs"), &value))
    }

    /// Every process in the sandbox's cgroups, including nested cgroups the sandbox made,
    /// sorted and without duplicates.
    pub fn pids(&self) -> Vec<u32> {
        let mut pids: Vec<u32> = self
            .dirs
            .iter()
            .flat_map(|d| fsio::subtree(&d.path))
            .filter_map(|dir| fs::read_to_string(dir.join("cgroup.procs")).ok())
            .flat_map(|text| fsio::parse_pids(&text))
            .collect();
        pids.sort_unstable();
        pids.dedup();
        pids
    }

    /// Accounting so far; figures the host cannot give read 0.
    pub fn usage(&self) -> Usage {
        usage::read(self)
    }

    /// Kill methods usable here, strongest first.
    pub fn kill_methods(&self) -> Vec<KillMethod> {
        kill::methods(self)
    }

    /// Kills every process of the sandbox with the strongest method available, falling back to
    /// the next when processes survive; returns once the cgroups are empty.
    pub fn kill_all(&self) -> Result<(), CgroupError> {
        kill::kill_all(self)
    }

    /// Kills with one given method only (for diagnostics, and so each method can be tested).
    pub fn kill_all_using(&self, method: KillMethod) -> Result<(), CgroupError> {
        kill::kill_using(self, method)
    }

    /// Kills every process and removes the sandbox's directories (not the shared parent).
    pub fn destroy(mut self) -> Result<(), CgroupError> {
        self.teardown()
    }

    pub(crate) fn dir_for(&self, c: Controller) -> Option<&Dir> {
        self.dirs.iter().find(|d| d.controllers.contains(&c))
    }

    pub(crate) fn dirs(&self) -> &[Dir] {
        &self.dirs
    }

    fn teardown(&mut self) -> Result<(), CgroupError> {
        if self.torn_down {
            return Ok(());
        }
        self.torn_down = true;
        let killed = kill::kill_all(self);
        let mut first_err = None;
        // Descendants before ancestors: nested cgroups the sandbox made go first.
        for dir in self.dirs.iter().rev() {
            for sub in fsio::subtree(&dir.path).iter().rev() {
                if let Err(e) = rmdir_retrying(sub) {
                    first_err.get_or_insert(e);
                }
            }
        }
        match (first_err, killed) {
            (Some(e), _) => Err(e),
            // Empty directories are gone, so nothing survived after all.
            (None, Err(e)) => {
                tracing::debug!(sandbox = %self.name, error = %e, "kill reported survivors, but the cgroups emptied");
                Ok(())
            }
            (None, Ok(())) => Ok(()),
        }
    }
}

impl Drop for SandboxCgroup {
    fn drop(&mut self) {
        if let Err(e) = self.teardown() {
            tracing::warn!(sandbox = %self.name, error = %e, "sandbox cgroup cleanup failed");
        }
    }
}

/// rmdir, retrying while the kernel still counts exiting processes (EBUSY). A directory that
/// is already gone counts as removed.
fn rmdir_retrying(path: &Path) -> Result<(), CgroupError> {
    let mut retries = RMDIR_DELAYS_MS.iter();
    loop {
        let err = match fs::remove_dir(path) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) => e,
        };
        match retries.next() {
            Some(&ms) if err.raw_os_error() == Some(libc::EBUSY) => {
                sleep(Duration::from_millis(ms))
            }
            _ => {
                return Err(CgroupError::Remove {
                    path: path.to_owned(),
                    source: err,
                });
            }
        }
    }
}
