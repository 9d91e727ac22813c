//! Fuzzes the frame decoder with `Envelope<FuzzPayload>` frames.
//!
//! For every input:
//! 1. `decode_frame` on the whole input must not panic;
//! 2. a `FrameReader` over the input must reach `Ok(None)` within a bounded number of reads;
//! 3. a second `FrameReader`, fed the same bytes in small chunks by a stream that is
//!    `Pending` every other poll, with each `read` future dropped whenever it is pending
//!    (i.e. cancelled), must produce exactly the same results (checks cancel safety and
//!    independence from how the bytes arrive);
//! 4. every successfully decoded value must re-encode, and decode again to an equal value
//!    whose encoding is the same bytes.
#![no_main]

use std::collections::BTreeMap;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use libfuzzer_sys::fuzz_target;
use neuroflow_kit::codec::{FrameConfig, FrameError, FrameReader, decode_frame, encode_frame};
use neuroflow_kit::envelope::Envelope;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, ReadBuf};

/// A representative message type: every serde shape (unit, newtype, tuple and struct
/// variants; strings, bytes, integers, floats, options, sequences, maps) and recursion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum FuzzPayload {
    Ping,
    Text(String),
    Pair(u64, i32),
    Blob {
        name: String,
        data: Vec<u8>,
        note: Option<String>,
    },
    Num {
        int: i64,
        small: i8,
        float: Float,
        flag: bool,
    },
    Record {
        tags: Vec<String>,
        counts: BTreeMap<String, u32>,
        parent: Option<Box<FuzzPayload>>,
    },
    List(Vec<FuzzPayload>),
    Table(BTreeMap<String, FuzzPayload>),
    Nested(Box<FuzzPayload>),
}

/// `f64` compared bit for bit, so NaN payloads can be checked for a faithful round trip.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(transparent)]
struct Float(f64);

impl PartialEq for Float {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_bits() == other.0.to_bits()
    }
}

type Env = Envelope<FuzzPayload>;

/// Small enough that fuzz inputs (4 KiB by default) reach the oversized path.
const READER_CFG: FrameConfig = FrameConfig {
    max_frame_size: 2048,
};

thread_local! {
    static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("current-thread runtime");
}

/// Outcome of one `read`, comparable across runs.
type Outcome = Result<Env, String>;

fn check_round_trip(value: &Env) {
    let cfg = FrameConfig::default();
    let frame = match encode_frame(value, &cfg) {
        Ok(frame) => frame,
        // A value decoded from a compact form (e.g. bytes given as a MessagePack `bin` where
        // the encoder writes an array) can re-encode one level deeper than the decoder's
        // nesting limit; that is the encoder refusing, correctly, not a round-trip failure.
        Err(FrameError::Encode(msg)) if msg.contains("deeper than") => return,
        Err(e) => panic!("decoded value does not re-encode: {e}\n{value:?}"),
    };
    let again: Env = decode_frame(&frame, &cfg)
        .unwrap_or_else(|e| panic!("re-encoded value does not decode: {e}\n{value:?}"));
    assert_eq!(&again, value, "round trip changed the value");
    let frame_again = encode_frame(&again, &cfg).expect("second encode");
    assert_eq!(frame_again, frame, "encoding is not stable");
}

/// Reads `data` as whole slice until `Ok(None)`.
async fn read_whole(data: &[u8]) -> Vec<Outcome> {
    let mut reader = FrameReader::new(data, READER_CFG);
    let mut outcomes = Vec::new();
    for _ in 0..data.len() / 4 + 4 {
        match reader.read::<Env>().await {
            Ok(None) => return outcomes,
            Ok(Some(value)) => outcomes.push(Ok(value)),
            Err(e) => outcomes.push(Err(e.to_string())),
        }
    }
    panic!("reader did not reach the end of {} bytes", data.len());
}

/// Reads `data` through [`Trickle`], cancelling every read that is pending.
async fn read_trickled(data: &[u8]) -> Vec<Outcome> {
    let mut reader = FrameReader::new(Trickle::new(data), READER_CFG);
    let mut outcomes = Vec::new();
    // Every poll of a read either completes it or moves at least one byte along or
    // hits `Pending`; two polls per byte plus one per outcome is plenty.
    for _ in 0..data.len() * 4 + 16 {
        tokio::select! {
            biased;
            r = reader.read::<Env>() => match r {
                Ok(None) => return outcomes,
                Ok(Some(value)) => outcomes.push(Ok(value)),
                Err(e) => outcomes.push(Err(e.to_string())),
            },
            () = std::future::ready(()) => {}
        }
    }
    panic!(
        "trickled reader did not reach the end of {} bytes",
        data.len()
    );
}

/// Hands out the input in chunks of 1, 2, 3, 5, 8, 13 bytes, `Pending` every other poll.
struct Trickle<'a> {
    data: &'a [u8],
    step: usize,
    ready: bool,
}

impl<'a> Trickle<'a> {
    fn new(data: &'a [u8]) -> Self {
        Self {
            data,
            step: 0,
            ready: false,
        }
    }
}

impl AsyncRead for Trickle<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.ready = !self.ready;
        if !self.ready {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        const CHUNKS: [usize; 6] = [1, 2, 3, 5, 8, 13];
        let chunk = CHUNKS[self.step % CHUNKS.len()]
            .min(buf.remaining())
            .min(self.data.len());
        self.step += 1;
        let data = self.data;
        let (now, later) = data.split_at(chunk);
        buf.put_slice(now);
        self.data = later;
        Poll::Ready(Ok(()))
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(value) = decode_frame::<Env>(data, &FrameConfig::default()) {
        check_round_trip(&value);
    }
    let (whole, trickled) = RUNTIME.with(|rt| {
        (
            rt.block_on(read_whole(data)),
            rt.block_on(read_trickled(data)),
        )
    });
    assert_eq!(whole, trickled, "results depend on how the bytes arrive");
    for value in whole.iter().flatten() {
        check_round_trip(value);
    }
});
