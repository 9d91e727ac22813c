//! The sandbox init: the process the node starts for every sandbox.
//!
//! The node forks it with the new namespaces already unshared (see [`crate::spawn`]) and
//! execs the node binary's hidden `sandbox-init` subcommand, which calls [`main`]. Because
//! the PID namespace only applies to children, the init forks once: the child is PID 1 of
//! the sandbox ([`pid1`]) and builds it, the parent stays in the node's PID namespace and
//! relays signals and the exit status ([`relay`]).
//!
//! ```text
//! node ─fork+unshare─▶ init (relay) ─fork─▶ PID 1: mounts, pivot_root ─fork─▶ command
//!   ◀──── spec on fd 3, events on fd 4 (kit frames) ────┘
//! ```

pub(crate) mod bridge;
mod command;
mod mounts;
mod pid1;
mod relay;
pub mod spec;

use std::io::{Read, Write};
use std::os::fd::FromRawFd;

use neuroflow_kit::codec::{self, FrameConfig};

use spec::{EVENT_FD, InitEvent, InitSpec, SPEC_FD};

/// Largest spec the init accepts (a spec is a few KiB; the seccomp program is most of it).
const MAX_SPEC_BYTES: usize = 1 << 20;

/// Entry point of the `sandbox-init` subcommand; returns the process exit status.
///
/// Only meaningful in a process started by the sandbox spawner: it expects its spec on
/// fd 3 and writes events to fd 4.
pub fn main() -> i32 {
    // Nothing the node had open may reach the sandbox: close everything but stdio and the
    // two control pipes before doing anything else.
    // SAFETY: close_range only closes descriptors; none of them is owned by Rust code here.
    unsafe { libc::syscall(libc::SYS_close_range, EVENT_FD + 1, u32::MAX, 0) };
    let spec = match read_spec() {
        Ok(spec) => spec,
        Err(message) => {
            report(&InitEvent::SetupFailed {
                layer: "init".into(),
                message,
            });
            return 125;
        }
    };
    relay::run(spec)
}

fn read_spec() -> Result<InitSpec, String> {
    read_control()?.ok_or_else(|| "the node closed the control pipe".to_string())
}

/// Reads the next frame from the control pipe (fd 3); `None` when the node closed it.
/// Frames are read with plain blocking reads: the init is single-threaded and has
/// nothing else to do while it waits.
pub(crate) fn read_control<T: serde::de::DeserializeOwned>() -> Result<Option<T>, String> {
    // SAFETY: fd 3 stays open for the init's whole life; ManuallyDrop keeps it open.
    let file = std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(SPEC_FD) });
    let mut header = [0u8; codec::FRAME_HEADER_LEN];
    match (&*file).read_exact(&mut header) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(format!("cannot read the control pipe: {e}")),
    }
    let len = u32::from_be_bytes(header) as usize;
    if len > MAX_SPEC_BYTES {
        return Err(format!(
            "control frame of {len} bytes exceeds {MAX_SPEC_BYTES}"
        ));
    }
    let mut frame = header.to_vec();
    frame.resize(codec::FRAME_HEADER_LEN + len, 0);
    (&*file)
        .read_exact(&mut frame[codec::FRAME_HEADER_LEN..])
        .map_err(|e| format!("cannot read the control pipe: {e}"))?;
    let cfg = FrameConfig {
        max_frame_size: MAX_SPEC_BYTES,
    };
    codec::decode_frame(&frame, &cfg)
        .map(Some)
        .map_err(|e| format!("bad control frame: {e}"))
}

/// Sends one event to the node. A node that has gone away cannot be told anything, so a
/// failed write is dropped: the sandbox dies with the node's cgroup teardown anyway.
pub(crate) fn report(event: &InitEvent) {
    let Ok(frame) = codec::encode_frame(event, &FrameConfig::default()) else {
        return;
    };
    // SAFETY: fd 4 stays open for the life of the init; ManuallyDrop keeps it open here.
    let file = std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(EVENT_FD) });
    let _ = (&*file).write_all(&frame);
}

/// Points stdin, stdout and stderr at /dev/null and closes `fds`.
///
/// The node reads the command's output until every holder of the pipes has closed them;
/// the init processes hand their copies back as soon as the command has them, so that
/// the node sees the end of the output when the command ends, not when the init does.
pub(crate) fn let_go_of(fds: &[i32]) {
    // SAFETY: plain open/dup2/close on descriptors this process owns; nothing in Rust
    // holds them.
    unsafe {
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC);
        if null >= 0 {
            for fd in 0..3 {
                libc::dup2(null, fd);
            }
            libc::close(null);
        }
        for &fd in fds {
            libc::close(fd);
        }
    }
}

/// A sandbox layer that could not be set up, named for the node's error.
#[derive(Debug)]
pub(crate) struct SetupError {
    pub layer: &'static str,
    pub message: String,
}

impl SetupError {
    pub fn new(layer: &'static str, what: impl std::fmt::Display) -> Self {
        Self {
            layer,
            message: what.to_string(),
        }
    }
}

/// `result.layer("overlay", "mount /usr")?` turns an OS error into a [`SetupError`].
pub(crate) trait LayerContext<T> {
    fn layer(self, layer: &'static str, doing: impl std::fmt::Display) -> Result<T, SetupError>;
}

impl<T, E: std::fmt::Display> LayerContext<T> for Result<T, E> {
    fn layer(self, layer: &'static str, doing: impl std::fmt::Display) -> Result<T, SetupError> {
        self.map_err(|e| SetupError::new(layer, format!("{doing}: {e}")))
    }
}
