//! The cgroup layer against the real host: limits written and enforced, accounting, placing
//! processes, killing process trees with every kill method, teardown. Needs root; without it
//! (or without cgroups) each test says why and returns, unless NEUROFLOW_REQUIRE_ISOLATION=1
//! demands the isolation layers, in which case it fails.

#[path = "cgroup/support.rs"]
mod support;
#[path = "cgroup/teardown.rs"]
mod teardown;

use std::path::Path;

use neuroflow_sandbox::cgroup::{CgroupError, CgroupLimits, Controller, Layout, PARENT_DIR};
use support::{eventually, host, read_in, spawn_in, unique, wait_exit};

const MIB: u64 = 1 << 20;

#[test]
fn real_host_layout_matches_its_mounts() {
    let Some(host) = host("real_host_layout_matches_its_mounts", &[]) else {
        return;
    };
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    let fs_types: Vec<(&str, &str)> = mounts
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Some((*f.get(2)?, *f.get(3)?))
        })
        .collect();
    let ours = ["cpu", "cpuacct", "memory", "pids", "freezer"];
    let has_v1 = fs_types
        .iter()
        .any(|(t, o)| *t == "cgroup" && o.split(',').any(|x| ours.contains(&x)));
    let has_v2 = fs_types.iter().any(|(t, _)| *t == "cgroup2");
    let expected = match (has_v1, has_v2) {
        (true, true) => Layout::Hybrid,
        (true, false) => Layout::V1,
        _ => Layout::V2,
    };
    assert_eq!(host.layout(), expected, "{host:?}");
    for h in host.hierarchies() {
        assert!(
            h.node_dir.is_dir(),
            "node cgroup {} exists",
            h.node_dir.display()
        );
        assert!(h.node_dir.starts_with(&h.mount));
        assert!(h.node_dir.join("cgroup.procs").exists());
    }
    for c in [Controller::CpuAcct, Controller::Memory, Controller::Pids] {
        assert!(host.supports(c), "{c} is expected on the CI hosts");
    }
}

#[test]
fn create_writes_limits_nested_under_the_node_cgroup() {
    let Some(host) = host(
        "create_writes_limits",
        &[Controller::Cpu, Controller::Memory, Controller::Pids],
    ) else {
        return;
    };
    let swap = host.supports_swap_limit().then_some(16 * MIB);
    let limits = CgroupLimits {
        cpu_quota_millicores: Some(500),
        memory_bytes: Some(64 * MIB),
        swap_bytes: swap,
        pids_max: Some(32),
    };
    let name = unique("limits");
    let cg = host.create(&name, &limits).unwrap();
    assert_eq!(cg.paths().len(), host.hierarchies().len());
    for (path, h) in cg.paths().into_iter().zip(host.hierarchies()) {
        assert_eq!(path, h.node_dir.join(PARENT_DIR).join(&name));
        assert!(path.is_dir());
    }
    let procs = cg.procs_files();
    assert_eq!(procs.len(), cg.paths().len());
    assert!(
        procs
            .iter()
            .all(|p| Path::new(p.to_str().unwrap()).is_absolute())
    );

    match read_in(&cg, "cpu.max") {
        Some(v) => assert_eq!(v, "50000 100000"),
        None => {
            assert_eq!(read_in(&cg, "cpu.cfs_quota_us").unwrap(), "50000");
            assert_eq!(read_in(&cg, "cpu.cfs_period_us").unwrap(), "100000");
        }
    }
    let memory = read_in(&cg, "memory.max").or_else(|| read_in(&cg, "memory.limit_in_bytes"));
    assert_eq!(memory.unwrap(), (64 * MIB).to_string());
    if swap.is_some() {
        match read_in(&cg, "memory.swap.max") {
            Some(v) => assert_eq!(v, (16 * MIB).to_string()),
            None => assert_eq!(
                read_in(&cg, "memory.memsw.limit_in_bytes").unwrap(),
                (80 * MIB).to_string()
            ),
        }
    }
    assert_eq!(read_in(&cg, "pids.max").unwrap(), "32");

    let paths: Vec<_> = cg.paths().into_iter().map(Path::to_owned).collect();
    cg.destroy().unwrap();
    for p in &paths {
        assert!(!p.exists(), "{} removed", p.display());
        assert!(p.parent().unwrap().is_dir(), "the shared parent stays");
    }
}

#[test]
fn refused_requests_leave_nothing_behind() {
    let Some(host) = host("refused_requests_leave_nothing_behind", &[]) else {
        return;
    };
    for bad in ["../x", "a/b", ".."] {
        let err = host.create(bad, &CgroupLimits::default()).unwrap_err();
        assert!(
            matches!(err, CgroupError::InvalidName { .. }),
            "{bad}: {err}"
        );
    }
    let name = unique("refused");
    let tiny = CgroupLimits {
        cpu_quota_millicores: Some(1),
        ..Default::default()
    };
    assert!(matches!(
        host.create(&name, &tiny),
        Err(CgroupError::InvalidLimit { limit: "cpu", .. })
    ));
    for h in host.hierarchies() {
        assert!(!h.node_dir.join(PARENT_DIR).join(&name).exists());
    }
    let first = host.create(&name, &CgroupLimits::default()).unwrap();
    let again = host.create(&name, &CgroupLimits::default());
    assert!(
        matches!(again, Err(CgroupError::Exists { .. })),
        "{again:?}"
    );
    assert!(
        first.paths().iter().all(|p| p.is_dir()),
        "the refused twin removed nothing"
    );
    first.destroy().unwrap();
}

#[test]
fn placed_processes_and_their_children_are_listed() {
    let Some(host) = host("placed_processes_and_their_children_are_listed", &[]) else {
        return;
    };
    let cg = host
        .create(&unique("place"), &CgroupLimits::default())
        .unwrap();
    let mut sleeper = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    cg.add_pid(sleeper.id()).unwrap();
    assert_eq!(cg.pids(), vec![sleeper.id()]);
    let mut tree = spawn_in(&cg, "sleep 30 & sleep 30 & wait");
    assert!(
        eventually(|| cg.pids().len() == 4),
        "sleeper + sh + two sleeps: {:?}",
        cg.pids()
    );
    assert!(cg.pids().contains(&tree.id()));
    cg.destroy().unwrap();
    assert!(wait_exit(&mut sleeper).is_some() && wait_exit(&mut tree).is_some());
}

#[test]
fn memory_limit_is_enforced_and_the_oom_kill_counted() {
    let Some(host) = host("memory_limit_is_enforced", &[Controller::Memory]) else {
        return;
    };
    // Without swap on the host a swap limit is moot; with swap, the hog must not swap out.
    let host_swaps = std::fs::read_to_string("/proc/swaps").is_ok_and(|s| s.lines().count() > 1);
    let swap_limited = host_swaps && host.supports_swap_limit();
    let limits = CgroupLimits {
        memory_bytes: Some(32 * MIB),
        swap_bytes: swap_limited.then_some(0),
        ..Default::default()
    };
    let cg = host.create(&unique("oom"), &limits).unwrap();
    // `tail` keeps a newline-less stream of 200 MiB in memory.
    let mut child = spawn_in(&cg, "head -c 200M /dev/zero | tail > /dev/null");
    let status = wait_exit(&mut child).expect("the memory hog ends");
    assert!(!status.success(), "{status:?}");
    let usage = cg.usage();
    assert!(usage.oom_kills >= 1, "{usage:?}");
    // v1 kernels that charge memory+swap first may count no failure of either counter.
    assert!(usage.memory_limit_hits >= 1 || swap_limited, "{usage:?}");
    assert!(
        usage.peak_memory_bytes > 16 * MIB && usage.peak_memory_bytes <= 33 * MIB,
        "{usage:?}"
    );
    cg.destroy().unwrap();
}

#[test]
fn pids_limit_is_enforced_and_counted() {
    let Some(host) = host("pids_limit_is_enforced_and_counted", &[Controller::Pids]) else {
        return;
    };
    let cg = host
        .create(
            &unique("pids"),
            &CgroupLimits {
                pids_max: Some(8),
                ..Default::default()
            },
        )
        .unwrap();
    let mut child = spawn_in(
        &cg,
        "i=0; while [ $i -lt 30 ]; do sleep 30 & i=$((i+1)); done; wait",
    );
    assert!(
        eventually(|| cg.usage().pids_max_hits >= 1),
        "{:?}",
        cg.usage()
    );
    assert!(cg.pids().len() <= 8, "{:?}", cg.pids());
    let usage = cg.usage();
    assert!(usage.peak_pids <= 8, "{usage:?}");
    cg.destroy().unwrap();
    assert!(wait_exit(&mut child).is_some());
}

#[test]
fn cpu_time_is_accounted_and_the_quota_enforced() {
    let Some(host) = host(
        "cpu_time_is_accounted",
        &[Controller::Cpu, Controller::CpuAcct],
    ) else {
        return;
    };
    let limits = CgroupLimits {
        cpu_quota_millicores: Some(100),
        ..Default::default()
    };
    let cg = host.create(&unique("cpu"), &limits).unwrap();
    let mut child = spawn_in(&cg, "while :; do :; done");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    cg.kill_all().unwrap();
    let used = cg.usage().cpu_time_us;
    // A tenth of a CPU for 1.5 s is 150 ms; a busy loop without the quota would use 1.5 s.
    assert!(used > 20_000 && used < 500_000, "cpu_time_us = {used}");
    cg.destroy().unwrap();
    assert!(wait_exit(&mut child).is_some());
}
