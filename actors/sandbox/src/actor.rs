//! The sandbox as actors: one [`SandboxActor`] per running sandbox, under the node's
//! `sandboxes` supervisor.
//!
//! [`exec_supervised`] starts a temporary, pooled child for one request, calls it, and
//! stops it. The run lives inside the actor's handler, so stopping or crashing the actor
//! drops the run, which kills the sandbox's process tree and removes its cgroup.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use neuroflow_kit::actor::{Actor, ActorError, CallError, Ctx};
use neuroflow_kit::metrics::{Metrics, MetricsError};
use neuroflow_kit::protocol::sandbox::{EndReason, ExecOutcome, SandboxMsg, SandboxReply};
use neuroflow_kit::sampling;
use neuroflow_kit::span_value::int;
use neuroflow_kit::supervisor::{ChildSpec, Restart, SupervisorError, SupervisorHandle};
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts};

use crate::sandbox::Sandbox;

/// Runs the commands sent to it in its sandbox.
pub struct SandboxActor {
    sandbox: Sandbox,
    metrics: Option<SandboxMetrics>,
}

impl SandboxActor {
    pub fn new(sandbox: Sandbox, metrics: Option<SandboxMetrics>) -> Self {
        Self { sandbox, metrics }
    }
}

impl Actor for SandboxActor {
    const KIND: &'static str = "sandbox";
    type Msg = SandboxMsg;
    type Reply = SandboxReply;
    type State = ();
    type Args = ();

    async fn started(&self, _: &Ctx<Self>, (): ()) -> Result<(), ActorError> {
        Ok(())
    }

    async fn handle(
        &self,
        _: &Ctx<Self>,
        msg: SandboxMsg,
        _: &mut (),
    ) -> Result<SandboxReply, ActorError> {
        let SandboxMsg::Exec(req) = msg;
        let profile = self.sandbox.profile().name.clone();
        let traced = sampling::open(None, || {
            tracing::info_span!(
                "sandbox.exec",
                otel.name = %format_args!("sandbox.exec {}", req.command),
                neuroflow.sandbox.profile = %profile,
                process.executable.name = %req.command,
                neuroflow.sandbox.end_reason = tracing::field::Empty,
                process.exit.code = tracing::field::Empty,
                neuroflow.sandbox.wall_time_us = tracing::field::Empty,
                neuroflow.sandbox.cpu_time_us = tracing::field::Empty,
                neuroflow.sandbox.peak_memory_bytes = tracing::field::Empty,
                error.type = tracing::field::Empty,
            )
        });
        let span = traced.span().clone();
        let result = traced.run(self.sandbox.exec(req)).await;
        Ok(match result {
            Ok(outcome) => {
                span.record("neuroflow.sandbox.end_reason", outcome.end.as_str());
                if let Some(code) = outcome.exit_code {
                    span.record("process.exit.code", code);
                }
                span.record(
                    "neuroflow.sandbox.wall_time_us",
                    int(outcome.usage.wall_time_us),
                );
                span.record(
                    "neuroflow.sandbox.cpu_time_us",
                    int(outcome.usage.cpu_time_us),
                );
                span.record(
                    "neuroflow.sandbox.peak_memory_bytes",
                    int(outcome.usage.peak_memory_bytes),
                );
                if let Some(m) = &self.metrics {
                    m.observe(&profile, &outcome);
                }
                SandboxReply::Done(outcome)
            }
            Err(err) => {
                let layer = err.layer_name().unwrap_or("none");
                span.record("error.type", layer);
                if let Some(m) = &self.metrics {
                    m.refused(&profile, layer);
                }
                SandboxReply::Refused((&err).into())
            }
        })
    }
}

/// Why [`exec_supervised`] got no reply.
#[derive(Debug, thiserror::Error)]
pub enum SupervisedExecError {
    #[error("cannot start a sandbox actor: {0}")]
    Start(#[from] SupervisorError),
    #[error(transparent)]
    Call(#[from] CallError),
}

/// Runs `req` in a fresh [`SandboxActor`] under `supervisor` and returns its reply.
/// `timeout` bounds the whole call; the sandbox's own wall-clock limit normally ends the
/// command well before it.
pub async fn exec_supervised(
    supervisor: &SupervisorHandle,
    sandbox: &Sandbox,
    metrics: Option<SandboxMetrics>,
    req: neuroflow_kit::protocol::sandbox::ExecRequest,
    timeout: Duration,
) -> Result<SandboxReply, SupervisedExecError> {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let name = format!("sandbox-{}", NEXT.fetch_add(1, Ordering::Relaxed));
    let sandbox = sandbox.clone();
    let (spec, handle) = ChildSpec::actor(&name, move || {
        (SandboxActor::new(sandbox.clone(), metrics.clone()), ())
    });
    let spec = spec.restart(Restart::Temporary).pooled();
    supervisor.start_child(spec, timeout).await?;
    let reply = handle.call(SandboxMsg::Exec(req), timeout).await;
    // Stopping drops an unfinished run, which tears its sandbox down.
    let _ = supervisor.stop_child(&name, timeout).await;
    Ok(reply?)
}

/// Per-sandbox figures, by profile (and end reason).
#[derive(Clone)]
pub struct SandboxMetrics {
    start_seconds: HistogramVec,
    cpu_seconds: HistogramVec,
    peak_memory_bytes: HistogramVec,
    peak_pids: HistogramVec,
    output_bytes: IntCounterVec,
    ends: IntCounterVec,
    refusals: IntCounterVec,
}

impl SandboxMetrics {
    pub fn register(metrics: &Metrics) -> Result<Self, MetricsError> {
        let histogram = |name: &str, help: &str, buckets: Vec<f64>| {
            metrics.register(
                HistogramVec::new(
                    HistogramOpts::new(name, help).buckets(buckets),
                    &["profile"],
                )
                .map_err(MetricsError::from)?,
            )
        };
        let counter = |name: &str, help: &str, labels: &[&str]| {
            metrics.register(
                IntCounterVec::new(Opts::new(name, help), labels).map_err(MetricsError::from)?,
            )
        };
        let exp = |start: f64, factor: f64, n: usize| {
            prometheus::exponential_buckets(start, factor, n).unwrap_or_default()
        };
        let m = Self {
            start_seconds: histogram(
                "neuroflow_sandbox_start_seconds",
                "Time from an exec request to the command's exec.",
                exp(0.000_5, 2.0, 14),
            )?,
            cpu_seconds: histogram(
                "neuroflow_sandbox_cpu_seconds",
                "CPU time (user + system) of a sandbox's whole process tree.",
                exp(0.001, 4.0, 10),
            )?,
            peak_memory_bytes: histogram(
                "neuroflow_sandbox_peak_memory_bytes",
                "Peak memory of a sandbox's whole process tree.",
                exp(1_048_576.0, 2.0, 14),
            )?,
            peak_pids: histogram(
                "neuroflow_sandbox_peak_pids",
                "Most processes alive at once in a sandbox.",
                exp(1.0, 2.0, 12),
            )?,
            output_bytes: counter(
                "neuroflow_sandbox_output_bytes_total",
                "Bytes sandboxed commands wrote to stdout and stderr.",
                &["profile"],
            )?,
            ends: counter(
                "neuroflow_sandbox_ends_total",
                "Sandboxed commands ended, by why they ended.",
                &["profile", "reason"],
            )?,
            refusals: counter(
                "neuroflow_sandbox_refusals_total",
                "Exec requests a sandbox refused, by the layer at fault.",
                &["profile", "layer"],
            )?,
        };
        // Every reason is present from the start, so rates and alerts see zeros, not gaps.
        for profile in crate::profile::Profile::BUILTIN_NAMES {
            for reason in EndReason::ALL {
                m.ends.with_label_values(&[profile, reason.as_str()]);
            }
        }
        Ok(m)
    }

    fn observe(&self, profile: &str, outcome: &ExecOutcome) {
        let u = &outcome.usage;
        let labels = &[profile];
        self.start_seconds
            .with_label_values(labels)
            .observe(u.start_latency_us as f64 / 1e6);
        self.cpu_seconds
            .with_label_values(labels)
            .observe(u.cpu_time_us as f64 / 1e6);
        self.peak_memory_bytes
            .with_label_values(labels)
            .observe(u.peak_memory_bytes as f64);
        self.peak_pids
            .with_label_values(labels)
            .observe(u.peak_pids as f64);
        self.output_bytes
            .with_label_values(labels)
            .inc_by(u.bytes_out);
        self.ends
            .with_label_values(&[profile, outcome.end.as_str()])
            .inc();
    }

    fn refused(&self, profile: &str, layer: &str) {
        self.refusals.with_label_values(&[profile, layer]).inc();
    }
}
