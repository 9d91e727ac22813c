//! Opening a path inside a directory, and never outside it.
//!
//! Paths come from a model, so they are hostile by assumption. They are checked twice:
//! lexically (relative, no `..`), and then by the kernel while it resolves them:
//! `openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)` resolves the whole path relative to
//! the workspace's descriptor and fails with `EXDEV` if any step (an absolute symlink, a
//! symlink whose target climbs out, a `/proc` magic link) would leave it. That is one
//! system call, so nothing can be swapped in between a check and the use, which is the
//! race canonicalize-then-open has: a directory replaced by a symlink after the check is
//! followed by the open. Symlinks that stay inside the workspace keep working.
//!
//! Where `openat2` is missing (Linux before 5.6, or a seccomp filter answering `ENOSYS`),
//! the path is walked one component at a time with `openat(O_NOFOLLOW)` from descriptor to
//! descriptor: every symlink is refused, which is stricter but just as race-free.

use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat, openat2};
use nix::sys::stat::{Mode, mkdirat};

use super::FsError;

/// Longest path accepted from a model.
const MAX_PATH: usize = 4096;

/// Cleared the first time the kernel says it has no `openat2`.
static HAVE_OPENAT2: AtomicBool = AtomicBool::new(true);

/// How paths are resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resolver {
    Openat2,
    /// Component by component, refusing every symlink.
    Walk,
}

/// The model's `path` as a relative path, or why it is refused. `""` means the workspace.
pub(crate) fn relative(path: &str) -> Result<PathBuf, FsError> {
    if path.len() > MAX_PATH || path.contains('\0') {
        return Err(FsError::InvalidPath(format!(
            "a path must be under {MAX_PATH} bytes and contain no NUL"
        )));
    }
    let rel = Path::new(if path.is_empty() { "." } else { path });
    for component in rel.components() {
        match component {
            Component::Normal(_) | Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => return Err(FsError::escape(path)),
            Component::ParentDir => return Err(FsError::escape(path)),
        }
    }
    Ok(rel.to_path_buf())
}

/// Opens `rel` beneath `dir` with `flags` (and `mode`, when creating).
pub(crate) fn open(
    dir: BorrowedFd<'_>,
    rel: &Path,
    flags: OFlag,
    mode: Mode,
) -> Result<OwnedFd, Errno> {
    if HAVE_OPENAT2.load(Ordering::Relaxed) {
        match open_with(Resolver::Openat2, dir, rel, flags, mode) {
            Err(Errno::ENOSYS) => HAVE_OPENAT2.store(false, Ordering::Relaxed),
            done => return done,
        }
    }
    open_with(Resolver::Walk, dir, rel, flags, mode)
}

pub(crate) fn open_with(
    resolver: Resolver,
    dir: BorrowedFd<'_>,
    rel: &Path,
    flags: OFlag,
    mode: Mode,
) -> Result<OwnedFd, Errno> {
    let flags = flags | OFlag::O_CLOEXEC;
    // The kernel rejects a mode without O_CREAT.
    let mode = if flags.contains(OFlag::O_CREAT) {
        mode
    } else {
        Mode::empty()
    };
    match resolver {
        Resolver::Openat2 => {
            let how = OpenHow::new()
                .flags(flags)
                .mode(mode)
                .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_MAGICLINKS);
            // EAGAIN: a rename raced the lookup; the kernel asks for a retry.
            let mut tries = 0;
            loop {
                match openat2(dir, rel, how) {
                    Err(Errno::EAGAIN) if tries < 3 => tries += 1,
                    done => return done,
                }
            }
        }
        Resolver::Walk => walk(dir, rel, flags, mode),
    }
}

fn walk(dir: BorrowedFd<'_>, rel: &Path, flags: OFlag, mode: Mode) -> Result<OwnedFd, Errno> {
    let parts: Vec<&OsStr> = rel
        .components()
        .filter_map(|c| match c {
            Component::Normal(part) => Some(Ok(part)),
            Component::CurDir => None,
            _ => Some(Err(Errno::EXDEV)),
        })
        .collect::<Result<_, _>>()?;
    let Some((last, parents)) = parts.split_last() else {
        return openat(dir, ".", flags, mode);
    };
    let mut held: Option<OwnedFd> = None;
    for part in parents {
        let at = held.as_ref().map_or(dir, AsFd::as_fd);
        let step = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        held = Some(openat(at, *part, step, Mode::empty())?);
    }
    let at = held.as_ref().map_or(dir, AsFd::as_fd);
    openat(at, *last, flags | OFlag::O_NOFOLLOW, mode)
}

/// Opens directory `rel` beneath `dir`, creating the missing components (mode 0755).
pub(crate) fn create_dirs(dir: BorrowedFd<'_>, rel: &Path) -> Result<OwnedFd, Errno> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY;
    let mut held: Option<OwnedFd> = None;
    for component in rel.components() {
        let Component::Normal(part) = component else {
            continue;
        };
        let at = held.as_ref().map_or(dir, AsFd::as_fd);
        match mkdirat(at, part, Mode::from_bits_truncate(0o755)) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(errno) => return Err(errno),
        }
        // Each step is resolved beneath the previous one, itself beneath the workspace.
        held = Some(open(at, Path::new(part), flags, Mode::empty())?);
    }
    match held {
        Some(fd) => Ok(fd),
        None => open(dir, Path::new("."), flags, Mode::empty()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn fixture() -> (tempfile::TempDir, OwnedFd) {
        let root = tempfile::tempdir().unwrap();
        let ws = root.path().join("ws");
        std::fs::create_dir_all(ws.join("sub")).unwrap();
        std::fs::write(ws.join("sub/file"), "x").unwrap();
        std::fs::write(root.path().join("secret"), "s").unwrap();
        symlink("../secret", ws.join("out")).unwrap();
        symlink("/", ws.join("slash")).unwrap();
        symlink("sub", ws.join("in")).unwrap();
        let fd =
            nix::fcntl::open(&ws, OFlag::O_RDONLY | OFlag::O_DIRECTORY, Mode::empty()).unwrap();
        (root, fd)
    }

    fn try_open(resolver: Resolver, dir: &OwnedFd, path: &str) -> Result<OwnedFd, Errno> {
        open_with(
            resolver,
            dir.as_fd(),
            Path::new(path),
            OFlag::O_RDONLY,
            Mode::empty(),
        )
    }

    #[test]
    fn both_resolvers_keep_paths_inside() {
        let (_root, ws) = fixture();
        for resolver in [Resolver::Openat2, Resolver::Walk] {
            assert!(try_open(resolver, &ws, "sub/file").is_ok(), "{resolver:?}");
            assert!(try_open(resolver, &ws, ".").is_ok(), "{resolver:?}");
            for escape in ["out", "slash/etc/passwd", "../secret", "/etc/passwd"] {
                let err = try_open(resolver, &ws, escape).unwrap_err();
                assert!(
                    matches!(err, Errno::EXDEV | Errno::ELOOP | Errno::ENOTDIR),
                    "{resolver:?} {escape}: {err}"
                );
            }
        }
        // openat2 follows links that stay inside; the walk refuses every link.
        assert!(try_open(Resolver::Openat2, &ws, "in/file").is_ok());
        assert!(try_open(Resolver::Walk, &ws, "in/file").is_err());
    }

    #[test]
    fn model_paths_are_checked_lexically_first() {
        assert_eq!(relative("").unwrap(), Path::new("."));
        assert!(relative("a/b.txt").is_ok());
        for bad in ["../a", "a/../../b", "/etc", "a\0b"] {
            assert!(relative(bad).is_err(), "{bad:?}");
        }
        assert!(relative(&"a/".repeat(3000)).is_err());
    }
}
