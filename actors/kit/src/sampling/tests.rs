use std::cell::Cell;

use super::*;
use crate::envelope::Envelope;

const SAMPLED: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
const UNSAMPLED: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00";

fn trace(header: &str) -> TraceContext {
    TraceContext::parse(header, None).unwrap()
}

/// Opens at `ratio` and says whether the span was made.
fn opened(incoming: Option<TraceContext>, ratio: f64) -> (bool, Traced) {
    let made = Cell::new(false);
    let traced = open_with(
        incoming,
        || {
            made.set(true);
            tracing::Span::none()
        },
        ratio,
    );
    (made.get(), traced)
}

#[test]
fn a_callers_decision_is_followed_whatever_the_ratio() {
    let (made, traced) = opened(Some(trace(SAMPLED)), 0.0);
    assert!(made, "a sampled caller's trace is recorded at ratio 0");
    assert_eq!(traced.scope, Some(trace(SAMPLED)));

    let (made, traced) = opened(Some(trace(UNSAMPLED)), 1.0);
    assert!(
        !made,
        "an unsampled caller's trace opens no span at ratio 1"
    );
    assert_eq!(traced.trace(), Some(trace(UNSAMPLED)));
}

#[test]
fn new_traces_roll_against_the_ratio() {
    assert!((0..200).all(|_| opened(None, 1.0).0));
    let skipped: Vec<TraceContext> = (0..200)
        .map(|_| {
            let (made, traced) = opened(None, 0.0);
            assert!(!made);
            traced.trace().expect("an unsampled context to run under")
        })
        .collect();
    for t in &skipped {
        assert!(t.parent.is_valid() && !t.parent.flags.sampled(), "{t:?}");
    }
    let distinct: std::collections::HashSet<_> =
        skipped.iter().map(|t| t.parent.trace_id).collect();
    assert_eq!(
        distinct.len(),
        skipped.len(),
        "each new trace has its own id"
    );
    // Binomial(4000, 0.25): mean 1000, standard deviation 27; the bounds are 9 of them.
    let recorded = (0..4000).filter(|_| opened(None, 0.25).0).count();
    assert!(
        (750..=1250).contains(&recorded),
        "{recorded} of 4000 at 0.25"
    );
}

#[tokio::test]
async fn work_in_an_unsampled_trace_opens_no_span_and_passes_the_trace_on() {
    let root = opened(None, 0.0).1;
    let expected = root.trace();
    let (made, sent) = root
        .run(async {
            // A step of the work (an LLM call, a tool) decides in the same trace…
            let (made, step) = opened(None, 1.0);
            // …and a message it sends carries it, unsampled.
            let sent = step.run(async { Envelope::new(()).trace }).await;
            (made, sent)
        })
        .await;
    assert!(!made, "nothing under an unsampled root is recorded");
    assert_eq!(sent.map(|t| *t), expected);
}

#[tokio::test]
async fn work_in_a_sampled_trace_is_recorded_at_any_ratio() {
    let made = propagation::with_trace(trace(SAMPLED), tracing::Span::none(), async {
        opened(None, 0.0).0
    })
    .await;
    assert!(made);
}

#[test]
fn the_ratio_is_clamped() {
    // The only test that sets the process-wide ratio.
    set_ratio(7.0);
    assert_eq!(ratio(), 1.0);
    set_ratio(-1.0);
    assert_eq!(ratio(), 0.0);
    set_ratio(f64::NAN);
    assert_eq!(ratio(), 1.0);
}
