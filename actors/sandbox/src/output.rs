//! A command's stdout and stderr, kept up to a cap and optionally streamed as they come.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::{Notify, mpsc};

/// Which of the command's output streams a chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// A piece of output, in the order the sandbox read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputChunk {
    pub stream: Stream,
    pub bytes: Vec<u8>,
}

/// Collects both streams against one shared cap.
pub(crate) struct Output {
    shared: SharedOutput,
}

#[derive(Clone)]
pub(crate) struct SharedOutput {
    inner: Arc<Inner>,
}

struct Inner {
    cap: u64,
    state: Mutex<Kept>,
    over_cap: Notify,
    stream: Option<mpsc::Sender<OutputChunk>>,
}

#[derive(Default)]
struct Kept {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    /// Everything the command wrote, kept or not.
    total: u64,
    truncated: bool,
}

impl Output {
    pub fn new(cap: u64, stream: Option<mpsc::Sender<OutputChunk>>) -> Self {
        Self {
            shared: SharedOutput {
                inner: Arc::new(Inner {
                    cap,
                    state: Mutex::new(Kept::default()),
                    over_cap: Notify::new(),
                    stream,
                }),
            },
        }
    }

    pub fn shared(&self) -> SharedOutput {
        self.shared.clone()
    }

    /// Completes once the command has written more than the cap.
    pub async fn capped(&self) {
        loop {
            let notified = self.shared.inner.over_cap.notified();
            if self.shared.lock().truncated {
                return;
            }
            notified.await;
        }
    }

    /// Whether the command has written more than the cap.
    pub fn truncated(&self) -> bool {
        self.shared.lock().truncated
    }

    /// `(stdout, stderr, truncated, total bytes written)`.
    pub fn finish(self) -> (Vec<u8>, Vec<u8>, bool, u64) {
        let kept = std::mem::take(&mut *self.shared.lock());
        (kept.stdout, kept.stderr, kept.truncated, kept.total)
    }
}

impl SharedOutput {
    fn lock(&self) -> std::sync::MutexGuard<'_, Kept> {
        // Only plain field updates happen under the lock; a poisoned one is still sound.
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps what fits under the cap of `bytes`, forwards it to the stream (waiting for a
    /// slow reader: the channel is bounded), and signals when the cap is passed.
    pub async fn push(&self, stream: Stream, bytes: &[u8]) {
        let kept = {
            let mut state = self.lock();
            state.total = state.total.saturating_add(bytes.len() as u64);
            let used = (state.stdout.len() + state.stderr.len()) as u64;
            let room = self.inner.cap.saturating_sub(used);
            let take = bytes.len().min(usize::try_from(room).unwrap_or(usize::MAX));
            let kept = &bytes[..take];
            match stream {
                Stream::Stdout => state.stdout.extend_from_slice(kept),
                Stream::Stderr => state.stderr.extend_from_slice(kept),
            }
            if take < bytes.len() && !state.truncated {
                state.truncated = true;
                self.inner.over_cap.notify_waiters();
            }
            kept.to_vec()
        };
        if let (Some(tx), false) = (&self.inner.stream, kept.is_empty()) {
            // A receiver that went away only stops the streaming, not the run.
            let _ = tx
                .send(OutputChunk {
                    stream,
                    bytes: kept,
                })
                .await;
        }
    }
}

/// Reads `pipe` to its end into `output`.
pub(crate) async fn pump<R: AsyncRead + Unpin>(
    pipe: Option<R>,
    stream: Stream,
    output: SharedOutput,
) {
    let Some(mut pipe) = pipe else { return };
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => output.push(stream, &buf[..n]).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keeps_up_to_the_cap_across_streams_and_counts_everything() {
        let output = Output::new(10, None);
        let shared = output.shared();
        shared.push(Stream::Stdout, b"123456").await;
        shared.push(Stream::Stderr, b"abcdefgh").await;
        output.capped().await; // returns at once: the cap was passed
        let (out, err, truncated, total) = output.finish();
        assert_eq!(out, b"123456");
        assert_eq!(err, b"abcd");
        assert!(truncated);
        assert_eq!(total, 14);
    }

    #[tokio::test]
    async fn streams_what_it_keeps() {
        let (tx, mut rx) = mpsc::channel(4);
        let output = Output::new(4, Some(tx));
        output.shared().push(Stream::Stdout, b"hello").await;
        let chunk = rx.recv().await.unwrap();
        assert_eq!(chunk.bytes, b"hell");
        assert_eq!(chunk.stream, Stream::Stdout);
    }
}
