//! cgroup v2 specifics, written by hand: cgroups-rs enables controllers from the hierarchy
//! root down and ignores the errors of those writes, which hides exactly the failure that
//! matters here (the no-internal-processes rule); its freezer reports the requested state
//! (`cgroup.freeze`) rather than the reached one (`cgroup.events`); and its `kill()` needs a
//! cgroups-rs hierarchy, which it always takes as v1 on hybrid hosts.

use std::path::Path;
use std::thread::sleep;
use std::time::Duration;

use super::{CgroupError, Controller, fsio};

/// Freezing is polled this many times, [`POLL`] apart (about 1 s), before the kill goes ahead
/// anyway: a task stuck in the kernel can delay freezing indefinitely.
pub(crate) const FREEZE_POLLS: u32 = 100;
pub(crate) const POLL: Duration = Duration::from_millis(10);

/// Makes `parent` (`<node cgroup>/neuroflow`) a process-free inner node whose children get
/// `wanted`: the controllers must first be enabled in the node's own cgroup, then in `parent`.
///
/// v2 lets a non-root cgroup hand controllers to children only if it holds no processes. Like
/// systemd (Delegate=yes: the delegated cgroup's owner keeps its processes in leaves) and
/// container runtimes (runc, crun and podman create and join leaf cgroups), the node keeps
/// sandboxes below a leaf-only `neuroflow` parent. The node's own cgroup is where it runs, so
/// if its controllers are not already enabled there the write fails with EBUSY: reported as
/// [`CgroupError::InternalProcesses`] rather than moving the node behind its supervisor's back.
pub(crate) fn prepare_parent(
    node_dir: &Path,
    parent: &Path,
    wanted: &[Controller],
) -> Result<(), CgroupError> {
    if !wanted.is_empty() {
        enable(node_dir, wanted)?;
    }
    fsio::mkdir_shared(parent)?;
    if !wanted.is_empty() {
        enable(parent, wanted)?;
    }
    Ok(())
}

/// Enables the controllers of `wanted` not yet in `dir`'s cgroup.subtree_control.
fn enable(dir: &Path, wanted: &[Controller]) -> Result<(), CgroupError> {
    let file = dir.join("cgroup.subtree_control");
    let enabled = fsio::read_text(&file)?;
    let missing: Vec<String> = wanted
        .iter()
        .filter(|c| !enabled.split_whitespace().any(|e| e == c.name()))
        .map(|c| format!("+{c}"))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    fsio::write_value(&file, &missing.join(" ")).map_err(internal_processes)
}

/// EBUSY on a subtree_control write is the no-internal-processes rule; say so by name.
pub(crate) fn internal_processes(err: CgroupError) -> CgroupError {
    match err {
        CgroupError::Write {
            path,
            value,
            source,
        } if source.raw_os_error() == Some(libc::EBUSY) => CgroupError::InternalProcesses {
            path,
            controllers: value,
            source,
        },
        other => other,
    }
}

/// `cgroup.kill` (Linux 5.14+): the kernel SIGKILLs the whole subtree, forks included.
pub(crate) fn cgroup_kill(dir: &Path) -> Result<(), CgroupError> {
    fsio::write_value(&dir.join("cgroup.kill"), "1")
}

/// Freezes `dir` and waits, bounded, until `cgroup.events` says `frozen 1`.
pub(crate) fn freeze(dir: &Path) -> Result<(), CgroupError> {
    fsio::write_value(&dir.join("cgroup.freeze"), "1")?;
    let events = dir.join("cgroup.events");
    for _ in 0..FREEZE_POLLS {
        if fsio::read_keyed(&events, "frozen") == Some(1) {
            return Ok(());
        }
        sleep(POLL);
    }
    Err(freeze_timeout(dir))
}

/// Thaws `dir`.
pub(crate) fn thaw(dir: &Path) -> Result<(), CgroupError> {
    fsio::write_value(&dir.join("cgroup.freeze"), "0")
}

pub(crate) fn freeze_timeout(dir: &Path) -> CgroupError {
    let millis = u64::from(FREEZE_POLLS) * POLL.as_millis() as u64;
    CgroupError::FreezeTimeout {
        path: dir.to_owned(),
        millis,
    }
}
