//! The sandbox escape suite: real attack programs run inside real sandboxes, each asserting
//! that the attack is contained.
//!
//! Attacks are Python programs (Debian's `/usr/bin/python3`, visible in the sandbox through
//! the host's `/usr`): `ctypes` reaches any system call with any argument, including the
//! 64-bit values and the 32-bit entry point that the seccomp filter must catch.
//!
//! Every scenario needs root and the kernel's isolation features. Without them it prints why
//! and passes, except under `NEUROFLOW_REQUIRE_ISOLATION=1` (CI), where it fails.

mod faces;
mod kernel;
mod limits;
mod network;
mod paths;
mod privilege;
mod syscalls;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use neuroflow::kit::protocol::sandbox::{EndReason, ExecOutcome, ExecRequest};
use neuroflow_sandbox::{HostSupport, InitProgram, Profile, Sandbox, SandboxBuilder};

/// Prelude of every attack: raw system calls with their errno, printed as `NAME=ERRNO`.
const PRELUDE: &str = r#"
import ctypes, errno, os, socket, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
def sc(nr, *args):
    ctypes.set_errno(0)
    r = libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(a) for a in args])
    return r, ctypes.get_errno()
def name(e):
    return errno.errorcode.get(e, str(e)) if e else "OK"
def report(label, r, e):
    print(f"{label}={name(e) if r < 0 else 'OK'}", flush=True)
def attempt(label, fn):
    try:
        fn()
        print(f"{label}=OK", flush=True)
    except OSError as ex:
        print(f"{label}={name(ex.errno)}", flush=True)
"#;

/// Whether this host can run the suite; prints the reason when it cannot.
fn isolation_available() -> bool {
    let host = HostSupport::detect();
    let standard = Profile::builtin("standard").expect("built-in profile");
    let reason = if !host.is_root {
        Some("not running as root".to_string())
    } else {
        host.missing(&standard)
            .map(|m| format!("host lacks {}: {}", m.layer, m.detail))
    };
    match reason {
        None => true,
        Some(reason) if std::env::var("NEUROFLOW_REQUIRE_ISOLATION").is_ok_and(|v| v == "1") => {
            panic!("escape suite required (NEUROFLOW_REQUIRE_ISOLATION=1) but {reason}")
        }
        Some(reason) => {
            eprintln!("skipping sandbox escape scenario: {reason}");
            false
        }
    }
}

/// Skips the calling test (with the reason printed) where isolation is unavailable.
macro_rules! require_isolation {
    () => {
        if !crate::isolation_available() {
            return;
        }
    };
}
pub(crate) use require_isolation;

/// A sandbox of `profile`, started through the real node binary's init.
fn builder(profile: &str) -> SandboxBuilder {
    static HOST: std::sync::OnceLock<Arc<HostSupport>> = std::sync::OnceLock::new();
    let host = HOST.get_or_init(|| Arc::new(HostSupport::detect())).clone();
    Sandbox::builder(Profile::builtin(profile).expect("built-in profile"))
        .host(host)
        .init_program(InitProgram {
            path: PathBuf::from(env!("CARGO_BIN_EXE_neuroflow-node")),
            args: vec!["sandbox-init".into()],
        })
        .state_dir(state_dir())
}

fn state_dir() -> PathBuf {
    std::env::temp_dir().join(format!("neuroflow-escape-{}", std::process::id()))
}

fn standard() -> Sandbox {
    builder("standard")
        .timeout(Duration::from_secs(20))
        .build()
        .expect("standard sandbox")
}

/// Runs the Python attack `source` (after [`PRELUDE`]) in `sandbox`.
async fn attack_in(sandbox: &Sandbox, source: &str) -> ExecOutcome {
    let program = format!("{PRELUDE}\n{source}");
    sandbox
        .exec(ExecRequest {
            command: "/usr/bin/python3".into(),
            args: vec!["-c".into(), program],
            ..ExecRequest::default()
        })
        .await
        .expect("the sandbox runs the attack")
}

async fn attack(source: &str) -> ExecOutcome {
    attack_in(&standard(), source).await
}

/// Runs a shell command line in `sandbox`.
async fn shell_in(sandbox: &Sandbox, line: &str) -> ExecOutcome {
    sandbox
        .exec(ExecRequest {
            command: "/bin/sh".into(),
            args: vec!["-c".into(), line.into()],
            ..ExecRequest::default()
        })
        .await
        .expect("the sandbox runs the command")
}

/// The `LABEL=VALUE` lines an attack printed, as a lookup.
struct Report {
    stdout: String,
    outcome: ExecOutcome,
}

impl Report {
    fn of(outcome: ExecOutcome) -> Self {
        Self {
            stdout: String::from_utf8_lossy(&outcome.stdout).into_owned(),
            outcome,
        }
    }

    fn get(&self, label: &str) -> &str {
        let prefix = format!("{label}=");
        self.stdout
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| {
                panic!(
                    "attack printed no {label}: stdout {:?}, stderr {:?}, end {:?}",
                    self.stdout,
                    String::from_utf8_lossy(&self.outcome.stderr),
                    self.outcome.end
                )
            })
    }

    /// Asserts `label` was refused with one of `errnos`.
    fn refused(&self, label: &str, errnos: &[&str]) {
        let got = self.get(label);
        assert!(
            errnos.contains(&got),
            "{label}: expected one of {errnos:?}, got {got}"
        );
    }
}

async fn report(source: &str) -> Report {
    Report::of(attack(source).await)
}

fn assert_exited_ok(outcome: &ExecOutcome) {
    assert_eq!(
        (outcome.end, outcome.exit_code),
        (EndReason::Exited, Some(0)),
        "stderr: {}",
        String::from_utf8_lossy(&outcome.stderr)
    );
}

/// A host directory for one scenario, removed afterwards.
struct HostDir(PathBuf);

impl HostDir {
    fn new(tag: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "neuroflow-escape-{tag}-{}-{}",
            std::process::id(),
            uuid_like()
        ));
        std::fs::create_dir_all(&path).expect("host dir");
        Self(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for HostDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn uuid_like() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}
