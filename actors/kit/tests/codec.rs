//! Codec round trips and layout, and every error kind followed by a valid frame that must
//! still be read.

mod codec_common;

use codec_common::*;

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
