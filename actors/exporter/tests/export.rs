//! The exporter actor against a recording sink: batches arrive whole, a failing collector
//! is counted, a full queue drops and counts, and a restarted actor takes the queue over.
//! (The real collector is exercised by the node's OTLP test.)

use std::sync::{Arc, Mutex};
use std::time::Duration;

use neuroflow_exporter::{
    ExportSettings, ExporterActor, ExporterMetrics, SinkFuture, SpanSink, span_queue,
};
use neuroflow_kit::ActorHandle;
use neuroflow_kit::metrics::Metrics;
use neuroflow_kit::protocol::telemetry::ExporterMsg;
use neuroflow_kit::supervisor::{
    ChildSpec, Strategy, Supervisor, SupervisorHandle, SupervisorSpec,
};
use opentelemetry::trace::{Span, Tracer, TracerProvider};
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData};

const T: Duration = Duration::from_secs(10);

/// Keeps every batch; fails while `failing` is set.
#[derive(Default)]
struct Recorder {
    batches: Mutex<Vec<Vec<String>>>,
    failing: Mutex<bool>,
}

impl SpanSink for Recorder {
    fn export(&self, batch: Vec<SpanData>) -> SinkFuture {
        let failing = *self.failing.lock().unwrap();
        if !failing {
            let names = batch.iter().map(|s| s.name.to_string()).collect();
            self.batches.lock().unwrap().push(names);
        }
        Box::pin(async move {
            if failing {
                Err("collector down".into())
            } else {
                Ok(())
            }
        })
    }
}

struct Fixture {
    provider: SdkTracerProvider,
    /// Keeps the queue open while no exporter runs.
    _inbox: neuroflow_exporter::SpanInbox,
    recorder: Arc<Recorder>,
    exporter: ActorHandle<ExporterActor>,
    root: SupervisorHandle,
    registry: Arc<Metrics>,
}

const BATCH: usize = 4;

async fn fixture(capacity: usize) -> Fixture {
    fixture_lingering(capacity, Duration::from_millis(200)).await
}

async fn fixture_lingering(capacity: usize, linger: Duration) -> Fixture {
    let metrics = ExporterMetrics::new();
    let (queue, inbox) = span_queue(capacity, BATCH, metrics.clone());
    let provider = SdkTracerProvider::builder()
        .with_span_processor(queue)
        .build();
    let recorder = Arc::new(Recorder::default());
    let sink: Arc<dyn SpanSink> = recorder.clone();
    let kept = inbox.clone();
    let settings = ExportSettings {
        max_batch: BATCH,
        linger,
        final_flush: Duration::from_secs(2),
    };
    let (spec, exporter) = ChildSpec::actor("exporter", move || {
        let actor = ExporterActor {
            inbox: inbox.clone(),
            sink: sink.clone(),
            settings,
            metrics: None,
        };
        (actor, ())
    });
    let registry = Metrics::new().unwrap();
    metrics.register(&registry).unwrap();
    let (root, _) = Supervisor::start_root(
        SupervisorSpec::new("telemetry", Strategy::OneForOne).child(spec),
        registry.clone(),
    )
    .await
    .unwrap();
    Fixture {
        provider,
        _inbox: kept,
        recorder,
        exporter,
        root,
        registry,
    }
}

fn end_spans(provider: &SdkTracerProvider, names: &[&str]) {
    let tracer = provider.tracer("test");
    for name in names {
        tracer.start(name.to_string()).end();
    }
}

#[tokio::test]
async fn spans_arrive_in_batches_and_are_counted() {
    let f = fixture(64).await;
    end_spans(&f.provider, &["a", "b", "c", "d", "e", "f"]);
    let status = f.exporter.call(ExporterMsg::Flush, T).await.unwrap();
    assert_eq!(
        (
            status.exported,
            status.dropped,
            status.failed,
            status.queued
        ),
        (6, 0, 0, 0)
    );
    let batches = f.recorder.batches.lock().unwrap().clone();
    assert!(batches.iter().all(|b| b.len() <= 4), "{batches:?}");
    let all: Vec<String> = batches.concat();
    assert_eq!(all, ["a", "b", "c", "d", "e", "f"]);
    let text = f.registry.render();
    assert!(
        text.contains(r#"neuroflow_exporter_spans_total{outcome="exported"} 6"#),
        "{text}"
    );
    f.root.stop(T).await;
}

#[tokio::test]
async fn a_failing_collector_and_a_full_queue_are_counted_not_fatal() {
    let f = fixture(3).await;
    *f.recorder.failing.lock().unwrap() = true;
    end_spans(&f.provider, &["lost-1", "lost-2"]);
    let status = f.exporter.call(ExporterMsg::Flush, T).await.unwrap();
    assert_eq!((status.exported, status.failed), (0, 2));

    // With no exporter draining it, a queue of 3 takes 3 of 10 spans; the rest are
    // dropped and counted, and nothing waits.
    f.root.stop_child("exporter", T).await.unwrap();
    end_spans(
        &f.provider,
        &["1", "2", "3", "4", "5", "6", "7", "8", "9", "10"],
    );
    let text = f.registry.render();
    assert!(
        text.contains(r#"neuroflow_exporter_spans_total{outcome="dropped"} 7"#),
        "{text}"
    );
    assert!(text.contains("neuroflow_exporter_queue_spans 3"), "{text}");
    f.root.stop(T).await;
}

#[tokio::test]
async fn a_restarted_exporter_takes_the_queue_over() {
    let f = fixture(64).await;
    end_spans(&f.provider, &["before"]);
    f.exporter.call(ExporterMsg::Flush, T).await.unwrap();
    f.root.inject_failure("exporter", "test", T).await.unwrap();
    end_spans(&f.provider, &["after"]);
    let mut status = f.exporter.call(ExporterMsg::Flush, T).await;
    for _ in 0..100 {
        if matches!(&status, Ok(s) if s.exported == 2) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        status = f.exporter.call(ExporterMsg::Flush, T).await;
    }
    assert_eq!(status.unwrap().exported, 2);
    assert_eq!(
        f.recorder.batches.lock().unwrap().concat(),
        ["before", "after"]
    );
    f.root.stop(T).await;
}

/// Exported spans as the registry counts them, once `want` are or 5 s have passed.
async fn exported_within_5s(f: &Fixture, want: u64) -> u64 {
    let line = r#"neuroflow_exporter_spans_total{outcome="exported"} "#;
    let count = || {
        f.registry
            .render()
            .lines()
            .find_map(|l| l.strip_prefix(line).and_then(|n| n.parse().ok()))
            .unwrap_or(0)
    };
    for _ in 0..250 {
        if count() >= want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    count()
}

#[tokio::test]
async fn a_full_batch_goes_without_waiting_for_the_linger() {
    let f = fixture_lingering(64, Duration::from_secs(3600)).await;
    end_spans(&f.provider, &["a", "b", "c"]);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        f.recorder.batches.lock().unwrap().len(),
        0,
        "less than a batch waits"
    );
    end_spans(&f.provider, &["d"]);
    assert_eq!(exported_within_5s(&f, 4).await, 4);
    assert_eq!(
        f.recorder.batches.lock().unwrap().concat(),
        ["a", "b", "c", "d"]
    );
    f.root.stop(T).await;
}

#[tokio::test]
async fn a_partial_batch_goes_when_the_linger_is_up() {
    let f = fixture_lingering(64, Duration::from_millis(100)).await;
    end_spans(&f.provider, &["alone"]);
    assert_eq!(exported_within_5s(&f, 1).await, 1);
    f.root.stop(T).await;
}
