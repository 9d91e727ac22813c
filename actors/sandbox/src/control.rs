//! The node's side of the init's control channel once a sandbox is [`Ready`]: the command
//! frame it sends on fd 3, and the events it reads back from fd 4.
//!
//! Shared by the two ways of running a command: a run to completion ([`crate::run`]) and a
//! long-lived process ([`crate::process`]).
//!
//! [`Ready`]: crate::prepare::Ready

use std::time::Instant;

use neuroflow_kit::codec::{self, FrameConfig, FrameReader};
use tokio::io::AsyncWriteExt;
use tokio::net::unix::pipe;

use crate::error::SandboxError;
use crate::init::spec::{CommandSpec, InitEvent};
use crate::run::micros;

/// The init's event pipe.
pub(crate) type Events = FrameReader<pipe::Receiver>;

/// Sends the command a ready sandbox waits for.
pub(crate) async fn send_command(
    control: &mut pipe::Sender,
    command: &CommandSpec,
) -> Result<(), SandboxError> {
    let frame = codec::encode_frame(command, &FrameConfig::default())
        .map_err(|e| SandboxError::layer("init", e))?;
    control.write_all(&frame).await.map_err(SandboxError::io)
}

/// What the init has said about the command so far.
#[derive(Debug, Default)]
pub(crate) struct Watch {
    /// From the request to the command's `exec`, in microseconds.
    pub start_latency_us: u64,
    /// `(exit code, signal)` as PID 1 reaped it.
    pub exited: Option<(Option<i32>, Option<i32>)>,
    /// `(layer, message)` when building the sandbox failed after all.
    pub setup_failed: Option<(String, String)>,
    /// `(layer, message)` when the command could not be started (it then exits 126/127).
    pub exec_failed: Option<(String, String)>,
    pub started: bool,
}

impl Watch {
    /// Takes note of `event`; `requested` is when the caller asked (for the start latency).
    pub fn record(&mut self, event: InitEvent, requested: Instant) {
        match event {
            InitEvent::Started => {
                self.started = true;
                self.start_latency_us = micros(requested.elapsed());
            }
            InitEvent::Ready { .. } => {}
            InitEvent::SetupFailed { layer, message } => {
                self.setup_failed = Some((layer, message));
            }
            InitEvent::ExecFailed { layer, message } => {
                self.exec_failed = Some((layer, message));
            }
            InitEvent::Exited { code, signal } => self.exited = Some((code, signal)),
        }
    }
}

/// Reads events into `watch` until the command's exit report, or until the init closes
/// the pipe (it exited, or was killed, without one).
pub(crate) async fn read_events(events: &mut Events, watch: &mut Watch, requested: Instant) {
    // The init writes a handful of events; `Exited` is the last (PID 1 exits right after).
    while let Ok(Some(event)) = events.read::<InitEvent>().await {
        watch.record(event, requested);
        if watch.exited.is_some() {
            return;
        }
    }
}

/// Reads events until the command has been `exec`ed. A command that cannot start (not
/// found, a bad working directory, a layer failing at the last step) is an error naming
/// the layer, as is an init that goes away first.
pub(crate) async fn until_started(
    events: &mut Events,
    watch: &mut Watch,
    requested: Instant,
) -> Result<(), SandboxError> {
    loop {
        match events.read::<InitEvent>().await {
            Ok(Some(event)) => watch.record(event, requested),
            Ok(None) => {
                return Err(SandboxError::layer(
                    "init",
                    "the sandbox ended before the command started",
                ));
            }
            Err(e) => return Err(SandboxError::layer("init", e)),
        }
        if let Some((layer, message)) = watch
            .setup_failed
            .take()
            .or_else(|| watch.exec_failed.take())
        {
            return Err(SandboxError::Setup { layer, message });
        }
        if watch.started {
            return Ok(());
        }
        if let Some((code, signal)) = watch.exited {
            return Err(SandboxError::layer(
                "init",
                format!("the command ended before it started (code {code:?}, signal {signal:?})"),
            ));
        }
    }
}
