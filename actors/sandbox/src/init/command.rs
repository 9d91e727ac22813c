//! The last steps before the command runs, in the child PID 1 forks for it.
//!
//! Order matters: the bounding set can only be dropped while still privileged, ids are
//! changed before the remaining sets are cleared, no_new_privs comes before seccomp, and
//! seccomp comes last so that its filter need not allow any of the set-up calls.

use std::convert::Infallible;
use std::ffi::CString;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use caps::{CapSet, Capability, CapsHashSet};
use nix::sys::resource::{Resource, setrlimit};
use nix::sys::signal::{SigSet, SigmaskHow, sigprocmask};
use nix::unistd::{Gid, Uid};

use super::spec::{CommandSpec, InitSpec};
use super::{LayerContext, SetupError};

/// Argument and environment strings ready for `execve`, prepared before the fork.
pub(super) struct Prepared {
    argv: Vec<CString>,
    envp: Vec<CString>,
}

impl Prepared {
    pub fn new(spec: &CommandSpec) -> Result<Self, SetupError> {
        let cstring = |s: &str| CString::new(s).layer("exec", format!("NUL byte in {s:?}"));
        let mut argv = vec![cstring(&spec.command)?];
        for arg in &spec.args {
            argv.push(cstring(arg)?);
        }
        let envp = spec
            .env
            .iter()
            .map(|(k, v)| cstring(&format!("{k}={v}")))
            .collect::<Result<_, _>>()?;
        Ok(Self { argv, envp })
    }
}

/// Longest failure report the child writes to the error pipe (PID 1 reads no more).
pub(super) const MAX_EXEC_ERROR: usize = 4096;

/// Runs in the forked child: never returns. On failure before `exec` the reason goes to
/// the command's stderr and, as `layer\nmessage`, to the error pipe (see
/// [`parse_exec_error`]), and the child exits 126 (or 127: not found), as a shell does.
pub(super) fn exec(spec: &InitSpec, cmd: &CommandSpec, prepared: &Prepared, err_tx: OwnedFd) -> ! {
    let (status, layer, message) = match confine_and_exec(spec, cmd, prepared) {
        Err(ExecError::NotFound) => (127, "exec", format!("{}: command not found", cmd.command)),
        Err(ExecError::Exec(path, e)) => (126, "exec", format!("{}: {e}", path.display())),
        Err(ExecError::Setup(err)) => (126, err.layer, err.message),
    };
    let mut report = format!("{layer}\n{message}").into_bytes();
    report.truncate(MAX_EXEC_ERROR);
    let _ = std::fs::File::from(err_tx).write_all(&report);
    // A failed exec reads as a shell would print it; a failed layer is named.
    let shown = if layer == "exec" {
        message
    } else {
        format!("[{layer}] {message}")
    };
    let _ = writeln!(std::io::stderr(), "neuroflow-sandbox: {shown}");
    std::process::exit(status)
}

/// `(layer, message)` of what [`exec`] wrote to the error pipe.
pub(super) fn parse_exec_error(report: &[u8]) -> (String, String) {
    let text = String::from_utf8_lossy(report);
    match text.split_once('\n') {
        Some((layer, message)) => (layer.to_string(), message.to_string()),
        None => ("exec".to_string(), text.into_owned()),
    }
}

enum ExecError {
    NotFound,
    Exec(PathBuf, nix::errno::Errno),
    Setup(SetupError),
}

impl From<SetupError> for ExecError {
    fn from(err: SetupError) -> Self {
        Self::Setup(err)
    }
}

fn confine_and_exec(
    spec: &InitSpec,
    cmd: &CommandSpec,
    prepared: &Prepared,
) -> Result<Infallible, ExecError> {
    // A session of its own: no controlling terminal, and one process group to signal.
    nix::unistd::setsid().layer("init", "setsid")?;
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
        .layer("init", "restore the signal mask")?;
    set_rlimits(spec)?;
    // The init runs at -1000 so that the OOM killer spares it; the command must not. After
    // an id change (a user namespace's root) /proc/self belongs to root until the process
    // is marked dumpable again.
    nix::sys::prctl::set_dumpable(true).layer("memory", "set dumpable")?;
    std::fs::write("/proc/self/oom_score_adj", "0").layer("memory", "reset oom_score_adj")?;
    // `join` keeps an absolute `cwd` as it is and puts a relative one under the workdir.
    let cwd = cmd
        .cwd
        .as_deref()
        .map_or_else(|| spec.workdir.clone(), |cwd| spec.workdir.join(cwd));
    nix::unistd::chdir(&cwd).layer("cwd", format!("chdir {}", cwd.display()))?;
    drop_bounding_set()?;
    set_ids(spec.uid, spec.gid)?;
    drop_capabilities(&[]).layer("capabilities", "clear")?;
    nix::sys::prctl::set_no_new_privs().layer("no-new-privs", "prctl")?;
    let program = resolve(&cmd.command, &cmd.env)?;
    spec.seccomp
        .install()
        .map_err(|e| SetupError::new("seccomp", e))?;
    let path = CString::new(program.as_os_str().as_bytes()).map_err(|_| ExecError::NotFound)?;
    let err = nix::unistd::execve(&path, &prepared.argv, &prepared.envp).unwrap_err();
    Err(ExecError::Exec(program, err))
}

fn set_rlimits(spec: &InitSpec) -> Result<(), SetupError> {
    let limits = spec.rlimits;
    setrlimit(Resource::RLIMIT_CORE, 0, 0).layer("rlimits", "core")?;
    if limits.cpu_seconds > 0 {
        // SIGXCPU at the soft limit (a clear signal to tell the reason by), SIGKILL a
        // second later for processes that catch it.
        setrlimit(
            Resource::RLIMIT_CPU,
            limits.cpu_seconds,
            limits.cpu_seconds + 1,
        )
        .layer("rlimits", "cpu")?;
    }
    if limits.file_size > 0 {
        setrlimit(Resource::RLIMIT_FSIZE, limits.file_size, limits.file_size)
            .layer("rlimits", "fsize")?;
    }
    if limits.open_files > 0 {
        setrlimit(
            Resource::RLIMIT_NOFILE,
            limits.open_files,
            limits.open_files,
        )
        .layer("rlimits", "nofile")?;
    }
    Ok(())
}

fn drop_bounding_set() -> Result<(), SetupError> {
    caps::clear(None, CapSet::Bounding).layer("capabilities", "clear the bounding set")?;
    caps::clear(None, CapSet::Ambient).layer("capabilities", "clear the ambient set")?;
    caps::clear(None, CapSet::Inheritable).layer("capabilities", "clear the inheritable set")
}

/// Keeps only `keep` in the effective and permitted sets (and in the bounding set, when
/// still allowed to change it).
pub(super) fn drop_capabilities(keep: &[Capability]) -> Result<(), caps::errors::CapsError> {
    let keep: CapsHashSet = keep.iter().copied().collect();
    for cap in caps::all() {
        if !keep.contains(&cap) {
            // Fails once CAP_SETPCAP is gone; the bounding set was cleared before that.
            let _ = caps::drop(None, CapSet::Bounding, cap);
        }
    }
    caps::set(None, CapSet::Ambient, &CapsHashSet::new())?;
    caps::set(None, CapSet::Inheritable, &CapsHashSet::new())?;
    caps::set(None, CapSet::Effective, &keep)?;
    caps::set(None, CapSet::Permitted, &keep)
}

fn set_ids(uid: u32, gid: u32) -> Result<(), SetupError> {
    let (uid, gid) = (Uid::from_raw(uid), Gid::from_raw(gid));
    if Uid::current() == uid && Gid::current() == gid {
        return Ok(()); // a user namespace mapping only the node's own id
    }
    nix::unistd::setgroups(&[gid]).layer("ids", "setgroups")?;
    nix::unistd::setresgid(gid, gid, gid).layer("ids", "setresgid")?;
    nix::unistd::setresuid(uid, uid, uid).layer("ids", "setresuid")
}

/// Finds `command` as `execvpe` would, but in the command's own `PATH` (libc's looks at
/// the caller's environment).
fn resolve(command: &str, env: &[(String, String)]) -> Result<PathBuf, ExecError> {
    if command.is_empty() {
        return Err(ExecError::NotFound);
    }
    if command.contains('/') {
        return Ok(PathBuf::from(command));
    }
    let path = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map_or("/usr/bin:/bin", |(_, v)| v.as_str());
    path.split(':')
        .filter(|dir| !dir.is_empty())
        .map(|dir| Path::new(dir).join(command))
        .find(|candidate| {
            nix::unistd::access(candidate, nix::unistd::AccessFlags::X_OK).is_ok()
                && candidate.is_file()
        })
        .ok_or(ExecError::NotFound)
}
