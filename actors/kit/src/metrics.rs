//! Per-actor metrics, rendered as Prometheus text.
//!
//! Every actor hosted by the kit (and every supervisor) reports the same families, labelled
//! by `kind` and `name`. `name` is the actor's path for singletons; actors that exist in
//! unbounded numbers (one per agent, per sandbox, ...) are started as *pooled* children and
//! report `name="*"`, so the label set stays bounded however many of them run.

use std::sync::Arc;

use prometheus::core::Collector;
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Label value used for the `name` of pooled actors.
pub const POOLED_NAME: &str = "*";

/// Handling-time buckets in seconds: from a few microseconds (in-memory handlers) up to
/// ten seconds (handlers that wait on an LLM or a sandbox).
const HANDLING_BUCKETS: &[f64] = &[
    0.000_005, 0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005,
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The metric registry of one runtime (a node, or a test).
///
/// Each runtime owns its registry rather than using a process-global one, so that several
/// runtimes in one process (tests, embedding) never mix their figures.
pub struct Metrics {
    registry: Registry,
    handled: IntCounterVec,
    handling_seconds: HistogramVec,
    queued: IntGaugeVec,
    failures: IntCounterVec,
    restarts: IntCounterVec,
    expired: IntCounterVec,
    frame_errors: IntCounterVec,
}

/// A metric family failed to register: only possible through a programming error
/// (two families with one name), reported instead of panicking.
#[derive(Debug, thiserror::Error)]
#[error("metric registration failed: {0}")]
pub struct MetricsError(#[from] prometheus::Error);

impl Metrics {
    pub fn new() -> Result<Arc<Self>, MetricsError> {
        let registry = Registry::new();
        let labels = &["kind", "name"];
        let counter = |name: &str, help: &str| {
            registered(
                &registry,
                IntCounterVec::new(Opts::new(name, help), labels)?,
            )
        };
        let handled = counter(
            "neuroflow_actor_messages_handled_total",
            "Messages an actor has finished handling.",
        )?;
        let failures = counter(
            "neuroflow_actor_failures_total",
            "Times an actor failed (handler error, panic or injected fault).",
        )?;
        let restarts = counter(
            "neuroflow_actor_restarts_total",
            "Times a supervisor restarted an actor.",
        )?;
        let expired = counter(
            "neuroflow_actor_messages_expired_total",
            "Messages dropped unhandled because their deadline had passed.",
        )?;
        let handling_seconds = registered(
            &registry,
            HistogramVec::new(
                HistogramOpts::new(
                    "neuroflow_actor_handling_seconds",
                    "Time an actor spent handling one message.",
                )
                .buckets(HANDLING_BUCKETS.to_vec()),
                labels,
            )?,
        )?;
        let queued = registered(
            &registry,
            IntGaugeVec::new(
                Opts::new(
                    "neuroflow_actor_mailbox_depth",
                    "Messages sent to an actor and not yet taken up by it.",
                ),
                labels,
            )?,
        )?;
        let frame_errors = registered(
            &registry,
            IntCounterVec::new(
                Opts::new(
                    "neuroflow_frame_errors_total",
                    "Wire frames rejected by a frame reader, by reason.",
                ),
                &["reason"],
            )?,
        )?;
        Ok(Arc::new(Self {
            registry,
            handled,
            handling_seconds,
            queued,
            failures,
            restarts,
            expired,
            frame_errors,
        }))
    }

    /// The handles for one actor; cheap to clone, shared by every incarnation of it so
    /// that counts continue across restarts.
    pub fn actor(&self, kind: &str, name: &str) -> ActorMetrics {
        let l = &[kind, name];
        ActorMetrics(Arc::new(ActorMetricsInner {
            handled: self.handled.with_label_values(l),
            handling_seconds: self.handling_seconds.with_label_values(l),
            queued: self.queued.with_label_values(l),
            failures: self.failures.with_label_values(l),
            restarts: self.restarts.with_label_values(l),
            expired: self.expired.with_label_values(l),
        }))
    }

    /// Counter to hand to a [`crate::codec::FrameReader`] so that bad frames are counted.
    pub fn frame_errors(&self) -> IntCounterVec {
        self.frame_errors.clone()
    }

    /// Registers a family of a component's own (a node, an exporter) and returns it.
    pub fn register<C: Collector + Clone + 'static>(&self, family: C) -> Result<C, MetricsError> {
        registered(&self.registry, family)
    }

    /// Sum over every series of each counter or gauge family named in `names` (0 for a
    /// family not registered), optionally only the series whose `label` has `value`.
    pub fn totals(&self, names: &[&str], only: Option<(&str, &str)>) -> Vec<f64> {
        let families = self.registry.gather();
        names
            .iter()
            .map(|name| {
                families
                    .iter()
                    .filter(|f| f.name() == *name)
                    .flat_map(|f| f.get_metric())
                    .filter(|m| {
                        only.is_none_or(|(label, value)| {
                            m.get_label()
                                .iter()
                                .any(|l| l.name() == label && l.value() == value)
                        })
                    })
                    // An unset counter reads 0, so the sum of both fits either kind.
                    .map(|m| m.get_counter().get_value() + m.get_gauge().get_value())
                    .sum()
            })
            .collect()
    }

    /// Every registered family, as it is now.
    pub fn gather(&self) -> Vec<prometheus::proto::MetricFamily> {
        self.registry.gather()
    }

    /// Everything registered, in the Prometheus text exposition format (0.0.4).
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        // Encoding into a Vec only fails on invalid metric families, which registration
        // already rejected; an empty page is the safe answer if it ever happens.
        if TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .is_err()
        {
            out.clear();
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

fn registered<C: Collector + Clone + 'static>(
    registry: &Registry,
    family: C,
) -> Result<C, MetricsError> {
    registry.register(Box::new(family.clone()))?;
    Ok(family)
}

/// Metric handles of one actor.
#[derive(Clone)]
pub struct ActorMetrics(Arc<ActorMetricsInner>);

struct ActorMetricsInner {
    handled: IntCounter,
    handling_seconds: Histogram,
    queued: IntGauge,
    failures: IntCounter,
    restarts: IntCounter,
    expired: IntCounter,
}

impl ActorMetrics {
    pub fn record_handled(&self, seconds: f64) {
        self.0.handled.inc();
        self.0.handling_seconds.observe(seconds);
    }

    pub fn record_failure(&self) {
        self.0.failures.inc();
    }

    pub fn record_restart(&self) {
        self.0.restarts.inc();
    }

    pub fn record_expired(&self) {
        self.0.expired.inc();
    }

    pub fn handled(&self) -> u64 {
        self.0.handled.get()
    }

    pub fn failures(&self) -> u64 {
        self.0.failures.get()
    }

    pub fn restarts(&self) -> u64 {
        self.0.restarts.get()
    }

    pub fn expired(&self) -> u64 {
        self.0.expired.get()
    }

    pub fn mailbox_depth(&self) -> i64 {
        self.0.queued.get()
    }

    /// Marks one message as queued until the returned token is dropped: the token travels
    /// inside the message, so a message dropped with a dead mailbox is un-counted too.
    pub fn enqueue(&self) -> QueuedToken {
        self.0.queued.inc();
        QueuedToken(self.0.queued.clone())
    }
}

/// Holds one unit of an actor's mailbox-depth gauge; see [`ActorMetrics::enqueue`].
pub struct QueuedToken(IntGauge);

impl Drop for QueuedToken {
    fn drop(&mut self) {
        self.0.dec();
    }
}
