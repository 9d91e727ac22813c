//! The Rust face of the sandbox: a builder, `exec`, its streaming variant, and `spawn` for
//! long-lived processes with live pipes.
//!
//! ```no_run
//! # async fn demo() -> Result<(), neuroflow_sandbox::SandboxError> {
//! use neuroflow_sandbox::{ByteSize, Profile, Sandbox};
//! use neuroflow_kit::protocol::sandbox::ExecRequest;
//!
//! let sandbox = Sandbox::builder(Profile::builtin("standard").unwrap())
//!     .memory(ByteSize::mib(128))
//!     .build()?;
//! let outcome = sandbox
//!     .exec(ExecRequest { command: "echo".into(), args: vec!["hi".into()], ..Default::default() })
//!     .await?;
//! assert_eq!(outcome.stdout, b"hi\n");
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use neuroflow_kit::protocol::sandbox::{ExecOutcome, ExecRequest};
use tokio::sync::mpsc;

use crate::error::SandboxError;
use crate::host::HostSupport;
use crate::net::Allowlist;
use crate::output::OutputChunk;
use crate::pool::Pool;
use crate::prepare::{Ready, prepare};
use crate::process::{SandboxProcess, SpawnRequest};
use crate::profile::{BindMount, Profile};
use crate::seccomp::{Bpf, Policy};
use crate::spawn::InitProgram;
use crate::units::{ByteSize, Span};
use crate::{minimal, process, run};

/// Runs commands under one profile. Cheap to share: every `exec` builds a fresh sandbox.
#[derive(Clone)]
pub struct Sandbox {
    profile: Arc<Profile>,
    shared: Arc<Shared>,
    pool: Arc<Pool>,
}

/// What all runs of a sandbox share: the host's abilities, the init, compiled filters.
pub(crate) struct Shared {
    pub host: Arc<HostSupport>,
    pub init: InitProgram,
    pub state_root: PathBuf,
    /// Where the profile lets the sandbox connect, if anywhere.
    pub egress: Option<Arc<Allowlist>>,
    policy: Policy,
    compiled: Mutex<HashMap<String, Bpf>>,
}

impl Shared {
    /// The compiled seccomp program of `profile` (compiled once, then reused).
    pub fn seccomp(&self, profile: &str) -> Result<Bpf, SandboxError> {
        let mut cache = self.compiled.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(bpf) = cache.get(profile) {
            return Ok(bpf.clone());
        }
        let bpf = self.policy.compile(profile)?;
        cache.insert(profile.to_string(), bpf.clone());
        Ok(bpf)
    }
}

impl Sandbox {
    pub fn builder(profile: Profile) -> SandboxBuilder {
        SandboxBuilder {
            profile,
            warm: 0,
            init: None,
            state_root: None,
            policy: None,
            host: None,
        }
    }

    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// Runs one command to completion in a fresh sandbox.
    pub async fn exec(&self, req: ExecRequest) -> Result<ExecOutcome, SandboxError> {
        self.exec_inner(req, None).await
    }

    /// Like [`Sandbox::exec`], also sending output to `chunks` as it is read (within the
    /// output cap). A slow receiver slows the command's output down, never loses it.
    pub async fn exec_streaming(
        &self,
        req: ExecRequest,
        chunks: mpsc::Sender<OutputChunk>,
    ) -> Result<ExecOutcome, SandboxError> {
        self.exec_inner(req, Some(chunks)).await
    }

    /// Starts one command as a long-lived process with live pipes, in a fresh sandbox with
    /// every layer and limit of the profile but its timeout and output cap (see
    /// [`SandboxProcess`]). Returns once the command has been `exec`ed; a command that
    /// cannot start (not found, a working directory it cannot enter) is an error naming
    /// the layer. Only isolating profiles run long-lived processes: their lifeline is the
    /// sandbox's PID 1.
    pub async fn spawn(&self, req: SpawnRequest) -> Result<SandboxProcess, SandboxError> {
        if !self.profile.isolates() {
            return Err(SandboxError::Unsupported {
                layer: "pid-namespace".into(),
                detail: format!(
                    "profile {:?} does not isolate: a long-lived process needs a sandbox \
                     whose PID 1 ends it when its owner lets go",
                    self.profile.name
                ),
            });
        }
        let requested = Instant::now();
        let ready = self.ready().await?;
        process::start(ready, self.profile.clone(), req, requested).await
    }

    async fn exec_inner(
        &self,
        req: ExecRequest,
        chunks: Option<mpsc::Sender<OutputChunk>>,
    ) -> Result<ExecOutcome, SandboxError> {
        if self.profile.isolates() {
            let requested = Instant::now();
            let ready = self.ready().await?;
            run::run(ready, &self.profile, req, chunks, requested).await
        } else {
            minimal::run(&self.shared, &self.profile, req, chunks).await
        }
    }

    /// A sandbox built up to `Ready`: a spare from the pool if one is, else built now; the
    /// pool then builds a replacement in the background.
    async fn ready(&self) -> Result<Ready, SandboxError> {
        let ready = match self.pool.take() {
            Some(ready) => ready,
            None => prepare(&self.shared, &self.profile).await?,
        };
        self.pool.refill(&self.shared, &self.profile);
        Ok(ready)
    }
}

/// Configures a [`Sandbox`]: a profile, then what to change of it.
pub struct SandboxBuilder {
    profile: Profile,
    warm: usize,
    init: Option<InitProgram>,
    state_root: Option<PathBuf>,
    policy: Option<Policy>,
    host: Option<Arc<HostSupport>>,
}

impl SandboxBuilder {
    pub fn memory(mut self, size: ByteSize) -> Self {
        self.profile.limits.memory = Some(size);
        self
    }

    pub fn swap(mut self, size: ByteSize) -> Self {
        self.profile.limits.swap = Some(size);
        self
    }

    pub fn cpu_millicores(mut self, millicores: u64) -> Self {
        self.profile.limits.cpu_millicores = Some(millicores);
        self
    }

    pub fn cpu_time(mut self, limit: Duration) -> Self {
        self.profile.limits.cpu_time = Some(Span(limit));
        self
    }

    pub fn pids(mut self, max: u64) -> Self {
        self.profile.limits.pids = Some(max);
        self
    }

    pub fn timeout(mut self, limit: Duration) -> Self {
        self.profile.limits.timeout = Span(limit);
        self
    }

    pub fn output(mut self, cap: ByteSize) -> Self {
        self.profile.limits.output = cap;
        self
    }

    pub fn tmp(mut self, size: ByteSize) -> Self {
        self.profile.limits.tmp = size;
        self
    }

    pub fn disk(mut self, size: ByteSize) -> Self {
        self.profile.limits.disk = size;
        self
    }

    pub fn file_size(mut self, size: ByteSize) -> Self {
        self.profile.limits.file_size = size;
        self
    }

    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.profile.env.insert(key.into(), value.into());
        self
    }

    pub fn mount(
        mut self,
        source: impl Into<PathBuf>,
        target: impl Into<PathBuf>,
        writable: bool,
    ) -> Self {
        self.profile.mounts.push(BindMount {
            source: source.into(),
            target: target.into(),
            writable,
        });
        self
    }

    /// Allows egress to `entry` (`host:port`, `CIDR:port`, `[v6]:port`).
    pub fn allow_net(mut self, entry: impl Into<String>) -> Self {
        self.profile.network.allow.push(entry.into());
        self
    }

    /// Runs the sandbox in a user namespace even when the node is root.
    pub fn user_namespace(mut self, on: bool) -> Self {
        self.profile.user_namespace = on;
        self
    }

    /// Keeps `count` sandboxes built ahead of requests (0, the default, builds each on
    /// request). A ready sandbox costs two idle processes, its mounts and its cgroup; it
    /// takes most of the start-up time off a request.
    pub fn warm(mut self, count: usize) -> Self {
        self.warm = count;
        self
    }

    /// The program that runs the init (default: this executable's `sandbox-init`).
    pub fn init_program(mut self, init: InitProgram) -> Self {
        self.init = Some(init);
        self
    }

    /// Where per-sandbox mount points live on the host (default: the system temp dir).
    pub fn state_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.state_root = Some(dir.into());
        self
    }

    /// A seccomp policy other than the built-in file.
    pub fn seccomp_policy(mut self, policy: Policy) -> Self {
        self.policy = Some(policy);
        self
    }

    /// Host abilities detected earlier (detection reads a few dozen /proc files).
    pub fn host(mut self, host: Arc<HostSupport>) -> Self {
        self.host = Some(host);
        self
    }

    /// Checks the profile against the host and compiles its seccomp filter. Fails, naming
    /// the layer, when the host cannot give what the profile asks for.
    pub fn build(self) -> Result<Sandbox, SandboxError> {
        let profile = self.profile;
        profile.validate()?;
        let host = self.host.unwrap_or_else(|| Arc::new(HostSupport::detect()));
        if let Some(missing) = host.missing(&profile) {
            return Err(SandboxError::Unsupported {
                layer: missing.layer.to_string(),
                detail: missing.detail.clone(),
            });
        }
        if !profile.isolates() && !profile.network.allow.is_empty() {
            // A plain subprocess shares the host's network: nothing could enforce it.
            return Err(SandboxError::Unsupported {
                layer: "network-namespace".into(),
                detail: format!(
                    "profile {:?} does not isolate, so an egress allowlist cannot be enforced",
                    profile.name
                ),
            });
        }
        let egress = if profile.network.allow.is_empty() {
            None
        } else {
            Some(Arc::new(Allowlist::parse(&profile.network.allow)?))
        };
        let init = match self.init {
            Some(init) => init,
            None => InitProgram::current_exe(&["sandbox-init"])?,
        };
        let policy = match self.policy {
            Some(policy) => policy,
            None => Policy::builtin()?,
        };
        let shared = Shared {
            host,
            init,
            state_root: self
                .state_root
                .unwrap_or_else(|| std::env::temp_dir().join("neuroflow-sandboxes")),
            egress,
            policy,
            compiled: Mutex::new(HashMap::new()),
        };
        if profile.isolates() {
            shared.seccomp(&profile.seccomp)?;
        }
        let sandbox = Sandbox {
            profile: Arc::new(profile),
            shared: Arc::new(shared),
            pool: Arc::new(Pool::new(self.warm)),
        };
        // Spares are built in the background, where there is a runtime to build them on.
        if sandbox.profile.isolates() && tokio::runtime::Handle::try_current().is_ok() {
            sandbox.pool.refill(&sandbox.shared, &sandbox.profile);
        }
        Ok(sandbox)
    }
}
