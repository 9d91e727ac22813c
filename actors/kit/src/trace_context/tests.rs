use super::TraceContextError as E;
use super::*;

/// The spec's example; `IDS` is the trace-id/parent-id pair of the W3C test suite.
const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const IDS: &str = "12345678901234567890123456789012-1234567890123456";
const T: &str = "12345678901234567890123456789012";
const P: &str = "1234567890123456";

fn members(n: usize) -> String {
    let list: Vec<_> = (1..=n).map(|i| format!("bar{i:02}={i:02}")).collect();
    list.join(",")
}

#[test]
fn traceparent_spec_example() {
    let tp = TraceParent::parse(TP).unwrap();
    assert_eq!(tp.trace_id.0[..4], [0x4b, 0xf9, 0x2f, 0x35]);
    assert_eq!(tp.trace_id.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
    let parent = SpanId([0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7]);
    assert_eq!((tp.parent_id, tp.flags), (parent, TraceFlags::SAMPLED));
    assert!(tp.sampled() && tp.is_valid());
    assert_eq!(format!("{:?}", tp.parent_id), "SpanId(00f067aa0ba902b7)");
    assert_eq!(tp.to_string(), TP);
    let unsampled: TraceParent = TP.replace("-01", "-00").parse().unwrap();
    assert!(!unsampled.sampled());
}

#[rustfmt::skip]
#[test]
fn traceparent_valid_cases() {
    // (input, version-00 output)
    let cases = [
        (format!(" 00-{IDS}-01"), "01"), (format!("\t00-{IDS}-01"), "01"),
        (format!("00-{IDS}-01 "), "01"), (format!("00-{IDS}-01\t"), "01"),
        (format!("\t 00-{IDS}-01 \t"), "01"),
        (format!("cc-{IDS}-01"), "01"),
        (format!("cc-{IDS}-01-what-the-future-will-be-like"), "01"),
        (format!("01-{IDS}-00-"), "00"),
        (format!("fe-{IDS}-09-x"), "09"),
        (format!("00-{IDS}-ff"), "ff"),
        (format!("00-{IDS}-02"), "02"),
    ];
    for (input, flags) in cases {
        let expected = format!("00-{IDS}-{flags}");
        let tp = TraceParent::parse(&input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
        assert_eq!(tp.to_string(), expected, "{input:?}");
        assert_eq!(TraceParent::parse(&expected), Ok(tp), "round trip {input:?}");
    }
    let random = TraceParent::parse(&format!("00-{IDS}-02")).unwrap();
    assert_eq!((random.flags, random.sampled()), (TraceFlags::RANDOM, false));
}

#[rustfmt::skip]
#[test]
fn traceparent_invalid_cases() {
    let zeros = "0".repeat(32);
    let future = "what-the-future-will-be-like";
    let cases: Vec<(String, E)> = vec![
        (format!("ff-{IDS}-01"), E::InvalidVersion),
        (format!(".0-{IDS}-01"), E::InvalidVersion),
        (format!("0.-{IDS}-01"), E::InvalidVersion),
        (format!("CC-{IDS}-01"), E::InvalidVersion),
        (format!("0-{IDS}-01"), E::InvalidVersion),
        (String::new(), E::InvalidVersion),
        (format!("000-{IDS}-01"), E::Delimiter(2)),
        (format!("0000-{IDS}-01"), E::Delimiter(2)),
        (format!("00_{IDS}-01"), E::Delimiter(2)),
        (format!("00-{IDS}-01."), E::Length(56)),
        (format!("00-{IDS}-01-{future}"), E::Length(84)),
        (format!("00-{IDS}-01\n"), E::Length(56)),
        (format!("cc-{IDS}-01.{future}"), E::Delimiter(55)),
        (format!("cc-{IDS}-0100"), E::Delimiter(55)),
        (format!("cc-{IDS}-1"), E::Length(54)),
        (format!("00-{zeros}-{P}-01"), E::ZeroTraceId),
        (format!("cc-{zeros}-{P}-01-x"), E::ZeroTraceId),
        (format!("00-.{}-{P}-01", &T[1..]), E::InvalidTraceId),
        (format!("00-{}.-{P}-01", &T[..31]), E::InvalidTraceId),
        (format!("00-{}-{P}-01", T.replace('1', "A")), E::InvalidTraceId),
        (format!("00-{T}3-{P}-01"), E::Length(56)),
        (format!("00-{}-{P}-01", &T[1..]), E::Length(54)),
        (format!("00-{T}-0000000000000000-01"), E::ZeroParentId),
        (format!("00-{T}-.{}-01", &P[1..]), E::InvalidParentId),
        (format!("00-{T}-{}.-01", &P[..15]), E::InvalidParentId),
        (format!("00-{T}-{}-01", P.replace('2', "B")), E::InvalidParentId),
        (format!("00-{T}-{P}7-01"), E::Length(56)),
        (format!("00-{T}-{}-01", &P[1..]), E::Length(54)),
        (format!("00-{IDS}-.0"), E::InvalidFlags),
        (format!("00-{IDS}-0."), E::InvalidFlags),
        (format!("00-{IDS}-0A"), E::InvalidFlags),
        (format!("00-{IDS}-001"), E::Length(56)),
        (format!("00-{IDS}-1"), E::Length(54)),
        (format!("00-{IDS}é"), E::NonAscii),
        (format!("cc-{IDS}-01-é"), E::NonAscii),
    ];
    for (input, expected) in cases {
        assert_eq!(TraceParent::parse(&input), Err(expected.clone()), "{input:?}");
        assert_eq!(TraceContext::parse(&input, Some("foo=1")), Err(expected), "{input:?}");
    }
}

#[rustfmt::skip]
#[test]
fn tracestate_valid_cases() {
    let keys = "abcdefghijklmnopqrstuvwxyz0123456789_-*/";
    let values: String = (0x20u8..=0x7e).filter(|b| !b",=".contains(b)).map(char::from).collect();
    // Canonical headers: parse and format back unchanged.
    let canonical = [
        "congo=t61rcWkgMzE".to_owned(),
        "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE".into(),
        "foo=  x y".into(), // leading spaces belong to the value
        format!("{keys}={values}"),
        format!("{keys}@a-z0-9_-*/={values}"),
        format!("foo=1,{}=1", "z".repeat(256)),
        format!("foo=1,{}@{}=1", "t".repeat(241), "v".repeat(14)),
        "0tenant@vendor=1,t@v=2".into(),
        format!("foo={}", "x".repeat(256)),
        members(32),
    ];
    // (input, normalised header)
    let mut cases: Vec<(String, String)> = canonical.iter().map(|c| (c.clone(), c.clone())).collect();
    cases.extend([
        ("foo=1 \t , \t bar=2, \t baz=3", "foo=1,bar=2,baz=3"),
        ("foo=1\t \t,\t \tbar=2,\t \tbaz=3", "foo=1,bar=2,baz=3"),
        (" foo=1", "foo=1"), ("\tfoo=1", "foo=1"), ("foo=1 ", "foo=1"),
        ("foo=1\t", "foo=1"), ("\t foo=1 \t", "foo=1"),
        ("", ""), (" , ,\t,", ""), ("foo=1,", "foo=1"), (",foo=1,, ,bar=2,", "foo=1,bar=2"),
    ].map(|(i, o)| (i.to_owned(), o.to_owned())));
    cases.push((format!("{},,", members(32)), members(32)));
    for (input, expected) in cases {
        let ts = TraceState::parse(&input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
        assert_eq!(ts.header(), expected, "{input:?}");
        assert_eq!(TraceState::parse(&expected), Ok(ts), "round trip {input:?}");
    }
    let ts = TraceState::parse("foo=1 \t , \t bar=2, \t baz=3").unwrap();
    assert_eq!(ts.iter().collect::<Vec<_>>(), [("foo", "1"), ("bar", "2"), ("baz", "3")]);
    assert_eq!((ts.len(), ts.get("bar"), ts.get("nope")), (3, Some("2"), None));
    assert_eq!(TraceState::parse(&members(32)).unwrap().get("bar01"), Some("01"));
    assert_eq!(TraceState::parse("foo= bar").unwrap().get("foo"), Some(" bar"));
}

#[rustfmt::skip]
#[test]
fn tracestate_invalid_cases() {
    let key = |k: &str| E::InvalidKey(k.to_owned());
    let value = |k: &str| E::InvalidValue { key: k.to_owned() };
    let k257 = "z".repeat(257);
    let tenant242 = format!("{}@v", "t".repeat(242));
    let system15 = format!("t@{}", "v".repeat(15));
    let cases: Vec<(String, E)> = vec![
        ("foo=1,foo=1".into(), E::DuplicateKey("foo".into())),
        ("foo=1,bar=2,foo=2".into(), E::DuplicateKey("foo".into())),
        (members(33), E::TooManyMembers(33)),
        (format!("{},foo,x", members(40)), E::TooManyMembers(42)),
        (format!("foo=1,{k257}=1"), key(&k257)),
        (format!("foo=1,{tenant242}=1"), key(&tenant242)),
        (format!("foo=1,{system15}=1"), key(&system15)),
        ("foo@=1,bar=2".into(), key("foo@")),
        ("@foo=1,bar=2".into(), key("@foo")),
        ("foo@@bar=1,bar=2".into(), key("foo@@bar")),
        ("foo@bar@baz=1,bar=2".into(), key("foo@bar@baz")),
        ("t@1v=1".into(), key("t@1v")),
        ("_t@v=1".into(), key("_t@v")),
        ("foo =1".into(), key("foo ")),
        ("FOO=1".into(), key("FOO")),
        ("foo.bar=1".into(), key("foo.bar")),
        ("1foo=1".into(), key("1foo")),
        ("fé=1".into(), key("fé")),
        ("=1".into(), key("")),
        ("foo=bar=baz".into(), value("foo")),
        ("foo=,bar=3".into(), value("foo")),
        (format!("foo={}", "x".repeat(257)), value("foo")),
        ("foo=a\tb".into(), value("foo")),
        ("foo=a\u{7f}".into(), value("foo")),
        ("foo=é".into(), value("foo")),
        ("foo=1,bar".into(), E::MissingEquals("bar".into())),
    ];
    for (input, expected) in cases {
        assert_eq!(TraceState::parse(&input), Err(expected), "{input:?}");
        // The traceparent survives; the bad tracestate is dropped.
        let cx = TraceContext::parse(&format!("00-{IDS}-00"), Some(&input)).unwrap();
        assert_eq!((cx.parent.trace_id.to_string(), cx.tracestate_header()), (T.into(), None));
    }
}

#[test]
fn tracestate_mutation() {
    // The Congo/Rojo walk-through from the spec.
    let mut ts = TraceState::parse("congo=t61rcWkgMzE").unwrap();
    ts.insert("rojo", "00f067aa0ba902b7").unwrap();
    assert_eq!(ts.header(), "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
    ts.insert("congo", "ucfJifl5GOE").unwrap();
    assert_eq!(ts.header(), "congo=ucfJifl5GOE,rojo=00f067aa0ba902b7");
    assert_eq!(ts.insert("Bad", "1"), Err(E::InvalidKey("Bad".into())));
    let bad_value = Err(E::InvalidValue { key: "ok".into() });
    assert_eq!(ts.insert("ok", "trailing "), bad_value);
    assert_eq!(ts.insert("ok", ""), bad_value);
    assert_eq!(ts.header(), "congo=ucfJifl5GOE,rojo=00f067aa0ba902b7");
    assert_eq!(ts.remove("rojo").as_deref(), Some("00f067aa0ba902b7"));
    assert_eq!(ts.remove("rojo"), None);
    assert_eq!(ts.remove("congo").as_deref(), Some("ucfJifl5GOE"));
    assert!(ts.is_empty() && ts.header().is_empty());

    let mut full = TraceState::parse(&members(32)).unwrap();
    full.insert("bar10", "x").unwrap(); // an update evicts nothing
    assert_eq!((full.len(), full.get("bar32")), (32, Some("32")));
    assert_eq!(full.iter().next(), Some(("bar10", "x")));
    full.insert("new", "y").unwrap(); // an addition evicts the rightmost
    assert_eq!((full.len(), full.get("bar32")), (32, None));
    let front: Vec<_> = full.iter().take(3).collect();
    assert_eq!(front, [("new", "y"), ("bar10", "x"), ("bar01", "01")]);
    assert_eq!(full.iter().next_back(), Some(("bar31", "31")));
}

#[test]
fn trace_context_parse_format_child() {
    let header = "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE";
    let cx = TraceContext::parse(TP, Some(" rojo=00f067aa0ba902b7 ,congo=t61rcWkgMzE")).unwrap();
    assert_eq!(cx.traceparent_header(), TP);
    assert_eq!(cx.tracestate_header().as_deref(), Some(header));
    assert_eq!(TraceContext::parse(TP, Some(header)), Ok(cx.clone()));

    let child = cx.child(SpanId([0xb9, 0xc7, 0xc9, 0x89, 0xf9, 0x79, 0x18, 0xe1]));
    let expected = "00-4bf92f3577b34da6a3ce929d0e0e4736-b9c7c989f97918e1-01";
    assert_eq!(child.traceparent_header(), expected);
    assert_eq!(child.parent.trace_id, cx.parent.trace_id);
    assert_eq!(
        (child.parent.flags, &child.state),
        (cx.parent.flags, &cx.state)
    );

    let bare = TraceContext::parse(TP, None).unwrap();
    assert_eq!((bare.tracestate_header(), bare.parent), (None, cx.parent));
    assert_eq!(TraceContext::parse(TP, Some("")), Ok(bare));
    let zero_parent = format!("00-{T}-0000000000000000-01");
    let err = TraceContext::parse(&zero_parent, Some(header)).unwrap_err();
    assert_eq!(err.to_string(), "traceparent parent-id is all zeros");
    let (id, span, flags) = (TraceId([1; 16]), SpanId([1; 8]), TraceFlags(0));
    assert_eq!(
        TraceParent::new(id, SpanId::INVALID, flags),
        Err(E::ZeroParentId)
    );
    assert_eq!(
        TraceParent::new(TraceId::INVALID, span, flags),
        Err(E::ZeroTraceId)
    );
}

#[test]
fn opentelemetry_conversion() {
    let cx = TraceContext::parse(&TP.replace("-01", "-03"), Some("rojo=1,t@v=2")).unwrap();
    let sc = otel::SpanContext::from(&cx);
    assert_eq!(
        sc.trace_id().to_string(),
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
    assert_eq!(sc.span_id().to_string(), "00f067aa0ba902b7");
    assert_eq!(sc.trace_flags().to_u8(), 0x03);
    assert!(sc.is_sampled() && sc.is_remote() && sc.is_valid());
    assert_eq!(sc.trace_state().header(), "rojo=1,t@v=2");
    assert_eq!(TraceContext::from_span_context(&sc), Some(cx.clone()));

    assert_eq!(
        TraceContext::from_span_context(&otel::SpanContext::NONE),
        None
    );
    let (tid, sid) = (sc.trace_id(), sc.span_id());
    let none = otel::TraceState::NONE;
    let zero_span =
        otel::SpanContext::new(tid, otel::SpanId::INVALID, sc.trace_flags(), true, none);
    assert_eq!(TraceContext::from_span_context(&zero_span), None);
    // OpenTelemetry allows a leading digit in simple keys; Level 1 does not, so the state is dropped.
    let lenient = otel::TraceState::from_key_value([("1abc", "x")]).unwrap();
    let sc = otel::SpanContext::new(tid, sid, otel::TraceFlags::SAMPLED, false, lenient);
    let back = TraceContext::from_span_context(&sc).unwrap();
    let parent = TraceParent {
        flags: TraceFlags::SAMPLED,
        ..cx.parent
    };
    assert_eq!((back.parent, back.state.len()), (parent, 0));
}

/// The wire shapes, written independently of the module's private wire structs.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Raw<T> {
    traceparent: T,
    tracestate: String,
}

/// Binary traceparent: trace-id, parent-id, flags.
fn binary_parent(trace_id: &[u8; 16], parent_id: &[u8; 8], flags: u8) -> serde_bytes::ByteBuf {
    let mut b = trace_id.to_vec();
    b.extend_from_slice(parent_id);
    b.push(flags);
    serde_bytes::ByteBuf::from(b)
}

#[test]
fn serde_round_trip_and_shape() {
    let state = "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE";
    let cx = TraceContext::parse(TP, Some(state)).unwrap();
    for bytes in [rmp_serde::to_vec(&cx), rmp_serde::to_vec_named(&cx)] {
        let bytes = bytes.unwrap();
        assert_eq!(rmp_serde::from_slice::<TraceContext>(&bytes).unwrap(), cx);
    }
    // MessagePack: a 25-byte binary traceparent.
    let named = rmp_serde::to_vec_named(&cx).unwrap();
    let raw: Raw<serde_bytes::ByteBuf> = rmp_serde::from_slice(&named).unwrap();
    let expected = Raw {
        traceparent: binary_parent(&cx.parent.trace_id.0, &cx.parent.parent_id.0, 1),
        tracestate: state.to_owned(),
    };
    assert_eq!(raw, expected);
    assert_eq!(&raw.traceparent[..4], &[0x4b, 0xf9, 0x2f, 0x35]);
    // JSON: the two W3C header strings.
    let json = serde_json::to_value(&cx).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"traceparent": TP, "tracestate": state})
    );
    assert_eq!(serde_json::from_value::<TraceContext>(json).unwrap(), cx);
    // A missing `tracestate` field means an empty one.
    let bare = TraceContext::parse(TP, None).unwrap();
    let only_parent = serde_json::json!({ "traceparent": TP });
    assert_eq!(
        serde_json::from_value::<TraceContext>(only_parent).unwrap(),
        bare
    );
    #[derive(Serialize)]
    struct OnlyParent {
        traceparent: serde_bytes::ByteBuf,
    }
    let only = OnlyParent {
        traceparent: binary_parent(&bare.parent.trace_id.0, &bare.parent.parent_id.0, 1),
    };
    let decoded: TraceContext =
        rmp_serde::from_slice(&rmp_serde::to_vec_named(&only).unwrap()).unwrap();
    assert_eq!(decoded, bare);
}

#[test]
fn serde_rejects_malformed() {
    let good = TraceContext::parse(TP, None).unwrap();
    let (t, p) = (good.parent.trace_id.0, good.parent.parent_id.0);
    let cases = [
        (binary_parent(&[0; 16], &p, 1), "", "trace-id is all zeros"),
        (binary_parent(&t, &[0; 8], 1), "", "parent-id is all zeros"),
        (
            binary_parent(&t, &p, 1),
            "foo=1,foo=2",
            "\"foo\" appears more than once",
        ),
    ];
    for (traceparent, tracestate, message) in cases {
        let raw = Raw {
            traceparent,
            tracestate: tracestate.to_owned(),
        };
        for bytes in [rmp_serde::to_vec(&raw), rmp_serde::to_vec_named(&raw)] {
            let result = rmp_serde::from_slice::<TraceContext>(&bytes.unwrap());
            let err = result.unwrap_err().to_string();
            assert!(err.contains(message), "{err:?} lacks {message:?}");
        }
    }
    // Wrong lengths and types.
    let short = Raw {
        traceparent: serde_bytes::ByteBuf::from(vec![1u8; 24]),
        tracestate: String::new(),
    };
    let text = Raw {
        traceparent: TP.to_owned(),
        tracestate: String::new(),
    };
    let encoded = rmp_serde::to_vec(&good).unwrap();
    for bytes in [
        rmp_serde::to_vec(&short).unwrap(),
        rmp_serde::to_vec(&text).unwrap(),
        rmp_serde::to_vec(&42u32).unwrap(),
        encoded[..encoded.len() - 5].to_vec(),
    ] {
        assert!(rmp_serde::from_slice::<TraceContext>(&bytes).is_err());
    }
    // JSON is checked as strictly.
    for (traceparent, message) in [
        (
            format!("00-{}-{P}-01", "0".repeat(32)),
            "trace-id is all zeros",
        ),
        ("garbage".to_owned(), "version must be"),
    ] {
        let json = serde_json::json!({ "traceparent": traceparent });
        let err = serde_json::from_value::<TraceContext>(json)
            .unwrap_err()
            .to_string();
        assert!(err.contains(message), "{err:?} lacks {message:?}");
    }
}

/// Arbitrary inputs (including multi-byte chars at every offset) never panic,
/// and whatever parses re-formats to something that parses to the same value.
#[test]
fn never_panics_on_arbitrary_input() {
    let pieces = [
        "0", "1", "a", "f", "F", "-", " ", "\t", "é", "😀", "=", ",", "@", "z", "00-", "cc-", IDS,
    ];
    let mut inputs: Vec<String> = (0..TP.len())
        .map(|i| format!("{}é{}", &TP[..i], &TP[i + 1..]))
        .chain((0..=TP.len()).map(|i| TP[..i].to_owned()))
        .collect();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed as usize
    };
    for _ in 0..5000 {
        let len = next() % 24;
        inputs.push((0..len).map(|_| pieces[next() % pieces.len()]).collect());
    }
    let mut parsed = 0;
    for s in &inputs {
        if let Ok(tp) = TraceParent::parse(s) {
            assert_eq!(TraceParent::parse(&tp.to_string()), Ok(tp), "{s:?}");
            parsed += 1;
        }
        if let Ok(ts) = TraceState::parse(s) {
            assert_eq!(TraceState::parse(&ts.header()), Ok(ts), "{s:?}");
        }
        let _ = TraceContext::parse(s, Some(s));
    }
    assert!(
        parsed > 1,
        "the generator should produce valid traceparents too"
    );
}
