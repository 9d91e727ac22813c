//! Teardown: every kill method against a process tree that resists, destroy with live and
//! nested processes, and the clean-up done by `Drop`.

use std::path::Path;

use neuroflow_sandbox::cgroup::CgroupLimits;

use crate::support::{eventually, host, is_gone, spawn_in, unique, wait_exit};

/// A SIGTERM-ignoring shell with a SIGTERM-ignoring subshell, and a `setsid` child that
/// leaves a grandchild behind in the background: the tree each kill method must end.
/// Five processes once settled: sh, the subshell and its sleep, the orphaned sleep, a sleep.
const STUBBORN_TREE: &str = r#"trap "" TERM
(trap "" TERM; sleep 1000; true) &
setsid sh -c 'sleep 1000 & exit 0' &
sleep 1000 &
wait"#;

#[test]
fn every_kill_method_ends_a_stubborn_tree() {
    let Some(host) = host("every_kill_method_ends_a_stubborn_tree", &[]) else {
        return;
    };
    let probe = host
        .create(&unique("probe"), &CgroupLimits::default())
        .unwrap();
    let methods = probe.kill_methods();
    probe.destroy().unwrap();
    assert!(
        methods.len() >= 2,
        "a freezer or cgroup.kill on the CI hosts: {methods:?}"
    );
    for method in methods {
        let cg = host
            .create(&unique("kill"), &CgroupLimits::default())
            .unwrap();
        let mut child = spawn_in(&cg, STUBBORN_TREE);
        assert!(
            eventually(|| cg.pids().len() >= 5),
            "{method:?}: tree up: {:?}",
            cg.pids()
        );
        let pids = cg.pids();
        cg.kill_all_using(method)
            .unwrap_or_else(|e| panic!("{method:?}: {e}"));
        assert!(cg.pids().is_empty(), "{method:?}");
        assert!(
            eventually(|| pids.iter().all(|&p| is_gone(p))),
            "{method:?}: {pids:?} gone"
        );
        assert!(wait_exit(&mut child).is_some());
        cg.destroy().unwrap();
    }
}

#[test]
fn destroy_removes_everything_even_with_live_and_nested_processes() {
    let Some(host) = host("destroy_removes_everything", &[]) else {
        return;
    };
    let cg = host
        .create(&unique("destroy"), &CgroupLimits::default())
        .unwrap();
    let mut child = spawn_in(&cg, STUBBORN_TREE);
    assert!(eventually(|| cg.pids().len() >= 5));
    // A nested cgroup holding a process, as a sandbox with its own cgroup namespace may make.
    let inner = cg.paths()[0].join("inner");
    std::fs::create_dir(&inner).unwrap();
    std::fs::write(inner.join("cgroup.procs"), child.id().to_string()).unwrap();
    let pids = cg.pids();
    let paths: Vec<_> = cg.paths().into_iter().map(Path::to_owned).collect();
    cg.destroy().unwrap();
    assert!(paths.iter().all(|p| !p.exists()), "{paths:?}");
    assert!(eventually(|| pids.iter().all(|&p| is_gone(p))));
    assert!(wait_exit(&mut child).is_some());
}

#[test]
fn drop_cleans_up_too() {
    let Some(host) = host("drop_cleans_up_too", &[]) else {
        return;
    };
    let cg = host
        .create(&unique("drop"), &CgroupLimits::default())
        .unwrap();
    let mut child = spawn_in(&cg, "exec sleep 1000");
    assert!(eventually(|| cg.pids().len() == 1), "{:?}", cg.pids());
    let paths: Vec<_> = cg.paths().into_iter().map(Path::to_owned).collect();
    drop(cg);
    assert!(paths.iter().all(|p| !p.exists()), "{paths:?}");
    assert!(wait_exit(&mut child).is_some());
}
