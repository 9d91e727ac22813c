//! Layout parsing from fixtures of each host kind, and the pure checks around creation.

mod checks;
mod fixtures;

use std::path::{Path, PathBuf};

use super::layout::{Version, parse};
use super::{CgroupError, Controller, HostCgroups, Layout};
use Controller::{Cpu, CpuAcct, Freezer, Memory, Pids};
use fixtures::*;

fn hierarchy_of(host: &HostCgroups, c: Controller) -> (Version, PathBuf) {
    let h = host
        .hierarchies()
        .iter()
        .find(|h| h.controllers.contains(&c))
        .expect("controller present");
    (h.version, h.node_dir.clone())
}

#[test]
fn pure_v2_nests_under_the_node_cgroup_and_reads_delegated_controllers() {
    let host = parse(
        V2_MOUNTINFO,
        V2_OWN,
        "cpuset cpu io memory hugetlb pids rdma misc\n",
    )
    .unwrap();
    assert_eq!((host.layout(), host.layout_name()), (Layout::V2, "v2"));
    assert_eq!(host.hierarchies().len(), 1);
    let h = &host.hierarchies()[0];
    assert_eq!(h.mount, Path::new("/sys/fs/cgroup"));
    assert_eq!(
        h.node_dir,
        Path::new("/sys/fs/cgroup/system.slice/neuroflow.service")
    );
    assert_eq!(h.controllers, vec![Cpu, Memory, Pids, CpuAcct, Freezer]);
}

#[test]
fn v2_without_delegated_controllers_keeps_only_core_features() {
    let host = parse(V2_MOUNTINFO, "0::/\n", "").unwrap();
    assert_eq!(host.controllers(), vec![CpuAcct, Freezer]);
    assert!(!host.supports(Memory));
    assert_eq!(host.hierarchies()[0].node_dir, Path::new("/sys/fs/cgroup"));
}

#[test]
fn v1_handles_co_mounted_controllers_and_per_controller_own_paths() {
    let host = parse(V1_MOUNTINFO, V1_OWN, "").unwrap();
    assert_eq!((host.layout(), host.layout_name()), (Layout::V1, "v1"));
    let cpu = host
        .hierarchies()
        .iter()
        .find(|h| h.controllers.contains(&Cpu))
        .unwrap();
    assert_eq!(
        cpu.controllers,
        vec![Cpu, CpuAcct],
        "one hierarchy for cpu,cpuacct"
    );
    assert_eq!(
        cpu.node_dir,
        Path::new("/sys/fs/cgroup/cpu,cpuacct/user.slice")
    );
    let memory = Path::new("/sys/fs/cgroup/memory/user.slice/user-1000.slice/session-1.scope");
    assert_eq!(
        hierarchy_of(&host, Memory),
        (Version::V1, memory.to_owned())
    );
    assert_eq!(
        hierarchy_of(&host, Pids).1,
        Path::new("/sys/fs/cgroup/pids/user.slice/user-1000.slice")
    );
    assert_eq!(
        hierarchy_of(&host, Freezer).1,
        Path::new("/sys/fs/cgroup/freezer")
    );
    // Only hierarchies with a controller used here; cpuset, net_cls and name=systemd are not.
    assert_eq!(host.hierarchies().len(), 4);
}

#[test]
fn hybrid_uses_v1_controllers_and_tracks_in_the_unified_hierarchy() {
    let host = parse(HYBRID_MOUNTINFO, HYBRID_OWN, "").unwrap();
    assert_eq!(
        (host.layout(), host.layout_name()),
        (Layout::Hybrid, "hybrid")
    );
    for c in [Cpu, CpuAcct, Memory, Pids, Freezer] {
        assert_eq!(hierarchy_of(&host, c).0, Version::V1, "{c} from v1");
    }
    let memory = Path::new("/sys/fs/cgroup/memory/process_api/7f8d82a9f7ecef051321bfd650021a00");
    assert_eq!(hierarchy_of(&host, Memory).1, memory);
    let unified = host
        .hierarchies()
        .iter()
        .find(|h| h.version == Version::V2)
        .unwrap();
    assert_eq!(unified.node_dir, Path::new("/sys/fs/cgroup/unified"));
    assert!(
        unified.controllers.is_empty(),
        "v1 already gives cpuacct and freezer"
    );
    assert_eq!(host.hierarchies().len(), 6);
}

#[test]
fn hybrid_takes_from_v2_what_v1_does_not_mount() {
    let mountinfo: String = HYBRID_MOUNTINFO
        .lines()
        .filter(|l| !l.contains("rw,pids"))
        .map(|l| format!("{l}\n"))
        .collect();
    let host = parse(&mountinfo, HYBRID_OWN, "pids\n").unwrap();
    assert_eq!(
        hierarchy_of(&host, Pids),
        (Version::V2, PathBuf::from("/sys/fs/cgroup/unified"))
    );
    assert_eq!(hierarchy_of(&host, Memory).0, Version::V1);
}

#[test]
fn container_mount_roots_are_stripped_from_own_paths() {
    let mountinfo = "\
40 31 0:32 /docker/abc /sys/fs/cgroup/memory ro,nosuid - cgroup cgroup rw,memory
41 31 0:38 /docker/abc /sys/fs/cgroup rw - cgroup2 cgroup2 rw
";
    let own = "4:memory:/docker/abc/inner\n0::/docker/abc\n";
    let host = parse(mountinfo, own, "").unwrap();
    assert_eq!(
        hierarchy_of(&host, Memory).1,
        Path::new("/sys/fs/cgroup/memory/inner")
    );
    let unified = host
        .hierarchies()
        .iter()
        .find(|h| h.version == Version::V2)
        .unwrap();
    assert_eq!(unified.node_dir, Path::new("/sys/fs/cgroup"));
}

#[test]
fn own_paths_outside_the_mount_are_refused() {
    let mountinfo = "41 31 0:38 /docker/abc /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
    let err = parse(mountinfo, "0::/docker/other\n", "").unwrap_err();
    assert!(matches!(err, CgroupError::OutsideMount { .. }), "{err}");
    let err = parse(V2_MOUNTINFO, "0::/../escape\n", "").unwrap_err();
    assert!(matches!(err, CgroupError::OutsideMount { .. }), "{err}");
}

#[test]
fn escaped_mount_points_and_junk_lines() {
    let mountinfo =
        "garbage\n\n1 2 3 - cgroup2\n41 31 0:38 / /mnt/my\\040cg\\134x rw - cgroup2 cgroup2 rw\n";
    let host = parse(mountinfo, "junk\n0::/a\n", "").unwrap();
    assert_eq!(host.hierarchies()[0].node_dir, Path::new("/mnt/my cg\\x/a"));
}

#[test]
fn no_cgroup_mounts_is_a_typed_error() {
    let err = parse("22 1 259:2 / / rw - ext4 /dev/root rw\n", "0::/\n", "").unwrap_err();
    assert!(matches!(err, CgroupError::NoHierarchy { .. }), "{err}");
}
