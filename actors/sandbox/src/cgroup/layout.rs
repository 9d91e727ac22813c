//! Layout detection: a pure function over the text of /proc/self/mountinfo, /proc/self/cgroup
//! and the node's cgroup v2 `cgroup.controllers`, so every layout is testable from fixtures.
//!
//! Written by hand rather than taken from cgroups-rs: its v2 hierarchy is hard-wired to
//! /sys/fs/cgroup, its mountinfo parser is private, and neither knows the node's own cgroup
//! (the directory sandboxes must nest under).

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Component, Path, PathBuf};

use super::{CgroupError, Controller, HostCgroups, Layout};

/// Whether a hierarchy is a legacy (v1) or unified (v2) one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

/// One mounted hierarchy and the node's own cgroup in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    pub version: Version,
    /// Where the hierarchy is mounted.
    pub mount: PathBuf,
    /// The node's own cgroup directory: mount point + own path from /proc/self/cgroup.
    pub node_dir: PathBuf,
    /// Controllers this layer uses from this hierarchy. On v2 this includes the core
    /// features `cpuacct` (cpu.stat) and `freezer` (cgroup.freeze) when no v1 mount gives them.
    pub controllers: Vec<Controller>,
}

/// v2 controllers this layer enables for sandboxes.
pub(crate) const V2_ENABLED: [Controller; 3] =
    [Controller::Cpu, Controller::Memory, Controller::Pids];

/// Builds the host's cgroup picture. `v2_controllers` is the content of the node's v2
/// `cgroup.controllers` (empty when there is no unified hierarchy).
pub fn parse(
    mountinfo: &str,
    proc_self_cgroup: &str,
    v2_controllers: &str,
) -> Result<HostCgroups, CgroupError> {
    let own = parse_proc_cgroup(proc_self_cgroup);
    let mut hierarchies: Vec<Hierarchy> = Vec::new();
    let mut unified: Option<Hierarchy> = None;

    for mount in mountinfo.lines().filter_map(parse_mount_line) {
        if mount.fs_type == "cgroup2" {
            // The first cgroup2 mount wins; later ones are bind mounts of the same hierarchy.
            if unified.is_some() {
                continue;
            }
            let Some((_, path)) = own.iter().find(|(list, _)| list.is_empty()) else {
                continue;
            };
            let node_dir = node_dir(&mount, path, "cgroup2")?;
            unified = Some(Hierarchy {
                version: Version::V2,
                mount: mount.point,
                node_dir,
                controllers: Vec::new(),
            });
            continue;
        }
        let managed: Vec<Controller> = mount
            .options
            .iter()
            .filter_map(|o| Controller::from_name(o))
            .collect();
        // Skip hierarchies with nothing for us (name=systemd, blkio, ...) and second mounts of a
        // hierarchy already seen.
        let seen = |c: &Controller| hierarchies.iter().any(|h| h.controllers.contains(c));
        if managed.is_empty() || managed.iter().any(seen) {
            continue;
        }
        let own_entry = own
            .iter()
            .find(|(list, _)| managed.iter().any(|c| list.iter().any(|l| l == c.name())));
        let Some((_, path)) = own_entry else { continue };
        let node_dir = node_dir(&mount, path, &mount.options.join(","))?;
        hierarchies.push(Hierarchy {
            version: Version::V1,
            mount: mount.point,
            node_dir,
            controllers: managed,
        });
    }

    let has_v1 = !hierarchies.is_empty();
    let layout = match (has_v1, unified.is_some()) {
        (true, true) => Layout::Hybrid,
        (true, false) => Layout::V1,
        (false, true) => Layout::V2,
        (false, false) => {
            return Err(CgroupError::NoHierarchy {
                reason: "no cgroup or cgroup2 mount holding this process in /proc/self/mountinfo"
                    .into(),
            });
        }
    };
    if let Some(mut v2) = unified {
        // A controller is bound to one hierarchy at a time, so anything v2 offers that no v1
        // mount has is usable from v2 (on a classic hybrid host v2 offers nothing).
        let offered = v2_controllers
            .split_whitespace()
            .filter_map(Controller::from_name);
        let core = [Controller::CpuAcct, Controller::Freezer].into_iter();
        for c in offered.filter(|c| V2_ENABLED.contains(c)).chain(core) {
            if !hierarchies.iter().any(|h| h.controllers.contains(&c)) {
                v2.controllers.push(c);
            }
        }
        hierarchies.push(v2);
    }
    Ok(HostCgroups {
        layout,
        hierarchies,
    })
}

/// The node's v2 cgroup directory, for reading its `cgroup.controllers` before [`parse`].
pub(crate) fn v2_node_dir(host: &HostCgroups) -> Option<&Path> {
    host.hierarchies
        .iter()
        .find(|h| h.version == Version::V2)
        .map(|h| h.node_dir.as_path())
}

struct Mount {
    root: PathBuf,
    point: PathBuf,
    fs_type: String,
    options: Vec<String>,
}

/// One mountinfo line: `id parent maj:min root point opts [optional...] - fstype source superopts`.
fn parse_mount_line(line: &str) -> Option<Mount> {
    let (left, right) = line.split_once(" - ")?;
    let left: Vec<&str> = left.split_whitespace().collect();
    let mut right = right.split_whitespace();
    let fs_type = right.next()?;
    if (fs_type != "cgroup" && fs_type != "cgroup2") || left.len() < 6 {
        return None;
    }
    let options = right
        .nth(1)
        .unwrap_or("")
        .split(',')
        .map(str::to_owned)
        .collect();
    Some(Mount {
        root: unescape(left[3]),
        point: unescape(left[4]),
        fs_type: fs_type.to_owned(),
        options,
    })
}

/// Undoes mountinfo's octal escapes (`\040` for a space, `\134` for a backslash, ...).
fn unescape(field: &str) -> PathBuf {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match (bytes[i], octal) {
            (b'\\', Some(d)) => {
                let v = d.iter().fold(0u32, |acc, b| acc * 8 + u32::from(b - b'0'));
                out.push(u8::try_from(v).unwrap_or(b'?'));
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    PathBuf::from(OsString::from_vec(out))
}

/// `/proc/self/cgroup` lines `id:controller,list:path` as (controller names, path). The v2
/// line has an empty list. Malformed lines are skipped.
fn parse_proc_cgroup(text: &str) -> Vec<(Vec<String>, String)> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let (_id, list, path) = (parts.next()?, parts.next()?, parts.next()?);
            let list = list
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            Some((list, path.to_owned()))
        })
        .collect()
}

/// Mount point joined with the own path made relative to the mount's root. An own path that
/// is not under the mount root (or climbs with `..`) has no directory here: an error.
fn node_dir(mount: &Mount, own: &str, hierarchy: &str) -> Result<PathBuf, CgroupError> {
    let outside = || CgroupError::OutsideMount {
        hierarchy: hierarchy.to_owned(),
        own: own.to_owned(),
        mount_root: mount.root.display().to_string(),
    };
    let relative = Path::new(own)
        .strip_prefix(&mount.root)
        .map_err(|_| outside())?;
    if !relative
        .components()
        .all(|c| matches!(c, Component::Normal(_)))
    {
        return Err(outside());
    }
    Ok(mount.point.join(relative))
}
