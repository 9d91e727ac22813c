//! Starting the sandbox init: fork, join the cgroup, unshare, exec.
//!
//! Everything between fork and exec runs in the forked copy of a multi-threaded process,
//! where only async-signal-safe calls are allowed: the closure below uses raw `libc` calls
//! on strings prepared before the fork, and allocates nothing.

use std::ffi::{CString, OsString};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::Stdio;

use tokio::process::{Child, Command};

use crate::init::spec::{EVENT_FD, SPEC_FD};

/// The program that runs the sandbox init: the node binary with its hidden subcommand, or
/// any binary whose main calls [`crate::init::main`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitProgram {
    pub path: PathBuf,
    pub args: Vec<OsString>,
}

impl InitProgram {
    /// The running executable with `args` (e.g. `["sandbox-init"]` for the node binary).
    pub fn current_exe(args: &[&str]) -> io::Result<Self> {
        Ok(Self {
            path: std::env::current_exe()?,
            args: args.iter().map(OsString::from).collect(),
        })
    }
}

/// What the forked child does before it execs the init.
pub(crate) struct Launch {
    pub init: InitProgram,
    /// `cgroup.procs` files the child writes "0" to, joining the sandbox's cgroups.
    pub cgroup_procs: Vec<CString>,
    /// Whether the child unshares the sandbox's namespaces before exec. Not when root asks
    /// for a user namespace: mapping root to another user needs a writer outside the new
    /// namespace, so the init does it (see `init::relay`).
    pub unshare: bool,
    /// Id maps the child writes for itself into a new user namespace (`(uid_map, gid_map)`):
    /// a node that is not root may map only its own ids.
    pub user_maps: Option<(CString, CString)>,
    pub spec_rx: OwnedFd,
    pub event_tx: OwnedFd,
}

impl Launch {
    pub fn spawn(self) -> io::Result<Child> {
        let mut cmd = Command::new(&self.init.path);
        cmd.args(&self.init.args)
            .env_clear()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let Launch {
            cgroup_procs,
            unshare,
            user_maps,
            spec_rx,
            event_tx,
            ..
        } = self;
        let (spec_fd, event_fd) = (spec_rx.as_raw_fd(), event_tx.as_raw_fd());
        // SAFETY: the closure only makes async-signal-safe system calls on data prepared
        // before the fork (see the module docs).
        unsafe {
            cmd.pre_exec(move || {
                // Keep the parent's fds alive in this closure until exec.
                let _keep = (&spec_rx, &event_tx);
                in_child(
                    spec_fd,
                    event_fd,
                    &cgroup_procs,
                    unshare,
                    user_maps.as_ref(),
                )
            });
        }
        cmd.spawn()
    }
}

/// Namespaces every isolated sandbox gets (a user namespace is added on request).
pub(crate) const NAMESPACES: libc::c_int = libc::CLONE_NEWNS
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWPID;

fn in_child(
    spec_fd: i32,
    event_fd: i32,
    cgroup_procs: &[CString],
    unshare: bool,
    user_maps: Option<&(CString, CString)>,
) -> io::Result<()> {
    // SAFETY (whole function): raw system calls on valid, NUL-terminated strings and on
    // descriptors this process owns.
    unsafe {
        // Move the control pipes out of the way, then onto 3 and 4 (dup2 clears CLOEXEC).
        let spec_hi = check(libc::fcntl(spec_fd, libc::F_DUPFD_CLOEXEC, 10))?;
        let event_hi = check(libc::fcntl(event_fd, libc::F_DUPFD_CLOEXEC, 10))?;
        check(libc::dup2(spec_hi, SPEC_FD))?;
        check(libc::dup2(event_hi, EVENT_FD))?;
        for procs in cgroup_procs {
            write_file(procs, b"0")?;
        }
        // The init processes must survive the OOM killer so that they can report; the
        // command gets the default score back before its exec. Refused without privilege,
        // which only costs that guarantee.
        let _ = write_file(c"/proc/self/oom_score_adj", b"-1000");
        if !unshare {
            return Ok(());
        }
        if let Some((uid_map, gid_map)) = user_maps {
            check(libc::unshare(libc::CLONE_NEWUSER))?;
            write_file(c"/proc/self/setgroups", b"deny")?;
            write_file(c"/proc/self/uid_map", uid_map.as_bytes())?;
            write_file(c"/proc/self/gid_map", gid_map.as_bytes())?;
        }
        check(libc::unshare(NAMESPACES))?;
    }
    Ok(())
}

unsafe fn write_file(path: &std::ffi::CStr, data: &[u8]) -> io::Result<()> {
    // SAFETY: see `in_child`.
    unsafe {
        let fd = check(libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC))?;
        let written = libc::write(fd, data.as_ptr().cast(), data.len());
        let err = io::Error::last_os_error();
        libc::close(fd);
        if written == data.len() as isize {
            Ok(())
        } else {
            Err(err)
        }
    }
}

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}
