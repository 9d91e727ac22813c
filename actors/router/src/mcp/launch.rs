//! Starting a stdio server's process: on the host here, in a sandbox through a launcher the
//! node provides (the router does not depend on the sandbox crate).

use std::process::Stdio;
use std::sync::Arc;

use neuroflow_kit::recipient::BoxFuture;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncWrite};

use super::config::McpServerConfig;

/// A started stdio server: its pipes, and what keeps it alive.
pub struct Spawned {
    pub stdout: Box<dyn AsyncRead + Send + Unpin>,
    pub stdin: Box<dyn AsyncWrite + Send + Unpin>,
    pub stderr: Option<Box<dyn AsyncRead + Send + Unpin>>,
    /// Host process id, when the server runs on the host.
    pub pid: Option<u32>,
    /// Owns the process: [`ServerProcess::stop`] ends it and waits for it; dropping it
    /// ends it without waiting.
    pub process: Box<dyn ServerProcess>,
}

/// A running server process.
pub trait ServerProcess: Send {
    /// Ends the server and everything it started, and waits (bounded) until they are
    /// gone, so that a node that stops leaves no process behind.
    fn stop(self: Box<Self>) -> BoxFuture<'static, ()>;
}

/// Longest [`ServerProcess::stop`] waits for a killed host process to be reaped.
const REAP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Starts the process of a stdio server from its config.
pub type Launcher =
    Arc<dyn Fn(&McpServerConfig) -> BoxFuture<'static, Result<Spawned, String>> + Send + Sync>;

/// Starts servers on the host; refuses a server that asks for a sandbox profile, since
/// only the node knows its sandboxes.
pub fn host_launcher() -> Launcher {
    Arc::new(|config: &McpServerConfig| {
        let result = match &config.sandbox {
            Some(profile) => Err(format!(
                "sandbox profile {profile:?} requested, but this runtime has no sandboxes"
            )),
            None => spawn_on_host(config),
        };
        Box::pin(std::future::ready(result))
    })
}

/// Variables of the node's environment a host server inherits; everything else it gets
/// from its config's `env`. The node's environment holds its secrets (provider API keys),
/// which a third-party server has no business reading.
pub const INHERITED_ENV: [&str; 9] = [
    "HOME", "LOGNAME", "USER", "PATH", "SHELL", "TERM", "LANG", "LC_ALL", "TMPDIR",
];

/// Starts `config`'s command on the host in a process group of its own, so that dropping
/// it also ends what it started (`npx` runs the server as its child).
pub fn spawn_on_host(config: &McpServerConfig) -> Result<Spawned, String> {
    let program = config.command.as_deref().unwrap_or_default();
    let mut command = tokio::process::Command::new(program);
    let inherited = INHERITED_ENV
        .iter()
        .filter_map(|name| Some((*name, std::env::var_os(name)?)));
    command
        .args(&config.args)
        .env_clear()
        .envs(inherited)
        .envs(&config.env)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    if let Some(cwd) = &config.cwd {
        command.current_dir(cwd);
    }
    let mut child = command
        .spawn()
        .map_err(|e| format!("could not start {program:?}: {e}"))?;
    let taken = (child.stdout.take(), child.stdin.take(), child.stderr.take());
    let (Some(stdout), Some(stdin), stderr) = taken else {
        return Err(format!("{program:?} started without its pipes"));
    };
    let pid = child.id();
    Ok(Spawned {
        stdout: Box::new(stdout),
        stdin: Box::new(stdin),
        stderr: stderr.map(|e| Box::new(e) as Box<dyn AsyncRead + Send + Unpin>),
        pid,
        process: Box::new(HostProcess { child, pid }),
    })
}

struct HostProcess {
    /// Killed on drop too (`kill_on_drop`), and then reaped by tokio in the background.
    child: tokio::process::Child,
    /// The process group to kill; `None` once killed (the id may be reused after).
    pid: Option<u32>,
}

impl HostProcess {
    /// The child leads its own group: the whole group goes, grandchildren included.
    fn kill_group(&mut self) {
        if let Some(pid) = self.pid.take().and_then(|p| i32::try_from(p).ok()) {
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

impl ServerProcess for HostProcess {
    fn stop(mut self: Box<Self>) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            self.kill_group();
            let _ = tokio::time::timeout(REAP_TIMEOUT, self.child.wait()).await;
        })
    }
}

impl Drop for HostProcess {
    fn drop(&mut self) {
        self.kill_group();
    }
}
