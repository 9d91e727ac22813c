//! Codec property tests: arbitrary envelopes round-trip; arbitrary bytes never panic the
//! decoder and never leave the reader stuck.

mod codec_common;

use codec_common::*;

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
            trace: trace.map(Box::new),
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
