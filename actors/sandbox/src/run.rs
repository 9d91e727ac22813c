//! One command in a built sandbox, from the node's side: send the command, feed stdin,
//! collect output within its cap, enforce the wall-clock limit, tear down, and tell how it
//! ended.

use std::time::{Duration, Instant};

use neuroflow_kit::protocol::sandbox::{EndReason, ExecOutcome, ExecRequest, ResourceUsage};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use crate::control::{Watch, read_events, send_command};
use crate::error::SandboxError;
use crate::init::spec::CommandSpec;
use crate::output::{Output, OutputChunk, Stream};
use crate::prepare::{EGRESS_PORT, Ready};
use crate::profile::Profile;

/// Runs `req` in `ready` and tears the sandbox down. `requested` is when the caller asked,
/// for the start latency (a sandbox built ahead of time only counts from the request).
pub(crate) async fn run(
    ready: Ready,
    profile: &Profile,
    req: ExecRequest,
    stream: Option<mpsc::Sender<OutputChunk>>,
    requested: Instant,
) -> Result<ExecOutcome, SandboxError> {
    let (mut remains, mut events) = ready.into_parts();
    let command = CommandSpec {
        command: req.command.clone(),
        args: req.args.clone(),
        env: environment(profile, &req.env, remains.proxy.is_some()),
        cwd: None,
    };
    send_command(&mut remains.control, &command).await?;

    let timeout = req
        .timeout_ms
        .map_or(profile.limits.timeout.0, Duration::from_millis)
        .min(profile.limits.timeout.0);
    let output = Output::new(profile.limits.output.0, stream);
    let mut watch = Watch::default();
    let ended = drive(
        &mut remains.child,
        req.stdin,
        &output,
        timeout,
        read_events(&mut events, &mut watch, requested),
    )
    .await;
    if ended != Ended::ByItself {
        remains.cgroup.kill_all().await;
    }
    let usage = remains.cgroup.get().usage();
    // The command has ended and its output is read: answer now, and let the sandbox go in
    // the background.
    tokio::spawn(remains.tear_down());
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
        usage: resource_usage(usage, (start_latency_us, requested), bytes_out),
    }
}

/// What a command used, as the kit reports it. `timing` is the start latency and when the
/// request came; `bytes_out` what the node counted of its output.
pub(crate) fn resource_usage(
    usage: &crate::cgroup::Usage,
    (start_latency_us, requested): (u64, Instant),
    bytes_out: u64,
) -> ResourceUsage {
    ResourceUsage {
        start_latency_us,
        wall_time_us: micros(requested.elapsed()),
        cpu_time_us: usage.cpu_time_us,
        peak_memory_bytes: usage.peak_memory_bytes,
        peak_pids: usage.peak_pids,
        bytes_out,
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
    /// The owner of a long-lived process killed it while it was running.
    Killed,
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
    if ended == Ended::Killed {
        // It was still running when its owner ended it: whatever limits its children ran
        // into over its life, they did not end it.
        return EndReason::Signaled;
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

/// The profile's environment plus the request's; never anything of the node's. With
/// egress, the usual proxy variables point at the sandbox's bridge (`socks5h`: names are
/// resolved by the proxy, outside).
pub(crate) fn environment(
    profile: &Profile,
    extra: &[(String, String)],
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
    for (k, v) in extra {
        env.insert(k.clone(), v.clone());
    }
    env.into_iter().collect()
}

pub(crate) fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}
