//! Long-lived processes: a command with live stdin, stdout and stderr that runs in its
//! sandbox for as long as its owner keeps it (see [`SandboxProcess`]).
//!
//! [`start`] sends the command to a [`Ready`] sandbox and waits for the init's `Started`;
//! from then on a [`Monitor`] task owns the sandbox: it ends it on the timeout, on a kill
//! order or when the owner's handle is dropped, then tears it down and reports how the
//! process ended. The handle only holds the pipes and two one-shot channels.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use neuroflow_kit::protocol::sandbox::{EndReason, ResourceUsage};
use serde::{Deserialize, Serialize};
use tokio::process::{ChildStderr, ChildStdin, ChildStdout};
use tokio::sync::oneshot;

use crate::control::{Events, Watch, read_events, send_command, until_started};
use crate::error::SandboxError;
use crate::init::spec::CommandSpec;
use crate::prepare::Ready;
use crate::profile::Profile;
use crate::run::{Ended, end_reason, environment, resource_usage};
use crate::teardown::Remains;

/// Longest the init may take from receiving the command to `exec`ing it.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// One command to start as a long-lived process.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpawnRequest {
    /// Program to run: a path inside the sandbox, or a name looked up in its `PATH`.
    pub command: String,
    pub args: Vec<String>,
    /// Extra environment variables, on top of the profile's.
    pub env: Vec<(String, String)>,
    /// Working directory inside the sandbox; a relative path is taken from `/workspace`,
    /// where the process starts by default (as `exec` does).
    pub cwd: Option<String>,
    /// Wall-clock limit, counted from the start of the command; `None`: none (the process
    /// lives until it exits, is killed or is dropped). The profile's timeout is for `exec`.
    pub timeout: Option<Duration>,
}

/// How a long-lived process ended and what its sandbox used. Output figures are zero:
/// the owner read the output, the node did not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessExit {
    /// The clearest cause (as for `exec`); [`EndReason::Signaled`] when its owner killed it.
    pub end: EndReason,
    /// Exit status when the process exited on its own.
    pub exit_code: Option<i32>,
    /// Signal that ended it, if one did (SIGKILL when the sandbox was killed).
    pub signal: Option<i32>,
    pub usage: ResourceUsage,
}

impl ProcessExit {
    /// The exit status a shell would report: the exit code, or 128 + the signal number.
    pub fn shell_status(&self) -> i32 {
        match (self.exit_code, self.signal) {
            (Some(code), _) => code,
            (None, Some(sig)) => 128 + sig,
            (None, None) => 125,
        }
    }
}

/// A command running in its own sandbox, with live pipes, for as long as its owner keeps
/// it: an MCP server speaking JSON-RPC over stdio, a language server, a REPL. Started by
/// [`Sandbox::spawn`].
///
/// The sandbox is built exactly as for [`Sandbox::exec`] (the same preparation, the same
/// warm pool) and keeps every layer and limit of its profile: namespaces, overlay root,
/// cgroup memory, pids and CPU bandwidth, rlimits (RLIMIT_CPU bounds each process's CPU
/// time over its whole life, so a profile for long-lived servers may want it higher),
/// dropped capabilities, no_new_privs, seccomp, the egress allowlist. Two things differ,
/// because the owner drives the process:
///
/// - **no output cap**: the node reads and keeps nothing; the owner reads the pipes, and a
///   process whose output nobody reads blocks on a full pipe, as any child would;
/// - **no profile wall clock**: only [`SpawnRequest::timeout`], if given, ends it.
///
/// **Lifetime.** The process ends when it exits, on [`kill`](Self::kill), when a limit or
/// the timeout ends it, or when this handle is dropped: dropping kills every process of
/// the sandbox and tears the sandbox down in the background. The control pipe to the
/// sandbox's PID 1 is its lifeline: if the node dies, the kernel closes it and PID 1 kills
/// every process of the sandbox. A polite stop is the owner's to make: close stdin, give
/// [`wait`](Self::wait) a moment, then kill.
///
/// ```no_run
/// # async fn demo() -> Result<(), neuroflow_sandbox::SandboxError> {
/// use neuroflow_sandbox::{Profile, Sandbox, SpawnRequest};
/// use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
///
/// let sandbox = Sandbox::builder(Profile::builtin("standard").unwrap()).build()?;
/// let mut server = sandbox
///     .spawn(SpawnRequest { command: "my-mcp-server".into(), ..Default::default() })
///     .await?;
/// let mut stdin = server.take_stdin().unwrap();
/// let mut stdout = BufReader::new(server.take_stdout().unwrap()).lines();
/// stdin.write_all(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}\n").await?;
/// let reply = stdout.next_line().await?;
/// drop(stdin);
/// let exit = server.wait().await?;
/// # let _ = (reply, exit); Ok(()) }
/// ```
///
/// [`Sandbox::spawn`]: crate::Sandbox::spawn
/// [`Sandbox::exec`]: crate::Sandbox::exec
#[derive(Debug)]
pub struct SandboxProcess {
    stdin: Option<ChildStdin>,
    stdout: Option<ChildStdout>,
    stderr: Option<ChildStderr>,
    /// Orders the monitor to kill the sandbox; the monitor takes its drop the same way.
    kill: Option<oneshot::Sender<()>>,
    /// The monitor's report, until it has come.
    report: Option<oneshot::Receiver<ProcessExit>>,
    exit: Option<ProcessExit>,
}

impl SandboxProcess {
    /// The process's standard input; dropping it closes the pipe (the process reads EOF).
    pub fn take_stdin(&mut self) -> Option<ChildStdin> {
        self.stdin.take()
    }

    pub fn take_stdout(&mut self) -> Option<ChildStdout> {
        self.stdout.take()
    }

    pub fn take_stderr(&mut self) -> Option<ChildStderr> {
        self.stderr.take()
    }

    /// Waits for the process to end — on its own, by [`kill`](Self::kill), by a limit or
    /// by the timeout — and for its sandbox to be torn down; says how it ended. Closes
    /// stdin first if it was not taken, so that a process waiting for input can finish.
    /// Cancel-safe, and may be called again: later calls return the same answer.
    pub async fn wait(&mut self) -> Result<ProcessExit, SandboxError> {
        self.stdin = None;
        if let Some(exit) = &self.exit {
            return Ok(exit.clone());
        }
        let Some(report) = self.report.as_mut() else {
            return Err(monitor_gone());
        };
        let result = report.await;
        self.report = None;
        let exit = result.map_err(|_| monitor_gone())?;
        self.exit = Some(exit.clone());
        Ok(exit)
    }

    /// Kills every process of the sandbox now and waits until they are gone and the
    /// sandbox is torn down. Does nothing more to a process that has already ended.
    pub async fn kill(&mut self) {
        if let Some(kill) = self.kill.take() {
            let _ = kill.send(());
        }
        let _ = self.wait().await;
    }
}

impl Drop for SandboxProcess {
    fn drop(&mut self) {
        // The monitor kills and tears down in the background. Should it never run (the
        // runtime is going away), dropping what it holds kills the init and closes the
        // lifeline, on which PID 1 kills the rest.
        if let Some(kill) = self.kill.take() {
            let _ = kill.send(());
        }
    }
}

fn monitor_gone() -> SandboxError {
    SandboxError::layer(
        "init",
        "the sandbox's monitor ended without a report (its runtime shut down)",
    )
}

/// Starts `req` in `ready`; `requested` is when the caller asked (for the start latency).
pub(crate) async fn start(
    ready: Ready,
    profile: Arc<Profile>,
    req: SpawnRequest,
    requested: Instant,
) -> Result<SandboxProcess, SandboxError> {
    let (mut remains, mut events) = ready.into_parts();
    let command = CommandSpec {
        command: req.command,
        args: req.args,
        env: environment(&profile, &req.env, remains.proxy.is_some()),
        cwd: req.cwd.map(PathBuf::from),
    };
    let mut watch = Watch::default();
    let started = async {
        send_command(&mut remains.control, &command).await?;
        tokio::time::timeout(
            START_TIMEOUT,
            until_started(&mut events, &mut watch, requested),
        )
        .await
        .unwrap_or_else(|_| {
            Err(SandboxError::layer(
                "init",
                format!("the command did not start within {START_TIMEOUT:?}"),
            ))
        })
    }
    .await;
    if let Err(e) = started {
        tokio::spawn(remains.kill_and_tear_down());
        return Err(e);
    }
    let (stdin, stdout, stderr) = (
        remains.child.stdin.take(),
        remains.child.stdout.take(),
        remains.child.stderr.take(),
    );
    let (kill, killed) = oneshot::channel();
    let (report, reported) = oneshot::channel();
    let monitor = Monitor {
        remains,
        events,
        watch,
        profile,
        timeout: req.timeout,
        requested,
    };
    tokio::spawn(monitor.run(killed, report));
    Ok(SandboxProcess {
        stdin,
        stdout,
        stderr,
        kill: Some(kill),
        report: Some(reported),
        exit: None,
    })
}

/// The sandbox of a running process, held by a task of its own.
struct Monitor {
    remains: Remains,
    events: Events,
    watch: Watch,
    profile: Arc<Profile>,
    timeout: Option<Duration>,
    requested: Instant,
}

impl Monitor {
    async fn run(mut self, killed: oneshot::Receiver<()>, report: oneshot::Sender<ProcessExit>) {
        let timeout = self.timeout;
        let deadline = async move {
            match timeout {
                Some(limit) => tokio::time::sleep(limit).await,
                None => std::future::pending().await,
            }
        };
        let ended = tokio::select! {
            // An exit already reported wins over a kill or timeout arriving with it.
            biased;
            () = read_events(&mut self.events, &mut self.watch, self.requested) => Ended::ByItself,
            // An order, or the owner's handle dropped: either way the owner let go.
            _ = killed => Ended::Killed,
            () = deadline => Ended::Timeout,
        };
        if ended != Ended::ByItself {
            self.remains.cgroup.kill_all().await;
        }
        let usage = self.remains.cgroup.get().usage();
        // No exit report: the sandbox was killed (by a limit, or from outside).
        let (exit_code, signal) = self.watch.exited.unwrap_or((None, Some(libc::SIGKILL)));
        let exit = ProcessExit {
            end: end_reason(ended, exit_code, signal, &usage, &self.profile),
            exit_code,
            signal,
            usage: resource_usage(&usage, (self.watch.start_latency_us, self.requested), 0),
        };
        self.remains.tear_down().await;
        // Nobody may be waiting any more (the handle was dropped): that is fine.
        let _ = report.send(exit);
    }
}
