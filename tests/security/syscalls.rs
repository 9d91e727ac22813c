//! The seccomp layer: every never-allowed system call, namespace re-entry, the argument
//! tricks, the 32-bit entry points and unknown numbers.

use neuroflow::kit::protocol::sandbox::EndReason;

use crate::{attack, report, require_isolation};

/// One scenario per never-allowed system call (x86_64 numbers), each called with harmless
/// arguments: whatever the kernel would answer, the filter must answer EPERM first.
macro_rules! never_allowed {
    ($($test:ident: $nr:expr,)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() {
                require_isolation!();
                let r = report(&format!("report('call', *sc({}, 0, 0, 0, 0, 0, 0))", $nr)).await;
                r.refused("call", &["EPERM"]);
            }
        )*
    };
}

never_allowed! {
    ptrace_is_denied: 101,
    process_vm_readv_is_denied: 310,
    process_vm_writev_is_denied: 311,
    process_madvise_is_denied: 440,
    pidfd_getfd_is_denied: 438,
    kcmp_is_denied: 312,
    mount_is_denied: 165,
    umount2_is_denied: 166,
    fsopen_is_denied: 430,
    fsmount_is_denied: 432,
    open_tree_is_denied: 428,
    move_mount_is_denied: 429,
    mount_setattr_is_denied: 442,
    pivot_root_is_denied: 155,
    chroot_is_denied: 161,
    unshare_is_denied: 272,
    setns_is_denied: 308,
    bpf_is_denied: 321,
    perf_event_open_is_denied: 298,
    userfaultfd_is_denied: 323,
    io_uring_setup_is_denied: 425,
    io_uring_enter_is_denied: 426,
    io_uring_register_is_denied: 427,
    keyctl_is_denied: 250,
    add_key_is_denied: 248,
    request_key_is_denied: 249,
    init_module_is_denied: 175,
    finit_module_is_denied: 313,
    delete_module_is_denied: 176,
    kexec_load_is_denied: 246,
    kexec_file_load_is_denied: 320,
    reboot_is_denied: 169,
    swapon_is_denied: 167,
    swapoff_is_denied: 168,
    acct_is_denied: 163,
    syslog_is_denied: 103,
    quotactl_is_denied: 179,
    iopl_is_denied: 172,
    ioperm_is_denied: 173,
    clock_settime_is_denied: 227,
    clock_adjtime_is_denied: 305,
    settimeofday_is_denied: 164,
    adjtimex_is_denied: 159,
    open_by_handle_at_is_denied: 304,
    fanotify_init_is_denied: 300,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaces_cannot_be_entered_or_made() {
    require_isolation!();
    let r = report(
        r#"
CLONE_NEWUSER, CLONE_NEWNS, CLONE_NEWNET, SIGCHLD = 0x10000000, 0x00020000, 0x40000000, 17
report("unshare_user", *sc(272, CLONE_NEWUSER))
report("unshare_net", *sc(272, CLONE_NEWNET))
fd = os.open("/proc/1/ns/net", os.O_RDONLY) if os.access("/proc/1/ns/net", os.R_OK) else -1
report("setns", *sc(308, fd if fd >= 0 else 0, 0))
# clone(flags, stack=0, ...): a namespace flag must be refused before any child exists.
report("clone_newuser", *sc(56, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0))
report("clone_newns", *sc(56, CLONE_NEWNS | SIGCHLD, 0, 0, 0, 0))
report("clone_newns_hi", *sc(56, (1 << 32) | CLONE_NEWNS | SIGCHLD, 0, 0, 0, 0))
report("clone3", *sc(435, 0, 0))
pid = os.fork()
if pid == 0:
    os._exit(7)
print("fork_status=" + str(os.waitpid(pid, 0)[1] >> 8))
"#,
    )
    .await;
    for label in [
        "unshare_user",
        "unshare_net",
        "setns",
        "clone_newuser",
        "clone_newns",
    ] {
        r.refused(label, &["EPERM"]);
    }
    // The kernel reads clone's flags as 64 bits: a flag above bit 31 is not a way around.
    r.refused("clone_newns_hi", &["EPERM"]);
    // ENOSYS makes libc fall back to clone(2), whose flags the filter can see.
    r.refused("clone3", &["ENOSYS"]);
    assert_eq!(r.get("fork_status"), "7", "plain fork still works");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_families_and_the_upper_bits_trick() {
    require_isolation!();
    let r = report(
        r#"
AF_INET, AF_INET6, AF_UNIX, AF_PACKET, AF_VSOCK, AF_NETLINK = 2, 10, 1, 17, 40, 16
SOCK_STREAM, SOCK_DGRAM, SOCK_RAW = 1, 2, 3
report("inet", *sc(41, AF_INET, SOCK_STREAM, 0))
report("inet6", *sc(41, AF_INET6, SOCK_STREAM, 0))
report("unix", *sc(41, AF_UNIX, SOCK_STREAM, 0))
report("raw", *sc(41, AF_INET, SOCK_RAW, 1))
report("raw6", *sc(41, AF_INET6, SOCK_RAW, 58))
report("packet", *sc(41, AF_PACKET, SOCK_RAW, 0))
report("vsock", *sc(41, AF_VSOCK, SOCK_STREAM, 0))
report("vsock_hi", *sc(41, (1 << 32) | AF_VSOCK, SOCK_STREAM, 0))
report("packet_hi", *sc(41, (1 << 32) | AF_PACKET, SOCK_RAW, 0))
report("socketpair_vsock", *sc(53, AF_VSOCK, SOCK_STREAM, 0, 0))
"#,
    )
    .await;
    for label in ["inet", "inet6", "unix"] {
        assert_eq!(r.get(label), "OK", "{label} must work");
    }
    for label in ["raw", "raw6", "packet", "vsock", "vsock_hi", "packet_hi"] {
        r.refused(label, &["EPERM"]);
    }
    r.refused("socketpair_vsock", &["EPERM"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiocsti_is_denied_even_with_upper_bits() {
    require_isolation!();
    let r = report(
        r#"
TIOCSTI, TIOCLINUX, FIONREAD = 0x5412, 0x541C, 0x541B
c = ctypes.c_char(b"x")
report("tiocsti", *sc(16, 0, TIOCSTI, ctypes.addressof(c)))
report("tiocsti_hi", *sc(16, 0, (1 << 32) | TIOCSTI, ctypes.addressof(c)))
report("tioclinux", *sc(16, 0, TIOCLINUX, ctypes.addressof(c)))
r, w = os.pipe()
n = ctypes.c_int(0)
report("fionread", *sc(16, r, FIONREAD, ctypes.addressof(n)))
"#,
    )
    .await;
    r.refused("tiocsti", &["EPERM"]);
    r.refused("tiocsti_hi", &["EPERM"]);
    r.refused("tioclinux", &["EPERM"]);
    assert_eq!(r.get("fionread"), "OK", "ordinary ioctls still work");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_syscall_numbers_are_refused() {
    require_isolation!();
    let r = report(
        r#"
report("nr_999", *sc(999))
report("nr_460", *sc(460))
"#,
    )
    .await;
    // Without the filter the kernel would say ENOSYS.
    r.refused("nr_999", &["EPERM"]);
    r.refused("nr_460", &["EPERM"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_32_bit_entry_point_kills_the_process() {
    require_isolation!();
    // mov eax, 20 (getpid on i386); int 0x80; ret
    let outcome = attack(
        r#"
import mmap
code = bytes([0xb8, 0x14, 0, 0, 0, 0xcd, 0x80, 0xc3])
buf = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
buf.write(code)
addr = ctypes.addressof(ctypes.c_char.from_buffer(buf))
print("calling", flush=True)
print("returned=" + str(ctypes.CFUNCTYPE(ctypes.c_int)(addr)()), flush=True)
"#,
    )
    .await;
    let stdout = String::from_utf8_lossy(&outcome.stdout);
    assert!(stdout.contains("calling"), "{stdout}");
    assert!(!stdout.contains("returned"), "{stdout}");
    assert_eq!(outcome.signal, Some(libc::SIGSYS), "{outcome:?}");
    assert_eq!(outcome.end, EndReason::Signaled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x32_syscalls_kill_the_process() {
    require_isolation!();
    let outcome = attack(
        r#"
print("calling", flush=True)
r = sc(39 | 0x40000000)
print("returned=" + str(r), flush=True)
"#,
    )
    .await;
    let stdout = String::from_utf8_lossy(&outcome.stdout);
    assert!(stdout.contains("calling"), "{stdout}");
    assert!(!stdout.contains("returned"), "{stdout}");
    assert_eq!(outcome.signal, Some(libc::SIGSYS), "{outcome:?}");
}
