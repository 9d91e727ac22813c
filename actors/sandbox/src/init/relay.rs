//! The init's first process: forks PID 1 of the sandbox, then relays.
//!
//! It stays in the node's PID namespace as the node's direct child, so the node can wait
//! for it like any child process. It forwards the signals a supervisor sends (TERM, INT,
//! HUP, QUIT) to PID 1 and exits with PID 1's status.

use nix::fcntl::OFlag;
use nix::sched::{CloneFlags, unshare};
use nix::sys::signal::{self, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::SignalFd;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork, pipe2, read, write};

use super::spec::{EVENT_FD, InitEvent, InitSpec, SPEC_FD};
use super::{pid1, report};

/// Signals relayed to the sandbox, and handled (not acted on) by the init processes.
pub(super) const FORWARDED: [Signal; 6] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
];

pub(super) fn watched_signals() -> SigSet {
    let mut set = SigSet::empty();
    for sig in FORWARDED {
        set.add(sig);
    }
    set.add(Signal::SIGCHLD);
    set
}

pub(super) fn run(spec: InitSpec) -> i32 {
    // Blocked before the fork so that no signal slips in before PID 1 reads its signalfd;
    // the command gets the original mask back before exec.
    let watched = watched_signals();
    if let Err(e) = signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&watched), None) {
        return setup_failed("init", format!("cannot block signals: {e}"));
    }
    match spec.outside_user_maps.clone() {
        None => fork_pid1(spec, &watched),
        Some(maps) => fork_mapped(spec, &maps, &watched),
    }
}

fn fork_pid1(spec: InitSpec, watched: &SigSet) -> i32 {
    // SAFETY: the init is single-threaded, so the child may run arbitrary code after fork.
    match unsafe { fork() } {
        Err(e) => setup_failed("pid-namespace", format!("cannot fork PID 1: {e}")),
        Ok(ForkResult::Child) => pid1::run(spec),
        Ok(ForkResult::Parent { child }) => relay(child, watched),
    }
}

/// Root asked for a user namespace: a child enters it, this process (still root outside)
/// writes its id maps, and the child makes the other namespaces (owned by the new user
/// namespace, so that it may mount in them) and forks PID 1, relaying like this process.
fn fork_mapped(spec: InitSpec, (uid_map, gid_map): &(String, String), watched: &SigSet) -> i32 {
    let pipes = (pipe2(OFlag::O_CLOEXEC), pipe2(OFlag::O_CLOEXEC));
    let ((entered_rx, entered_tx), (mapped_rx, mapped_tx)) = match pipes {
        (Ok(a), Ok(b)) => (a, b),
        _ => return setup_failed("user-namespace", "cannot make a pipe".into()),
    };
    // SAFETY: the init is single-threaded.
    match unsafe { fork() } {
        Err(e) => setup_failed("user-namespace", format!("cannot fork: {e}")),
        Ok(ForkResult::Child) => {
            drop((entered_rx, mapped_tx));
            if let Err(e) = unshare(CloneFlags::CLONE_NEWUSER) {
                return setup_failed("user-namespace", format!("unshare: {e}"));
            }
            let _ = write(&entered_tx, b"u");
            let mut ok = [0u8; 1];
            if !matches!(read(&mapped_rx, &mut ok), Ok(1)) {
                return 125; // the parent reported why
            }
            // Still root of the host by id, which the new namespace cannot map (files made
            // now would fail with EOVERFLOW): become its root, i.e. `nobody` outside.
            let (root_uid, root_gid) =
                (nix::unistd::Uid::from_raw(0), nix::unistd::Gid::from_raw(0));
            let ids = nix::unistd::setresgid(root_gid, root_gid, root_gid)
                .and_then(|()| nix::unistd::setresuid(root_uid, root_uid, root_uid));
            if let Err(e) = ids {
                return setup_failed(
                    "user-namespace",
                    format!("become the namespace's root: {e}"),
                );
            }
            let flags = CloneFlags::from_bits_truncate(crate::spawn::NAMESPACES);
            if let Err(e) = unshare(flags) {
                return setup_failed("namespaces", format!("unshare: {e}"));
            }
            fork_pid1(spec, watched)
        }
        Ok(ForkResult::Parent { child }) => {
            drop((entered_tx, mapped_rx));
            let mut entered = [0u8; 1];
            if !matches!(read(&entered_rx, &mut entered), Ok(1)) {
                return relay(child, watched);
            }
            let proc = format!("/proc/{child}");
            let mapped = std::fs::write(format!("{proc}/setgroups"), "deny")
                .and_then(|()| std::fs::write(format!("{proc}/uid_map"), uid_map))
                .and_then(|()| std::fs::write(format!("{proc}/gid_map"), gid_map));
            match mapped {
                Ok(()) => {
                    let _ = write(&mapped_tx, b"m");
                }
                Err(e) => {
                    let _ = signal::kill(child, Signal::SIGKILL);
                    setup_failed("user-namespace", format!("write id maps: {e}"));
                }
            }
            drop(mapped_tx);
            relay(child, watched)
        }
    }
}

fn relay(pid1: Pid, watched: &SigSet) -> i32 {
    let signals = match SignalFd::new(watched) {
        Ok(fd) => fd,
        Err(e) => {
            let _ = signal::kill(pid1, Signal::SIGKILL);
            return setup_failed("init", format!("cannot open a signalfd: {e}"));
        }
    };
    // From here on PID 1 speaks for the sandbox.
    super::let_go_of(&[SPEC_FD, EVENT_FD]);
    loop {
        match signals.read_signal() {
            Ok(Some(info)) => {
                let Ok(sig) = Signal::try_from(info.ssi_signo as i32) else {
                    continue;
                };
                if sig != Signal::SIGCHLD {
                    let _ = signal::kill(pid1, sig);
                    continue;
                }
            }
            Ok(None) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => {}
        }
        // SIGCHLD (or a failed read: fall back to a blocking wait).
        match waitpid(pid1, None) {
            Ok(WaitStatus::Exited(_, code)) => return code,
            Ok(WaitStatus::Signaled(_, sig, _)) => return 128 + sig as i32,
            Ok(_) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return 125,
        }
    }
}

fn setup_failed(layer: &str, message: String) -> i32 {
    report(&InitEvent::SetupFailed {
        layer: layer.into(),
        message,
    });
    125
}
