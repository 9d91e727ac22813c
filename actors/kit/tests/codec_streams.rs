//! Codec streams: the frame-error counter and cancel safety of reader and writer.

mod codec_common;

use codec_common::*;

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
