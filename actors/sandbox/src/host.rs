//! What this host can give a sandbox, layer by layer.
//!
//! A profile needs a set of [`Layer`]s; a sandbox whose profile needs a layer the host
//! lacks refuses to start and names the layer (fail closed), never silently running with
//! less isolation than asked for.

use std::fmt;
use std::path::Path;

use serde::Serialize;

use crate::cgroup::layout::Version;
use crate::cgroup::{self, Controller, HostCgroups};
use crate::profile::{Isolation, Profile};

/// One isolation or limit mechanism a sandbox may need.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layer {
    PidNamespace,
    MountNamespace,
    NetworkNamespace,
    UtsNamespace,
    IpcNamespace,
    CgroupNamespace,
    UserNamespace,
    Overlayfs,
    Seccomp,
    CgroupCpu,
    CgroupCpuAccounting,
    CgroupMemory,
    CgroupSwap,
    CgroupPids,
    CgroupFreezer,
}

impl Layer {
    pub const ALL: [Layer; 15] = [
        Layer::PidNamespace,
        Layer::MountNamespace,
        Layer::NetworkNamespace,
        Layer::UtsNamespace,
        Layer::IpcNamespace,
        Layer::CgroupNamespace,
        Layer::UserNamespace,
        Layer::Overlayfs,
        Layer::Seccomp,
        Layer::CgroupCpu,
        Layer::CgroupCpuAccounting,
        Layer::CgroupMemory,
        Layer::CgroupSwap,
        Layer::CgroupPids,
        Layer::CgroupFreezer,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::PidNamespace => "pid-namespace",
            Self::MountNamespace => "mount-namespace",
            Self::NetworkNamespace => "network-namespace",
            Self::UtsNamespace => "uts-namespace",
            Self::IpcNamespace => "ipc-namespace",
            Self::CgroupNamespace => "cgroup-namespace",
            Self::UserNamespace => "user-namespace",
            Self::Overlayfs => "overlayfs",
            Self::Seccomp => "seccomp",
            Self::CgroupCpu => "cgroup-cpu",
            Self::CgroupCpuAccounting => "cgroup-cpuacct",
            Self::CgroupMemory => "cgroup-memory",
            Self::CgroupSwap => "cgroup-swap",
            Self::CgroupPids => "cgroup-pids",
            Self::CgroupFreezer => "cgroup-freezer",
        }
    }
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// One layer's verdict, with the evidence for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LayerStatus {
    pub layer: Layer,
    pub available: bool,
    pub detail: String,
}

/// What the host supports, detected once per sandbox factory.
#[derive(Debug, Clone)]
pub struct HostSupport {
    pub is_root: bool,
    pub layers: Vec<LayerStatus>,
    pub cgroups: Option<HostCgroups>,
    /// Whether the host has swap at all (without it, a swap limit of 0 holds by itself).
    pub has_swap: bool,
}

impl HostSupport {
    pub fn detect() -> HostSupport {
        let is_root = nix::unistd::Uid::effective().is_root();
        let cgroups = cgroup::detect();
        let mut layers = Vec::new();
        let mut push = |layer, available, detail: String| {
            layers.push(LayerStatus {
                layer,
                available,
                detail,
            })
        };
        for (layer, ns) in [
            (Layer::PidNamespace, "pid"),
            (Layer::MountNamespace, "mnt"),
            (Layer::NetworkNamespace, "net"),
            (Layer::UtsNamespace, "uts"),
            (Layer::IpcNamespace, "ipc"),
            (Layer::CgroupNamespace, "cgroup"),
        ] {
            let ok = Path::new("/proc/self/ns").join(ns).exists();
            push(layer, ok, format!("/proc/self/ns/{ns} present: {ok}"));
        }
        let (userns, detail) = user_namespaces();
        push(Layer::UserNamespace, userns, detail);
        let overlay = read("/proc/filesystems")
            .lines()
            .any(|l| l.split_whitespace().last() == Some("overlay"));
        push(
            Layer::Overlayfs,
            overlay,
            format!("overlay in /proc/filesystems: {overlay}"),
        );
        let seccomp = Path::new("/proc/sys/kernel/seccomp/actions_avail").exists();
        push(
            Layer::Seccomp,
            seccomp,
            format!("seccomp filter mode (kernel/seccomp/actions_avail): {seccomp}"),
        );
        match &cgroups {
            Ok(host) => {
                for (layer, controller) in [
                    (Layer::CgroupCpu, Controller::Cpu),
                    (Layer::CgroupCpuAccounting, Controller::CpuAcct),
                    (Layer::CgroupMemory, Controller::Memory),
                    (Layer::CgroupPids, Controller::Pids),
                    (Layer::CgroupFreezer, Controller::Freezer),
                ] {
                    let ok = host.supports(controller);
                    // Root manages any cgroup; anyone else only a delegated one: the node's
                    // own cgroup must be writable to it in that controller's hierarchy.
                    let delegated = is_root || delegated_to_us(host, controller);
                    push(
                        layer,
                        ok && delegated,
                        format!(
                            "{controller} controller ({} layout): {}",
                            host.layout_name(),
                            if !ok {
                                "absent"
                            } else if is_root {
                                "present"
                            } else if delegated {
                                "present, delegated to this user"
                            } else {
                                "present, but not delegated to this user (not root)"
                            }
                        ),
                    );
                }
                let swap = swap_accounting(host);
                let delegated = is_root || delegated_to_us(host, Controller::Memory);
                push(
                    Layer::CgroupSwap,
                    swap && delegated,
                    format!("swap accounting: {swap}"),
                );
            }
            Err(e) => {
                for layer in [
                    Layer::CgroupCpu,
                    Layer::CgroupCpuAccounting,
                    Layer::CgroupMemory,
                    Layer::CgroupPids,
                    Layer::CgroupFreezer,
                    Layer::CgroupSwap,
                ] {
                    push(layer, false, format!("cgroups not usable: {e}"));
                }
            }
        }
        let has_swap = read("/proc/swaps").lines().count() > 1;
        HostSupport {
            is_root,
            layers,
            cgroups: cgroups.ok(),
            has_swap,
        }
    }

    pub fn has(&self, layer: Layer) -> bool {
        self.layers.iter().any(|s| s.layer == layer && s.available)
    }

    /// The layers `profile` needs, in a stable order.
    pub fn required(&self, profile: &Profile) -> Vec<Layer> {
        if profile.isolation == Isolation::Minimal {
            return Vec::new();
        }
        let mut need = vec![
            Layer::PidNamespace,
            Layer::MountNamespace,
            Layer::NetworkNamespace,
            Layer::UtsNamespace,
            Layer::IpcNamespace,
            Layer::CgroupNamespace,
            Layer::Seccomp,
            Layer::CgroupCpuAccounting,
            Layer::CgroupFreezer,
        ];
        if profile.user_namespace || !self.is_root {
            need.push(Layer::UserNamespace);
        }
        if !profile.read_only_root {
            need.push(Layer::Overlayfs);
        }
        let limits = &profile.limits;
        if limits.cpu_millicores.is_some() {
            need.push(Layer::CgroupCpu);
        }
        if limits.memory.is_some() {
            need.push(Layer::CgroupMemory);
        }
        if limits.pids.is_some() {
            need.push(Layer::CgroupPids);
        }
        // Without swap on the host a limit of no swap holds by itself.
        if limits.swap.is_some_and(|s| s.0 > 0 || self.has_swap) {
            need.push(Layer::CgroupSwap);
        }
        need.sort();
        need
    }

    /// The first layer `profile` needs that this host cannot give, if any.
    pub fn missing(&self, profile: &Profile) -> Option<&LayerStatus> {
        self.required(profile).into_iter().find_map(|layer| {
            self.layers
                .iter()
                .find(|s| s.layer == layer && !s.available)
        })
    }
}

fn user_namespaces() -> (bool, String) {
    let max = read("/proc/sys/user/max_user_namespaces");
    let max: u64 = max.trim().parse().unwrap_or(0);
    if max == 0 {
        return (false, "user.max_user_namespaces is 0".into());
    }
    // Debian's switch for unprivileged use; root may create them regardless.
    let unprivileged = read("/proc/sys/kernel/unprivileged_userns_clone");
    if unprivileged.trim() == "0" && !nix::unistd::Uid::effective().is_root() {
        return (false, "kernel.unprivileged_userns_clone is 0".into());
    }
    (true, format!("user.max_user_namespaces = {max}"))
}

/// Whether this (non-root) process may create cgroups under its own in the hierarchy of
/// `controller`, and in every other hierarchy a sandbox's cgroup spans.
fn delegated_to_us(host: &HostCgroups, controller: Controller) -> bool {
    let writable = |dir: &Path| nix::unistd::access(dir, nix::unistd::AccessFlags::W_OK).is_ok();
    host.hierarchies()
        .iter()
        .filter(|h| h.controllers.contains(&controller) || h.controllers.is_empty())
        .all(|h| writable(&h.node_dir))
}

/// Whether the memory controller can also limit swap: on v1 only with swap accounting
/// (`memory.memsw.*`); on v2 it is part of the memory controller (Linux 5.8 and later).
fn swap_accounting(host: &HostCgroups) -> bool {
    host.hierarchies()
        .iter()
        .filter(|h| h.controllers.contains(&Controller::Memory))
        .any(|h| match h.version {
            Version::V1 => h.node_dir.join("memory.memsw.limit_in_bytes").exists(),
            Version::V2 => true,
        })
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}
