//! One command in one isolated sandbox, from the node's side: prepare, spawn the init,
//! feed stdin, collect output within its cap, enforce the wall-clock limit, tear down, and
//! tell how it ended.

use std::ffi::CString;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use neuroflow_kit::codec::{self, FrameConfig, FrameReader};
use neuroflow_kit::protocol::sandbox::{EndReason, ExecOutcome, ExecRequest, ResourceUsage};
use tokio::io::AsyncWriteExt;
use tokio::net::unix::pipe;
use tokio::sync::mpsc;

use crate::cgroup::{CgroupLimits, SandboxCgroup};
use crate::error::SandboxError;
use crate::host::HostSupport;
use crate::init::spec::{InitEvent, InitSpec, Lower, Rlimits, SpecMount};
use crate::output::{Output, OutputChunk, Stream};
use crate::profile::{Profile, RootFs};
use crate::sandbox::Shared;
use crate::spawn::Launch;

/// Inside the sandbox, where the command starts.
pub(crate) const WORKDIR: &str = "/workspace";
/// How long to wait for the output pipes to close once the sandbox is gone.
const DRAIN_GRACE: Duration = Duration::from_secs(2);

pub(crate) async fn run(
    shared: &Shared,
    profile: &Profile,
    req: ExecRequest,
    stream: Option<mpsc::Sender<OutputChunk>>,
) -> Result<ExecOutcome, SandboxError> {
    let begun = Instant::now();
    let id = uuid::Uuid::new_v4().simple().to_string();
    let state = StateDir::create(&shared.state_root, &id)?;
    let hosts = shared.host.cgroups.as_ref().ok_or_else(|| {
        SandboxError::layer("cgroup", "this host offers no usable cgroup hierarchy")
    })?;
    let cgroup = hosts
        .create(&id, &cgroup_limits(profile, &shared.host))
        .map_err(|e| SandboxError::layer("cgroup", e))?;
    let cgroup = Teardown(Some(cgroup));
    let userns = profile.user_namespace || !shared.host.is_root;
    let (uid, gid) = if userns {
        (0, 0)
    } else {
        (profile.uid, profile.gid)
    };
    let spec = InitSpec {
        state_dir: state.path.clone(),
        hostname: profile.hostname.clone(),
        lower: match &profile.root {
            RootFs::HostDirs(dirs) => Lower::HostDirs(dirs.clone()),
            RootFs::Tree(tree) => Lower::Tree(tree.clone()),
        },
        read_only_root: profile.read_only_root,
        disk_bytes: profile.limits.disk.0,
        tmp_bytes: profile.limits.tmp.0,
        mounts: profile
            .mounts
            .iter()
            .map(|m| SpecMount {
                source: m.source.clone(),
                target: m.target.clone(),
                writable: m.writable,
            })
            .collect(),
        command: req.command.clone(),
        args: req.args.clone(),
        env: environment(profile, &req),
        workdir: PathBuf::from(WORKDIR),
        uid,
        gid,
        rlimits: Rlimits {
            cpu_seconds: profile.limits.cpu_time.map_or(0, |t| t.0.as_secs().max(1)),
            file_size: profile.limits.file_size.0,
            open_files: profile.limits.open_files,
        },
        seccomp: shared.seccomp(&profile.seccomp)?,
        outside_user_maps: (userns && shared.host.is_root)
            .then(|| ("0 65534 1".to_string(), "0 65534 1".to_string())),
    };
    let frame = codec::encode_frame(&spec, &FrameConfig::default())
        .map_err(|e| SandboxError::layer("init", e))?;
    let (spec_rx, spec_tx) = cloexec_pipe()?;
    let (event_rx, event_tx) = cloexec_pipe()?;
    let launch = Launch {
        init: shared.init.clone(),
        cgroup_procs: cgroup.get().procs_files(),
        // Root maps the sandbox's root to `nobody` from outside (in the init); others map
        // their own ids from inside.
        unshare: !(userns && shared.host.is_root),
        user_maps: (userns && !shared.host.is_root).then(own_user_maps),
        spec_rx,
        event_tx,
    };
    let mut child = launch
        .spawn()
        .map_err(|e| SandboxError::layer("init", format!("cannot start the init: {e}")))?;
    let mut spec_tx = pipe::Sender::from_owned_fd(spec_tx).map_err(SandboxError::io)?;
    let events = pipe::Receiver::from_owned_fd(event_rx).map_err(SandboxError::io)?;
    spec_tx.write_all(&frame).await.map_err(SandboxError::io)?;
    drop(spec_tx);

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
        read_events(events, &mut watch, begun),
    )
    .await;
    if ended != Ended::ByItself {
        cgroup.kill_all().await;
    }
    let status = tokio::time::timeout(DRAIN_GRACE, child.wait()).await;
    if status.is_err() {
        // The init did not go away after its cgroup was killed: kill it directly.
        cgroup.kill_all().await;
        let _ = child.kill().await;
    }
    if let Some(failure) = watch.setup_failed.take() {
        return Err(SandboxError::Setup {
            layer: failure.0,
            message: failure.1,
        });
    }
    let usage = cgroup.get().usage();
    let (stdout, stderr, truncated, bytes_out) = output.finish();
    let (exit_code, signal) = match watch.exited {
        Some(status) => status,
        None => (None, Some(libc::SIGKILL)),
    };
    let end = end_reason(ended, exit_code, signal, &usage, profile);
    cgroup.destroy().await?;
    drop(state);
    Ok(ExecOutcome {
        end,
        exit_code,
        signal,
        stdout,
        stderr,
        output_truncated: truncated,
        usage: ResourceUsage {
            start_latency_us: watch.start_latency_us,
            wall_time_us: micros(begun.elapsed()),
            cpu_time_us: usage.cpu_time_us,
            peak_memory_bytes: usage.peak_memory_bytes,
            peak_pids: usage.peak_pids,
            bytes_out,
        },
    })
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
    tokio::select! {
        _ = all => Ended::ByItself,
        () = tokio::time::sleep(timeout) => Ended::Timeout,
        () = output.capped() => Ended::OutputCapped,
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

async fn read_events(events: pipe::Receiver, watch: &mut Watch, begun: Instant) {
    let mut reader = FrameReader::new(events, FrameConfig::default());
    // The init writes a handful of events and closes the pipe when it exits.
    while let Ok(Some(event)) = reader.read::<InitEvent>().await {
        match event {
            InitEvent::Started { .. } => watch.start_latency_us = micros(begun.elapsed()),
            InitEvent::SetupFailed { layer, message } => {
                watch.setup_failed = Some((layer, message));
            }
            InitEvent::Exited { code, signal } => watch.exited = Some((code, signal)),
        }
    }
}

fn cgroup_limits(profile: &Profile, host: &HostSupport) -> CgroupLimits {
    let l = &profile.limits;
    // No swap on the host and none allowed: the limit holds without swap accounting.
    let vacuous = !host.has_swap && l.swap.is_some_and(|s| s.0 == 0);
    CgroupLimits {
        cpu_quota_millicores: l.cpu_millicores,
        memory_bytes: l.memory.map(|m| m.0),
        swap_bytes: l.swap.map(|s| s.0).filter(|_| !vacuous),
        pids_max: l.pids,
    }
}

/// The profile's environment plus the request's; never anything of the node's.
pub(crate) fn environment(profile: &Profile, req: &ExecRequest) -> Vec<(String, String)> {
    let mut env = profile.env.clone();
    for (k, v) in &req.env {
        env.insert(k.clone(), v.clone());
    }
    env.into_iter().collect()
}

/// Id maps of a user namespace made by a node that is not root: the sandbox's root is the
/// node's own user, the only mapping such a node may write.
fn own_user_maps() -> (CString, CString) {
    let map = |id: u32| CString::new(format!("0 {id} 1")).unwrap_or_default();
    (
        map(nix::unistd::Uid::effective().as_raw()),
        map(nix::unistd::Gid::effective().as_raw()),
    )
}

fn cloexec_pipe() -> Result<(OwnedFd, OwnedFd), SandboxError> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| SandboxError::io(std::io::Error::from(e)))
}

pub(crate) fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// The sandbox's cgroup, destroyed on every path out of [`run`].
struct Teardown(Option<SandboxCgroup>);

impl Teardown {
    fn get(&self) -> &SandboxCgroup {
        self.0.as_ref().expect("present until destroy")
    }

    async fn kill_all(&self) {
        if let Some(cg) = &self.0 {
            // Blocking file I/O with short bounded waits (freezing): off the async threads.
            let _ = tokio::task::block_in_place(|| cg.kill_all());
        }
    }

    async fn destroy(mut self) -> Result<(), SandboxError> {
        match self.0.take() {
            Some(cg) => tokio::task::spawn_blocking(move || cg.destroy())
                .await
                .map_err(|e| SandboxError::layer("cgroup", e))?
                .map_err(|e| SandboxError::layer("cgroup", e)),
            None => Ok(()),
        }
    }
}

impl Drop for Teardown {
    fn drop(&mut self) {
        if let Some(cg) = self.0.take() {
            let _ = cg.destroy();
        }
    }
}

/// The host directory the init mounts the sandbox's root in; removed afterwards (the
/// mounts themselves vanish with the sandbox's mount namespace).
struct StateDir {
    path: PathBuf,
}

impl StateDir {
    fn create(root: &Path, id: &str) -> Result<Self, SandboxError> {
        use std::os::unix::fs::DirBuilderExt;
        let path = root.join(id);
        for dir in [root, &path, &path.join("root"), &path.join("scratch")] {
            // 0711: the init may run as an unmapped user inside a user namespace and must
            // still reach its mount points; nobody else can list them.
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o711)
                .create(dir)
                .map_err(|e| {
                    SandboxError::layer("state-dir", format!("create {}: {e}", dir.display()))
                })?;
        }
        Ok(Self { path })
    }
}

impl Drop for StateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
