//! The file operations behind the tools; blocking, run on tokio's blocking pool.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::dir::{Dir, Type};
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{FileStat, Mode, SFlag, fstat, fstatat};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{FsConfig, FsError, beneath};
use crate::builtin::text::capped_text;

#[derive(Deserialize)]
pub(super) struct ReadArgs {
    path: String,
    #[serde(default)]
    offset: u64,
    max_bytes: Option<usize>,
}

#[derive(Deserialize)]
pub(super) struct WriteArgs {
    path: String,
    content: String,
    #[serde(default)]
    append: bool,
    #[serde(default)]
    create_dirs: bool,
}

#[derive(Deserialize)]
pub(super) struct ListArgs {
    #[serde(default)]
    path: String,
    max_entries: Option<usize>,
}

fn is_regular(stat: &FileStat) -> bool {
    SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT == SFlag::S_IFREG
}

/// O_NONBLOCK: opening a FIFO planted in the workspace must not hang the call (it is
/// refused as not a regular file right after).
const NO_SURPRISES: OFlag = OFlag::O_NONBLOCK.union(OFlag::O_NOCTTY);

pub(super) fn read(config: &FsConfig, ws: &OwnedFd, args: ReadArgs) -> Result<Value, FsError> {
    let rel = beneath::relative(&args.path)?;
    let flags = OFlag::O_RDONLY | NO_SURPRISES;
    let fd = beneath::open(ws.as_fd(), &rel, flags, Mode::empty())
        .map_err(|e| FsError::os(&args.path, e))?;
    let stat = fstat(&fd).map_err(|e| FsError::os(&args.path, e))?;
    if !is_regular(&stat) {
        return Err(FsError::NotAFile(args.path));
    }
    let size = u64::try_from(stat.st_size).unwrap_or(0);
    let cap = args
        .max_bytes
        .unwrap_or(config.max_read_bytes)
        .min(config.max_read_bytes);
    let mut file = File::from(fd);
    let io = |e: std::io::Error| FsError::Workspace(format!("{}: {e}", args.path));
    file.seek(SeekFrom::Start(args.offset)).map_err(io)?;
    // One byte past the cap tells whether there is more, without trusting `size` (the
    // file may be growing).
    let mut bytes = Vec::with_capacity(cap.min(usize::try_from(size).unwrap_or(cap)) + 1);
    let want = u64::try_from(cap).unwrap_or(u64::MAX).saturating_add(1);
    file.take(want).read_to_end(&mut bytes).map_err(io)?;
    let (content, truncated) = capped_text(&bytes, cap);
    Ok(json!({
        "path": args.path,
        "size": size,
        "offset": args.offset,
        "truncated": truncated,
        "content": content,
    }))
}

pub(super) fn write(config: &FsConfig, ws: &OwnedFd, args: WriteArgs) -> Result<Value, FsError> {
    let len = args.content.len();
    if len > config.max_write_bytes {
        return Err(FsError::TooLarge {
            what: "the content".into(),
            size: len as u64,
            limit: config.max_write_bytes as u64,
        });
    }
    let rel = beneath::relative(&args.path)?;
    let (Some(parent), Some(name)) = (rel.parent(), rel.file_name()) else {
        return Err(FsError::InvalidPath(format!(
            "{:?} names no file",
            args.path
        )));
    };
    let dir = if args.create_dirs {
        beneath::create_dirs(ws.as_fd(), parent)
    } else {
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY;
        let parent = if parent.as_os_str().is_empty() {
            Path::new(".")
        } else {
            parent
        };
        beneath::open(ws.as_fd(), parent, flags, Mode::empty())
    }
    .map_err(|e| FsError::os(&args.path, e))?;
    let flags = OFlag::O_WRONLY | OFlag::O_CREAT | NO_SURPRISES;
    let fd = beneath::open(
        dir.as_fd(),
        Path::new(name),
        flags,
        Mode::from_bits_truncate(0o644),
    )
    .map_err(|e| FsError::os(&args.path, e))?;
    let stat = fstat(&fd).map_err(|e| FsError::os(&args.path, e))?;
    if !is_regular(&stat) {
        return Err(FsError::NotAFile(args.path));
    }
    let old = u64::try_from(stat.st_size).unwrap_or(0);
    let size = if args.append { old } else { 0 } + len as u64;
    if size > config.max_file_bytes {
        return Err(FsError::TooLarge {
            what: format!("{} after the write", args.path),
            size,
            limit: config.max_file_bytes,
        });
    }
    let mut file = File::from(fd);
    let io = |e: std::io::Error| FsError::Workspace(format!("{}: {e}", args.path));
    if args.append {
        file.seek(SeekFrom::End(0)).map_err(io)?;
    } else {
        file.set_len(0).map_err(io)?;
    }
    file.write_all(args.content.as_bytes()).map_err(io)?;
    Ok(json!({"path": args.path, "bytes_written": len, "size": size}))
}

pub(super) fn list(config: &FsConfig, ws: &OwnedFd, args: ListArgs) -> Result<Value, FsError> {
    let rel = beneath::relative(&args.path)?;
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY;
    let fd = beneath::open(ws.as_fd(), &rel, flags, Mode::empty())
        .map_err(|e| FsError::os(&args.path, e))?;
    let max = args
        .max_entries
        .unwrap_or(config.max_list_entries)
        .min(config.max_list_entries);
    let mut dir = Dir::from_fd(fd).map_err(|e| FsError::os(&args.path, e))?;
    let mut found = Vec::new();
    let mut truncated = false;
    for entry in dir.iter() {
        let entry = entry.map_err(|e| FsError::os(&args.path, e))?;
        let name = entry.file_name().to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        if found.len() == max {
            truncated = true;
            break;
        }
        found.push((entry.file_name().to_owned(), entry.file_type()));
    }
    let mut entries: Vec<Value> = found
        .into_iter()
        .map(|(name, kind)| {
            // Never follows a symlink: a link is listed as a link, whatever it points at.
            let stat = fstatat(dir.as_fd(), name.as_c_str(), AtFlags::AT_SYMLINK_NOFOLLOW).ok();
            let kind = kind
                .or_else(|| stat.as_ref().map(type_of))
                .map_or("other", label);
            let mut entry = json!({"name": name.to_string_lossy(), "type": kind});
            if kind == "file"
                && let Some(stat) = stat
            {
                entry["size"] = json!(stat.st_size);
            }
            entry
        })
        .collect();
    entries.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    Ok(json!({"path": args.path, "entries": entries, "truncated": truncated}))
}

fn type_of(stat: &FileStat) -> Type {
    match SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT {
        SFlag::S_IFREG => Type::File,
        SFlag::S_IFDIR => Type::Directory,
        SFlag::S_IFLNK => Type::Symlink,
        _ => Type::Fifo,
    }
}

fn label(kind: Type) -> &'static str {
    match kind {
        Type::File => "file",
        Type::Directory => "dir",
        Type::Symlink => "symlink",
        _ => "other",
    }
}
