//! The exporter actor: drains the span queue in batches into a sink.
//!
//! Its pump runs in a task the actor owns; the queue's receiver sits behind a mutex the
//! pump holds while it runs, so a restarted actor's pump takes it over where the last one
//! left it. Stopping the actor sends what is still queued once more, within a bound.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::{Duration, Instant};

use neuroflow_kit::actor::{Actor, ActorError, Ctx};
use neuroflow_kit::protocol::telemetry::{ExporterMsg, ExporterStatus};
use opentelemetry_sdk::trace::SpanData;
use tokio::task::JoinHandle;

use crate::metrics::ExporterMetrics;
use crate::otlp_metrics::MetricsPush;
use crate::queue::SpanInbox;
use crate::sink::SpanSink;

/// How batches are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportSettings {
    /// Most spans in one batch.
    pub max_batch: usize,
    /// Longest a span waits in the queue: the pump comes round this often, or sooner
    /// once `max_batch` spans are queued (the queue's wake-up depth must match).
    pub linger: Duration,
    /// Bound on sending what is left when the actor stops.
    pub final_flush: Duration,
}

impl Default for ExportSettings {
    fn default() -> Self {
        Self {
            max_batch: 512,
            linger: Duration::from_secs(1),
            final_flush: Duration::from_secs(3),
        }
    }
}

/// Sends the node's finished spans to its collector, and its metrics when asked to.
pub struct ExporterActor {
    pub inbox: SpanInbox,
    pub sink: Arc<dyn SpanSink>,
    pub settings: ExportSettings,
    pub metrics: Option<MetricsSource>,
}

/// The node's registry, pushed to a collector every `interval`.
#[derive(Clone)]
pub struct MetricsSource {
    pub registry: Arc<neuroflow_kit::metrics::Metrics>,
    pub push: Arc<MetricsPush>,
    pub interval: Duration,
}

impl ExporterActor {
    /// Kind label of the exporter actor.
    pub const KIND: &'static str = "telemetry.exporter";
}

/// A running pump, and how many spans it has taken but not yet settled; and the
/// metrics push, if any.
pub struct Pump {
    task: JoinHandle<()>,
    in_flight: Arc<AtomicU64>,
    metrics_task: Option<JoinHandle<()>>,
}

impl Drop for Pump {
    fn drop(&mut self) {
        self.task.abort();
        if let Some(task) = &self.metrics_task {
            task.abort();
        }
    }
}

impl Actor for ExporterActor {
    const KIND: &'static str = ExporterActor::KIND;
    type Msg = ExporterMsg;
    type Reply = ExporterStatus;
    type State = Pump;
    type Args = ();

    async fn started(&self, _: &Ctx<Self>, (): ()) -> Result<Pump, ActorError> {
        let in_flight = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn(pump(
            self.inbox.clone(),
            self.sink.clone(),
            self.settings,
            in_flight.clone(),
        ));
        let metrics_task = self
            .metrics
            .clone()
            .map(|source| tokio::spawn(push_metrics(source, self.inbox.metrics.clone())));
        Ok(Pump {
            task,
            in_flight,
            metrics_task,
        })
    }

    async fn handle(
        &self,
        _: &Ctx<Self>,
        msg: ExporterMsg,
        pump: &mut Pump,
    ) -> Result<ExporterStatus, ActorError> {
        if msg == ExporterMsg::Flush {
            // Wake the pump now rather than at its linger, and wait (bounded) until the
            // queue and the batch in flight are settled.
            self.inbox.ready.notify_one();
            let deadline = Instant::now() + self.settings.linger * 2 + Duration::from_secs(30);
            while Instant::now() < deadline
                && (self.inbox.metrics.queued.get() > 0
                    || pump.in_flight.load(Ordering::Acquire) > 0)
            {
                tokio::time::sleep(Duration::from_millis(10)).await;
                // Spans queued since are part of what a flush promises to send.
                self.inbox.ready.notify_one();
            }
        }
        Ok(status(&self.inbox.metrics))
    }

    async fn stopped(&self, _: &Ctx<Self>, pump: &mut Pump) {
        pump.task.abort();
        // The aborted pump's guard is released once its task is dropped; then what is
        // left goes in one last batch.
        let left = async {
            let rx = self.inbox.rx.lock().await;
            let mut batch = Vec::new();
            while let Ok(span) = rx.try_recv() {
                batch.push(span);
            }
            if !batch.is_empty() {
                let n = i64::try_from(batch.len()).unwrap_or(i64::MAX);
                self.inbox.metrics.queued.sub(n);
                send(&*self.sink, &self.inbox.metrics, batch).await;
            }
        };
        if tokio::time::timeout(self.settings.final_flush, left)
            .await
            .is_err()
        {
            tracing::warn!("spans still queued at shutdown were not all sent in time");
        }
    }
}

fn status(metrics: &ExporterMetrics) -> ExporterStatus {
    ExporterStatus {
        exported: metrics.exported.get(),
        dropped: metrics.dropped.get(),
        failed: metrics.failed.get(),
        queued: u64::try_from(metrics.queued.get()).unwrap_or(0),
    }
}

/// Takes batches off the queue and sends them, until the queue closes or the task is
/// aborted: once per linger, or as soon as a batch's worth is queued or a flush is asked
/// for, it sends everything queued, in batches of at most `max_batch`.
async fn pump(
    inbox: SpanInbox,
    sink: Arc<dyn SpanSink>,
    settings: ExportSettings,
    in_flight: Arc<AtomicU64>,
) {
    let rx = inbox.rx.lock().await;
    loop {
        let _ = tokio::time::timeout(settings.linger, inbox.ready.notified()).await;
        loop {
            let (batch, closed) = take(&rx, settings.max_batch);
            let n = batch.len();
            if n > 0 {
                in_flight.store(n as u64, Ordering::Release);
                inbox
                    .metrics
                    .queued
                    .sub(i64::try_from(n).unwrap_or(i64::MAX));
                send(&*sink, &inbox.metrics, batch).await;
                in_flight.store(0, Ordering::Release);
            }
            if closed {
                return;
            }
            if n < settings.max_batch {
                break;
            }
        }
    }
}

/// Up to `max` queued spans, and whether the queue has closed.
fn take(rx: &Receiver<SpanData>, max: usize) -> (Vec<SpanData>, bool) {
    let mut batch = Vec::new();
    while batch.len() < max {
        match rx.try_recv() {
            Ok(span) => batch.push(span),
            Err(TryRecvError::Empty) => return (batch, false),
            Err(TryRecvError::Disconnected) => return (batch, true),
        }
    }
    (batch, false)
}

/// Pushes the registry every interval, for as long as the actor runs.
async fn push_metrics(source: MetricsSource, counters: ExporterMetrics) {
    let mut tick = tokio::time::interval(source.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let families = source.registry.gather();
        match source.push.push(&families).await {
            Ok(()) => counters.pushes_ok.inc(),
            Err(e) => {
                counters.pushes_failed.inc();
                tracing::warn!(error = %e, "metrics not pushed to the collector");
            }
        }
    }
}

/// Sends one batch and counts what became of it.
async fn send(sink: &dyn SpanSink, metrics: &ExporterMetrics, batch: Vec<SpanData>) {
    let n = batch.len() as u64;
    let began = Instant::now();
    let result = sink.export(batch).await;
    metrics
        .export_seconds
        .observe(began.elapsed().as_secs_f64());
    match result {
        Ok(()) => metrics.exported.inc_by(n),
        Err(e) => {
            metrics.failed.inc_by(n);
            tracing::warn!(spans = n, error = %e, "span batch not exported");
        }
    }
}
