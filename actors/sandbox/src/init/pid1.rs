//! PID 1 of the sandbox: builds the sandbox, starts the command, reaps, reports.
//!
//! When the command exits, PID 1 reports its status and exits too; the kernel then kills
//! every process left in the PID namespace, so daemonized orphans never outlive a run.

use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Instant;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{self, Signal};
use nix::sys::signalfd::SignalFd;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork, pipe2};

use super::relay::{FORWARDED, watched_signals};
use super::spec::{CommandSpec, InitEvent, InitSpec, SPEC_FD};
use super::{LayerContext, SetupError, command, mounts, report};

pub(super) fn run(spec: InitSpec) -> ! {
    let code = match build_and_start(&spec) {
        Ok(Some((child, err_rx))) => {
            // The command's exec closes the CLOEXEC error pipe; anything read means exec
            // failed (the command then exits 126/127 with the reason on its stderr).
            let mut failure = Vec::new();
            let _ = std::fs::File::from(err_rx)
                .take(command::MAX_EXEC_ERROR as u64)
                .read_to_end(&mut failure);
            if failure.is_empty() {
                report(&InitEvent::Started);
            } else {
                let (layer, message) = command::parse_exec_error(&failure);
                report(&InitEvent::ExecFailed { layer, message });
            }
            supervise(child)
        }
        // The node let go of this sandbox before using it.
        Ok(None) => 0,
        Err(err) => {
            report(&InitEvent::SetupFailed {
                layer: err.layer.into(),
                message: err.message,
            });
            125
        }
    };
    std::process::exit(code)
}

/// Builds the sandbox, reports it ready, waits for the command and starts it.
fn build_and_start(spec: &InitSpec) -> Result<Option<(Pid, OwnedFd)>, SetupError> {
    let started = Instant::now();
    // The command must not inherit the channels to the node.
    for fd in [super::spec::SPEC_FD, super::spec::EVENT_FD] {
        // SAFETY: fds 3 and 4 stay open for the init's whole life.
        let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
        nix::fcntl::fcntl(
            fd,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        )
        .layer("init", "mark the control pipes close-on-exec")?;
    }
    // The spawner placed this process in the sandbox's cgroup before exec; a cgroup
    // namespace made now has that cgroup as its root, so the sandbox cannot see the host's.
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP)
        .layer("cgroup-namespace", "unshare")?;
    mounts::build_root(spec)?;
    nix::unistd::sethostname(&spec.hostname).layer("uts-namespace", "sethostname")?;
    loopback_up().layer("network-namespace", "bring up lo")?;
    if let Some(egress) = &spec.egress {
        super::bridge::start(egress, spec.uid, spec.gid)?;
    }
    report(&InitEvent::Ready {
        setup_us: u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
    });
    let Some(cmd) = super::read_control::<CommandSpec>().map_err(|e| SetupError::new("init", e))?
    else {
        return Ok(None);
    };
    let prepared = command::Prepared::new(&cmd)?;
    let (err_rx, err_tx) = pipe2(nix::fcntl::OFlag::O_CLOEXEC).layer("init", "pipe")?;
    // SAFETY: PID 1 is single-threaded.
    match unsafe { fork() }.layer("pid-namespace", "fork the command")? {
        ForkResult::Child => {
            drop(err_rx);
            command::exec(spec, &cmd, &prepared, err_tx)
        }
        ForkResult::Parent { child } => {
            drop(err_tx);
            super::let_go_of(&[]);
            // PID 1 needs no privilege from here on but the right to signal the command.
            command::drop_capabilities(&[caps::Capability::CAP_KILL])
                .layer("capabilities", "drop PID 1's capabilities")?;
            Ok(Some((child, err_rx)))
        }
    }
}

/// Reaps every child; returns when the command itself has ended, with the status a shell
/// would report, after telling the node how it ended.
fn supervise(command: Pid) -> i32 {
    let Ok(signals) = SignalFd::new(&watched_signals()) else {
        let _ = signal::kill(command, Signal::SIGKILL);
        return 125;
    };
    // The node keeps the control pipe open for the whole run: its end of file means the
    // node let go of the run (cancelled it, or died), and nothing may outlive that.
    // SAFETY: fd 3 stays open for PID 1's whole life.
    let lifeline = unsafe { BorrowedFd::borrow_raw(SPEC_FD) };
    let mut node_gone = false;
    loop {
        if let Some(status) = reap(command) {
            let (code, signal) = match status {
                WaitStatus::Exited(_, code) => (Some(code), None),
                WaitStatus::Signaled(_, sig, _) => (None, Some(sig as i32)),
                _ => (None, None),
            };
            report(&InitEvent::Exited { code, signal });
            return code.unwrap_or(0);
        }
        let mut fds = vec![PollFd::new(signals.as_fd(), PollFlags::POLLIN)];
        if !node_gone {
            fds.push(PollFd::new(lifeline, PollFlags::POLLIN));
        }
        if poll(&mut fds, PollTimeout::NONE).is_err() {
            continue; // EINTR
        }
        let lifeline_ready = fds
            .get(1)
            .and_then(PollFd::revents)
            .is_some_and(|r| !r.is_empty());
        if lifeline_ready {
            let mut byte = [0u8; 1];
            if !matches!(nix::unistd::read(lifeline, &mut byte), Ok(1)) {
                node_gone = true;
                // Every process of the namespace but PID 1 itself.
                let _ = signal::kill(Pid::from_raw(-1), Signal::SIGKILL);
            }
        }
        if let Ok(Some(info)) = signals.read_signal()
            && let Ok(sig) = Signal::try_from(info.ssi_signo as i32)
            && FORWARDED.contains(&sig)
        {
            // The command leads its own process group (setsid): signal all of it.
            let _ = signal::kill(Pid::from_raw(-command.as_raw()), sig);
        }
    }
}

/// Collects every exited child without blocking; returns the command's status once seen.
fn reap(command: Pid) -> Option<WaitStatus> {
    let mut found = None;
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(_) => return found,
            Ok(status) if status.pid() == Some(command) => {
                if matches!(status, WaitStatus::Exited(..) | WaitStatus::Signaled(..)) {
                    found = Some(status);
                }
            }
            Ok(_) => {}
        }
    }
}

/// Sets IFF_UP on `lo`, the only interface of a fresh network namespace.
///
/// By hand through `ioctl`: nix has no setter for interface flags, and a netlink crate is a
/// lot of code for one bit.
fn loopback_up() -> std::io::Result<()> {
    // SAFETY: plain socket/ioctl calls on a zeroed ifreq with a NUL-terminated name.
    unsafe {
        let sock = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if sock < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut req: libc::ifreq = std::mem::zeroed();
        for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
            *dst = *src as libc::c_char;
        }
        let mut result = libc::ioctl(sock, libc::SIOCGIFFLAGS, &mut req);
        if result == 0 {
            req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            result = libc::ioctl(sock, libc::SIOCSIFFLAGS, &req);
        }
        let err = std::io::Error::last_os_error();
        libc::close(sock);
        if result == 0 { Ok(()) } else { Err(err) }
    }
}
