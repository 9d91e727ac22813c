//! Trace propagation: a chain of actor calls A → B → C yields one trace whose spans link
//! parent to child, continuing the caller's trace.

use std::time::Duration;

use neuroflow_kit::actor::{Actor, ActorError, ActorHandle, Ctx};
use neuroflow_kit::envelope::Envelope;
use neuroflow_kit::metrics::Metrics;
use neuroflow_kit::propagation;
use neuroflow_kit::supervisor::{Backoff, ChildSpec, Strategy, Supervisor, SupervisorSpec};
use neuroflow_kit::trace_context::TraceContext;
use opentelemetry::trace::{SpanId, TraceContextExt, TracerProvider as _};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;

const T: Duration = Duration::from_secs(2);

/// Forwards each message to the next hop, if any; the last hop answers with the trace
/// context it would propagate and the sender it saw.
struct Hop {
    next: Option<ActorHandle<Hop>>,
}

impl Actor for Hop {
    const KIND: &'static str = "test.hop";
    type Msg = String;
    type Reply = Vec<String>;
    type State = ();
    type Args = ();

    async fn started(&self, _: &Ctx<Self>, _: ()) -> Result<(), ActorError> {
        Ok(())
    }

    async fn handle(
        &self,
        ctx: &Ctx<Self>,
        msg: String,
        _: &mut (),
    ) -> Result<Vec<String>, ActorError> {
        let mut seen = match &self.next {
            Some(next) => next.call(msg, T).await?,
            None => Vec::new(),
        };
        let trace = propagation::current_trace().map(|t| t.traceparent_header());
        seen.push(format!("{}:{}", ctx.path(), trace.unwrap_or_default()));
        Ok(seen)
    }
}

async fn chain() -> (
    neuroflow_kit::supervisor::SupervisorHandle,
    ActorHandle<Hop>,
) {
    let (sc, c) = ChildSpec::actor("c", || (Hop { next: None }, ()));
    let c2 = c.clone();
    let (sb, b) = ChildSpec::actor("b", move || {
        (
            Hop {
                next: Some(c2.clone()),
            },
            (),
        )
    });
    let b2 = b.clone();
    let (sa, a) = ChildSpec::actor("a", move || {
        (
            Hop {
                next: Some(b2.clone()),
            },
            (),
        )
    });
    let spec = SupervisorSpec::new("t", Strategy::OneForOne)
        .backoff(Backoff::NONE)
        .child(sc)
        .child(sb)
        .child(sa);
    let (root, _) = Supervisor::start_root(spec, Metrics::new().unwrap())
        .await
        .unwrap();
    (root, a)
}

fn recording() -> (
    SdkTracerProvider,
    InMemorySpanExporter,
    impl tracing::Subscriber,
) {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("test"));
    (
        provider,
        exporter,
        tracing_subscriber::registry().with(layer),
    )
}

fn by_name<'a>(spans: &'a [SpanData], name: &str) -> &'a SpanData {
    spans.iter().find(|s| s.name == name).unwrap_or_else(|| {
        panic!(
            "no span {name} in {:?}",
            spans.iter().map(|s| &s.name).collect::<Vec<_>>()
        )
    })
}

fn handled_by<'a>(spans: &'a [SpanData], path: &str) -> &'a SpanData {
    spans
        .iter()
        .find(|s| {
            s.attributes
                .iter()
                .any(|kv| kv.key.as_str() == "neuroflow.actor.path" && kv.value.as_str() == path)
        })
        .unwrap_or_else(|| panic!("no span handled by {path}"))
}

// current_thread runtime: the thread-local subscriber covers every actor task.
#[tokio::test(flavor = "current_thread")]
async fn a_chain_of_calls_is_one_trace_with_parent_links() {
    let (provider, exporter, subscriber) = recording();
    let _guard = tracing::subscriber::set_default(subscriber);
    let (root, a) = chain().await;

    let request = tracing::info_span!("request");
    let seen = {
        let _enter = request.enter();
        a.call("hello".to_string(), T).await.unwrap()
    };
    drop(request);
    root.stop(T).await;
    provider.force_flush().unwrap();
    let spans = exporter.get_finished_spans().unwrap();

    let request = by_name(&spans, "request");
    let trace_id = request.span_context.trace_id();
    let (sa, sb, sc) = (
        handled_by(&spans, "t/a"),
        handled_by(&spans, "t/b"),
        handled_by(&spans, "t/c"),
    );
    for s in [sa, sb, sc] {
        assert_eq!(
            s.span_context.trace_id(),
            trace_id,
            "{} left the trace",
            s.name
        );
        assert_eq!(s.name, "process test.hop");
    }
    assert_eq!(sa.parent_span_id, request.span_context.span_id());
    assert_eq!(sb.parent_span_id, sa.span_context.span_id());
    assert_eq!(sc.parent_span_id, sb.span_context.span_id());
    // Inside C the context to propagate is C's own span.
    let expected = format!("t/c:00-{}-{}-01", trace_id, sc.span_context.span_id());
    assert_eq!(seen[0], expected);
}

#[tokio::test(flavor = "current_thread")]
async fn an_incoming_w3c_context_becomes_the_parent_of_the_first_hop() {
    let (provider, exporter, subscriber) = recording();
    let _guard = tracing::subscriber::set_default(subscriber);
    let (root, a) = chain().await;

    let incoming = TraceContext::parse(
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        Some("congo=t61rcWkgMzE"),
    )
    .unwrap();
    let envelope = Envelope::new("hi".to_string()).with_trace(Some(incoming.clone()));
    a.call_envelope(envelope, T).await.unwrap();
    root.stop(T).await;
    provider.force_flush().unwrap();
    let spans = exporter.get_finished_spans().unwrap();

    let sa = handled_by(&spans, "t/a");
    assert_eq!(
        sa.span_context.trace_id().to_string(),
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
    assert_eq!(
        sa.parent_span_id,
        SpanId::from_hex("00f067aa0ba902b7").unwrap()
    );
    assert!(sa.parent_span_is_remote);
    assert_eq!(sa.span_context.trace_state().header(), "congo=t61rcWkgMzE");
    let sc = handled_by(&spans, "t/c");
    assert_eq!(sc.span_context.trace_id(), sa.span_context.trace_id());
}

#[tokio::test]
async fn without_an_opentelemetry_layer_the_incoming_context_is_still_carried() {
    let (root, a) = chain().await;
    let header = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let incoming = TraceContext::parse(header, None).unwrap();
    let envelope = Envelope::new("hi".to_string()).with_trace(Some(incoming));
    let seen = a.call_envelope(envelope, T).await.unwrap();
    assert_eq!(
        seen,
        [
            format!("t/c:{header}"),
            format!("t/b:{header}"),
            format!("t/a:{header}")
        ]
    );
    root.stop(T).await;
}

#[tokio::test(flavor = "current_thread")]
async fn envelopes_capture_the_current_span_and_sender() {
    let (provider, _exporter, subscriber) = recording();
    let _guard = tracing::subscriber::set_default(subscriber);
    let span = tracing::info_span!("outside");
    let _enter = span.enter();
    let envelope = Envelope::new(1u8);
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    let trace = envelope.trace.expect("trace captured");
    assert_eq!(trace.parent.trace_id.to_string(), sc.trace_id().to_string());
    assert_eq!(trace.parent.parent_id.to_string(), sc.span_id().to_string());
    assert!(envelope.sender.is_none(), "no actor is handling here");
    drop(provider);
}
