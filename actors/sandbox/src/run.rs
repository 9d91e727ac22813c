//! One command in a built sandbox, from the node's side: send the command, feed stdin,
//! collect output within its cap, enforce the wall-clock limit, tear down, and tell how it
//! ended.

use std::time::{Duration, Instant};

use neuroflow_kit::codec::{self, FrameConfig, FrameReader};
use neuroflow_kit::protocol::sandbox::{EndReason, ExecOutcome, ExecRequest, ResourceUsage};
use tokio::io::AsyncWriteExt;
use tokio::net::unix::pipe;
use tokio::sync::mpsc;

use crate::error::SandboxError;
use crate::init::spec::{CommandSpec, InitEvent};
use crate::output::{Output, OutputChunk, Stream};
use crate::prepare::{EGRESS_PORT, Ready};
use crate::profile::Profile;

/// How long the init may take to exit once the command has ended.
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// Runs `req` in `ready` and tears the sandbox down. `requested` is when the caller asked,
/// for the start latency (a sandbox built ahead of time only counts from the request).
pub(crate) async fn run(
    ready: Ready,
    profile: &Profile,
    req: ExecRequest,
    stream: Option<mpsc::Sender<OutputChunk>>,
    requested: Instant,
) -> Result<ExecOutcome, SandboxError> {
    let Ready {
        mut child,
        mut control,
        events,
        cgroup,
        state,
        proxy,
    } = ready;
    let command = CommandSpec {
        command: req.command.clone(),
        args: req.args.clone(),
        env: environment(profile, &req, proxy.is_some()),
    };
    let frame = codec::encode_frame(&command, &FrameConfig::default())
        .map_err(|e| SandboxError::layer("init", e))?;
    control.write_all(&frame).await.map_err(SandboxError::io)?;

    let timeout = req
        .timeout_ms
        .map_or(profile.limits.timeout.0, Duration::from_millis)
        .min(profile.limits.timeout.0);
    let output = Output::new(profile.limits.output.0, stream);
    let mut watch = Watch::default();
    let ended = drive(
        &mut child,
        req.stdin,
        &output,
        timeout,
        read_events(events, &mut watch, requested),
    )
    .await;
    if ended != Ended::ByItself {
        cgroup.kill_all().await;
    }
    let usage = cgroup.get().usage();
    // The command has ended and its output is read: answer now, and let the init exit
    // (its namespaces take a moment to unmount) and the cgroup go in the background.
    tokio::spawn(async move {
        if tokio::time::timeout(DRAIN_GRACE, child.wait())
            .await
            .is_err()
        {
            cgroup.kill_all().await;
            let _ = child.kill().await;
        }
        if let Err(e) = cgroup.destroy().await {
            tracing::warn!(error = %e, "sandbox cgroup teardown failed");
        }
        // Closed only now: PID 1 takes the end of the control pipe as the node letting go
        // and kills the sandbox (this is how a dropped run, or a dead node, ends it).
        drop((control, state, proxy));
    });
    if let Some((layer, message)) = watch.setup_failed.take() {
        return Err(SandboxError::Setup { layer, message });
    }
    // No exit report: the sandbox was killed (by a limit, or from outside).
    let status = watch.exited.unwrap_or((None, Some(libc::SIGKILL)));
    let timing = (watch.start_latency_us, requested);
    Ok(outcome(profile, ended, status, output, &usage, timing))
}

/// The outcome of a run: how it ended (see [`end_reason`]), its output and what it used.
/// `timing` is the start latency and when the request came.
pub(crate) fn outcome(
    profile: &Profile,
    ended: Ended,
    (exit_code, signal): (Option<i32>, Option<i32>),
    output: Output,
    usage: &crate::cgroup::Usage,
    (start_latency_us, requested): (u64, Instant),
) -> ExecOutcome {
    let (stdout, stderr, truncated, bytes_out) = output.finish();
    ExecOutcome {
        end: end_reason(ended, exit_code, signal, usage, profile),
        exit_code,
        signal,
        stdout,
        stderr,
        output_truncated: truncated,
        usage: ResourceUsage {
            start_latency_us,
            wall_time_us: micros(requested.elapsed()),
            cpu_time_us: usage.cpu_time_us,
            peak_memory_bytes: usage.peak_memory_bytes,
            peak_pids: usage.peak_pids,
            bytes_out,
        },
    }
}

/// Feeds stdin, pumps the output and runs `side` (the init's events) until all of them
/// end, the wall-clock limit passes or the output passes its cap, whichever comes first.
pub(crate) async fn drive(
    child: &mut tokio::process::Child,
    stdin: Vec<u8>,
    output: &Output,
    timeout: Duration,
    side: impl Future<Output = ()>,
) -> Ended {
    let input = child.stdin.take();
    let feed = async move {
        if let Some(mut pipe) = input {
            // A command that never reads its input must not hold up the run: an error
            // (EPIPE) just ends the feeding.
            let _ = pipe.write_all(&stdin).await;
        }
    };
    let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
    let all = async {
        tokio::join!(
            feed,
            crate::output::pump(stdout, Stream::Stdout, output.shared()),
            crate::output::pump(stderr, Stream::Stderr, output.shared()),
            side,
        )
    };
    let ended = tokio::select! {
        _ = all => Ended::ByItself,
        () = tokio::time::sleep(timeout) => Ended::Timeout,
        () = output.capped() => Ended::OutputCapped,
    };
    // Output past the cap is a breach even when the command ended in the same instant.
    if ended == Ended::ByItself && output.truncated() {
        Ended::OutputCapped
    } else {
        ended
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ended {
    ByItself,
    Timeout,
    OutputCapped,
}

/// The clearest reason among what happened: a limit the kernel enforced beats the
/// timeout it may have led to; a clean exit is never relabelled.
pub(crate) fn end_reason(
    ended: Ended,
    code: Option<i32>,
    signal: Option<i32>,
    usage: &crate::cgroup::Usage,
    profile: &Profile,
) -> EndReason {
    if code == Some(0) && ended == Ended::ByItself {
        return EndReason::Exited;
    }
    let cpu_limit_us = profile.limits.cpu_time.map(|t| micros(t.0));
    if usage.oom_kills > 0 {
        EndReason::OomKilled
    } else if usage.pids_max_hits > 0 {
        EndReason::PidsExhausted
    } else if signal == Some(libc::SIGXCPU)
        || (signal == Some(libc::SIGKILL)
            && cpu_limit_us.is_some_and(|limit| usage.cpu_time_us >= limit))
    {
        EndReason::CpuTime
    } else if ended == Ended::OutputCapped {
        EndReason::OutputCapped
    } else if ended == Ended::Timeout {
        EndReason::Timeout
    } else if signal.is_some() {
        EndReason::Signaled
    } else {
        EndReason::Exited
    }
}

#[derive(Default)]
struct Watch {
    start_latency_us: u64,
    exited: Option<(Option<i32>, Option<i32>)>,
    setup_failed: Option<(String, String)>,
}

async fn read_events(
    mut events: FrameReader<pipe::Receiver>,
    watch: &mut Watch,
    requested: Instant,
) {
    // The init writes a handful of events and closes the pipe when it exits.
    while let Ok(Some(event)) = events.read::<InitEvent>().await {
        match event {
            InitEvent::Started => watch.start_latency_us = micros(requested.elapsed()),
            InitEvent::Ready { .. } => {}
            InitEvent::SetupFailed { layer, message } => {
                watch.setup_failed = Some((layer, message));
            }
            InitEvent::Exited { code, signal } => {
                // The last event: PID 1 exits right after it.
                watch.exited = Some((code, signal));
                return;
            }
        }
    }
}

/// The profile's environment plus the request's; never anything of the node's. With
/// egress, the usual proxy variables point at the sandbox's bridge (`socks5h`: names are
/// resolved by the proxy, outside).
pub(crate) fn environment(
    profile: &Profile,
    req: &ExecRequest,
    egress: bool,
) -> Vec<(String, String)> {
    let mut env = profile.env.clone();
    if egress {
        let http = format!("http://127.0.0.1:{EGRESS_PORT}");
        let socks = format!("socks5h://127.0.0.1:{EGRESS_PORT}");
        for (key, value) in [
            ("HTTP_PROXY", &http),
            ("HTTPS_PROXY", &http),
            ("ALL_PROXY", &socks),
            ("http_proxy", &http),
            ("https_proxy", &http),
            ("all_proxy", &socks),
        ] {
            env.insert(key.to_string(), value.clone());
        }
        env.insert("NO_PROXY".into(), String::new());
    }
    for (k, v) in &req.env {
        env.insert(k.clone(), v.clone());
    }
    env.into_iter().collect()
}

pub(crate) fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}
