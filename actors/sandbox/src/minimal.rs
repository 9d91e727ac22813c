//! The `minimal` level: a plain subprocess with rlimits and a clean environment.
//!
//! It is NOT an isolation boundary — the command sees the host's file system, network and
//! processes — and exists for hosts or uses where that is acceptable and asked for by name.

use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use neuroflow_kit::protocol::sandbox::{ExecOutcome, ExecRequest, ResourceUsage};
use nix::sys::resource::{Resource, setrlimit};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::sync::mpsc;

use crate::cgroup::Usage;
use crate::error::SandboxError;
use crate::output::{Output, OutputChunk};
use crate::profile::Profile;
use crate::run::{drive, environment, micros, outcome};
use crate::sandbox::Shared;

pub(crate) async fn run(
    shared: &Shared,
    profile: &Profile,
    req: ExecRequest,
    stream: Option<mpsc::Sender<OutputChunk>>,
) -> Result<ExecOutcome, SandboxError> {
    let begun = Instant::now();
    let workspace = shared
        .state_root
        .join(format!("minimal-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&workspace).map_err(SandboxError::io)?;
    let _cleanup = RemoveOnDrop(workspace.clone());
    let limits = profile.limits.clone();
    let mut cmd = tokio::process::Command::new(&req.command);
    cmd.args(&req.args)
        .env_clear()
        .envs(environment(profile, &req.env, false))
        .env("HOME", &workspace)
        .current_dir(&workspace)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let cpu = limits.cpu_time.map_or(0, |t| t.0.as_secs().max(1));
    let (fsize, nofile) = (limits.file_size.0, limits.open_files);
    let memory = limits.memory.map(|m| m.0);
    // SAFETY: setsid and setrlimit are async-signal-safe system calls.
    unsafe {
        cmd.pre_exec(move || {
            nix::unistd::setsid()?;
            setrlimit(Resource::RLIMIT_CORE, 0, 0)?;
            if cpu > 0 {
                setrlimit(Resource::RLIMIT_CPU, cpu, cpu + 1)?;
            }
            setrlimit(Resource::RLIMIT_FSIZE, fsize, fsize)?;
            setrlimit(Resource::RLIMIT_NOFILE, nofile, nofile)?;
            if let Some(bytes) = memory {
                setrlimit(Resource::RLIMIT_AS, bytes, bytes)?;
            }
            Ok(())
        });
    }
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(not_found(&req, begun));
        }
        Err(e) => return Err(SandboxError::io(e)),
    };
    let start_latency_us = micros(begun.elapsed());
    let pgid = child.id().and_then(|id| i32::try_from(id).ok());
    let timeout = req
        .timeout_ms
        .map_or(limits.timeout.0, Duration::from_millis)
        .min(limits.timeout.0);
    let output = Output::new(limits.output.0, stream);
    let ended = drive(&mut child, req.stdin, &output, timeout, async {}).await;
    if let Some(pgid) = pgid {
        // The whole process group, including what the command left running.
        let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
    }
    let status = child.wait().await.map_err(SandboxError::io)?;
    // Without a cgroup there is no per-run accounting (the rusage of children would mix
    // every command the node ever ran): usage figures read 0.
    let status = (status.code(), status.signal());
    Ok(outcome(
        profile,
        ended,
        status,
        output,
        &Usage::default(),
        (start_latency_us, begun),
    ))
}

fn not_found(req: &ExecRequest, begun: Instant) -> ExecOutcome {
    ExecOutcome {
        end: neuroflow_kit::protocol::sandbox::EndReason::Exited,
        exit_code: Some(127),
        signal: None,
        stdout: Vec::new(),
        stderr: format!("neuroflow-sandbox: {}: command not found\n", req.command).into_bytes(),
        output_truncated: false,
        usage: ResourceUsage {
            wall_time_us: micros(begun.elapsed()),
            ..ResourceUsage::default()
        },
    }
}

struct RemoveOnDrop(std::path::PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
