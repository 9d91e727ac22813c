//! Reading [`Usage`]. Hand-written: cgroups-rs's memory stat reader panics (`unwrap`) on an
//! unexpected `memory.oom_control` and reads its fields by position, and its readers fold
//! errors into zeros per file anyway; a few keyed reads are simpler and cannot panic.

use super::fsio::{read_keyed, read_u64};
use super::layout::Version;
use super::{Controller, SandboxCgroup, Usage};

pub(crate) fn read(cgroup: &SandboxCgroup) -> Usage {
    let mut usage = Usage::default();
    if let Some(dir) = cgroup.dir_for(Controller::CpuAcct) {
        usage.cpu_time_us = match dir.version {
            Version::V2 => read_keyed(&dir.path.join("cpu.stat"), "usage_usec"),
            Version::V1 => read_u64(&dir.path.join("cpuacct.usage")).map(|ns| ns / 1000),
        }
        .unwrap_or(0);
    }
    if let Some(dir) = cgroup.dir_for(Controller::Memory) {
        let file = |name: &str| dir.path.join(name);
        let (peak, oom_kills, limit_hits) = match dir.version {
            Version::V2 => (
                read_u64(&file("memory.peak")),
                read_keyed(&file("memory.events"), "oom_kill"),
                read_keyed(&file("memory.events"), "max"),
            ),
            // With a memory+swap limit the memsw counter may be the one that fails (and
            // recent kernels do not count memsw failures at all): the larger count is kept.
            Version::V1 => (
                read_u64(&file("memory.max_usage_in_bytes")),
                read_keyed(&file("memory.oom_control"), "oom_kill"),
                read_u64(&file("memory.failcnt")).max(read_u64(&file("memory.memsw.failcnt"))),
            ),
        };
        usage.peak_memory_bytes = peak.unwrap_or(0);
        usage.oom_kills = oom_kills.unwrap_or(0);
        usage.memory_limit_hits = limit_hits.unwrap_or(0);
    }
    if let Some(dir) = cgroup.dir_for(Controller::Pids) {
        // Same file names on v1 and v2; pids.peak only on newer kernels.
        usage.peak_pids = read_u64(&dir.path.join("pids.peak")).unwrap_or(0);
        usage.pids_max_hits = read_keyed(&dir.path.join("pids.events"), "max").unwrap_or(0);
    }
    usage
}
