//! Payload types, fixtures and helpers shared by the codec test suites.
// Each suite uses a different part of this module.
#![allow(dead_code, unused_imports)]

pub use std::collections::BTreeMap;
pub use std::future::Future;
pub use std::io;
pub use std::pin::Pin;
pub use std::task::{Context, Poll};
pub use std::time::Duration;

pub use neuroflow_kit::codec::{
    DEFAULT_MAX_FRAME_SIZE, FRAME_VERSION, FrameConfig, FrameError, FrameReader, FrameWriter,
    MAX_NESTING_DEPTH, decode_frame, encode_frame, encode_frame_into,
};
pub use neuroflow_kit::envelope::{ActorPath, Envelope, MessageId, Timestamp};
pub use neuroflow_kit::trace_context::TraceContext;
pub use prometheus::{IntCounterVec, Opts, Registry};
pub use proptest::prelude::*;
pub use serde::{Deserialize, Serialize};
pub use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
pub use uuid::Uuid;

/// A message type exercising what serde/MessagePack must carry: unit, newtype, tuple and
/// struct variants, strings, byte vectors, options, maps and recursion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Payload {
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
        float: f64,
        flag: bool,
    },
    Record {
        tags: Vec<String>,
        counts: BTreeMap<String, u32>,
        parent: Option<Box<Payload>>,
    },
    List(Vec<Payload>),
    Table(BTreeMap<String, Payload>),
    Nested(Box<Payload>),
}

pub type Env = Envelope<Payload>;

pub const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

pub fn cfg() -> FrameConfig {
    FrameConfig::default()
}

pub fn small(max_frame_size: usize) -> FrameConfig {
    FrameConfig { max_frame_size }
}

pub fn sample_payload() -> Payload {
    Payload::Record {
        tags: vec!["alpha".into(), "βeta ✓".into(), String::new()],
        counts: BTreeMap::from([("a".into(), 1), ("zz".into(), u32::MAX)]),
        parent: Some(Box::new(Payload::List(vec![
            Payload::Ping,
            Payload::Text("hello".into()),
            Payload::Pair(u64::MAX, i32::MIN),
            Payload::Blob {
                name: "blob".into(),
                data: (0..=255).collect(),
                note: None,
            },
            Payload::Num {
                int: -42,
                float: 1.5e-300,
                flag: true,
            },
            Payload::Table(BTreeMap::from([
                ("k".into(), Payload::Nested(Box::new(Payload::Ping))),
                ("".into(), Payload::Text("empty key".into())),
            ])),
        ]))),
    }
}

pub fn sample_envelope(n: u8) -> Env {
    Envelope {
        id: MessageId(Uuid::from_bytes([n; 16])),
        trace: Some(Box::new(
            TraceContext::parse(TRACEPARENT, Some("rojo=00f067aa0ba902b7,congo=t61")).unwrap(),
        )),
        sender: Some(ActorPath::root("node").child("agents").child("a1")),
        sent_at: Timestamp(1_700_000_000_000_000_000 + u64::from(n)),
        deadline: Some(Timestamp(u64::MAX)),
        payload: sample_payload(),
    }
}

pub fn minimal_envelope(text: &str) -> Env {
    Envelope {
        id: MessageId(Uuid::nil()),
        trace: None,
        sender: None,
        sent_at: Timestamp(0),
        deadline: None,
        payload: Payload::Text(text.into()),
    }
}

/// A frame with the given length prefix, version byte and body, built by hand.
pub fn raw_frame(len: u32, version: u8, body: &[u8]) -> Vec<u8> {
    let mut frame = len.to_be_bytes().to_vec();
    frame.push(version);
    frame.extend_from_slice(body);
    frame
}

/// A well-formed frame around an arbitrary body.
pub fn frame_around(version: u8, body: &[u8]) -> Vec<u8> {
    raw_frame(u32::try_from(body.len() + 1).unwrap(), version, body)
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
}

/// Runs `f` with a 10 s limit: no codec operation may hang on finite input.
pub async fn bounded<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(10), f)
        .await
        .expect("codec operation hung")
}

/// Reads every result from `bytes` until `Ok(None)`, failing if that takes more than a
/// generous bound of calls (each call that returns something consumes at least 4 bytes).
pub async fn read_all<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    cfg: FrameConfig,
) -> Vec<Result<T, FrameError>> {
    let mut reader = FrameReader::new(bytes, cfg);
    let mut results = Vec::new();
    for _ in 0..bytes.len() / 4 + 4 {
        match reader.read::<T>().await {
            Ok(None) => {
                // Ending is sticky.
                assert!(matches!(reader.read::<T>().await, Ok(None)));
                return results;
            }
            Ok(Some(v)) => results.push(Ok(v)),
            Err(e) => results.push(Err(e)),
        }
    }
    panic!("reader did not reach the end of {} bytes", bytes.len());
}
