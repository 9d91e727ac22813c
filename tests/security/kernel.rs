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
