//! Kernel interfaces: /proc knobs, /sys, device nodes, read-only layers.

use std::time::Duration;

use crate::{assert_exited_ok, attack_in, builder, report, require_isolation};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proc_sys_and_sysrq_are_not_writable() {
    require_isolation!();
    let core_pattern = std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap();
    let r = report(
        r#"
attempt("core_pattern", lambda: open("/proc/sys/kernel/core_pattern", "w").write("|/tmp/x"))
attempt("hostname_knob", lambda: open("/proc/sys/kernel/hostname", "w").write("pwned"))
attempt("sysrq", lambda: open("/proc/sysrq-trigger", "w").write("b"))
attempt("kcore", lambda: print("kcore_bytes=" + str(len(open("/proc/kcore", "rb").read(16)))))
"#,
    )
    .await;
    r.refused("core_pattern", &["EROFS", "EACCES"]);
    r.refused("hostname_knob", &["EROFS", "EACCES"]);
    // Absent where the kernel is built without magic SysRq.
    r.refused("sysrq", &["EROFS", "EACCES", "ENOENT"]);
    // Masked by /dev/null, or unreadable.
    if r.get("kcore") == "OK" {
        assert_eq!(r.get("kcore_bytes"), "0");
    }
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap(),
        core_pattern
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sys_is_absent() {
    require_isolation!();
    let r = report(
        r#"
attempt("sys_list", lambda: os.listdir("/sys"))
attempt("uevent_helper", lambda: open("/sys/kernel/uevent_helper", "w").write("/tmp/x"))
attempt("cgroupfs", lambda: os.listdir("/sys/fs/cgroup"))
"#,
    )
    .await;
    r.refused("sys_list", &["ENOENT"]);
    r.refused("uevent_helper", &["ENOENT"]);
    r.refused("cgroupfs", &["ENOENT"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_nodes_cannot_be_made_or_reached() {
    require_isolation!();
    let r = report(
        r#"
import stat
attempt("mknod_mem", lambda: os.mknod("/tmp/mem", stat.S_IFCHR | 0o600, os.makedev(1, 1)))
attempt("mknod_disk", lambda: os.mknod("/workspace/sda", stat.S_IFBLK | 0o600, os.makedev(8, 0)))
attempt("dev_mem", lambda: open("/dev/mem", "rb"))
attempt("dev_kmsg", lambda: open("/dev/kmsg", "rb"))
attempt("dev_tty", lambda: open("/dev/tty", "rb"))
attempt("dev_new", lambda: open("/dev/evil", "w"))
print("dev=" + ",".join(sorted(os.listdir("/dev"))))
attempt("null_ok", lambda: open("/dev/null", "w").write("x"))
"#,
    )
    .await;
    r.refused("mknod_mem", &["EPERM"]);
    r.refused("mknod_disk", &["EPERM"]);
    r.refused("dev_mem", &["ENOENT"]);
    r.refused("dev_kmsg", &["ENOENT"]);
    r.refused("dev_tty", &["ENOENT"]);
    r.refused("dev_new", &["EROFS", "EACCES"]);
    assert_eq!(
        r.get("dev"),
        "fd,full,null,random,stderr,stdin,stdout,urandom,zero"
    );
    assert_eq!(r.get("null_ok"), "OK");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_layers_refuse_writes() {
    require_isolation!();
    let strict = builder("strict")
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let source = r#"
attempt("usr", lambda: open("/usr/escape", "w"))
attempt("etc", lambda: open("/etc/escape", "w"))
attempt("root", lambda: open("/escape", "w"))
attempt("workspace", lambda: open("/workspace/ok", "w").write("x"))
attempt("tmp", lambda: open("/tmp/ok", "w").write("x"))
"#;
    let r = crate::Report::of(attack_in(&strict, source).await);
    for label in ["usr", "etc", "root"] {
        r.refused(label, &["EROFS"]);
    }
    assert_eq!(r.get("workspace"), "OK");
    assert_eq!(r.get("tmp"), "OK");
    assert!(!std::path::Path::new("/usr/escape").exists());

    // Under `standard` the system dirs are copy-on-write but owned by root: the sandbox
    // user cannot write them either, and the root stays read-only.
    let r = report(source).await;
    r.refused("usr", &["EACCES"]);
    r.refused("etc", &["EACCES"]);
    r.refused("root", &["EROFS"]);
    assert_eq!(r.get("workspace"), "OK");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostname_and_cgroup_view_are_the_sandboxes_own() {
    require_isolation!();
    let outcome = crate::attack(
        r#"
print("hostname=" + socket.gethostname())
print("cgroup=" + open("/proc/self/cgroup").read().replace("\n", ";"))
attempt("sethostname", lambda: socket.sethostname("pwned"))
"#,
    )
    .await;
    assert_exited_ok(&outcome);
    let r = crate::Report::of(outcome);
    assert_eq!(r.get("hostname"), "sandbox");
    // Inside its cgroup namespace the sandbox sees its own cgroup as the root.
    for entry in r.get("cgroup").split(';').filter(|e| !e.is_empty()) {
        assert!(entry.ends_with(":/"), "cgroup path leaks: {entry}");
    }
    r.refused("sethostname", &["EPERM"]);
    assert_ne!(
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .unwrap()
            .trim(),
        "pwned"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_root_tree_replaces_the_host_dirs() {
    require_isolation!();
    // A root file system of one shell and the libraries it links, copied from the host.
    let tree = crate::HostDir::new("tree");
    let ldd = std::process::Command::new("ldd")
        .arg("/bin/dash")
        .output()
        .unwrap();
    let mut files = vec!["/bin/dash".to_string()];
    for line in String::from_utf8_lossy(&ldd.stdout).lines() {
        if let Some(path) = line.split_whitespace().find(|w| w.starts_with('/')) {
            files.push(path.to_string());
        }
    }
    for file in &files {
        let target = tree.path().join(file.trim_start_matches('/'));
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(std::fs::canonicalize(file).unwrap(), &target).unwrap();
    }
    let mut profile = neuroflow_sandbox::Profile::builtin("standard").unwrap();
    profile.root = neuroflow_sandbox::profile::RootFs::Tree(tree.path().to_path_buf());
    let sandbox = neuroflow_sandbox::Sandbox::builder(profile)
        .init_program(neuroflow_sandbox::InitProgram {
            path: env!("CARGO_BIN_EXE_neuroflow-node").into(),
            args: vec!["sandbox-init".into()],
        })
        .state_dir(crate::state_dir())
        .build()
        .unwrap();
    let outcome = sandbox
        .exec(neuroflow::kit::protocol::sandbox::ExecRequest {
            command: "/bin/dash".into(),
            args: vec![
                "-c".into(),
                "cd /; echo *; (echo x > /bin/new) 2>/dev/null && echo wrote || echo refused"
                    .into(),
            ],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_exited_ok(&outcome);
    let stdout = String::from_utf8_lossy(&outcome.stdout);
    let mut seen: Vec<&str> = stdout.lines().next().unwrap().split(' ').collect();
    seen.sort_unstable();
    // The tree, plus the sandbox's own mount points; nothing of the host's root.
    assert!(
        seen.contains(&"bin") && seen.contains(&"workspace") && seen.contains(&"proc"),
        "{seen:?}"
    );
    assert!(!seen.contains(&"usr") && !seen.contains(&"etc"), "{seen:?}");
    // Copy-on-write: the sandbox's root user is `nobody`, who cannot write the tree's /bin.
    assert!(stdout.ends_with("refused\n"), "{stdout}");
    assert!(!tree.path().join("bin/new").exists());
}
