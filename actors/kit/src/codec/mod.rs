//! Wire codec: length-prefixed, versioned MessagePack frames.
//!
//! Every value that crosses a process boundary (peer links, the sandbox control pipe,
//! journals, replay) travels as one *frame*:
//!
//! ```text
//! +----------------+---------+------------------------------+
//! | N: u32, BE     | version | MessagePack body             |
//! | 4 bytes        | 1 byte  | N - 1 bytes                  |
//! +----------------+---------+------------------------------+
//! ```
//!
//! * `N` counts the version byte and the body, not the 4 header bytes. `N = 0` is invalid
//!   ([`FrameError::Empty`]); `N` above [`FrameConfig::max_frame_size`] is refused
//!   ([`FrameError::Oversized`]) on both the write and the read side.
//! * The version byte is [`FRAME_VERSION`]; any other value is [`FrameError::UnknownVersion`].
//! * The body is exactly one MessagePack value written by `rmp_serde` with structs encoded as
//!   *maps keyed by field name* ([`rmp_serde::encode::write_named`]), so a field can be added
//!   to a message type compatibly: an old reader ignores an unknown key and a new reader
//!   fills an absent `Option` field (or one marked `#[serde(default)]`). Bytes after that one
//!   value, or containers nested deeper than [`MAX_NESTING_DEPTH`], make the body undecodable.
//!
//! Decoding never panics, whatever the input. A frame's bytes are buffered only as they
//! arrive and never beyond the frame size limit, so a length prefix that lies costs no memory.
//! The nesting limit is checked on the raw bytes before any `Deserialize` code runs, so a
//! hostile frame cannot overflow the stack through a recursive message type.
//!
//! Use [`encode_frame`] / [`decode_frame`] for frames held in memory and [`FrameWriter`] /
//! [`FrameReader`] for byte streams.
//!
//! # Example
//!
//! ```
//! use neuroflow_kit::codec::{FrameConfig, FrameReader, FrameWriter, decode_frame, encode_frame};
//! use neuroflow_kit::envelope::Envelope;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let cfg = FrameConfig::default();
//! let envelope = Envelope::new(String::from("ping"));
//!
//! // In memory.
//! let frame = encode_frame(&envelope, &cfg)?;
//! let back: Envelope<String> = decode_frame(&frame, &cfg)?;
//! assert_eq!(back, envelope);
//!
//! // Over a byte stream.
//! let rt = tokio::runtime::Builder::new_current_thread().build()?;
//! rt.block_on(async {
//!     let (client, server) = tokio::io::duplex(64 * 1024);
//!     let mut writer = FrameWriter::new(client, cfg);
//!     writer.write(&envelope).await?;
//!     writer.flush().await?;
//!     drop(writer); // closes the stream: the reader then sees a clean end
//!
//!     let mut reader = FrameReader::new(server, cfg);
//!     let received: Option<Envelope<String>> = reader.read().await?;
//!     assert_eq!(received.as_ref(), Some(&envelope));
//!     assert!(reader.read::<Envelope<String>>().await?.is_none());
//!     Ok::<_, neuroflow_kit::codec::FrameError>(())
//! })?;
//! # Ok(())
//! # }
//! ```

use std::io;

use prometheus::IntCounterVec;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

mod nesting;
use nesting::check_body;

/// The frame format version this codec writes and accepts.
pub const FRAME_VERSION: u8 = 1;

/// Size of the length prefix in front of every frame.
pub const FRAME_HEADER_LEN: usize = 4;

/// Default for [`FrameConfig::max_frame_size`]: 16 MiB.
pub const DEFAULT_MAX_FRAME_SIZE: usize = 16 * 1024 * 1024;

/// Deepest nesting of MessagePack arrays and maps accepted in a body, on both the write and
/// the read side. Every struct, map, sequence and data-carrying enum variant is one level.
pub const MAX_NESTING_DEPTH: usize = 128;

/// Longest [`FrameError::Decode`] / [`FrameError::Encode`] message kept, in bytes: serde error
/// messages can quote input (an unknown field name, say), which a peer controls.
const MAX_ERROR_MESSAGE_LEN: usize = 512;

/// First allocation for a frame body; the read buffer then doubles, up to the frame's length,
/// only as bytes actually arrive (a header that lies about its length costs no memory).
const INITIAL_READ_CHUNK: usize = 64 * 1024;

/// Largest read used to skip an oversized frame when the read buffer is still smaller.
const DISCARD_CHUNK: usize = 8 * 1024;

/// Limits of the codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameConfig {
    /// Largest accepted `N` (version byte + body), in bytes. Values above `u32::MAX` act as
    /// `u32::MAX`, the largest length the header can express.
    pub max_frame_size: usize,
}

impl Default for FrameConfig {
    fn default() -> Self {
        Self {
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
        }
    }
}

impl FrameConfig {
    fn max(&self) -> usize {
        self.max_frame_size
            .min(usize::try_from(u32::MAX).unwrap_or(usize::MAX))
    }
}

/// Why a frame could not be encoded, read or decoded.
///
/// After any error but [`Io`](FrameError::Io) and [`Truncated`](FrameError::Truncated) a
/// [`FrameReader`] is positioned at the start of the next frame (or, for `Oversized`, will
/// skip the rest of the refused frame first), so reading can simply go on.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The input ended inside a frame. `expected` is the frame's full size including the
    /// 4-byte header (just the header size when the header itself was cut), `received` how
    /// many of those bytes there were.
    #[error("truncated frame: expected {expected} bytes, input ended after {received}")]
    Truncated { expected: usize, received: usize },
    /// The frame length `len` (version byte + body) exceeds the configured maximum.
    #[error("frame of {len} bytes exceeds the maximum frame size of {max} bytes")]
    Oversized { len: usize, max: usize },
    /// The length prefix is 0: a frame needs at least its version byte.
    #[error("empty frame: length prefix is 0, but a frame holds at least a version byte")]
    Empty,
    /// The version byte is not [`FRAME_VERSION`].
    #[error("unknown frame version {0} (this codec reads version {FRAME_VERSION})")]
    UnknownVersion(u8),
    /// The body is not valid MessagePack for the expected type.
    #[error("cannot decode frame body: {0}")]
    Decode(String),
    /// The value could not be serialized.
    #[error("cannot encode frame body: {0}")]
    Encode(String),
    /// [`decode_frame`] was given this many bytes after the end of the frame.
    #[error("{0} trailing bytes after the end of the frame")]
    TrailingBytes(usize),
    /// Reading from or writing to the underlying stream failed.
    #[error("frame i/o error: {0}")]
    Io(#[from] io::Error),
}

impl FrameError {
    /// A stable, low-cardinality label for metrics and logs: `"truncated"`, `"oversized"`,
    /// `"empty"`, `"unknown_version"`, `"decode"`, `"encode"`, `"trailing_bytes"` or `"io"`.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Truncated { .. } => "truncated",
            Self::Oversized { .. } => "oversized",
            Self::Empty => "empty",
            Self::UnknownVersion(_) => "unknown_version",
            Self::Decode(_) => "decode",
            Self::Encode(_) => "encode",
            Self::TrailingBytes(_) => "trailing_bytes",
            Self::Io(_) => "io",
        }
    }

    fn decode(message: impl ToString) -> Self {
        Self::Decode(bounded_message(message.to_string()))
    }

    fn encode(message: impl ToString) -> Self {
        Self::Encode(bounded_message(message.to_string()))
    }
}

/// Encodes `value` as one complete frame.
///
/// Fails with [`FrameError::Oversized`] when the frame would exceed
/// `cfg.max_frame_size`, and with [`FrameError::Encode`] when serialization fails or the value
/// nests deeper than [`MAX_NESTING_DEPTH`].
pub fn encode_frame<T: Serialize + ?Sized>(
    value: &T,
    cfg: &FrameConfig,
) -> Result<Vec<u8>, FrameError> {
    let mut buf = Vec::new();
    encode_frame_into(&mut buf, value, cfg)?;
    Ok(buf)
}

/// Appends one complete frame holding `value` to `buf`.
///
/// The body is serialized straight into `buf` behind a reserved header whose length is
/// patched in afterwards, so nothing is copied; reuse one buffer (after `clear`) to avoid
/// allocating per frame. Serialized bytes beyond the frame size limit are counted, not stored,
/// so an oversized value never makes `buf` grow past the limit. On error `buf` is restored to
/// its previous length. Errors are those of [`encode_frame`].
pub fn encode_frame_into<T: Serialize + ?Sized>(
    buf: &mut Vec<u8>,
    value: &T,
    cfg: &FrameConfig,
) -> Result<(), FrameError> {
    let start = buf.len();
    let max = cfg.max();
    buf.extend_from_slice(&[0, 0, 0, 0, FRAME_VERSION]);
    let body_start = buf.len();
    let mut out = BoundedWriter {
        buf,
        // Room for the version byte already written plus the body, up to `max` in all.
        room: max.saturating_sub(1),
        overflow: 0,
    };
    let encoded = rmp_serde::encode::write_named(&mut out, value);
    let overflow = out.overflow;
    let result = match encoded {
        Err(e) => Err(FrameError::encode(e)),
        Ok(()) if overflow > 0 => Err(FrameError::Oversized {
            len: buf
                .len()
                .saturating_sub(start + FRAME_HEADER_LEN)
                .saturating_add(overflow),
            max,
        }),
        Ok(()) => buf
            .get(body_start..)
            .map_or(Ok(()), check_body)
            .map_err(FrameError::encode)
            .and_then(|()| {
                let len = buf.len().saturating_sub(start + FRAME_HEADER_LEN);
                let len = u32::try_from(len).map_err(|_| FrameError::Oversized { len, max })?;
                if let Some(header) = buf.get_mut(start..start + FRAME_HEADER_LEN) {
                    header.copy_from_slice(&len.to_be_bytes());
                }
                Ok(())
            }),
    };
    if result.is_err() {
        buf.truncate(start);
    }
    result
}

/// Decodes the single complete frame `frame` (header included).
///
/// Beyond the errors of [`FrameReader::read`], `frame` must hold exactly one frame:
/// fewer bytes than its header announces is [`FrameError::Truncated`], more is
/// [`FrameError::TrailingBytes`].
pub fn decode_frame<T: DeserializeOwned>(frame: &[u8], cfg: &FrameConfig) -> Result<T, FrameError> {
    let Some((header, rest)) = frame.split_first_chunk::<FRAME_HEADER_LEN>() else {
        return Err(FrameError::Truncated {
            expected: FRAME_HEADER_LEN,
            received: frame.len(),
        });
    };
    let len = frame_len(*header, cfg)?;
    if rest.len() < len {
        return Err(FrameError::Truncated {
            expected: len.saturating_add(FRAME_HEADER_LEN),
            received: frame.len(),
        });
    }
    let (body, trailing) = rest.split_at(len);
    if !trailing.is_empty() {
        return Err(FrameError::TrailingBytes(trailing.len()));
    }
    decode_body(body)
}

/// Reads frames from a byte stream and decodes them.
///
/// The reader never reads ahead: it reads the 4 header bytes, then exactly the frame's bytes,
/// so after a complete frame the stream is positioned at the next one. That means at least two
/// reads per frame; over a socket or pipe wrap the stream in a [`tokio::io::BufReader`].
///
/// One buffer is reused for all frames; it grows only as a frame's bytes actually arrive and
/// never beyond [`FrameConfig::max_frame_size`].
///
/// # Cancel safety
///
/// [`read`](Self::read) is cancel-safe: all progress through a frame is kept in the reader,
/// so if the future is dropped (e.g. it lost a `tokio::select!` race) no bytes are lost and
/// the next call continues the same frame.
#[derive(Debug)]
pub struct FrameReader<R> {
    inner: R,
    cfg: FrameConfig,
    buf: Vec<u8>,
    header: [u8; FRAME_HEADER_LEN],
    state: ReadState,
    errors: Option<IntCounterVec>,
}

#[derive(Debug, Clone, Copy)]
enum ReadState {
    /// Reading the length prefix; `header[..filled]` holds what arrived.
    Header { filled: usize },
    /// Reading a `len`-byte frame into `buf`.
    Body { len: usize },
    /// Skipping an oversized `len`-byte frame, `remaining` bytes still to go.
    Discard { len: usize, remaining: usize },
    /// The stream ended inside a frame; only `Ok(None)` from now on.
    Done,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub fn new(inner: R, cfg: FrameConfig) -> Self {
        Self {
            inner,
            cfg,
            buf: Vec::new(),
            header: [0; FRAME_HEADER_LEN],
            state: ReadState::Header { filled: 0 },
            errors: None,
        }
    }

    /// Counts every error [`read`](Self::read) returns in `counter`, under the single label
    /// value [`FrameError::reason`]. The vector must have exactly one label, named `reason`
    /// (as in `neuroflow_frame_errors_total{reason}`); with any other label set nothing is
    /// counted.
    pub fn with_error_counter(mut self, counter: IntCounterVec) -> Self {
        self.errors = Some(counter);
        self
    }

    /// Reads and decodes the next frame.
    ///
    /// * `Ok(Some(value))`: a frame was decoded.
    /// * `Ok(None)`: the stream ended cleanly at a frame boundary (or earlier, inside a frame,
    ///   which was reported as [`FrameError::Truncated`]).
    /// * [`FrameError::Truncated`]: the stream ended inside a frame; later calls return
    ///   `Ok(None)`.
    /// * [`FrameError::Oversized`]: reported as soon as the header is read. The refused frame
    ///   is then skipped by the next call as its bytes arrive, through a small scratch area, so
    ///   the reader stays in step with the stream; if the stream ends first, that call returns
    ///   `Truncated`.
    /// * [`FrameError::Empty`], [`FrameError::UnknownVersion`], [`FrameError::Decode`]: the
    ///   bad frame has been consumed; the next call reads the following frame.
    /// * [`FrameError::Io`]: from the underlying stream; progress is kept, so a retry resumes
    ///   where the failed read stopped.
    ///
    /// Cancel-safe (see the type's documentation).
    pub async fn read<T: DeserializeOwned>(&mut self) -> Result<Option<T>, FrameError> {
        let result = self.read_frame().await.and_then(|frame| match frame {
            Some(body) => decode_body(body).map(Some),
            None => Ok(None),
        });
        if let (Err(e), Some(counter)) = (&result, &self.errors)
            && let Ok(c) = counter.get_metric_with_label_values(&[e.reason()])
        {
            c.inc();
        }
        result
    }

    /// Advances through the stream until a whole frame (version byte + body) is buffered and
    /// returns it, or `None` at a clean end of stream. Every await is a single cancel-safe
    /// read whose progress is recorded in `self` before the next one.
    async fn read_frame(&mut self) -> Result<Option<&[u8]>, FrameError> {
        loop {
            match self.state {
                ReadState::Done => return Ok(None),
                ReadState::Header { filled } => {
                    let Some(dst) = self.header.get_mut(filled..).filter(|d| !d.is_empty()) else {
                        // Unreachable: `filled` stays below the header size.
                        self.state = ReadState::Header { filled: 0 };
                        continue;
                    };
                    let n = self.inner.read(dst).await?;
                    if n == 0 {
                        if filled == 0 {
                            return Ok(None);
                        }
                        self.state = ReadState::Done;
                        return Err(FrameError::Truncated {
                            expected: FRAME_HEADER_LEN,
                            received: filled,
                        });
                    }
                    let filled = filled.saturating_add(n);
                    if filled < FRAME_HEADER_LEN {
                        self.state = ReadState::Header { filled };
                        continue;
                    }
                    match frame_len(self.header, &self.cfg) {
                        Ok(len) => {
                            self.buf.clear();
                            self.state = ReadState::Body { len };
                        }
                        Err(e) => {
                            self.state = match e {
                                FrameError::Oversized { len, .. } => ReadState::Discard {
                                    len,
                                    remaining: len,
                                },
                                _ => ReadState::Header { filled: 0 },
                            };
                            return Err(e);
                        }
                    }
                }
                ReadState::Body { len } => {
                    let have = self.buf.len();
                    let want = len.saturating_sub(have);
                    if want == 0 {
                        self.state = ReadState::Header { filled: 0 };
                        return Ok(Some(&self.buf));
                    }
                    if self.buf.capacity() == have {
                        let target = have.saturating_mul(2).max(INITIAL_READ_CHUNK).min(len);
                        self.buf.reserve_exact(target.saturating_sub(have));
                    }
                    let n = (&mut self.inner)
                        .take(u64::try_from(want).unwrap_or(u64::MAX))
                        .read_buf(&mut self.buf)
                        .await?;
                    if n == 0 {
                        self.state = ReadState::Done;
                        return Err(FrameError::Truncated {
                            expected: len.saturating_add(FRAME_HEADER_LEN),
                            received: have.saturating_add(FRAME_HEADER_LEN),
                        });
                    }
                }
                ReadState::Discard { len, remaining } => {
                    if remaining == 0 {
                        self.state = ReadState::Header { filled: 0 };
                        continue;
                    }
                    // Skip through the read buffer's existing allocation (bounded by the frame
                    // size limit), topped up to a small chunk if it has none yet.
                    self.buf.clear();
                    if self.buf.capacity() == 0 {
                        self.buf
                            .reserve_exact(DISCARD_CHUNK.min(self.cfg.max()).max(1));
                    }
                    let chunk = remaining.min(self.buf.capacity());
                    let n = (&mut self.inner)
                        .take(u64::try_from(chunk).unwrap_or(u64::MAX))
                        .read_buf(&mut self.buf)
                        .await?;
                    self.buf.clear();
                    if n == 0 {
                        self.state = ReadState::Done;
                        return Err(FrameError::Truncated {
                            expected: len.saturating_add(FRAME_HEADER_LEN),
                            received: (len - remaining).saturating_add(FRAME_HEADER_LEN),
                        });
                    }
                    self.state = ReadState::Discard {
                        len,
                        remaining: remaining.saturating_sub(n),
                    };
                }
            }
        }
    }

    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    /// The underlying stream. Bytes of a partly read frame are lost.
    pub fn into_inner(self) -> R {
        self.inner
    }
}

/// Encodes values as frames onto a byte stream.
///
/// Each [`write`](Self::write) encodes into one reused buffer and hands the whole frame to the
/// stream in a single `write` call, looping like `write_all` only if the stream takes less.
/// Frames are not flushed: call [`flush`](Self::flush) when the stream buffers.
///
/// # Cancel safety
///
/// The stream never carries a torn frame: if a `write` future is dropped after part of its
/// frame went out, the next `write` or `flush` first completes that frame. A dropped `write`
/// may therefore still deliver its frame, whole, with that next call.
#[derive(Debug)]
pub struct FrameWriter<W> {
    inner: W,
    cfg: FrameConfig,
    buf: Vec<u8>,
    /// Bytes of `buf` already handed to `inner`.
    written: usize,
}

impl<W: AsyncWrite + Unpin> FrameWriter<W> {
    pub fn new(inner: W, cfg: FrameConfig) -> Self {
        Self {
            inner,
            cfg,
            buf: Vec::new(),
            written: 0,
        }
    }

    /// Encodes `value` as one frame and writes it. Errors are those of [`encode_frame`]
    /// (nothing is written then) and [`FrameError::Io`].
    pub async fn write<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), FrameError> {
        self.finish_pending().await?;
        self.buf.clear();
        self.written = 0;
        encode_frame_into(&mut self.buf, value, &self.cfg)?;
        self.finish_pending().await?;
        Ok(())
    }

    /// Flushes the underlying stream.
    pub async fn flush(&mut self) -> Result<(), FrameError> {
        self.finish_pending().await?;
        self.inner.flush().await?;
        Ok(())
    }

    /// Writes out what is left of the current frame; cancel-safe, progress is kept in
    /// `self.written`.
    async fn finish_pending(&mut self) -> io::Result<()> {
        while let Some(rest) = self.buf.get(self.written..).filter(|r| !r.is_empty()) {
            let n = self.inner.write(rest).await?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            self.written = self.written.saturating_add(n);
        }
        Ok(())
    }

    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    /// The underlying stream. The rest of a frame whose `write` was cancelled midway is lost.
    pub fn into_inner(self) -> W {
        self.inner
    }
}

/// The frame length announced by `header`, checked against the limits.
fn frame_len(header: [u8; FRAME_HEADER_LEN], cfg: &FrameConfig) -> Result<usize, FrameError> {
    let len = usize::try_from(u32::from_be_bytes(header)).unwrap_or(usize::MAX);
    let max = cfg.max();
    if len == 0 {
        Err(FrameError::Empty)
    } else if len > max {
        Err(FrameError::Oversized { len, max })
    } else {
        Ok(len)
    }
}

/// Decodes a frame without its header: the version byte and the MessagePack body.
fn decode_body<T: DeserializeOwned>(frame: &[u8]) -> Result<T, FrameError> {
    let Some((&version, body)) = frame.split_first() else {
        return Err(FrameError::Empty);
    };
    if version != FRAME_VERSION {
        return Err(FrameError::UnknownVersion(version));
    }
    check_body(body).map_err(FrameError::decode)?;
    rmp_serde::from_slice(body).map_err(FrameError::decode)
}

/// Cuts `message` to [`MAX_ERROR_MESSAGE_LEN`] bytes at a character boundary.
fn bounded_message(mut message: String) -> String {
    if message.len() > MAX_ERROR_MESSAGE_LEN {
        let mut end = MAX_ERROR_MESSAGE_LEN;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message.push_str("...");
    }
    message
}

/// `io::Write` into a frame buffer that stores at most `room` more bytes and counts the
/// rest in `overflow`, so an oversized value is measured without being buffered.
struct BoundedWriter<'a> {
    buf: &'a mut Vec<u8>,
    room: usize,
    overflow: usize,
}

impl io::Write for BoundedWriter<'_> {
    #[inline]
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if data.len() <= self.room {
            // The common case: everything fits.
            self.buf.extend_from_slice(data);
            self.room -= data.len();
        } else {
            let keep = self.room;
            if let Some(kept) = data.get(..keep) {
                self.buf.extend_from_slice(kept);
            }
            self.room = 0;
            self.overflow = self.overflow.saturating_add(data.len() - keep);
        }
        Ok(data.len())
    }

    #[inline]
    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        self.write(data).map(drop)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
