//! The node's sandboxes: profiles from the config, one [`SandboxActor`] per run under the
//! `sandboxes` supervisor.
//!
//! [`SandboxActor`]: neuroflow_sandbox::SandboxActor

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use neuroflow_kit::metrics::{Metrics, MetricsError};
use neuroflow_kit::protocol::sandbox::{ExecRequest, SandboxFailure, SandboxReply};
use neuroflow_kit::supervisor::SupervisorHandle;
use neuroflow_sandbox::{
    HostSupport, InitProgram, Profile, Sandbox, SandboxMetrics, SpawnRequest, exec_supervised,
};

use neuroflow_kit::recipient::BoxFuture;
use neuroflow_router::mcp::{McpServerConfig, ServerProcess, Spawned};
use tokio::io::AsyncRead;

use crate::config::Config;

/// Slack on top of a profile's wall-clock limit for starting and tearing a sandbox down.
const CALL_SLACK: Duration = Duration::from_secs(15);

/// Runs commands in sandboxes for the node's agents, tools and API.
#[derive(Clone)]
pub struct Sandboxes {
    inner: Arc<Inner>,
}

struct Inner {
    supervisor: SupervisorHandle,
    profiles: BTreeMap<String, Profile>,
    /// Sandboxes built so far, by profile (building checks the host and compiles seccomp).
    built: Mutex<HashMap<String, Sandbox>>,
    host: Arc<HostSupport>,
    init: InitProgram,
    state_dir: PathBuf,
    warm: usize,
    metrics: SandboxMetrics,
}

impl Sandboxes {
    pub fn new(
        config: &Config,
        supervisor: SupervisorHandle,
        registry: &Metrics,
    ) -> Result<Self, MetricsError> {
        let mut profiles: BTreeMap<String, Profile> = Profile::BUILTIN_NAMES
            .iter()
            .filter_map(|name| Some((name.to_string(), Profile::builtin(name)?)))
            .collect();
        for (name, profile) in &config.sandbox.profiles {
            // Config::validate already resolved every profile; one that fails here cannot.
            if let Ok(profile) = profile.resolve(name) {
                profiles.insert(name.clone(), profile);
            }
        }
        let init = InitProgram {
            path: config
                .sandbox
                .init_program
                .clone()
                .or_else(|| std::env::current_exe().ok())
                .unwrap_or_else(|| PathBuf::from("neuroflow-node")),
            args: vec!["sandbox-init".into()],
        };
        Ok(Self {
            inner: Arc::new(Inner {
                supervisor,
                profiles,
                built: Mutex::new(HashMap::new()),
                host: Arc::new(HostSupport::detect()),
                init,
                state_dir: config.node.data_dir.join("sandboxes"),
                warm: config.sandbox.warm,
                metrics: SandboxMetrics::register(registry)?,
            }),
        })
    }

    /// Names of the profiles this node offers.
    pub fn profiles(&self) -> Vec<String> {
        self.inner.profiles.keys().cloned().collect()
    }

    /// What this host supports.
    pub fn host(&self) -> &HostSupport {
        &self.inner.host
    }

    /// Runs `req` in a fresh sandbox of `profile`.
    pub async fn exec(&self, profile: &str, req: ExecRequest) -> SandboxReply {
        let sandbox = match self.sandbox(profile) {
            Ok(sandbox) => sandbox,
            Err(failure) => return SandboxReply::Refused(failure),
        };
        let timeout = sandbox.profile().limits.timeout.0 + CALL_SLACK;
        let metrics = Some(self.inner.metrics.clone());
        match exec_supervised(&self.inner.supervisor, &sandbox, metrics, req, timeout).await {
            Ok(reply) => reply,
            Err(err) => SandboxReply::Refused(SandboxFailure {
                layer: None,
                message: err.to_string(),
            }),
        }
    }

    /// Starts a stdio MCP server in a long-lived sandbox of `profile`: its pipes carry the
    /// protocol; dropping the returned process ends the sandbox.
    pub async fn spawn_stdio(
        &self,
        profile: &str,
        server: &McpServerConfig,
    ) -> Result<Spawned, String> {
        let sandbox = self.sandbox(profile).map_err(|f| f.message)?;
        let request = SpawnRequest {
            command: server.command.clone().unwrap_or_default(),
            args: server.args.clone(),
            env: server
                .env
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            cwd: server.cwd.clone(),
            timeout: None,
        };
        let mut process = sandbox
            .spawn(request)
            .await
            .map_err(|e| format!("sandbox {profile:?}: {e}"))?;
        let pipes = (
            process.take_stdout(),
            process.take_stdin(),
            process.take_stderr(),
        );
        let (Some(stdout), Some(stdin), stderr) = pipes else {
            return Err(format!(
                "sandbox {profile:?}: the process started without its pipes"
            ));
        };
        Ok(Spawned {
            stdout: Box::new(stdout),
            stdin: Box::new(stdin),
            stderr: stderr.map(|e| Box::new(e) as Box<dyn AsyncRead + Send + Unpin>),
            // Its pid is in the sandbox's namespace; the host's is the init's.
            pid: None,
            process: Box::new(SandboxedServer(process)),
        })
    }

    fn sandbox(&self, name: &str) -> Result<Sandbox, SandboxFailure> {
        let mut built = self.inner.built.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(sandbox) = built.get(name) {
            return Ok(sandbox.clone());
        }
        let profile = self
            .inner
            .profiles
            .get(name)
            .cloned()
            .ok_or_else(|| SandboxFailure {
                layer: None,
                message: format!(
                    "unknown sandbox profile {name:?} (known: {})",
                    self.profiles().join(", ")
                ),
            })?;
        let sandbox = Sandbox::builder(profile)
            .host(self.inner.host.clone())
            .init_program(self.inner.init.clone())
            .state_dir(&self.inner.state_dir)
            .warm(self.inner.warm)
            .build()
            .map_err(|e| SandboxFailure::from(&e))?;
        built.insert(name.to_string(), sandbox.clone());
        Ok(sandbox)
    }
}

/// A stdio MCP server's sandbox: stopping it kills every process in it and waits for the
/// teardown.
struct SandboxedServer(neuroflow_sandbox::SandboxProcess);

impl ServerProcess for SandboxedServer {
    fn stop(mut self: Box<Self>) -> BoxFuture<'static, ()> {
        Box::pin(async move { self.0.kill().await })
    }
}
