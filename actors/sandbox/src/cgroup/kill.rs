//! Killing every process of a sandbox, including ones that ignore SIGTERM or fork to escape.
//!
//! Signalling pids read from cgroup.procs races with forks (a child born after the read is
//! missed) and with pid reuse (a pid that exits after the read may be reused). Freezing
//! first closes both races: frozen tasks neither fork nor exit. `cgroup.kill` avoids them in
//! the kernel. Without either, repeated passes shrink the window but cannot close it.

use std::thread::sleep;

use cgroups_rs::FreezerState;
use cgroups_rs::fs::freezer::FreezerController;
use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use super::layout::Version;
use super::sandbox::Dir;
use super::v2::{self, FREEZE_POLLS, POLL};
use super::{CgroupError, Controller, SandboxCgroup};

/// A way to kill a sandbox's processes, strongest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KillMethod {
    /// v2 `cgroup.kill` (Linux 5.14+): one write, the kernel kills the whole subtree.
    CgroupKill,
    /// v2 `cgroup.freeze`, SIGKILL every listed pid, thaw.
    FreezeV2,
    /// v1 `freezer.state` FROZEN, SIGKILL every listed pid, THAWED.
    FreezeV1,
    /// Repeated SIGKILL passes over the listed pids, for hosts with no freezer at all.
    SignalPasses,
}

/// Bound on [`KillMethod::SignalPasses`].
const SIGNAL_PASSES: u32 = 10;
/// After signalling, the cgroups are polled this many times, [`POLL`] apart (about 2 s),
/// for the processes to be gone.
const EMPTY_POLLS: u32 = 200;

pub(crate) fn methods(cgroup: &SandboxCgroup) -> Vec<KillMethod> {
    let mut out = Vec::new();
    if let Some(dir) = v2_dir(cgroup) {
        if dir.path.join("cgroup.kill").exists() {
            out.push(KillMethod::CgroupKill);
        }
        if dir.path.join("cgroup.freeze").exists() {
            out.push(KillMethod::FreezeV2);
        }
    }
    if v1_freezer(cgroup).is_some() {
        out.push(KillMethod::FreezeV1);
    }
    out.push(KillMethod::SignalPasses);
    out
}

/// Tries each available method in turn until the sandbox's cgroups are empty.
pub(crate) fn kill_all(cgroup: &SandboxCgroup) -> Result<(), CgroupError> {
    let methods = methods(cgroup);
    if methods == [KillMethod::SignalPasses] {
        tracing::debug!(
            sandbox = cgroup.name(),
            "no freezer and no cgroup.kill: killing by repeated signal passes"
        );
    }
    let mut result = Ok(());
    for method in methods {
        result = kill_using(cgroup, method);
        match &result {
            Ok(()) => break,
            Err(e) => {
                tracing::warn!(sandbox = cgroup.name(), ?method, error = %e, "kill method fell short")
            }
        }
    }
    result
}

pub(crate) fn kill_using(cgroup: &SandboxCgroup, method: KillMethod) -> Result<(), CgroupError> {
    let unavailable = CgroupError::KillMethodUnavailable { method };
    if !methods(cgroup).contains(&method) {
        return Err(unavailable);
    }
    match method {
        KillMethod::CgroupKill => v2::cgroup_kill(&v2_dir(cgroup).ok_or(unavailable)?.path)?,
        KillMethod::FreezeV2 => {
            let dir = &v2_dir(cgroup).ok_or(unavailable)?.path;
            let frozen = v2::freeze(dir);
            signal_all(cgroup);
            v2::thaw(dir)?;
            warn_unfrozen(cgroup, frozen);
        }
        KillMethod::FreezeV1 => {
            let dir = v1_freezer(cgroup).ok_or(unavailable)?;
            // cgroups-rs's v1 freezer reads back the reached state (FREEZING vs FROZEN), so it
            // is used as is; only the bounded wait around it is ours.
            let freezer = FreezerController::new(dir.path.clone(), dir.mount.clone(), false);
            let state_file = dir.path.join("freezer.state");
            let frozen = freeze_v1(&freezer, dir);
            signal_all(cgroup);
            // Frozen v1 tasks cannot act on SIGKILL until thawed.
            freezer
                .thaw()
                .map_err(|e| CgroupError::from_crate(state_file, "THAWED".into(), &e))?;
            warn_unfrozen(cgroup, frozen);
        }
        KillMethod::SignalPasses => {
            for _ in 0..SIGNAL_PASSES {
                if signal_all(cgroup) == 0 {
                    break;
                }
                sleep(POLL * 2);
            }
        }
    }
    wait_empty(cgroup)
}

fn freeze_v1(freezer: &FreezerController, dir: &Dir) -> Result<(), CgroupError> {
    let state_file = dir.path.join("freezer.state");
    for _ in 0..FREEZE_POLLS {
        // Writing FROZEN again nudges a cgroup stuck in FREEZING (kernel freezer docs).
        freezer
            .freeze()
            .map_err(|e| CgroupError::from_crate(state_file.clone(), "FROZEN".into(), &e))?;
        if matches!(freezer.state(), Ok(FreezerState::Frozen)) {
            return Ok(());
        }
        sleep(POLL);
    }
    Err(v2::freeze_timeout(&dir.path))
}

/// A freeze that timed out still gets its kill pass; it is only worth a log line.
fn warn_unfrozen(cgroup: &SandboxCgroup, frozen: Result<(), CgroupError>) {
    if let Err(e) = frozen {
        tracing::warn!(sandbox = cgroup.name(), error = %e, "killed without a complete freeze");
    }
}

/// SIGKILLs every listed pid; returns how many were listed. Never signals pid 1 or the node
/// itself, should either ever be placed in a sandbox's cgroup by mistake.
fn signal_all(cgroup: &SandboxCgroup) -> usize {
    let me = std::process::id();
    let pids = cgroup.pids();
    for &pid in &pids {
        let Ok(raw) = i32::try_from(pid) else {
            continue;
        };
        if pid <= 1 || pid == me {
            tracing::warn!(
                sandbox = cgroup.name(),
                pid,
                "refusing to kill pid 1 or the node itself"
            );
            continue;
        }
        match kill(Pid::from_raw(raw), Signal::SIGKILL) {
            Ok(()) | Err(Errno::ESRCH) => {}
            Err(e) => tracing::warn!(sandbox = cgroup.name(), pid, error = %e, "SIGKILL failed"),
        }
    }
    pids.len()
}

fn wait_empty(cgroup: &SandboxCgroup) -> Result<(), CgroupError> {
    for _ in 0..EMPTY_POLLS {
        if cgroup.pids().is_empty() {
            return Ok(());
        }
        sleep(POLL);
    }
    match cgroup.pids().as_slice() {
        [] => Ok(()),
        pids => Err(CgroupError::Survivors {
            remaining: pids.len(),
            example: pids[0],
        }),
    }
}

fn v2_dir(cgroup: &SandboxCgroup) -> Option<&Dir> {
    cgroup.dirs().iter().find(|d| d.version == Version::V2)
}

fn v1_freezer(cgroup: &SandboxCgroup) -> Option<&Dir> {
    cgroup
        .dirs()
        .iter()
        .find(|d| d.version == Version::V1 && d.controllers.contains(&Controller::Freezer))
}
