//! Integration tests of the wire codec: round trips, every error kind, recovery after bad
//! frames, truncation at every offset, metrics, cancel safety, and property tests.

use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use neuroflow_kit::codec::{
    DEFAULT_MAX_FRAME_SIZE, FRAME_VERSION, FrameConfig, FrameError, FrameReader, FrameWriter,
    MAX_NESTING_DEPTH, decode_frame, encode_frame, encode_frame_into,
};
use neuroflow_kit::envelope::{ActorPath, Envelope, MessageId, Timestamp};
use neuroflow_kit::trace_context::TraceContext;
use prometheus::{IntCounterVec, Opts, Registry};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use uuid::Uuid;

/// A message type exercising what serde/MessagePack must carry: unit, newtype, tuple and
/// struct variants, strings, byte vectors, options, maps and recursion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Payload {
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

type Env = Envelope<Payload>;

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn cfg() -> FrameConfig {
    FrameConfig::default()
}

fn small(max_frame_size: usize) -> FrameConfig {
    FrameConfig { max_frame_size }
}

fn sample_payload() -> Payload {
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

fn sample_envelope(n: u8) -> Env {
    Envelope {
        id: MessageId(Uuid::from_bytes([n; 16])),
        trace: Some(
            TraceContext::parse(TRACEPARENT, Some("rojo=00f067aa0ba902b7,congo=t61")).unwrap(),
        ),
        sender: Some(ActorPath::root("node").child("agents").child("a1")),
        sent_at: Timestamp(1_700_000_000_000_000_000 + u64::from(n)),
        deadline: Some(Timestamp(u64::MAX)),
        payload: sample_payload(),
    }
}

fn minimal_envelope(text: &str) -> Env {
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
fn raw_frame(len: u32, version: u8, body: &[u8]) -> Vec<u8> {
    let mut frame = len.to_be_bytes().to_vec();
    frame.push(version);
    frame.extend_from_slice(body);
    frame
}

/// A well-formed frame around an arbitrary body.
fn frame_around(version: u8, body: &[u8]) -> Vec<u8> {
    raw_frame(u32::try_from(body.len() + 1).unwrap(), version, body)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
}

/// Runs `f` with a 10 s limit: no codec operation may hang on finite input.
async fn bounded<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(10), f)
        .await
        .expect("codec operation hung")
}

/// Reads every result from `bytes` until `Ok(None)`, failing if that takes more than a
/// generous bound of calls (each call that returns something consumes at least 4 bytes).
async fn read_all<T: serde::de::DeserializeOwned>(
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

// ---------------------------------------------------------------------------------------
// Round trips and layout
// ---------------------------------------------------------------------------------------

#[test]
fn envelope_round_trips_through_slices() {
    let env = sample_envelope(7);
    let frame = encode_frame(&env, &cfg()).unwrap();
    let back: Env = decode_frame(&frame, &cfg()).unwrap();
    assert_eq!(back, env);
}

#[test]
fn frame_layout_is_length_version_named_map() {
    let env = minimal_envelope("x");
    let frame = encode_frame(&env, &cfg()).unwrap();
    let n = u32::from_be_bytes(frame[..4].try_into().unwrap()) as usize;
    assert_eq!(n, frame.len() - 4);
    assert_eq!(frame[4], FRAME_VERSION);
    // Structs are maps keyed by field name.
    let body = &frame[5..];
    assert_eq!(body[0], 0x86, "an envelope is a map of 6 fields");
    for field in ["id", "trace", "sender", "sent_at", "deadline", "payload"] {
        assert!(
            body.windows(field.len()).any(|w| w == field.as_bytes()),
            "field name {field} missing"
        );
    }
}

#[test]
fn fields_can_be_added_compatibly() {
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct V1 {
        name: String,
        count: u32,
    }
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct V2 {
        name: String,
        count: u32,
        added: Option<Vec<String>>,
    }
    let new = V2 {
        name: "n".into(),
        count: 3,
        added: Some(vec!["x".into()]),
    };
    let old: V1 = decode_frame(&encode_frame(&new, &cfg()).unwrap(), &cfg()).unwrap();
    assert_eq!(
        old,
        V1 {
            name: "n".into(),
            count: 3
        }
    );
    let upgraded: V2 = decode_frame(&encode_frame(&old, &cfg()).unwrap(), &cfg()).unwrap();
    assert_eq!(
        upgraded,
        V2 {
            name: "n".into(),
            count: 3,
            added: None
        }
    );
}

#[test]
fn encode_frame_into_appends_and_matches_encode_frame() {
    let a = sample_envelope(1);
    let b = minimal_envelope("b");
    let mut buf = b"prefix".to_vec();
    encode_frame_into(&mut buf, &a, &cfg()).unwrap();
    encode_frame_into(&mut buf, &b, &cfg()).unwrap();
    let fa = encode_frame(&a, &cfg()).unwrap();
    let fb = encode_frame(&b, &cfg()).unwrap();
    assert_eq!(buf, [&b"prefix"[..], &fa, &fb].concat());
}

#[tokio::test]
async fn envelopes_round_trip_over_a_duplex_stream() {
    // A tiny pipe forces partial reads and writes on both sides.
    let (client, server) = tokio::io::duplex(61);
    let sent: Vec<Env> = (0..20)
        .map(|i| {
            if i % 3 == 0 {
                minimal_envelope(&"y".repeat(i * 100))
            } else {
                sample_envelope(i as u8)
            }
        })
        .collect();
    let to_send = sent.clone();
    let writer = tokio::spawn(async move {
        let mut writer = FrameWriter::new(client, cfg());
        for env in &to_send {
            writer.write(env).await.unwrap();
        }
        writer.flush().await.unwrap();
    });
    let mut reader = FrameReader::new(server, cfg());
    let mut received = Vec::new();
    while let Some(env) = bounded(reader.read::<Env>()).await.unwrap() {
        received.push(env);
    }
    writer.await.unwrap();
    assert_eq!(received, sent);
}

#[tokio::test]
async fn back_to_back_frames_in_one_buffer() {
    let mut bytes = Vec::new();
    for i in 0..10 {
        encode_frame_into(&mut bytes, &sample_envelope(i), &cfg()).unwrap();
    }
    let results = read_all::<Env>(&bytes, cfg()).await;
    let decoded: Vec<Env> = results.into_iter().map(Result::unwrap).collect();
    assert_eq!(decoded, (0..10).map(sample_envelope).collect::<Vec<_>>());
}

#[tokio::test]
async fn writer_output_equals_encode_frame() {
    let env = sample_envelope(3);
    let mut writer = FrameWriter::new(Vec::new(), cfg());
    writer.write(&env).await.unwrap();
    writer.write(&env).await.unwrap();
    writer.flush().await.unwrap();
    let frame = encode_frame(&env, &cfg()).unwrap();
    assert_eq!(writer.into_inner(), [&frame[..], &frame].concat());
}

#[tokio::test]
async fn reader_future_is_send() {
    let (client, server) = tokio::io::duplex(1024);
    let task = tokio::spawn(async move {
        let mut reader = FrameReader::new(server, cfg());
        reader.read::<Env>().await
    });
    let mut writer = FrameWriter::new(client, cfg());
    writer.write(&minimal_envelope("sent")).await.unwrap();
    let got = bounded(task).await.unwrap().unwrap();
    assert_eq!(got, Some(minimal_envelope("sent")));
}

// ---------------------------------------------------------------------------------------
// Errors, each followed by a valid frame that must still be read
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn oversized_frame_is_skipped_then_next_frame_read() {
    let big = minimal_envelope(&"z".repeat(100_000));
    let big_frame = encode_frame(&big, &cfg()).unwrap();
    let ok = minimal_envelope("after");
    let mut bytes = big_frame.clone();
    encode_frame_into(&mut bytes, &ok, &cfg()).unwrap();

    // Through a small pipe, so the oversized frame arrives in many pieces.
    let (mut client, server) = tokio::io::duplex(997);
    let feeder = tokio::spawn(async move {
        client.write_all(&bytes).await.unwrap();
    });
    let mut reader = FrameReader::new(server, small(1024));
    match bounded(reader.read::<Env>()).await {
        Err(FrameError::Oversized { len, max }) => {
            assert_eq!(len, big_frame.len() - 4);
            assert_eq!(max, 1024);
        }
        other => panic!("expected Oversized, got {other:?}"),
    }
    assert_eq!(bounded(reader.read::<Env>()).await.unwrap(), Some(ok));
    assert!(bounded(reader.read::<Env>()).await.unwrap().is_none());
    feeder.await.unwrap();
}

#[tokio::test]
async fn oversized_header_that_lies_then_eof_is_truncated() {
    // Claims 4 GiB, delivers 10 bytes: reported at once, then truncated, never a hang or
    // an allocation of the claimed size.
    let mut bytes = u32::MAX.to_be_bytes().to_vec();
    bytes.extend_from_slice(&[0xab; 10]);
    let results = bounded(read_all::<Env>(&bytes, cfg())).await;
    assert!(matches!(
        results[0],
        Err(FrameError::Oversized { len, max }) if len == u32::MAX as usize && max == DEFAULT_MAX_FRAME_SIZE
    ));
    match &results[1] {
        Err(FrameError::Truncated { expected, received }) => {
            assert_eq!(*expected, u32::MAX as usize + 4);
            assert_eq!(*received, 14);
        }
        other => panic!("expected Truncated, got {other:?}"),
    }
    assert_eq!(results.len(), 2);
}

#[tokio::test]
async fn unknown_version_then_next_frame_read() {
    let valid = encode_frame(&minimal_envelope("ok"), &cfg()).unwrap();
    let mut bytes = frame_around(2, &valid[5..]);
    bytes.extend_from_slice(&valid);
    let results = read_all::<Env>(&bytes, cfg()).await;
    assert!(matches!(results[0], Err(FrameError::UnknownVersion(2))));
    assert_eq!(results[1].as_ref().unwrap(), &minimal_envelope("ok"));
    assert_eq!(results.len(), 2);
}

#[tokio::test]
async fn undecodable_bodies_then_next_frame_read() {
    let valid = encode_frame(&minimal_envelope("ok"), &cfg()).unwrap();
    let bodies: [&[u8]; 6] = [
        &[0xc1],                   // reserved marker
        &[0x92, 0x01],             // array announcing 2 items, holding 1
        &[0xdd, 0xff, 0xff, 0xff], // array32 of 4 billion items, holding none
        b"\xa5hello",              // valid MessagePack, wrong type
        &[],                       // version byte only
        &valid[5..],               // a valid value ...
    ];
    for (i, body) in bodies.iter().enumerate() {
        let mut body = body.to_vec();
        if i == 5 {
            body.push(0xc0); // ... followed by a stray nil
        }
        let mut bytes = frame_around(FRAME_VERSION, &body);
        bytes.extend_from_slice(&valid);
        let results = read_all::<Env>(&bytes, cfg()).await;
        assert!(
            matches!(results[0], Err(FrameError::Decode(_))),
            "body {i}: {:?}",
            results[0]
        );
        assert_eq!(
            results[1].as_ref().unwrap(),
            &minimal_envelope("ok"),
            "body {i}"
        );
        assert_eq!(results.len(), 2);
    }
}

#[tokio::test]
async fn empty_frame_then_next_frame_read() {
    let mut bytes = vec![0, 0, 0, 0];
    encode_frame_into(&mut bytes, &minimal_envelope("ok"), &cfg()).unwrap();
    let results = read_all::<Env>(&bytes, cfg()).await;
    assert!(matches!(results[0], Err(FrameError::Empty)));
    assert_eq!(results[1].as_ref().unwrap(), &minimal_envelope("ok"));
    assert!(matches!(
        decode_frame::<Env>(&[0, 0, 0, 0], &cfg()),
        Err(FrameError::Empty)
    ));
}

#[tokio::test]
async fn truncation_at_every_offset() {
    let frame = encode_frame(&sample_envelope(9), &cfg()).unwrap();
    for cut in 0..frame.len() {
        let prefix = &frame[..cut];
        let results = bounded(read_all::<Env>(prefix, cfg())).await;
        let expected = if cut < 4 { 4 } else { frame.len() };
        if cut == 0 {
            assert!(results.is_empty());
        } else {
            assert_eq!(results.len(), 1, "cut {cut}");
            match &results[0] {
                Err(FrameError::Truncated {
                    expected: e,
                    received,
                }) => assert_eq!((*e, *received), (expected, cut), "cut {cut}"),
                other => panic!("cut {cut}: expected Truncated, got {other:?}"),
            }
        }
        match decode_frame::<Env>(prefix, &cfg()) {
            Err(FrameError::Truncated {
                expected: e,
                received,
            }) => assert_eq!((e, received), (expected, cut), "cut {cut}"),
            other => panic!("cut {cut}: expected Truncated, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn truncation_over_a_stream_that_closes() {
    let frame = encode_frame(&sample_envelope(4), &cfg()).unwrap();
    for cut in [1, 3, 4, 5, frame.len() / 2, frame.len() - 1] {
        let (mut client, server) = tokio::io::duplex(16);
        let part = frame[..cut].to_vec();
        let feeder = tokio::spawn(async move {
            client.write_all(&part).await.unwrap();
            // Dropping `client` closes the stream.
        });
        let mut reader = FrameReader::new(server, cfg());
        let first = bounded(reader.read::<Env>()).await;
        assert!(
            matches!(first, Err(FrameError::Truncated { received, .. }) if received == cut),
            "cut {cut}: {first:?}"
        );
        assert!(bounded(reader.read::<Env>()).await.unwrap().is_none());
        feeder.await.unwrap();
    }
}

#[test]
fn decode_frame_rejects_trailing_bytes() {
    let mut frame = encode_frame(&minimal_envelope("x"), &cfg()).unwrap();
    frame.extend_from_slice(&[1, 2, 3]);
    assert!(matches!(
        decode_frame::<Env>(&frame, &cfg()),
        Err(FrameError::TrailingBytes(3))
    ));
}

#[test]
fn decode_frame_checks_limit_and_version() {
    let frame = encode_frame(&minimal_envelope("x"), &cfg()).unwrap();
    let n = frame.len() - 4;
    assert!(matches!(
        decode_frame::<Env>(&frame, &small(n - 1)),
        Err(FrameError::Oversized { len, max }) if len == n && max == n - 1
    ));
    assert!(decode_frame::<Env>(&frame, &small(n)).is_ok());
    let mut other_version = frame.clone();
    other_version[4] = 0;
    assert!(matches!(
        decode_frame::<Env>(&other_version, &cfg()),
        Err(FrameError::UnknownVersion(0))
    ));
}

#[tokio::test]
async fn encode_side_rejects_oversized() {
    let env = minimal_envelope(&"q".repeat(5000));
    let exact = encode_frame(&env, &cfg()).unwrap().len() - 4;
    match encode_frame(&env, &small(1000)) {
        Err(FrameError::Oversized { len, max }) => assert_eq!((len, max), (exact, 1000)),
        other => panic!("expected Oversized, got {other:?}"),
    }
    assert!(encode_frame(&env, &small(exact)).is_ok());

    // The buffer is left as it was.
    let mut buf = vec![9, 9];
    assert!(encode_frame_into(&mut buf, &env, &small(1000)).is_err());
    assert_eq!(buf, [9, 9]);

    // The writer writes nothing for a refused frame and goes on with the next.
    let mut writer = FrameWriter::new(Vec::new(), small(1000));
    assert!(matches!(
        writer.write(&env).await,
        Err(FrameError::Oversized { .. })
    ));
    writer.write(&minimal_envelope("small")).await.unwrap();
    let bytes = writer.into_inner();
    assert_eq!(
        bytes,
        encode_frame(&minimal_envelope("small"), &cfg()).unwrap()
    );
}

#[test]
fn encode_reports_serialization_failure() {
    struct Failing;
    impl Serialize for Failing {
        fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
            Err(serde::ser::Error::custom("refuses to serialize"))
        }
    }
    let err = encode_frame(&Failing, &cfg()).unwrap_err();
    assert!(
        matches!(&err, FrameError::Encode(m) if m.contains("refuses")),
        "{err}"
    );
    assert_eq!(err.reason(), "encode");
}

fn nested(depth: usize) -> Payload {
    (0..depth).fold(Payload::Ping, |p, _| Payload::Nested(Box::new(p)))
}

#[test]
fn nesting_limit_is_enforced_on_both_sides() {
    // Each `Nested` level is one single-entry map.
    let deepest = nested(MAX_NESTING_DEPTH);
    let frame = encode_frame(&deepest, &cfg()).unwrap();
    assert_eq!(decode_frame::<Payload>(&frame, &cfg()).unwrap(), deepest);

    let err = encode_frame(&nested(MAX_NESTING_DEPTH + 1), &cfg()).unwrap_err();
    assert!(
        matches!(&err, FrameError::Encode(m) if m.contains("deeper")),
        "{err}"
    );
}

#[test]
fn hostile_deep_nesting_does_not_overflow_the_stack() {
    // {"Nested": {"Nested": ... }} a million levels deep: without the depth check the
    // recursive Deserialize would overflow the stack.
    let mut body = Vec::new();
    for _ in 0..1_000_000 {
        body.push(0x81);
        body.push(0xa6);
        body.extend_from_slice(b"Nested");
    }
    body.extend_from_slice(b"\xa4Ping");
    let frame = frame_around(FRAME_VERSION, &body);
    let err = decode_frame::<Payload>(&frame, &cfg()).unwrap_err();
    assert!(
        matches!(&err, FrameError::Decode(m) if m.contains("deeper")),
        "{err}"
    );
    // Deeply nested arrays too.
    let frame = frame_around(FRAME_VERSION, &[0x91; 100_000]);
    assert!(matches!(
        decode_frame::<Payload>(&frame, &cfg()),
        Err(FrameError::Decode(_))
    ));
}

#[test]
fn decode_error_messages_are_bounded() {
    // An unknown variant name of 60 kB is quoted by serde's error; the message is cut.
    let name = "V".repeat(60_000);
    let mut body = vec![0xda]; // str 16
    body.extend_from_slice(&u16::try_from(name.len()).unwrap().to_be_bytes());
    body.extend_from_slice(name.as_bytes());
    let frame = frame_around(FRAME_VERSION, &body);
    match decode_frame::<Payload>(&frame, &cfg()) {
        Err(FrameError::Decode(m)) => assert!(m.len() <= 520, "{} bytes", m.len()),
        other => panic!("expected Decode, got {other:?}"),
    }
}

#[test]
fn errors_say_what_went_wrong_and_have_stable_reasons() {
    let cases: Vec<(FrameError, &str, &str)> = vec![
        (
            FrameError::Truncated {
                expected: 10,
                received: 3,
            },
            "truncated",
            "expected 10 bytes",
        ),
        (
            FrameError::Oversized { len: 20, max: 10 },
            "oversized",
            "maximum frame size of 10",
        ),
        (FrameError::Empty, "empty", "length prefix is 0"),
        (
            FrameError::UnknownVersion(7),
            "unknown_version",
            "version 7",
        ),
        (FrameError::Decode("bad".into()), "decode", "decode"),
        (FrameError::Encode("bad".into()), "encode", "encode"),
        (FrameError::TrailingBytes(3), "trailing_bytes", "3 trailing"),
        (FrameError::Io(io::Error::other("boom")), "io", "boom"),
    ];
    for (err, reason, text) in cases {
        assert_eq!(err.reason(), reason);
        assert!(err.to_string().contains(text), "{err}");
    }
}

// ---------------------------------------------------------------------------------------
// Metrics
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn error_counter_counts_each_error_by_reason() {
    let registry = Registry::new();
    let counter = IntCounterVec::new(
        Opts::new("neuroflow_frame_errors_total", "Frame errors by reason"),
        &["reason"],
    )
    .unwrap();
    registry.register(Box::new(counter.clone())).unwrap();

    let valid = encode_frame(&minimal_envelope("ok"), &cfg()).unwrap();
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&[0, 0, 0, 0]); // empty
    bytes.extend_from_slice(&frame_around(3, b"\xc0")); // unknown_version
    bytes.extend_from_slice(&frame_around(FRAME_VERSION, b"\xc1")); // decode
    bytes.extend_from_slice(&frame_around(FRAME_VERSION, b"\xc1")); // decode
    bytes.extend_from_slice(&frame_around(FRAME_VERSION, &[0; 200])); // oversized
    bytes.extend_from_slice(&valid);
    bytes.extend_from_slice(&valid[..7]); // truncated
    let mut reader = FrameReader::new(&bytes[..], small(100)).with_error_counter(counter.clone());
    let mut oks = 0;
    loop {
        match bounded(reader.read::<Env>()).await {
            Ok(None) => break,
            Ok(Some(_)) => oks += 1,
            Err(_) => {}
        }
    }
    assert_eq!(oks, 1);
    let count = |reason: &str| counter.with_label_values(&[reason]).get();
    assert_eq!(count("empty"), 1);
    assert_eq!(count("unknown_version"), 1);
    assert_eq!(count("decode"), 2);
    assert_eq!(count("oversized"), 1);
    assert_eq!(count("truncated"), 1);
    assert_eq!(count("io"), 0);
    let exported = registry.gather();
    assert_eq!(exported[0].name(), "neuroflow_frame_errors_total");
}

#[tokio::test]
async fn counter_with_other_labels_is_ignored_not_a_panic() {
    let counter = IntCounterVec::new(Opts::new("wrong_labels", "help"), &["kind", "peer"]).unwrap();
    let bytes = [0u8, 0, 0, 0];
    let mut reader = FrameReader::new(&bytes[..], cfg()).with_error_counter(counter);
    assert!(matches!(reader.read::<Env>().await, Err(FrameError::Empty)));
    assert!(reader.read::<Env>().await.unwrap().is_none());
}

// ---------------------------------------------------------------------------------------
// Cancel safety
// ---------------------------------------------------------------------------------------

/// Delivers one byte per `poll_read` and is `Pending` (after waking itself) every other
/// poll, so a read future always gets cancelled midway through a frame.
struct Trickle {
    data: Vec<u8>,
    pos: usize,
    ready: bool,
}

impl AsyncRead for Trickle {
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
        if let Some(&b) = self.data.get(self.pos) {
            buf.put_slice(&[b]);
            self.pos += 1;
        }
        Poll::Ready(Ok(()))
    }
}

/// Accepts one byte per `poll_write`, `Pending` every other poll.
#[derive(Default)]
struct Stingy {
    data: Vec<u8>,
    ready: bool,
}

impl AsyncWrite for Stingy {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.ready = !self.ready;
        if !self.ready {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        match buf.first() {
            Some(&b) => {
                self.data.push(b);
                Poll::Ready(Ok(1))
            }
            None => Poll::Ready(Ok(0)),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[tokio::test]
async fn read_is_cancel_safe() {
    let mut bytes = Vec::new();
    let sent: Vec<Env> = (0..3).map(sample_envelope).collect();
    for env in &sent {
        encode_frame_into(&mut bytes, env, &cfg()).unwrap();
    }
    let total = bytes.len();
    let mut reader = FrameReader::new(
        Trickle {
            data: bytes,
            pos: 0,
            ready: false,
        },
        cfg(),
    );
    let mut received = Vec::new();
    let mut cancelled = 0;
    for _ in 0..total * 4 {
        tokio::select! {
            biased;
            r = reader.read::<Env>() => match r.unwrap() {
                Some(env) => received.push(env),
                None => break,
            },
            () = std::future::ready(()) => cancelled += 1,
        }
    }
    assert_eq!(received, sent);
    assert!(cancelled >= total, "reads were cancelled {cancelled} times");
}

#[tokio::test]
async fn cancelled_write_never_leaves_a_torn_frame() {
    let first = sample_envelope(1);
    let second = minimal_envelope("second");
    let mut writer = FrameWriter::new(Stingy::default(), cfg());
    // Cancel the first write after a few bytes went out.
    for _ in 0..5 {
        tokio::select! {
            biased;
            r = writer.write(&first) => panic!("write finished early: {r:?}"),
            () = std::future::ready(()) => {}
        }
        if !writer.get_ref().data.is_empty() {
            break;
        }
    }
    assert!(!writer.get_ref().data.is_empty());
    writer.write(&second).await.unwrap();
    writer.flush().await.unwrap();
    let bytes = writer.into_inner().data;
    let results = read_all::<Env>(&bytes, cfg()).await;
    let decoded: Vec<Env> = results.into_iter().map(Result::unwrap).collect();
    assert_eq!(decoded, [first, second]);
}

// ---------------------------------------------------------------------------------------
// Property tests
// ---------------------------------------------------------------------------------------

fn arb_float() -> impl Strategy<Value = f64> {
    any::<f64>().prop_map(|f| if f.is_nan() { 0.0 } else { f })
}

fn arb_payload() -> impl Strategy<Value = Payload> {
    let leaf =
        prop_oneof![
            Just(Payload::Ping),
            any::<String>().prop_map(Payload::Text),
            (any::<u64>(), any::<i32>()).prop_map(|(a, b)| Payload::Pair(a, b)),
            (
                any::<String>(),
                proptest::collection::vec(any::<u8>(), 0..64),
                proptest::option::of(any::<String>())
            )
                .prop_map(|(name, data, note)| Payload::Blob { name, data, note }),
            (any::<i64>(), arb_float(), any::<bool>())
                .prop_map(|(int, float, flag)| Payload::Num { int, float, flag }),
        ];
    leaf.prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Payload::List),
            proptest::collection::btree_map(".{0,6}", inner.clone(), 0..6).prop_map(Payload::Table),
            inner.clone().prop_map(|p| Payload::Nested(Box::new(p))),
            (
                proptest::collection::vec(".{0,6}", 0..4),
                proptest::collection::btree_map(".{0,4}", any::<u32>(), 0..4),
                proptest::option::of(inner)
            )
                .prop_map(|(tags, counts, parent)| Payload::Record {
                    tags,
                    counts,
                    parent: parent.map(Box::new),
                }),
        ]
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn arb_trace() -> impl Strategy<Value = TraceContext> {
    (
        any::<[u8; 16]>().prop_filter("non-zero trace id", |id| id.iter().any(|&b| b != 0)),
        any::<[u8; 8]>().prop_filter("non-zero span id", |id| id.iter().any(|&b| b != 0)),
        any::<u8>(),
        proptest::option::of(proptest::collection::btree_map(
            "[a-z][a-z0-9_]{0,7}",
            "[a-zA-Z0-9]{1,8}",
            1..4,
        )),
    )
        .prop_map(|(trace_id, span_id, flags, state)| {
            let parent = format!("00-{}-{}-{flags:02x}", hex(&trace_id), hex(&span_id));
            let state = state.map(|members| {
                members
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(",")
            });
            TraceContext::parse(&parent, state.as_deref()).expect("generated traceparent is valid")
        })
}

fn arb_path() -> impl Strategy<Value = ActorPath> {
    (any::<String>(), proptest::collection::vec(".{0,12}", 0..4)).prop_map(|(root, children)| {
        children
            .iter()
            .fold(ActorPath::root(&root), |path, name| path.child(name))
    })
}

fn arb_envelope() -> impl Strategy<Value = Env> {
    (
        any::<[u8; 16]>(),
        proptest::option::of(arb_trace()),
        proptest::option::of(arb_path()),
        any::<u64>(),
        proptest::option::of(any::<u64>()),
        arb_payload(),
    )
        .prop_map(|(id, trace, sender, sent_at, deadline, payload)| Envelope {
            id: MessageId(Uuid::from_bytes(id)),
            trace,
            sender,
            sent_at: Timestamp(sent_at),
            deadline: deadline.map(Timestamp),
            payload,
        })
}

proptest! {
    #[test]
    fn prop_envelopes_round_trip(envs in proptest::collection::vec(arb_envelope(), 1..4)) {
        // Slices.
        let mut stream = Vec::new();
        for env in &envs {
            let frame = encode_frame(env, &cfg()).unwrap();
            prop_assert_eq!(&decode_frame::<Env>(&frame, &cfg()).unwrap(), env);
            stream.extend_from_slice(&frame);
        }
        // Streams: the writer's bytes equal the concatenated frames, and the reader gets
        // every envelope back.
        let written = runtime().block_on(async {
            let mut writer = FrameWriter::new(Vec::new(), cfg());
            for env in &envs {
                writer.write(env).await.unwrap();
            }
            writer.into_inner()
        });
        prop_assert_eq!(&written, &stream);
        let read: Vec<Env> = runtime()
            .block_on(read_all::<Env>(&stream, cfg()))
            .into_iter()
            .map(Result::unwrap)
            .collect();
        prop_assert_eq!(read, envs);
    }

    #[test]
    fn prop_arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        // `read_all` bounds the number of calls and insists on reaching `Ok(None)`.
        runtime().block_on(bounded(read_all::<Env>(&bytes, cfg())));
        runtime().block_on(bounded(read_all::<Env>(&bytes, small(64))));
        let _ = decode_frame::<Env>(&bytes, &cfg());
        let _ = decode_frame::<Payload>(&bytes, &cfg());
    }

    #[test]
    fn prop_arbitrary_body_behind_valid_header_keeps_stream_in_sync(
        body in proptest::collection::vec(any::<u8>(), 0..4096),
        version in prop_oneof![Just(FRAME_VERSION), any::<u8>()],
    ) {
        let ok = minimal_envelope("sync");
        let mut bytes = frame_around(version, &body);
        let _ = decode_frame::<Env>(&bytes, &cfg());
        encode_frame_into(&mut bytes, &ok, &cfg()).unwrap();
        let results = runtime().block_on(bounded(read_all::<Env>(&bytes, cfg())));
        // Exactly one result for the arbitrary frame, whatever it is, then the valid one.
        prop_assert_eq!(results.len(), 2);
        if let Err(e) = &results[0] {
            prop_assert!(matches!(e, FrameError::Decode(_) | FrameError::UnknownVersion(_)), "{}", e);
        }
        prop_assert_eq!(results[1].as_ref().unwrap(), &ok);
    }

    #[test]
    fn prop_corrupted_envelope_frames_keep_stream_in_sync(
        env in arb_envelope(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        // Corrupt the body of a real frame (not its header): the reader reports at most that
        // one frame and then reads the next.
        let mut bytes = encode_frame(&env, &cfg()).unwrap();
        let body_len = bytes.len() - 4;
        for (at, value) in flips {
            bytes[4 + at.index(body_len)] = value;
        }
        let _ = decode_frame::<Env>(&bytes, &cfg());
        let ok = minimal_envelope("sync");
        encode_frame_into(&mut bytes, &ok, &cfg()).unwrap();
        let results = runtime().block_on(bounded(read_all::<Env>(&bytes, cfg())));
        prop_assert_eq!(results.len(), 2);
        prop_assert_eq!(results[1].as_ref().unwrap(), &ok);
    }
}
