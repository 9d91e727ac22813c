//! The sandbox's file system, built by PID 1 in its private mount namespace.
//!
//! ```text
//! /            small tmpfs holding the mount points, read-only once built
//! /usr, /etc…  overlay: host dir read-only below, upper layer on the scratch tmpfs
//!              (or a read-only bind with `read_only_root`)
//! /workspace   on the scratch tmpfs (size = disk limit), the command's cwd
//! /tmp         tmpfs (size = tmp limit)
//! /proc        fresh, for the sandbox's PID namespace; kernel knobs read-only or masked
//! /dev         tmpfs with null, zero, full, random, urandom bound in; no tty
//! ```

use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::statvfs::{FsFlags, statvfs};

use super::spec::{InitSpec, Lower};
use super::{LayerContext, SetupError};

const DEVICES: [&str; 5] = ["null", "zero", "full", "random", "urandom"];

/// Kernel knobs under /proc the sandbox may read but not write.
const PROC_READ_ONLY: [&str; 5] = ["sys", "sysrq-trigger", "irq", "bus", "fs"];
/// Files under /proc that leak host details; hidden behind /dev/null (as Docker does).
const PROC_MASKED: [&str; 5] = ["kcore", "keys", "timer_list", "sched_debug", "kallsyms"];

pub(super) fn build_root(spec: &InitSpec) -> Result<(), SetupError> {
    let none: Option<&str> = None;
    // Nothing mounted from here on may propagate back to the host.
    mount(none, "/", none, MsFlags::MS_REC | MsFlags::MS_PRIVATE, none)
        .layer("mount-namespace", "make / private")?;
    let root = spec.state_dir.join("root");
    let scratch = spec.state_dir.join("scratch");
    let quiet = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    tmpfs(&scratch, spec.disk_bytes, "0755", quiet).layer("disk", "scratch tmpfs")?;
    match &spec.lower {
        Lower::HostDirs(dirs) => {
            tmpfs(&root, 1 << 20, "0755", MsFlags::MS_NOSUID).layer("root", "root tmpfs")?;
            for dir in dirs {
                lower_dir(spec, &root, &scratch, dir)?;
            }
        }
        Lower::Tree(tree) => {
            if spec.read_only_root {
                bind(tree, &root, false).layer("root", format!("bind {}", tree.display()))?;
            } else {
                overlay(tree, &root, &scratch.join("tree"), spec)?;
            }
        }
    }
    let workspace = scratch.join("workspace");
    mkdir(&workspace).layer("disk", "create the workspace")?;
    nix::unistd::chown(
        &workspace,
        Some(nix::unistd::Uid::from_raw(spec.uid)),
        Some(nix::unistd::Gid::from_raw(spec.gid)),
    )
    .layer("disk", "chown the workspace")?;
    bind(&workspace, &mount_point(&root, "/workspace")?, true).layer("disk", "bind /workspace")?;
    tmpfs(&mount_point(&root, "/tmp")?, spec.tmp_bytes, "1777", quiet).layer("tmp", "tmpfs")?;
    proc(&root)?;
    dev(&root)?;
    if let Some(egress) = &spec.egress {
        let target = file_mount_point(&root, super::bridge::SOCKET)?;
        bind(&egress.socket, &target, false).layer("egress", "bind the proxy socket")?;
    }
    for m in &spec.mounts {
        let target = mount_point(&root, &m.target)?;
        bind(&m.source, &target, m.writable)
            .layer("mounts", format!("bind {}", m.source.display()))?;
    }
    pivot(&root)?;
    if matches!(spec.lower, Lower::HostDirs(_)) || spec.read_only_root {
        remount_bind(Path::new("/"), MsFlags::MS_RDONLY).layer("root", "make / read-only")?;
    }
    Ok(())
}

/// One host directory of the lower layers: recreated as a symlink when it is one on the
/// host (`/bin -> usr/bin`), else mounted copy-on-write or read-only.
fn lower_dir(spec: &InitSpec, root: &Path, scratch: &Path, dir: &Path) -> Result<(), SetupError> {
    let inside = root.join(dir.strip_prefix("/").unwrap_or(dir));
    match fs::symlink_metadata(dir) {
        Err(_) => Ok(()), // absent on this host (e.g. /lib64 elsewhere): nothing to show
        Ok(meta) if meta.file_type().is_symlink() => {
            let link = fs::read_link(dir).layer("root", format!("read {}", dir.display()))?;
            std::os::unix::fs::symlink(link, &inside)
                .layer("root", format!("link {}", dir.display()))
        }
        Ok(_) => {
            let target = mount_point(root, dir)?;
            if spec.read_only_root {
                bind(dir, &target, false).layer("root", format!("bind {}", dir.display()))
            } else {
                let name = dir.to_string_lossy().replace('/', "_");
                overlay(dir, &target, &scratch.join("layers").join(name), spec)
            }
        }
    }
}

fn overlay(lower: &Path, target: &Path, layer: &Path, spec: &InitSpec) -> Result<(), SetupError> {
    let (upper, work) = (layer.join("upper"), layer.join("work"));
    for dir in [&upper, &work] {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(dir)
            .layer("overlay", format!("create {}", dir.display()))?;
    }
    for path in [lower, &upper, &work] {
        // Overlay options are comma- and colon-separated; such paths cannot be expressed.
        if path.to_string_lossy().contains([',', ':', '\\']) {
            return Err(SetupError::new(
                "overlay",
                format!("path {} contains ',', ':' or '\\'", path.display()),
            ));
        }
    }
    let mut options = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.display(),
        upper.display(),
        work.display()
    );
    if in_user_namespace() {
        // Without CAP_SYS_ADMIN in the initial namespace overlay must keep its metadata in
        // user.* extended attributes.
        options.push_str(",userxattr");
    }
    let _ = spec;
    mount(
        Some("overlay"),
        target,
        Some("overlay"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(options.as_str()),
    )
    .layer("overlay", format!("mount {}", lower.display()))
}

fn proc(root: &Path) -> Result<(), SetupError> {
    let target = mount_point(root, "/proc")?;
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount(Some("proc"), &target, Some("proc"), flags, None::<&str>).layer("proc", "mount")?;
    for name in PROC_READ_ONLY {
        let path = target.join(name);
        if path.exists() {
            bind(&path, &path, false).layer("proc", format!("read-only /proc/{name}"))?;
        }
    }
    for name in PROC_MASKED {
        let path = target.join(name);
        if path.is_file() {
            bind(Path::new("/dev/null"), &path, false)
                .layer("proc", format!("mask /proc/{name}"))?;
        }
    }
    Ok(())
}

fn dev(root: &Path) -> Result<(), SetupError> {
    let dev = mount_point(root, "/dev")?;
    tmpfs(
        &dev,
        64 << 10,
        "0755",
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
    )
    .layer("dev", "tmpfs")?;
    for name in DEVICES {
        let node = dev.join(name);
        fs::File::create(&node).layer("dev", format!("create /dev/{name}"))?;
        bind(&Path::new("/dev").join(name), &node, true).layer("dev", format!("/dev/{name}"))?;
    }
    for (link, to) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        std::os::unix::fs::symlink(to, dev.join(link)).layer("dev", format!("link /dev/{link}"))?;
    }
    remount_bind(&dev, MsFlags::MS_RDONLY).layer("dev", "make /dev read-only")
}

/// Makes `root` the sandbox's `/` and detaches the host's tree from it.
fn pivot(root: &Path) -> Result<(), SetupError> {
    nix::unistd::chdir(root).layer("pivot-root", "chdir")?;
    // pivot_root(".", ".") stacks the old root on the new one; unmounting "." then drops
    // it, with no directory needed for it inside the new root.
    nix::unistd::pivot_root(".", ".").layer("pivot-root", "pivot_root")?;
    umount2(".", MntFlags::MNT_DETACH).layer("pivot-root", "detach the host root")?;
    nix::unistd::chdir("/").layer("pivot-root", "chdir /")
}

fn tmpfs(target: &Path, size: u64, mode: &str, flags: MsFlags) -> nix::Result<()> {
    let options = format!("size={size},mode={mode}");
    mount(
        Some("tmpfs"),
        target,
        Some("tmpfs"),
        flags,
        Some(options.as_str()),
    )
}

/// Binds `source` at `target`, then remounts it with nosuid, nodev (but for device nodes)
/// and, unless `writable`, read-only.
fn bind(source: &Path, target: &Path, writable: bool) -> nix::Result<()> {
    let none: Option<&str> = None;
    mount(
        Some(source),
        target,
        none,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        none,
    )?;
    let mut flags = MsFlags::MS_NOSUID;
    if !writable {
        flags |= MsFlags::MS_RDONLY;
    }
    if !source.starts_with("/dev") {
        flags |= MsFlags::MS_NODEV;
    }
    remount_bind(target, flags)
}

/// Remounts a bind mount adding `flags`, keeping the flags it already has: inside a user
/// namespace the kernel refuses a remount that would clear a locked flag.
fn remount_bind(target: &Path, flags: MsFlags) -> nix::Result<()> {
    let have = statvfs(target)?.flags();
    let mut keep = MsFlags::empty();
    for (fs_flag, ms_flag) in [
        (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if have.contains(fs_flag) {
            keep |= ms_flag;
        }
    }
    mount(
        None::<&str>,
        target,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | keep | flags,
        None::<&str>,
    )
}

/// Creates the mount point for sandbox path `inside` under `root`: a directory, or an
/// empty file when the host side is a file. Refuses paths that climb out with `..`.
fn mount_point(root: &Path, inside: impl AsRef<Path>) -> Result<PathBuf, SetupError> {
    let inside = inside.as_ref();
    if !inside.is_absolute() || inside.components().any(|c| c.as_os_str() == "..") {
        return Err(SetupError::new(
            "mounts",
            format!("{} is not an absolute path without '..'", inside.display()),
        ));
    }
    let target = root.join(inside.strip_prefix("/").unwrap_or(inside));
    mkdir(&target).layer("mounts", format!("create mount point {}", inside.display()))?;
    Ok(target)
}

/// Like [`mount_point`], for a file (or socket) to be bound over an empty file.
fn file_mount_point(root: &Path, inside: &str) -> Result<PathBuf, SetupError> {
    let inside = Path::new(inside);
    let parent = inside.parent().unwrap_or(Path::new("/"));
    let dir = mount_point(root, parent)?;
    let target = dir.join(inside.file_name().unwrap_or_default());
    fs::File::create(&target).layer("mounts", format!("create {}", inside.display()))?;
    Ok(target)
}

fn mkdir(path: &Path) -> std::io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(path)?;
    let _ = fs::set_permissions(path, fs::Permissions::from_mode(0o755));
    Ok(())
}

fn in_user_namespace() -> bool {
    // The initial user namespace maps the whole id range.
    fs::read_to_string("/proc/self/uid_map")
        .map(|map| !map.split_whitespace().eq(["0", "0", "4294967295"]))
        .unwrap_or(false)
}
