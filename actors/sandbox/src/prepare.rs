//! Building a sandbox up to the point where it waits for its command: state directory,
//! cgroup, the init and its namespaces, the root file system.
//!
//! A [`Ready`] sandbox can be built ahead of the request that will use it (see
//! [`crate::pool`]); dropping one unused tears it down.

use std::ffi::CString;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use neuroflow_kit::codec::{self, FrameConfig, FrameReader};
use tokio::io::AsyncWriteExt;
use tokio::net::unix::pipe;
use tokio::process::Child;

use crate::cgroup::{CgroupLimits, SandboxCgroup};
use crate::control::Events;
use crate::error::SandboxError;
use crate::host::HostSupport;
use crate::init::spec::{Egress, InitEvent, InitSpec, Lower, Rlimits, SpecMount};
use crate::net::EgressProxy;
use crate::profile::{Profile, RootFs};
use crate::sandbox::Shared;
use crate::spawn::Launch;
use crate::teardown::Remains;

/// Inside the sandbox, where the command starts.
pub(crate) const WORKDIR: &str = "/workspace";
/// Loopback port of the egress bridge inside the sandbox (the customary proxy port).
pub(crate) const EGRESS_PORT: u16 = 3128;
/// Longest a sandbox may take to build before it is given up.
const SETUP_TIMEOUT: Duration = Duration::from_secs(30);

/// A built sandbox waiting for its command.
pub(crate) struct Ready {
    pub child: Child,
    pub control: pipe::Sender,
    pub events: Events,
    pub cgroup: CgroupGuard,
    pub state: StateDir,
    /// The node side of the sandbox's egress, when it has any; stops when dropped.
    pub proxy: Option<EgressProxy>,
}

impl Ready {
    /// The sandbox to keep (and tear down later), and the init's event pipe.
    pub fn into_parts(self) -> (Remains, Events) {
        let Ready {
            child,
            control,
            events,
            cgroup,
            state,
            proxy,
        } = self;
        let remains = Remains {
            child,
            control,
            cgroup,
            state,
            proxy,
        };
        (remains, events)
    }
}

pub(crate) async fn prepare(shared: &Shared, profile: &Profile) -> Result<Ready, SandboxError> {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let state = StateDir::create(&shared.state_root, &id)?;
    let hosts = shared.host.cgroups.as_ref().ok_or_else(|| {
        SandboxError::layer("cgroup", "this host offers no usable cgroup hierarchy")
    })?;
    let cgroup = hosts
        .create(&id, &cgroup_limits(profile, &shared.host))
        .map_err(|e| SandboxError::layer("cgroup", e))?;
    let cgroup = CgroupGuard(Some(Arc::new(cgroup)));
    let userns = profile.user_namespace || !shared.host.is_root;
    let proxy = match &shared.egress {
        Some(allowlist) => Some(
            EgressProxy::start(&state.path.join("egress.sock"), allowlist.clone())
                .map_err(|e| SandboxError::layer("egress", format!("start the proxy: {e}")))?,
        ),
        None => None,
    };
    let mut spec = init_spec(shared, profile, &state.path, userns)?;
    spec.egress = proxy.as_ref().map(|p| Egress {
        socket: p.socket_path().to_path_buf(),
        port: EGRESS_PORT,
    });
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
    let child = launch
        .spawn()
        .map_err(|e| SandboxError::layer("init", format!("cannot start the init: {e}")))?;
    let mut control = pipe::Sender::from_owned_fd(spec_tx).map_err(SandboxError::io)?;
    let events = pipe::Receiver::from_owned_fd(event_rx).map_err(SandboxError::io)?;
    let mut events = FrameReader::new(events, FrameConfig::default());
    control.write_all(&frame).await.map_err(SandboxError::io)?;
    match tokio::time::timeout(SETUP_TIMEOUT, events.read::<InitEvent>()).await {
        Ok(Ok(Some(InitEvent::Ready { setup_us }))) => {
            tracing::debug!(setup_us, "sandbox ready");
        }
        Ok(Ok(Some(InitEvent::SetupFailed { layer, message }))) => {
            return Err(SandboxError::Setup { layer, message });
        }
        Ok(Ok(other)) => {
            return Err(SandboxError::layer(
                "init",
                format!("unexpected first event from the init: {other:?}"),
            ));
        }
        Ok(Err(e)) => return Err(SandboxError::layer("init", e)),
        Err(_) => {
            return Err(SandboxError::layer(
                "init",
                format!("the sandbox took longer than {SETUP_TIMEOUT:?} to build"),
            ));
        }
    }
    Ok(Ready {
        child,
        control,
        events,
        cgroup,
        state,
        proxy,
    })
}

fn init_spec(
    shared: &Shared,
    profile: &Profile,
    state_dir: &Path,
    userns: bool,
) -> Result<InitSpec, SandboxError> {
    let (uid, gid) = if userns {
        (0, 0)
    } else {
        (profile.uid, profile.gid)
    };
    Ok(InitSpec {
        state_dir: state_dir.to_path_buf(),
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
        egress: None,
    })
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

/// The sandbox's cgroup, destroyed on every path: explicitly after a run, in `Drop` when
/// a sandbox is abandoned.
pub(crate) struct CgroupGuard(Option<Arc<SandboxCgroup>>);

impl CgroupGuard {
    pub fn get(&self) -> &SandboxCgroup {
        // Present until `destroy` consumes the guard.
        self.0.as_deref().unwrap_or_else(|| unreachable!())
    }

    /// Kills every process of the sandbox (bounded blocking I/O, off the async threads).
    pub async fn kill_all(&self) {
        if let Some(cg) = self.0.clone() {
            let _ = tokio::task::spawn_blocking(move || cg.kill_all()).await;
        }
    }

    pub async fn destroy(mut self) -> Result<(), SandboxError> {
        let Some(cg) = self.0.take() else {
            return Ok(());
        };
        tokio::task::spawn_blocking(move || match Arc::try_unwrap(cg) {
            Ok(cg) => cg.destroy(),
            // A kill still holds it: its Drop tears the cgroup down when it finishes.
            Err(_) => Ok(()),
        })
        .await
        .map_err(|e| SandboxError::layer("cgroup", e))?
        .map_err(|e| SandboxError::layer("cgroup", e))
    }
}

impl Drop for CgroupGuard {
    fn drop(&mut self) {
        if let Some(cg) = self.0.take()
            && let Ok(cg) = Arc::try_unwrap(cg)
        {
            let _ = cg.destroy();
        }
    }
}

/// The host directory the init mounts the sandbox's root in; removed afterwards (the
/// mounts themselves vanish with the sandbox's mount namespace).
pub(crate) struct StateDir {
    pub path: PathBuf,
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
