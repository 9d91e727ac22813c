//! Helpers of the cgroup tests: gating on root, spawning processes placed in a sandbox's
//! cgroups the way the spawner does (writing "0" to each cgroup.procs between fork and exec),
//! bounded waits.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::sleep;
use std::time::Duration;

use neuroflow_sandbox::cgroup::{self, Controller, HostCgroups, SandboxCgroup};

/// The host's cgroups if this test can run here. Otherwise prints why and returns `None`, or
/// panics when NEUROFLOW_REQUIRE_ISOLATION=1.
pub fn host(test: &str, needs: &[Controller]) -> Option<HostCgroups> {
    let reason = if !nix::unistd::Uid::effective().is_root() {
        "not running as root".to_owned()
    } else {
        match cgroup::detect() {
            Ok(host) => match needs.iter().find(|c| !host.supports(**c)) {
                None => return Some(host),
                Some(c) => format!("{c} controller unavailable ({} layout)", host.layout_name()),
            },
            Err(e) => format!("no usable cgroups: {e}"),
        }
    };
    if std::env::var("NEUROFLOW_REQUIRE_ISOLATION").as_deref() == Ok("1") {
        panic!("{test}: NEUROFLOW_REQUIRE_ISOLATION=1 but {reason}");
    }
    eprintln!("skipping {test}: {reason}");
    None
}

/// A sandbox name unique to this test process and call.
pub fn unique(what: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "test-{what}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// `sh -c script`, joined to every cgroup of `cg` before exec with open/write/close only.
pub fn spawn_in(cg: &SandboxCgroup, script: &str) -> Child {
    let files = cg.procs_files();
    let mut cmd = Command::new("sh");
    cmd.args(["-c", script])
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    // SAFETY: the closure only calls open, write and close (async-signal-safe) on CStrings
    // allocated before the fork.
    unsafe {
        cmd.pre_exec(move || {
            for file in &files {
                let fd = libc::open(file.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                if fd < 0 {
                    return Err(io::Error::last_os_error());
                }
                let written = libc::write(fd, b"0".as_ptr().cast(), 1);
                libc::close(fd);
                if written != 1 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    cmd.spawn().expect("spawn sh")
}

/// Polls `cond` for up to 5 s.
pub fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    for _ in 0..250 {
        if cond() {
            return true;
        }
        sleep(Duration::from_millis(20));
    }
    cond()
}

/// Waits up to 10 s for `child` to exit.
pub fn wait_exit(child: &mut Child) -> Option<ExitStatus> {
    for _ in 0..500 {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        sleep(Duration::from_millis(20));
    }
    None
}

/// Whether `pid` has exited (gone, or a zombie waiting for its parent).
pub fn is_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => true,
    }
}

/// The trimmed content of `file` in whichever of the sandbox's directories has it.
pub fn read_in(cg: &SandboxCgroup, file: &str) -> Option<String> {
    cg.paths()
        .into_iter()
        .find_map(|p| std::fs::read_to_string(p.join(file)).ok())
        .map(|s| s.trim().to_owned())
}
