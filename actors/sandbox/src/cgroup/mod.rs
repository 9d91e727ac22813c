//! Cgroup layer of the sandbox: limits, accounting and reliable teardown of one sandbox's
//! process tree, on cgroup v2, cgroup v1 and hybrid hosts alike.
//!
//! ```text
//! detect() ──> HostCgroups ──create(name, limits)──> SandboxCgroup
//!                                                     ├─ procs_files() / add_pid()  place processes
//!                                                     ├─ usage()                     accounting
//!                                                     └─ kill_all() / destroy()      teardown
//! ```
//!
//! A sandbox's cgroup is `<mount>/<node's own cgroup>/neuroflow/<name>` in every hierarchy that
//! holds a controller used here (cpu, cpuacct, memory, pids, freezer). On a hybrid host the
//! controllers come from the v1 mounts and the sandbox also gets a directory in the (controller
//! less) unified hierarchy, like runc does: it tracks the same processes and offers cgroup.kill.
//! The `neuroflow` parent is shared by the node's sandboxes and left in place.

mod error;
mod fsio;
mod kill;
pub mod layout;
mod limits;
mod sandbox;
mod usage;
mod v2;

#[cfg(test)]
mod tests;

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

pub use error::CgroupError;
pub use kill::KillMethod;
use layout::Hierarchy;
pub use sandbox::SandboxCgroup;

/// Name of the per-node parent directory that holds the sandboxes' cgroups.
pub const PARENT_DIR: &str = "neuroflow";

/// The controllers (and, on v2, core features) this layer uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Controller {
    /// CPU bandwidth limit (v1 cpu.cfs_quota_us, v2 cpu.max).
    Cpu,
    /// CPU time accounting (v1 cpuacct.usage; v2 cpu.stat, always present).
    CpuAcct,
    /// Memory and swap limits, peak memory, OOM kills.
    Memory,
    /// Process count limit.
    Pids,
    /// Freezing for race-free kills (v1 freezer.state; v2 cgroup.freeze, always present).
    Freezer,
}

impl Controller {
    /// The kernel's name of the controller.
    pub fn name(self) -> &'static str {
        match self {
            Self::Cpu => "cpu",
            Self::CpuAcct => "cpuacct",
            Self::Memory => "memory",
            Self::Pids => "pids",
            Self::Freezer => "freezer",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        [
            Self::Cpu,
            Self::CpuAcct,
            Self::Memory,
            Self::Pids,
            Self::Freezer,
        ]
        .into_iter()
        .find(|c| c.name() == name)
    }
}

impl fmt::Display for Controller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How the host mounts cgroups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Only the unified hierarchy.
    V2,
    /// Only per-controller (possibly co-mounted) v1 hierarchies.
    V1,
    /// v1 controllers plus a unified hierarchy (typically without controllers).
    Hybrid,
}

/// Resource limits of one sandbox; `None` leaves a resource unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupLimits {
    /// CPU bandwidth in thousandths of a CPU (1000 = one full CPU); at least 10.
    pub cpu_quota_millicores: Option<u64>,
    /// Memory (RAM) limit in bytes.
    pub memory_bytes: Option<u64>,
    /// Swap allowed on top of `memory_bytes`. Needs swap accounting (fails otherwise); on v1
    /// it is written as memory+swap, so it needs `memory_bytes` too.
    pub swap_bytes: Option<u64>,
    /// Maximum number of processes (and threads).
    pub pids_max: Option<u64>,
}

/// Accounting of one sandbox, read during or after the run. A figure the host cannot give
/// reads 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// CPU time used, user + system, in microseconds.
    pub cpu_time_us: u64,
    /// Highest memory use in bytes (v1 max_usage_in_bytes, v2 memory.peak from Linux 5.19).
    pub peak_memory_bytes: u64,
    /// Highest number of processes (pids.peak, where the kernel has it).
    pub peak_pids: u64,
    /// Processes killed by the OOM killer inside the sandbox.
    pub oom_kills: u64,
    /// Forks refused because pids_max was reached.
    pub pids_max_hits: u64,
    /// Times the memory limit was hit (v1 memory.failcnt, v2 memory.events `max`).
    pub memory_limit_hits: u64,
}

/// The host's cgroup hierarchies and the node's own cgroup in each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostCgroups {
    layout: Layout,
    hierarchies: Vec<Hierarchy>,
}

/// Detects the layout of this host from /proc/self/mountinfo and /proc/self/cgroup.
pub fn detect() -> Result<HostCgroups, CgroupError> {
    let mountinfo = fsio::read_text(Path::new("/proc/self/mountinfo"))?;
    let own = fsio::read_text(Path::new("/proc/self/cgroup"))?;
    let first = layout::parse(&mountinfo, &own, "")?;
    let Some(dir) = layout::v2_node_dir(&first) else {
        return Ok(first);
    };
    // An unreadable cgroup.controllers just means v2 offers no controllers to this node.
    let controllers = fsio::read_text(&dir.join("cgroup.controllers")).unwrap_or_default();
    layout::parse(&mountinfo, &own, &controllers)
}

impl HostCgroups {
    /// The layout kind.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// `"v2"`, `"v1"` or `"hybrid"`, for logs and error messages.
    pub fn layout_name(&self) -> &'static str {
        match self.layout {
            Layout::V2 => "v2",
            Layout::V1 => "v1",
            Layout::Hybrid => "hybrid",
        }
    }

    /// Controllers available to sandboxes of this node.
    pub fn controllers(&self) -> Vec<Controller> {
        self.hierarchies
            .iter()
            .flat_map(|h| h.controllers.iter().copied())
            .collect()
    }

    /// Whether `controller` is available.
    pub fn supports(&self, controller: Controller) -> bool {
        self.hierarchies
            .iter()
            .any(|h| h.controllers.contains(&controller))
    }

    /// Whether a swap limit can be enforced: the kernel accounts swap (the memsw files on v1,
    /// `memory.swap.max` on v2). A v2 root cgroup has no memory files of its own, so there its
    /// children are asked instead. `create` checks again and fails closed.
    pub fn supports_swap_limit(&self) -> bool {
        let Some(h) = self
            .hierarchies
            .iter()
            .find(|h| h.controllers.contains(&Controller::Memory))
        else {
            return false;
        };
        let file = match h.version {
            layout::Version::V1 => "memory.memsw.limit_in_bytes",
            layout::Version::V2 => "memory.swap.max",
        };
        if h.node_dir.join(file).exists() {
            return true;
        }
        if h.node_dir != h.mount {
            return false;
        }
        let children = std::fs::read_dir(&h.node_dir)
            .into_iter()
            .flatten()
            .flatten();
        children.take(256).any(|e| e.path().join(file).exists())
    }

    /// The hierarchies found, with the node's own cgroup in each.
    pub fn hierarchies(&self) -> &[Hierarchy] {
        &self.hierarchies
    }

    /// Creates the cgroup of sandbox `name` in every hierarchy and applies `limits`. Fails,
    /// leaving nothing behind, when a requested limit cannot be enforced here.
    pub fn create(&self, name: &str, limits: &CgroupLimits) -> Result<SandboxCgroup, CgroupError> {
        validate_name(name)?;
        limits::check_supported(self, limits)?;
        let cgroup = SandboxCgroup::create_dirs(self, name)?;
        limits::apply(&cgroup, limits)?;
        Ok(cgroup)
    }
}

/// A sandbox name must be one plain directory name: no `/`, no `..`, no leading dot, only
/// unremarkable characters. (A name equal to a control file's fails later as `Exists`.)
fn validate_name(name: &str) -> Result<(), CgroupError> {
    let bad = |reason| {
        Err(CgroupError::InvalidName {
            name: name.to_owned(),
            reason,
        })
    };
    if name.is_empty() || name.len() > 128 {
        return bad("must be 1 to 128 bytes long");
    }
    if name.contains('/') || name.contains("..") {
        return bad("must not contain '/' or '..'");
    }
    if name.starts_with('.') {
        return bad("must not start with '.'");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        return bad("only ASCII letters, digits, '-', '_' and '.' are allowed");
    }
    Ok(())
}
