//! The seccomp policy: file errors, compilation, and behaviour under a real filter.
//!
//! Behaviour is observed with the `seccomp-probe` binary: each probe is a fresh process
//! that sets no_new_privs, installs the compiled program exactly as the sandbox init does,
//! makes one system call and reports the kernel's answer (or dies by SIGSYS). Needs no
//! privileges beyond no_new_privs, so it runs on any Linux host.

use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};

use neuroflow_sandbox::seccomp::{Bpf, Policy, PolicyError};

const EPERM: i32 = libc::EPERM;
const ENOSYS: i32 = libc::ENOSYS;

// ---------------------------------------------------------------------------------------
// Reading policy files

/// A small valid policy; `extra` is appended (new sets, rules, profiles).
fn policy_with(extra: &str) -> String {
    format!(
        r#"
version = 1
default_action = "errno:EPERM"
bad_arch_action = "kill"
never = ["ptrace", "mount"]
optional = ["some_future_call"]

[sets]
basic = ["read", "write", "exit_group"]

[rules.no-ns-clone]
syscalls = ["clone"]
action = "allow"
args = [{{ index = 0, mask = "CLONE_NEWUSER|CLONE_NEWNS", eq = 0 }}]

[profiles.base]
sets = ["basic"]
rules = ["no-ns-clone"]
{extra}
"#
    )
}

fn load(text: &str) -> Result<Policy, PolicyError> {
    Policy::from_toml(text)
}

/// The error a policy text is refused with.
fn error(text: &str) -> PolicyError {
    match Policy::from_toml(text) {
        Ok(_) => panic!("policy unexpectedly accepted:\n{text}"),
        Err(e) => e,
    }
}

#[test]
fn a_small_policy_loads_and_compiles() {
    let policy = load(&policy_with("")).expect("valid policy");
    assert_eq!(policy.profile_names(), vec!["base"]);
    let bpf = policy.compile("base").expect("compiles");
    assert!(
        bpf.len() > 4 && bpf.len() < 100,
        "{} instructions",
        bpf.len()
    );
}

#[test]
fn syntax_and_version_errors_are_typed() {
    assert!(matches!(error("version = "), PolicyError::Syntax { .. }));
    assert_eq!(
        error("default_action = \"errno:EPERM\""),
        PolicyError::MissingVersion
    );
    let v2 = policy_with("").replace("version = 1", "version = 2");
    assert_eq!(
        error(&v2),
        PolicyError::UnsupportedVersion { found: "2".into() }
    );
    // A misspelt field is refused with its name, not ignored.
    let typo = policy_with("[rules.x]\nsyscalls = [\"read\"]\naction = \"allow\"\narg = []\n");
    match load(&typo) {
        Err(PolicyError::Syntax { message }) => assert!(message.contains("arg"), "{message}"),
        other => panic!("expected a syntax error, got {other:?}"),
    }
}

#[test]
fn unknown_names_are_typed_and_named() {
    let text = policy_with("").replace("\"write\"", "\"wirte\"");
    assert_eq!(
        error(&text),
        PolicyError::UnknownSyscall {
            name: "wirte".into(),
            place: "set `basic`".into()
        }
    );

    let text = policy_with("").replace("sets = [\"basic\"]", "sets = [\"basics\"]");
    assert_eq!(
        error(&text),
        PolicyError::UnknownSet {
            name: "basics".into(),
            profile: "base".into()
        }
    );

    let text = policy_with("").replace("rules = [\"no-ns-clone\"]", "rules = [\"nope\"]");
    assert!(
        matches!(error(&text), PolicyError::UnknownRule { name, .. } if name == "nope"
        )
    );

    let text = policy_with("").replace("CLONE_NEWUSER|", "CLONE_NEWUSR|");
    assert_eq!(
        error(&text),
        PolicyError::UnknownConstant {
            name: "CLONE_NEWUSR".into(),
            rule: "no-ns-clone".into()
        }
    );

    let policy = load(&policy_with("")).unwrap();
    assert!(matches!(
        policy.compile("standard"),
        Err(PolicyError::UnknownProfile { name, known }) if name == "standard" && known == "base"
    ));
}

#[test]
fn names_listed_as_optional_may_be_unknown() {
    let text = policy_with("").replace("\"exit_group\"]", "\"exit_group\", \"some_future_call\"]");
    load(&text).expect("optional names are skipped");
}

#[test]
fn bad_actions_are_typed() {
    for (text, place) in [
        ("action = \"permit\"", "rule `x`"),
        ("action = \"errno:EWHAT\"", "rule `x`"),
        ("action = \"errno:0\"", "rule `x`"),
    ] {
        let extra = format!("[rules.x]\nsyscalls = [\"read\"]\n{text}\n");
        match load(&policy_with(&extra)) {
            Err(PolicyError::BadAction { place: p, .. }) => assert_eq!(p, place),
            other => panic!("{text}: expected BadAction, got {other:?}"),
        }
    }
    // An allowlist whose default allows is not one.
    let text = policy_with("").replace("\"errno:EPERM\"", "\"allow\"");
    assert!(
        matches!(error(&text), PolicyError::BadAction { place, .. } if place == "default_action"
        )
    );
}

#[test]
fn bad_argument_comparisons_are_typed() {
    let cases = [
        ("{ index = 6, eq = 1 }", "out of range"),
        ("{ index = 0, eq = 1, in = [2] }", "exactly one"),
        ("{ index = 0 }", "exactly one"),
        ("{ index = 0, in = [] }", "empty"),
        ("{ index = 0, eq = 4294967296 }", "32"),
        ("{ index = 0, eq = -1 }", "32"),
        ("{ index = 0, mask = 0xf, eq = 0x10 }", "outside mask"),
        ("{ index = 0, mask = 0, eq = 0 }", "mask 0"),
        ("{ index = 0, mask = 0x1, not_in = [0, 1] }", "every value"),
        ("{ index = 0, eq = true }", "integer or a string"),
        ("{ index = 0, eq = \"AF_INET||AF_UNIX\" }", "empty term"),
    ];
    for (arg, expect) in cases {
        let extra =
            format!("[rules.x]\nsyscalls = [\"read\"]\naction = \"allow\"\nargs = [{arg}]\n");
        match load(&policy_with(&extra)) {
            Err(PolicyError::BadArgument { rule, reason }) => {
                assert_eq!(rule, "x");
                assert!(reason.contains(expect), "{arg}: {reason}");
            }
            other => panic!("{arg}: expected BadArgument, got {other:?}"),
        }
    }
    let twice = "[rules.x]\nsyscalls = [\"read\"]\naction = \"allow\"\n\
                 args = [{ index = 0, eq = 1 }, { index = 0, eq = 2 }]\n";
    assert!(matches!(
        error(&policy_with(twice)),
        PolicyError::BadArgument { .. }
    ));
}

#[test]
fn rule_mixtures_libseccomp_would_rewrite_are_refused() {
    // Unconditional allow in a set plus an argument rule for the same call.
    let extra = "[rules.some-reads]\nsyscalls = [\"read\"]\naction = \"allow\"\n\
                 args = [{ index = 0, eq = 0 }]\n\
                 [profiles.mixed]\nsets = [\"basic\"]\nrules = [\"some-reads\"]\n";
    match load(&policy_with(extra)) {
        Err(PolicyError::Conflict {
            profile, syscall, ..
        }) => assert_eq!((profile.as_str(), syscall.as_str()), ("mixed", "read")),
        other => panic!("expected Conflict, got {other:?}"),
    }
    // Two actions for one call.
    let extra = "[rules.no-read]\nsyscalls = [\"read\"]\naction = \"errno:ENOSYS\"\n\
                 [profiles.torn]\nsets = [\"basic\"]\nrules = [\"no-read\"]\n";
    assert!(matches!(
        error(&policy_with(extra)),
        PolicyError::Conflict { .. }
    ));
}

#[test]
fn never_listed_calls_cannot_be_allowed() {
    // Through a set.
    let extra = "[profiles.debugger]\nsets = [\"basic\", \"tracing\"]\n";
    let text = policy_with(extra).replace("[sets]\n", "[sets]\ntracing = [\"ptrace\"]\n");
    assert_eq!(
        error(&text),
        PolicyError::NeverAllowed {
            profile: "debugger".into(),
            syscall: "ptrace".into(),
            by: "set `tracing`".into()
        }
    );
    // Through an argument rule.
    let extra = "[rules.some-mounts]\nsyscalls = [\"mount\"]\naction = \"allow\"\n\
                 args = [{ index = 3, eq = 0 }]\n\
                 [profiles.mounter]\nrules = [\"some-mounts\"]\n";
    assert!(
        matches!(error(&policy_with(extra)), PolicyError::NeverAllowed { syscall, .. } if syscall == "mount"
        )
    );
    // Refusing a never call with another errno is fine.
    let extra = "[rules.no-ptrace]\nsyscalls = [\"ptrace\"]\naction = \"errno:ENOSYS\"\n\
                 [profiles.quiet]\nrules = [\"no-ptrace\"]\n";
    load(&policy_with(extra)).expect("refusing is allowed");
}

/// Every call the sandbox must never allow is on the builtin `never` list: a profile
/// added to the builtin file that allows any one of them is refused.
#[test]
fn builtin_never_list_covers_the_escape_hatches() {
    let required = [
        "ptrace",
        "process_vm_readv",
        "process_vm_writev",
        "process_madvise",
        "pidfd_getfd",
        "kcmp",
        "mount",
        "umount2",
        "fsopen",
        "fsconfig",
        "fsmount",
        "fspick",
        "move_mount",
        "open_tree",
        "mount_setattr",
        "pivot_root",
        "chroot",
        "unshare",
        "setns",
        "bpf",
        "perf_event_open",
        "userfaultfd",
        "io_uring_setup",
        "io_uring_enter",
        "io_uring_register",
        "keyctl",
        "add_key",
        "request_key",
        "init_module",
        "finit_module",
        "delete_module",
        "kexec_load",
        "kexec_file_load",
        "reboot",
        "swapon",
        "swapoff",
        "acct",
        "syslog",
        "quotactl",
        "quotactl_fd",
        "iopl",
        "ioperm",
        "clock_settime",
        "clock_adjtime",
        "settimeofday",
        "adjtimex",
        "open_by_handle_at",
        "name_to_handle_at",
        "fanotify_init",
        "lookup_dcookie",
        "vm86",
    ];
    let builtin = include_str!("../policy/seccomp.toml");
    for name in required {
        let text = format!(
            "{builtin}\n[rules.leak]\nsyscalls = [\"{name}\"]\naction = \"allow\"\n\
             [profiles.leaky]\nrules = [\"leak\"]\n"
        );
        match Policy::from_toml(&text) {
            Err(PolicyError::NeverAllowed { syscall, .. }) => assert_eq!(syscall, name),
            other => panic!("{name}: expected NeverAllowed, got {other:?}"),
        }
    }
}

#[test]
fn builtin_policy_compiles_every_profile() {
    let policy = Policy::builtin().expect("builtin policy loads");
    let names = policy.profile_names();
    assert!(
        names.contains(&"standard") && names.contains(&"strict"),
        "{names:?}"
    );
    for name in names {
        let bpf = policy.compile(name).expect("compiles");
        assert!(
            !bpf.is_empty() && bpf.len() <= Bpf::MAX_INSTRUCTIONS,
            "{name}: {bpf:?}"
        );
    }
}

#[test]
fn program_travels_in_messagepack_and_malformed_programs_are_refused() {
    let bpf = Policy::builtin().unwrap().compile("standard").unwrap();
    let frame = rmp_serde::to_vec(&bpf).unwrap();
    // One byte string: the program plus a 5-byte `bin 32` header at most.
    assert!(
        frame.len() <= bpf.as_bytes().len() + 5,
        "{} bytes",
        frame.len()
    );
    let back: Bpf = rmp_serde::from_slice(&frame).unwrap();
    assert_eq!(back, bpf);

    let seven = rmp_serde::to_vec(&serde_bytes_like(&[0u8; 7])).unwrap();
    assert!(rmp_serde::from_slice::<Bpf>(&seven).is_err());
    assert!(Bpf::from_bytes(Vec::new()).is_err());
    assert!(Bpf::from_bytes(vec![0; 8 * (Bpf::MAX_INSTRUCTIONS + 1)]).is_err());
    assert!(Bpf::from_bytes(vec![0; 9]).is_err());
}

/// A byte string for rmp-serde without a serde_bytes dependency.
fn serde_bytes_like(bytes: &[u8]) -> impl serde::Serialize + '_ {
    struct Raw<'a>(&'a [u8]);
    impl serde::Serialize for Raw<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(self.0)
        }
    }
    Raw(bytes)
}

// ---------------------------------------------------------------------------------------
// Behaviour under an installed filter

#[derive(Debug, PartialEq)]
enum Outcome {
    Ok,
    Errno(i32),
    Killed(i32),
    Other(String),
}

fn probe_with(flag: Option<&str>, program: &[u8], name: &str) -> Outcome {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_seccomp-probe"));
    cmd.args(flag).arg(name);
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn seccomp-probe");
    // A probe that fails before reading stdin closes it; the answer below says why.
    let _ = child.stdin.take().unwrap().write_all(program);
    let out = child.wait_with_output().expect("wait for seccomp-probe");
    let stdout = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if let Some(signal) = out.status.signal() {
        return Outcome::Killed(signal);
    }
    match stdout.split_once(' ') {
        _ if stdout == "ok" && out.status.success() => Outcome::Ok,
        Some(("errno", n)) if out.status.success() => {
            Outcome::Errno(n.parse().expect("errno number"))
        }
        _ => Outcome::Other(format!(
            "{} / {stdout} / {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )),
    }
}

fn probe(program: &Bpf, name: &str) -> Outcome {
    probe_with(None, program.as_bytes(), name)
}

fn unfiltered(name: &str) -> Outcome {
    probe_with(Some("--no-filter"), &[], name)
}

/// The program as the init receives it: compiled, framed, unframed.
fn delivered(profile: &str) -> Bpf {
    let compiled = Policy::builtin().unwrap().compile(profile).unwrap();
    rmp_serde::from_slice(&rmp_serde::to_vec(&compiled).unwrap()).unwrap()
}

fn check_all(profile: &str, expectations: &[(&str, Outcome)]) {
    let program = delivered(profile);
    let wrong: Vec<String> = expectations
        .iter()
        .filter_map(|(name, want)| {
            let got = probe(&program, name);
            (got != *want).then(|| format!("{name}: expected {want:?}, got {got:?}"))
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "profile `{profile}`:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn standard_profile_allows_ordinary_work_and_refuses_escapes() {
    use Outcome::{Errno, Ok};
    check_all(
        "standard",
        &[
            ("getpid", Ok),
            // Sockets: Unix and IP only, families compared on their low 32 bits.
            ("socket-unix", Ok),
            ("socket-inet", Ok),
            ("socket-inet-udp", Ok),
            ("socket-inet-flags", Ok),
            ("socket-inet-hi", Ok),
            ("socketpair-unix", Ok),
            ("socket-vsock", Errno(EPERM)),
            ("socket-vsock-hi", Errno(EPERM)),
            ("socket-packet", Errno(EPERM)),
            ("socket-inet-raw", Errno(EPERM)),
            ("socket-netlink", Errno(EPERM)),
            ("socketpair-inet", Errno(EPERM)),
            // Name resolution works without netlink.
            ("getaddrinfo", Ok),
            // ioctl: everything but terminal injection, on the low 32 bits of the request.
            ("ioctl-fionread", Ok),
            ("ioctl-fionread-hi", Ok),
            ("ioctl-tiocsti", Errno(EPERM)),
            ("ioctl-tiocsti-hi", Errno(EPERM)),
            ("ioctl-tioclinux", Errno(EPERM)),
            // Processes and threads, but no namespaces.
            ("clone-plain", Ok),
            ("clone-newuser", Errno(EPERM)),
            ("clone-newns", Errno(EPERM)),
            ("clone-newnet-hi", Errno(EPERM)),
            ("clone3", Errno(ENOSYS)),
            ("thread", Ok),
            ("fork-exec-true", Ok),
            ("spawn-true", Ok),
            ("shell", Ok),
            ("personality-query", Ok),
            ("personality-no-aslr", Errno(EPERM)),
            // The `never` list.
            ("ptrace", Errno(EPERM)),
            ("process-vm-readv", Errno(EPERM)),
            ("kcmp", Errno(EPERM)),
            ("pidfd-getfd", Errno(EPERM)),
            ("mount", Errno(EPERM)),
            ("umount2", Errno(EPERM)),
            ("pivot-root", Errno(EPERM)),
            ("chroot", Errno(EPERM)),
            ("unshare", Errno(EPERM)),
            ("setns", Errno(EPERM)),
            ("bpf", Errno(EPERM)),
            ("perf-event-open", Errno(EPERM)),
            ("userfaultfd", Errno(EPERM)),
            ("io-uring-setup", Errno(EPERM)),
            ("keyctl", Errno(EPERM)),
            ("add-key", Errno(EPERM)),
            ("init-module", Errno(EPERM)),
            ("finit-module", Errno(EPERM)),
            ("kexec-load", Errno(EPERM)),
            ("reboot", Errno(EPERM)),
            ("swapon", Errno(EPERM)),
            ("acct", Errno(EPERM)),
            ("syslog", Errno(EPERM)),
            ("clock-settime", Errno(EPERM)),
            ("settimeofday", Errno(EPERM)),
            ("adjtimex", Errno(EPERM)),
            ("open-by-handle-at", Errno(EPERM)),
            ("name-to-handle-at", Errno(EPERM)),
            ("fanotify-init", Errno(EPERM)),
            #[cfg(target_arch = "x86_64")]
            ("iopl", Errno(EPERM)),
            #[cfg(target_arch = "x86_64")]
            ("ioperm", Errno(EPERM)),
            // A number no kernel knows gets the default action.
            ("unknown-1000", Errno(EPERM)),
        ],
    );
}

#[test]
fn strict_profile_keeps_local_work_and_drops_the_network() {
    use Outcome::{Errno, Ok};
    check_all(
        "strict",
        &[
            ("getpid", Ok),
            ("socket-unix", Ok),
            ("socketpair-unix", Ok),
            ("socket-inet", Errno(EPERM)),
            ("socket-inet-udp", Errno(EPERM)),
            ("socket-vsock-hi", Errno(EPERM)),
            ("getaddrinfo", Ok),
            ("ioctl-fionread", Ok),
            ("ioctl-tiocsti-hi", Errno(EPERM)),
            ("clone-newuser", Errno(EPERM)),
            ("clone3", Errno(ENOSYS)),
            ("thread", Ok),
            ("fork-exec-true", Ok),
            ("spawn-true", Ok),
            ("shell", Ok),
            ("personality-query", Errno(EPERM)),
            ("ptrace", Errno(EPERM)),
            ("unknown-1000", Errno(EPERM)),
        ],
    );
}

/// Without a filter the kernel answers differently, so the EPERMs above are the filter's.
#[test]
fn without_the_filter_the_kernel_answers_otherwise() {
    assert_eq!(unfiltered("unknown-1000"), Outcome::Errno(ENOSYS));
    assert_eq!(unfiltered("clone3"), Outcome::Errno(libc::EINVAL));
    assert_eq!(unfiltered("ioctl-tiocsti"), Outcome::Errno(libc::ENOTTY));
    assert_eq!(unfiltered("ioctl-tiocsti-hi"), Outcome::Errno(libc::ENOTTY));
    assert_eq!(unfiltered("mount"), Outcome::Errno(libc::EFAULT));
}

#[cfg(target_arch = "x86_64")]
#[test]
fn foreign_abis_are_killed() {
    let program = delivered("standard");
    // The x32 ABI runs native numbers with bit 30 set; whether or not the kernel has x32,
    // the filter sees the call first.
    assert_eq!(probe(&program, "x32-getpid"), Outcome::Killed(libc::SIGSYS));

    // The i386 entry exists only with IA32 emulation; check it answers unfiltered first.
    match unfiltered("int80-getpid") {
        Outcome::Ok => assert_eq!(
            probe(&program, "int80-getpid"),
            Outcome::Killed(libc::SIGSYS)
        ),
        other => {
            let reason = format!("int 0x80 is unavailable on this kernel ({other:?})");
            assert!(
                std::env::var_os("NEUROFLOW_REQUIRE_ISOLATION").is_none(),
                "NEUROFLOW_REQUIRE_ISOLATION is set but {reason}"
            );
            eprintln!("skipping the i386 check: {reason}");
        }
    }
}

#[test]
fn install_requires_no_new_privs() {
    // SAFETY: reads a flag of this thread.
    if unsafe { libc::prctl(libc::PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) } == 1 {
        // Inherited from whatever started the tests; the probe would inherit it too.
        assert!(
            std::env::var_os("NEUROFLOW_REQUIRE_ISOLATION").is_none(),
            "NEUROFLOW_REQUIRE_ISOLATION is set but the test runs with no_new_privs already set"
        );
        eprintln!("skipping: no_new_privs is already set for this process");
        return;
    }
    let program = delivered("standard");
    match probe_with(Some("--no-nnp"), program.as_bytes(), "getpid") {
        Outcome::Other(text) => assert!(text.contains("no_new_privs"), "{text}"),
        other => panic!("expected an install error, got {other:?}"),
    }
}
