//! Applying [`CgroupLimits`]. The writes go through cgroups-rs's controllers, constructed at
//! our own per-hierarchy directories: they already know each file's v1 and v2 name and
//! format (`cpu.max` read-modify-write, `max` for unlimited, ...). The checks around them —
//! which controller a limit needs, swap accounting, v1's memory+swap arithmetic — are ours.

use cgroups_rs::fs::MaxValue;
use cgroups_rs::fs::cpu::CpuController;
use cgroups_rs::fs::memory::MemController;
use cgroups_rs::fs::pid::PidController;

use super::layout::Version;
use super::sandbox::Dir;
use super::{CgroupError, CgroupLimits, Controller, HostCgroups, SandboxCgroup};

/// CFS period used with every quota: the kernel default, 100 ms.
const CPU_PERIOD_US: u64 = 100_000;

/// Refuses, before anything is created, limits this host cannot enforce or that make no sense.
pub(crate) fn check_supported(
    host: &HostCgroups,
    limits: &CgroupLimits,
) -> Result<(), CgroupError> {
    let need = |c: Controller| {
        if host.supports(c) {
            Ok(())
        } else {
            Err(CgroupError::ControllerUnavailable {
                controller: c,
                layout: host.layout_name(),
            })
        }
    };
    if let Some(m) = limits.cpu_quota_millicores {
        cpu_quota_us(m)?;
        need(Controller::Cpu)?;
    }
    if let Some(bytes) = limits.memory_bytes {
        positive_i64("memory", bytes)?;
        need(Controller::Memory)?;
    }
    if let Some(swap) = limits.swap_bytes {
        need(Controller::Memory)?;
        let memory_version = host
            .hierarchies()
            .iter()
            .find(|h| h.controllers.contains(&Controller::Memory))
            .map(|h| h.version);
        if memory_version == Some(Version::V1) {
            let Some(memory) = limits.memory_bytes else {
                return Err(CgroupError::InvalidLimit {
                    limit: "swap",
                    reason: "cgroup v1 limits memory+swap together, so a swap limit needs memory_bytes",
                });
            };
            positive_i64("swap", memory.saturating_add(swap))?;
        } else {
            i64::try_from(swap).map_err(|_| too_large("swap"))?;
        }
    }
    if let Some(n) = limits.pids_max {
        positive_i64("pids", n)?;
        need(Controller::Pids)?;
    }
    Ok(())
}

/// Writes every requested limit into the sandbox's cgroups. Assumes [`check_supported`] passed.
pub(crate) fn apply(cgroup: &SandboxCgroup, limits: &CgroupLimits) -> Result<(), CgroupError> {
    if let Some(m) = limits.cpu_quota_millicores {
        let dir = dir_of(cgroup, Controller::Cpu)?;
        let quota = cpu_quota_us(m)?;
        let (file, value) = match dir.version {
            Version::V2 => ("cpu.max", format!("{quota} {CPU_PERIOD_US}")),
            Version::V1 => ("cpu.cfs_quota_us", quota.to_string()),
        };
        CpuController::new(dir.path.clone(), dir.mount.clone(), is_v2(dir))
            .set_cfs_quota_and_period(Some(quota), Some(CPU_PERIOD_US))
            .map_err(|e| CgroupError::from_crate(dir.path.join(file), value, &e))?;
    }
    if limits.memory_bytes.is_some() || limits.swap_bytes.is_some() {
        let dir = dir_of(cgroup, Controller::Memory)?;
        let mem = MemController::new(dir.path.clone(), dir.mount.clone(), is_v2(dir));
        let memory_file = if is_v2(dir) {
            "memory.max"
        } else {
            "memory.limit_in_bytes"
        };
        if let Some(bytes) = limits.memory_bytes {
            let bytes = positive_i64("memory", bytes)?;
            mem.set_limit(bytes).map_err(|e| {
                CgroupError::from_crate(dir.path.join(memory_file), bytes.to_string(), &e)
            })?;
        }
        if let Some(swap) = limits.swap_bytes {
            // Written after the memory limit: v1 refuses memsw below memory.limit_in_bytes.
            let (file, value) = match dir.version {
                Version::V2 => (
                    "memory.swap.max",
                    i64::try_from(swap).map_err(|_| too_large("swap"))?,
                ),
                Version::V1 => {
                    let total = limits.memory_bytes.unwrap_or(0).saturating_add(swap);
                    ("memory.memsw.limit_in_bytes", positive_i64("swap", total)?)
                }
            };
            let path = dir.path.join(file);
            if !path.exists() {
                return Err(CgroupError::SwapAccountingUnavailable { file: path });
            }
            mem.set_memswap_limit(value)
                .map_err(|e| CgroupError::from_crate(path, value.to_string(), &e))?;
        }
    }
    if let Some(n) = limits.pids_max {
        let dir = dir_of(cgroup, Controller::Pids)?;
        let n = positive_i64("pids", n)?;
        PidController::new(dir.path.clone(), dir.mount.clone(), is_v2(dir))
            .set_pid_max(MaxValue::Value(n))
            .map_err(|e| CgroupError::from_crate(dir.path.join("pids.max"), n.to_string(), &e))?;
    }
    Ok(())
}

fn is_v2(dir: &Dir) -> bool {
    dir.version == Version::V2
}

fn dir_of(cgroup: &SandboxCgroup, c: Controller) -> Result<&Dir, CgroupError> {
    cgroup.dir_for(c).ok_or(CgroupError::ControllerUnavailable {
        controller: c,
        layout: cgroup.layout_name(),
    })
}

/// Millicores to a quota per [`CPU_PERIOD_US`]; the kernel's minimum quota is 1 ms.
fn cpu_quota_us(millicores: u64) -> Result<i64, CgroupError> {
    if millicores < 10 {
        return Err(CgroupError::InvalidLimit {
            limit: "cpu",
            reason: "must be at least 10 millicores",
        });
    }
    let quota = millicores.saturating_mul(CPU_PERIOD_US / 1000);
    i64::try_from(quota).map_err(|_| too_large("cpu"))
}

fn positive_i64(limit: &'static str, value: u64) -> Result<i64, CgroupError> {
    if value == 0 {
        return Err(CgroupError::InvalidLimit {
            limit,
            reason: "must be greater than zero",
        });
    }
    i64::try_from(value).map_err(|_| too_large(limit))
}

fn too_large(limit: &'static str) -> CgroupError {
    CgroupError::InvalidLimit {
        limit,
        reason: "too large",
    }
}
