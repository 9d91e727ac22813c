//! seccomp-probe: load a compiled seccomp program, make one named system call, say what
//! the kernel answered.
//!
//! ```text
//! seccomp-probe [--no-filter | --no-nnp] PROBE < PROGRAM
//! ```
//!
//! PROGRAM is the raw BPF program ([`Bpf::as_bytes`]). The probe sets no_new_privs and
//! installs it exactly as the sandbox init does, then prints `ok`, `errno N` or
//! `failed WHY` and exits 0. A call the filter kills ends the process with SIGSYS instead.
//! `--no-filter` skips the filter (to see the kernel's own answer); `--no-nnp` skips
//! setting no_new_privs, so the install must fail. Exit 2 means bad usage, 3 a failed
//! install. The crate's tests use it to observe a real filter in a fresh process.
//!
//! Calls that would change the host if the filter let them through are made with
//! arguments the kernel rejects (null pointers, bad descriptors), so that without a
//! filter they fail with an error other than EPERM and do nothing.

use std::ffi::CStr;
use std::io::Read;
use std::process::ExitCode;
use std::ptr;

use neuroflow_sandbox::seccomp::Bpf;

enum Answer {
    Ok,
    Errno(i32),
    Failed(String),
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (flag, name) = match args.as_slice() {
        [name] => (None, name.as_str()),
        [flag, name] if flag == "--no-filter" || flag == "--no-nnp" => {
            (Some(flag.as_str()), name.as_str())
        }
        _ => {
            eprintln!("usage: seccomp-probe [--no-filter | --no-nnp] PROBE < PROGRAM");
            return ExitCode::from(2);
        }
    };
    let Some(run) = probe(name) else {
        eprintln!("seccomp-probe: unknown probe `{name}`");
        return ExitCode::from(2);
    };
    if flag != Some("--no-filter")
        && let Err(message) = install(flag != Some("--no-nnp"))
    {
        println!("install: {message}");
        return ExitCode::from(3);
    }
    match run() {
        Answer::Ok => println!("ok"),
        Answer::Errno(n) => println!("errno {n}"),
        Answer::Failed(why) => println!("failed {why}"),
    }
    ExitCode::SUCCESS
}

fn install(set_nnp: bool) -> Result<(), String> {
    let mut bytes = Vec::new();
    std::io::stdin()
        .read_to_end(&mut bytes)
        .map_err(|e| format!("reading the program: {e}"))?;
    let program = Bpf::from_bytes(bytes).map_err(|e| e.to_string())?;
    // SAFETY: PR_SET_NO_NEW_PRIVS takes no pointers.
    if set_nnp && unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(format!("prctl: {}", std::io::Error::last_os_error()));
    }
    program.install().map_err(|e| e.to_string())
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// A raw system call with up to six arguments, so 64-bit values reach the kernel as given.
fn sys(nr: libc::c_long, args: &[u64]) -> Answer {
    let a = |i: usize| args.get(i).copied().unwrap_or(0);
    // SAFETY: every probe passes arguments the named call accepts or rejects cleanly:
    // valid pointers to live locals, null pointers or invalid descriptors.
    let rc = unsafe { libc::syscall(nr, a(0), a(1), a(2), a(3), a(4), a(5)) };
    match rc {
        -1 => Answer::Errno(errno()),
        _ => Answer::Ok,
    }
}

/// socket(2) or socketpair(2); closes what it got.
fn try_socket(domain: u64, kind: u64, protocol: u64) -> Answer {
    let rc = unsafe { libc::syscall(libc::SYS_socket, domain, kind, protocol) };
    if rc < 0 {
        return Answer::Errno(errno());
    }
    unsafe { libc::close(rc as libc::c_int) };
    Answer::Ok
}

fn try_socketpair(domain: u64) -> Answer {
    let mut fds = [0 as libc::c_int; 2];
    let rc = unsafe {
        libc::syscall(
            libc::SYS_socketpair,
            domain,
            libc::SOCK_STREAM,
            0,
            fds.as_mut_ptr(),
        )
    };
    if rc < 0 {
        return Answer::Errno(errno());
    }
    unsafe {
        libc::close(fds[0]);
        libc::close(fds[1]);
    }
    Answer::Ok
}

/// ioctl(2) on the read end of a pipe holding three bytes.
fn ioctl_on_pipe(request: u64) -> Answer {
    let mut fds = [0 as libc::c_int; 2];
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        return Answer::Failed(format!("pipe: errno {}", errno()));
    }
    unsafe { libc::write(fds[1], b"abc".as_ptr().cast(), 3) };
    let mut out: libc::c_int = 0;
    let answer = sys(
        libc::SYS_ioctl,
        &[fds[0] as u64, request, &mut out as *mut libc::c_int as u64],
    );
    unsafe {
        libc::close(fds[0]);
        libc::close(fds[1]);
    }
    answer
}

/// Raw clone(2) used like fork: the child leaves at once, the parent reaps it.
fn try_clone(flags: u64) -> Answer {
    let pid = unsafe { libc::syscall(libc::SYS_clone, flags | libc::SIGCHLD as u64, 0, 0, 0, 0) };
    match pid {
        0 => unsafe { libc::_exit(0) },
        -1 => Answer::Errno(errno()),
        pid => reap(pid as libc::pid_t),
    }
}

fn reap(pid: libc::pid_t) -> Answer {
    let mut status = 0;
    if unsafe { libc::waitpid(pid, &mut status, 0) } != pid {
        return Answer::Failed(format!("waitpid: errno {}", errno()));
    }
    if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
        Answer::Ok
    } else {
        Answer::Failed(format!("child status {status:#x}"))
    }
}

fn fork_exec_true() -> Answer {
    let path: &CStr = c"/bin/true";
    let argv = [path.as_ptr(), ptr::null()];
    match unsafe { libc::fork() } {
        0 => unsafe {
            libc::execv(path.as_ptr(), argv.as_ptr());
            libc::_exit(127)
        },
        -1 => Answer::Errno(errno()),
        pid => reap(pid),
    }
}

fn command(program: &str, args: &[&str]) -> Answer {
    match std::process::Command::new(program).args(args).status() {
        Ok(status) if status.success() => Answer::Ok,
        Ok(status) => Answer::Failed(format!("{program}: {status}")),
        Err(e) => match e.raw_os_error() {
            Some(n) => Answer::Errno(n),
            None => Answer::Failed(e.to_string()),
        },
    }
}

fn spawn_thread() -> Answer {
    match std::thread::Builder::new().spawn(|| 7) {
        Ok(handle) => match handle.join() {
            Ok(7) => Answer::Ok,
            _ => Answer::Failed("thread did not finish".into()),
        },
        Err(e) => Answer::Errno(e.raw_os_error().unwrap_or(0)),
    }
}

/// getaddrinfo with AI_ADDRCONFIG, which makes glibc ask NETLINK_ROUTE for addresses.
fn lookup_localhost() -> Answer {
    // SAFETY: an all-zero addrinfo is the documented "no hints" value.
    let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
    hints.ai_flags = libc::AI_ADDRCONFIG;
    hints.ai_socktype = libc::SOCK_STREAM;
    let mut found = ptr::null_mut();
    let rc = unsafe { libc::getaddrinfo(c"localhost".as_ptr(), ptr::null(), &hints, &mut found) };
    if rc != 0 {
        return Answer::Failed(format!("getaddrinfo returned {rc}"));
    }
    unsafe { libc::freeaddrinfo(found) };
    Answer::Ok
}

/// getpid through the i386 entry point, as a 32-bit program would call it.
#[cfg(target_arch = "x86_64")]
fn int80_getpid() -> Answer {
    let rc: i64;
    // SAFETY: i386 getpid (20) reads no arguments; the compat entry may clobber r8-r11.
    unsafe {
        std::arch::asm!(
            "int 0x80",
            inlateout("rax") 20i64 => rc,
            out("r8") _, out("r9") _, out("r10") _, out("r11") _,
        );
    }
    if rc < 0 {
        Answer::Errno(-rc as i32)
    } else {
        Answer::Ok
    }
}

const HIGH: u64 = 1 << 32;

fn probe(name: &str) -> Option<fn() -> Answer> {
    use libc::*;
    let run: fn() -> Answer = match name {
        "getpid" => || sys(SYS_getpid, &[]),
        "socket-unix" => || try_socket(AF_UNIX as u64, SOCK_STREAM as u64, 0),
        "socket-inet" => || try_socket(AF_INET as u64, SOCK_STREAM as u64, 0),
        "socket-inet-udp" => || try_socket(AF_INET as u64, SOCK_DGRAM as u64, 0),
        "socket-inet-flags" => || {
            try_socket(
                AF_INET as u64,
                (SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC) as u64,
                0,
            )
        },
        "socket-inet-hi" => || try_socket(AF_INET as u64 | HIGH, SOCK_STREAM as u64, 0),
        "socket-inet-raw" => || try_socket(AF_INET as u64, SOCK_RAW as u64, IPPROTO_ICMP as u64),
        "socket-vsock" => || try_socket(AF_VSOCK as u64, SOCK_STREAM as u64, 0),
        "socket-vsock-hi" => || try_socket(AF_VSOCK as u64 | HIGH, SOCK_STREAM as u64, 0),
        "socket-packet" => || try_socket(AF_PACKET as u64, SOCK_RAW as u64, 0),
        "socket-netlink" => || try_socket(AF_NETLINK as u64, SOCK_RAW as u64, NETLINK_ROUTE as u64),
        "socketpair-unix" => || try_socketpair(AF_UNIX as u64),
        "socketpair-inet" => || try_socketpair(AF_INET as u64),
        "ioctl-fionread" => || ioctl_on_pipe(FIONREAD),
        "ioctl-fionread-hi" => || ioctl_on_pipe(FIONREAD | HIGH),
        "ioctl-tiocsti" => || ioctl_on_pipe(TIOCSTI),
        "ioctl-tiocsti-hi" => || ioctl_on_pipe(TIOCSTI | HIGH),
        "ioctl-tioclinux" => || ioctl_on_pipe(TIOCLINUX),
        "clone-plain" => || try_clone(0),
        "clone-newuser" => || try_clone(CLONE_NEWUSER as u64),
        "clone-newns" => || try_clone(CLONE_NEWNS as u64),
        "clone-newnet-hi" => || try_clone(CLONE_NEWNET as u64 | HIGH),
        // Null arguments: without a filter the kernel answers EFAULT or EINVAL.
        "clone3" => || sys(SYS_clone3, &[0, 0]),
        "thread" => spawn_thread,
        "fork-exec-true" => fork_exec_true,
        "spawn-true" => || command("/bin/true", &[]),
        "shell" => || command("/bin/sh", &["-c", "x=$(echo hi | cat); test \"$x\" = hi"]),
        "getaddrinfo" => lookup_localhost,
        "personality-query" => || sys(SYS_personality, &[0xffff_ffff]),
        "personality-no-aslr" => || sys(SYS_personality, &[ADDR_NO_RANDOMIZE as u64]),
        "ptrace" => || sys(SYS_ptrace, &[PTRACE_PEEKDATA as u64, 0, 0, 0]),
        "process-vm-readv" => || sys(SYS_process_vm_readv, &[0, 0, 0, 0, 0, 0]),
        "kcmp" => || sys(SYS_kcmp, &[0, 0, 99, 0, 0]),
        "pidfd-getfd" => || sys(SYS_pidfd_getfd, &[u64::MAX, u64::MAX, 0]),
        "mount" => || sys(SYS_mount, &[0, 0, 0, 0, 0]),
        "umount2" => || sys(SYS_umount2, &[0, 0]),
        "pivot-root" => || sys(SYS_pivot_root, &[0, 0]),
        "chroot" => || sys(SYS_chroot, &[0]),
        "unshare" => || sys(SYS_unshare, &[CLONE_NEWUSER as u64]),
        "setns" => || sys(SYS_setns, &[u64::MAX, 0]),
        "bpf" => || sys(SYS_bpf, &[u64::MAX, 0, 0]),
        "perf-event-open" => || sys(SYS_perf_event_open, &[0, 0, u64::MAX, u64::MAX, 0]),
        "userfaultfd" => || sys(SYS_userfaultfd, &[u64::MAX]),
        "io-uring-setup" => || sys(SYS_io_uring_setup, &[0, 0]),
        "keyctl" => || sys(SYS_keyctl, &[u64::MAX, 0, 0, 0, 0]),
        "add-key" => || sys(SYS_add_key, &[0, 0, 0, 0, 0]),
        "init-module" => || sys(SYS_init_module, &[0, 0, 0]),
        "finit-module" => || sys(SYS_finit_module, &[u64::MAX, 0, 0]),
        "kexec-load" => || sys(SYS_kexec_load, &[0, 0, 0, u64::MAX]),
        "reboot" => || sys(SYS_reboot, &[0, 0, 0, 0]),
        "swapon" => || sys(SYS_swapon, &[0, 0]),
        "acct" => || sys(SYS_acct, &[0xdead]),
        "syslog" => || sys(SYS_syslog, &[u64::MAX, 0, 0]),
        "clock-settime" => || sys(SYS_clock_settime, &[CLOCK_REALTIME as u64, 0]),
        "settimeofday" => || sys(SYS_settimeofday, &[0xdead, 0]),
        "adjtimex" => || sys(SYS_adjtimex, &[0]),
        "open-by-handle-at" => || sys(SYS_open_by_handle_at, &[u64::MAX, 0, 0]),
        "name-to-handle-at" => || sys(SYS_name_to_handle_at, &[u64::MAX, 0, 0, 0, 0]),
        "fanotify-init" => || sys(SYS_fanotify_init, &[u64::MAX, 0]),
        #[cfg(target_arch = "x86_64")]
        "iopl" => || sys(SYS_iopl, &[4]),
        #[cfg(target_arch = "x86_64")]
        "ioperm" => || sys(SYS_ioperm, &[0, 0, 0]),
        // No kernel has system call 1000.
        "unknown-1000" => || sys(1000, &[]),
        // getpid of the x32 ABI: the native number with bit 30 set.
        #[cfg(target_arch = "x86_64")]
        "x32-getpid" => || sys(SYS_getpid | 0x4000_0000, &[]),
        #[cfg(target_arch = "x86_64")]
        "int80-getpid" => int80_getpid,
        _ => return None,
    };
    Some(run)
}
