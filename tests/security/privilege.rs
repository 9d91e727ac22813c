//! Privilege: capabilities, setuid and file capabilities, other processes, the node's
//! environment, cgroup escapes.

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

use crate::{HostDir, assert_exited_ok, builder, report, require_isolation, shell_in};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_capability_set_is_empty() {
    require_isolation!();
    let r = report(
        r#"
for line in open("/proc/self/status"):
    key, _, value = line.partition(":")
    if key.startswith("Cap") or key in ("NoNewPrivs", "Seccomp"):
        print(key + "=" + value.strip())
print("uid=" + str(os.getuid()) + "," + str(os.geteuid()))
"#,
    )
    .await;
    for set in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        assert_eq!(r.get(set), "0000000000000000", "{set}");
    }
    assert_eq!(r.get("NoNewPrivs"), "1");
    assert_eq!(r.get("Seccomp"), "2", "filter mode");
    assert_eq!(r.get("uid"), "65534,65534");
}

/// A copy of `program` in a fresh host dir, bound read-only into the sandbox at /opt/x.
fn planted(program: &str, tag: &str) -> (HostDir, std::path::PathBuf) {
    let dir = HostDir::new(tag);
    let path = dir.path().join("prog");
    std::fs::copy(program, &path).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    (dir, path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setuid_binaries_grant_nothing() {
    require_isolation!();
    let (dir, prog) = planted("/usr/bin/id", "suid");
    // Owned by root (the test runs as root) with the setuid and setgid bits.
    std::fs::set_permissions(&prog, std::fs::Permissions::from_mode(0o6755)).unwrap();
    let sandbox = builder("standard")
        .mount(dir.path(), "/opt/x", false)
        .build()
        .unwrap();
    let outcome = shell_in(
        &sandbox,
        "/opt/x/prog -u; /opt/x/prog -g; su -c id root </dev/null",
    )
    .await;
    let stdout = String::from_utf8_lossy(&outcome.stdout);
    assert!(stdout.starts_with("65534\n65534\n"), "{stdout}");
    assert!(!stdout.contains("uid=0"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_capabilities_grant_nothing() {
    require_isolation!();
    let (dir, prog) = planted("/usr/bin/grep", "fcaps");
    // security.capability, VFS_CAP_REVISION_2 with the effective flag: CAP_DAC_OVERRIDE
    // and CAP_SYS_ADMIN permitted and effective on exec.
    let mut xattr = Vec::new();
    for word in [0x0200_0001u32, (1 << 1) | (1 << 21), 0, 0, 0] {
        xattr.extend_from_slice(&word.to_le_bytes());
    }
    let path = std::ffi::CString::new(prog.as_os_str().as_bytes()).unwrap();
    // SAFETY: valid NUL-terminated strings and a buffer of the given length.
    let set = unsafe {
        libc::setxattr(
            path.as_ptr(),
            c"security.capability".as_ptr(),
            xattr.as_ptr().cast(),
            xattr.len(),
            0,
        )
    };
    assert_eq!(set, 0, "setxattr: {}", std::io::Error::last_os_error());
    let sandbox = builder("standard")
        .mount(dir.path(), "/opt/x", false)
        .build()
        .unwrap();
    let outcome = shell_in(
        &sandbox,
        "/opt/x/prog -E '^Cap(Prm|Eff)' /proc/self/status; /opt/x/prog . /etc/shadow",
    )
    .await;
    let stdout = String::from_utf8_lossy(&outcome.stdout);
    assert!(stdout.contains("CapPrm:\t0000000000000000"), "{stdout}");
    assert!(stdout.contains("CapEff:\t0000000000000000"), "{stdout}");
    assert!(!stdout.contains("root:"), "read /etc/shadow: {stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_outside_cannot_be_signalled_or_traced() {
    require_isolation!();
    let mut victim = Command::new("sleep").arg("30").spawn().unwrap();
    let pid = victim.id();
    let r = report(&format!(
        r#"
attempt("kill_host_pid", lambda: os.kill({pid}, 9))
report("ptrace_init", *sc(101, 16, 1, 0, 0))
print("visible=" + str(sorted(int(p) for p in os.listdir("/proc") if p.isdigit())))
"#
    ))
    .await;
    // The host's pid does not exist in the sandbox's PID namespace.
    r.refused("kill_host_pid", &["ESRCH"]);
    r.refused("ptrace_init", &["EPERM"]);
    let visible = r.get("visible");
    assert!(!visible.contains(&pid.to_string()), "{visible}");
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        victim.try_wait().unwrap().is_none(),
        "the host process died"
    );
    victim.kill().unwrap();
    victim.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_nodes_environment_is_not_visible() {
    require_isolation!();
    let output = Command::new(env!("CARGO_BIN_EXE_neuroflow-node"))
        .args(["sandbox", "exec", "--", "/bin/sh", "-c"])
        .arg("env; cat /proc/1/environ; cat /proc/self/environ; echo done")
        .env("NEUROFLOW_TEST_SECRET", "hunter2-token")
        .env("AWS_SECRET_ACCESS_KEY", "hunter2-aws")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("done"), "{stdout}");
    assert!(
        stdout.contains("PATH=/usr/local/bin:/usr/bin:/bin"),
        "{stdout}"
    );
    assert!(!stdout.contains("hunter2"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cgroup_release_agent_is_out_of_reach() {
    require_isolation!();
    let r = report(
        r#"
os.makedirs("/tmp/cg", exist_ok=True)
report("mount_cgroup", libc.mount(b"cgroup", b"/tmp/cg", b"cgroup", 0, b"memory"), ctypes.get_errno())
attempt("release_agent", lambda: open("/sys/fs/cgroup/memory/release_agent", "w").write("/tmp/x"))
attempt("unified", lambda: open("/sys/fs/cgroup/unified/cgroup.procs", "w").write("1"))
"#,
    )
    .await;
    r.refused("mount_cgroup", &["EPERM"]);
    r.refused("release_agent", &["ENOENT"]);
    r.refused("unified", &["ENOENT"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_namespace_can_be_asked_for_as_root() {
    require_isolation!();
    let sandbox = builder("standard").user_namespace(true).build().unwrap();
    let outcome = shell_in(
        &sandbox,
        "cat /proc/self/uid_map; id -u; grep CapEff /proc/self/status; touch /workspace/f && echo wrote",
    )
    .await;
    assert_exited_ok(&outcome);
    let stdout = String::from_utf8_lossy(&outcome.stdout);
    // Root inside is `nobody` outside, with no capability either way.
    let map: Vec<&str> = stdout.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(map, ["0", "65534", "1"], "{stdout}");
    assert!(stdout.contains("CapEff:\t0000000000000000"), "{stdout}");
    assert!(stdout.contains("wrote"), "{stdout}");
}

/// A cgroup in every hierarchy, owned by `nobody`: what a system delegates to an
/// unprivileged service. Removed on drop.
struct Delegated(Vec<std::path::PathBuf>);

impl Delegated {
    fn new() -> Self {
        let host = neuroflow_sandbox::HostSupport::detect();
        let name = format!(
            "neuroflow-delegated-{}-{}",
            std::process::id(),
            crate::uuid_like()
        );
        let dirs = host
            .cgroups
            .expect("cgroups")
            .hierarchies()
            .iter()
            .map(|h| h.node_dir.join(&name))
            .collect::<Vec<_>>();
        for dir in &dirs {
            std::fs::create_dir(dir).unwrap();
            let nobody = Some(nix::unistd::Uid::from_raw(65534));
            let nogroup = Some(nix::unistd::Gid::from_raw(65534));
            for entry in std::iter::once(dir.clone())
                .chain(std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()))
            {
                nix::unistd::chown(&entry, nobody, nogroup).unwrap();
            }
        }
        Self(dirs)
    }

    fn procs_files(&self) -> Vec<String> {
        self.0
            .iter()
            .map(|d| d.join("cgroup.procs").to_string_lossy().into_owned())
            .collect()
    }
}

impl Drop for Delegated {
    fn drop(&mut self) {
        for dir in &self.0 {
            // The node's `neuroflow` parent inside, then the delegated cgroup itself.
            let _ = std::fs::remove_dir(dir.join("neuroflow"));
            let _ = std::fs::remove_dir(dir);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_is_not_root_sandboxes_in_a_user_namespace() {
    require_isolation!();
    let delegated = Delegated::new();
    let state = HostDir::new("unprivileged");
    nix::unistd::chown(
        state.path(),
        Some(nix::unistd::Uid::from_raw(65534)),
        Some(nix::unistd::Gid::from_raw(65534)),
    )
    .unwrap();
    // Join the delegated cgroups as root, then become `nobody` and run the CLI.
    let join: String = delegated
        .procs_files()
        .iter()
        .map(|f| format!("echo $$ > {f} && "))
        .collect();
    let script = format!(
        "{join} exec setpriv --reuid=65534 --regid=65534 --clear-groups \
         env TMPDIR={state} {bin} sandbox exec -- sh -c \
         'cat /proc/self/uid_map; id -u; grep CapEff /proc/self/status; echo hi > /workspace/f && cat /workspace/f'",
        state = state.path().display(),
        bin = env!("CARGO_BIN_EXE_neuroflow-node"),
    );
    let output = Command::new("sh")
        .args(["-c", &script])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    // Root inside is the node's own user outside, the only mapping it may write.
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["0", "65534", "1"],
        "{stdout}"
    );
    assert_eq!(lines[1], "0");
    assert_eq!(lines[2], "CapEff:\t0000000000000000");
    assert_eq!(lines[3], "hi");
}
