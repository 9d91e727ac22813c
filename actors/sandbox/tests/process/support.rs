//! Helpers of the long-lived process tests: gating on the host's isolation, sandboxes
//! started through this crate's init binary, bounded waits, and finding a sandbox's
//! processes from the host by a marker in their arguments.

use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use neuroflow_sandbox::{
    HostSupport, InitProgram, Profile, Sandbox, SandboxBuilder, SandboxProcess, SpawnRequest,
};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

/// A `standard` sandbox builder if this host can isolate. Otherwise prints why and
/// returns `None`, or panics when NEUROFLOW_REQUIRE_ISOLATION=1.
pub fn standard(test: &str) -> Option<SandboxBuilder> {
    static HOST: OnceLock<Arc<HostSupport>> = OnceLock::new();
    let host = HOST.get_or_init(|| Arc::new(HostSupport::detect())).clone();
    let profile = Profile::builtin("standard").expect("built-in profile");
    let reason = if !host.is_root {
        Some("not running as root".to_string())
    } else {
        host.missing(&profile)
            .map(|m| format!("host lacks {}: {}", m.layer, m.detail))
    };
    if let Some(reason) = reason {
        if std::env::var("NEUROFLOW_REQUIRE_ISOLATION").as_deref() == Ok("1") {
            panic!("{test}: NEUROFLOW_REQUIRE_ISOLATION=1 but {reason}");
        }
        eprintln!("skipping {test}: {reason}");
        return None;
    }
    Some(
        Sandbox::builder(profile)
            .host(host)
            .init_program(init_program())
            .state_dir(state_dir()),
    )
}

pub fn init_program() -> InitProgram {
    InitProgram {
        path: PathBuf::from(env!("CARGO_BIN_EXE_neuroflow-sandbox-init")),
        args: Vec::new(),
    }
}

/// Where this test process's sandboxes keep their mount points.
pub fn state_dir() -> PathBuf {
    std::env::temp_dir().join(format!("neuroflow-process-test-{}", std::process::id()))
}

/// `sh -c script` as a long-lived process.
pub fn sh(script: &str) -> SpawnRequest {
    SpawnRequest {
        command: "/bin/sh".into(),
        args: vec!["-c".into(), script.into()],
        ..SpawnRequest::default()
    }
}

/// Starts `req`, failing the test if that fails or takes a minute.
pub async fn spawn(sandbox: &Sandbox, req: SpawnRequest) -> SandboxProcess {
    within(60, "spawn", sandbox.spawn(req))
        .await
        .expect("the sandbox starts the process")
}

/// `fut`, or a test failure naming `what` after `secs` seconds.
pub async fn within<F: Future>(secs: u64, what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(Duration::from_secs(secs), fut).await {
        Ok(out) => out,
        Err(_) => panic!("{what} did not finish within {secs} s"),
    }
}

/// The next line of `reader` without its newline ("" at the end of the stream), within
/// 10 s.
pub async fn next_line<R: AsyncRead + Unpin>(reader: &mut BufReader<R>) -> String {
    let mut line = String::new();
    within(10, "reading a line", reader.read_line(&mut line))
        .await
        .expect("read the pipe");
    line.trim_end_matches('\n').to_string()
}

/// An argument no other process on the host has: a `sleep` duration (a day and a unique
/// fraction), so that the sandbox's processes can be found from the host.
pub fn marker() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "86400.{}{:03}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Host pids of the live processes with `marker` among their arguments.
pub fn with_marker(marker: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            // A zombie's cmdline is empty: only live processes match.
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|cmd| cmd.split(|b| *b == 0).any(|arg| arg == marker.as_bytes()))
        })
        .collect()
}

/// Polls `cond` every 50 ms for up to `secs` seconds.
pub async fn eventually(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    for _ in 0..secs * 20 {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cond()
}
