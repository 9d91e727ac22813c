//! Small readers and writers for cgroup control files. Their contents are outside input: every
//! parser here skips what it does not understand instead of panicking.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::CgroupError;

/// Reads a whole control file.
pub(crate) fn read_text(path: &Path) -> Result<String, CgroupError> {
    fs::read_to_string(path).map_err(|e| CgroupError::read(path, e))
}

/// Writes one value to an existing control file. The file is never created: on cgroupfs a
/// missing file means a missing feature, and creating a plain file elsewhere would hide that.
pub(crate) fn write_value(path: &Path, value: &str) -> Result<(), CgroupError> {
    let mut file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| CgroupError::write(path, value, e))?;
    file.write_all(value.as_bytes())
        .map_err(|e| CgroupError::write(path, value, e))
}

/// Creates a directory shared by several sandboxes (the `neuroflow` parent): existing is fine.
pub(crate) fn mkdir_shared(path: &Path) -> Result<(), CgroupError> {
    match fs::create_dir(path) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => Err(CgroupError::Create {
            path: path.to_owned(),
            source: e,
        }),
        _ => Ok(()),
    }
}

/// `root` and the cgroup directories below it, parents before children. Bounded in depth and
/// count: a sandbox may create nested cgroups, but not make this walk unbounded.
pub(crate) fn subtree(root: &Path) -> Vec<PathBuf> {
    const MAX_DEPTH: usize = 16;
    const MAX_DIRS: usize = 4096;
    let mut out = vec![root.to_owned()];
    let mut level = vec![root.to_owned()];
    for _ in 0..MAX_DEPTH {
        let mut next = Vec::new();
        for dir in &level {
            let Ok(entries) = fs::read_dir(dir) else {
                continue;
            };
            for entry in entries.flatten() {
                if entry.file_type().is_ok_and(|t| t.is_dir()) && out.len() + next.len() < MAX_DIRS
                {
                    next.push(entry.path());
                }
            }
        }
        if next.is_empty() {
            break;
        }
        out.extend(next.iter().cloned());
        level = next;
    }
    out
}

/// A file holding one number (`memory.peak`, `cpuacct.usage`, ...); `None` when the file is
/// absent, unreadable or holds anything else (such as `max`).
pub(crate) fn read_u64(path: &Path) -> Option<u64> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The value of `key` in a flat-keyed file (`memory.events`, `cpu.stat`, `pids.events`,
/// `memory.oom_control`): lines of `key value`.
pub(crate) fn read_keyed(path: &Path, key: &str) -> Option<u64> {
    parse_keyed(&fs::read_to_string(path).ok()?, key)
}

/// Pure part of [`read_keyed`].
pub(crate) fn parse_keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let mut parts = line.split_whitespace();
        if parts.next()? != key {
            return None;
        }
        parts.next()?.parse().ok()
    })
}

/// Pids listed in a `cgroup.procs` file. Unparsable lines and pid 0 are dropped, so a caller
/// that signals these pids can never signal its own process group by accident.
pub(crate) fn parse_pids(text: &str) -> Vec<u32> {
    text.lines()
        .filter_map(|l| l.trim().parse::<u32>().ok())
        .filter(|&p| p > 0)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_files_parse_and_tolerate_junk() {
        let events = "low 0\nhigh 0\nmax 7\noom 2\noom_kill 1\n";
        assert_eq!(parse_keyed(events, "max"), Some(7));
        assert_eq!(parse_keyed(events, "oom_kill"), Some(1));
        assert_eq!(parse_keyed(events, "oom_group_kill"), None);
        assert_eq!(parse_keyed("max\nmax x\n\u{0}\n", "max"), None);
        assert_eq!(parse_keyed("", "max"), None);
    }

    #[test]
    fn pid_lists_skip_zero_and_garbage() {
        assert_eq!(parse_pids("12\n0\nabc\n-3\n 40 \n\n"), vec![12, 40]);
    }
}
