//! Tool metrics: calls, latency and outcomes by tool.
//!
//! The `tool` label takes only registered names (bounded by what the node registers;
//! a tool's series are removed when it is unregistered). Calls naming no registered tool
//! are counted apart, without the name, since a model can invent any number of them.

use std::sync::OnceLock;

use prometheus::{Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts};

use neuroflow_kit::metrics::{Metrics, MetricsError};

/// Call-duration buckets in seconds: microseconds (in-memory tools) to minutes (sandboxes).
const BUCKETS: &[f64] = &[
    0.000_01, 0.000_05, 0.000_1, 0.000_5, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0,
    60.0, 300.0,
];

/// How a call ended, as the `outcome` label says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Ok,
    /// The tool ran and reported failure (`is_error`).
    Error,
    Panicked,
    Timeout,
    InvalidArguments,
    /// Refused for load (too many calls in flight on the shard).
    Unavailable,
    /// The caller went away before the tool finished; the tool was cancelled.
    Cancelled,
}

impl Outcome {
    const ALL: [Outcome; 7] = [
        Self::Ok,
        Self::Error,
        Self::Panicked,
        Self::Timeout,
        Self::InvalidArguments,
        Self::Unavailable,
        Self::Cancelled,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Error => "error",
            Self::Panicked => "panicked",
            Self::Timeout => "timeout",
            Self::InvalidArguments => "invalid_arguments",
            Self::Unavailable => "unavailable",
            Self::Cancelled => "cancelled",
        }
    }
}

/// The router's metric families.
pub struct ToolMetrics {
    calls: IntCounterVec,
    seconds: HistogramVec,
    unknown: IntCounter,
}

impl ToolMetrics {
    pub fn register(metrics: &Metrics) -> Result<Self, MetricsError> {
        let calls = metrics.register(IntCounterVec::new(
            Opts::new(
                "neuroflow_tool_calls_total",
                "Tool calls, by tool and outcome.",
            ),
            &["tool", "outcome"],
        )?)?;
        let seconds = metrics.register(HistogramVec::new(
            HistogramOpts::new(
                "neuroflow_tool_call_seconds",
                "Time from a tool call's start to its result (or deadline), by tool.",
            )
            .buckets(BUCKETS.to_vec()),
            &["tool"],
        )?)?;
        let unknown = metrics.register(IntCounter::new(
            "neuroflow_tool_unknown_calls_total",
            "Calls naming no registered tool.",
        )?)?;
        Ok(Self {
            calls,
            seconds,
            unknown,
        })
    }

    /// The series of one registered tool, made at its first call (an idle tool costs no
    /// series: with thousands of agents exposed as tools that is most of them) and then
    /// kept, so a call touches no label map.
    pub(crate) fn tool(&self, name: &str) -> ToolCounters {
        ToolCounters {
            name: name.to_string(),
            calls: self.calls.clone(),
            seconds: self.seconds.clone(),
            series: OnceLock::new(),
        }
    }

    /// Drops the series of an unregistered tool.
    pub(crate) fn forget(&self, name: &str) {
        for outcome in Outcome::ALL {
            let _ = self.calls.remove_label_values(&[name, outcome.as_str()]);
        }
        let _ = self.seconds.remove_label_values(&[name]);
    }

    pub(crate) fn unknown_call(&self) {
        self.unknown.inc();
    }
}

/// One tool's series, resolved on first use.
pub(crate) struct ToolCounters {
    name: String,
    calls: IntCounterVec,
    seconds: HistogramVec,
    series: OnceLock<([IntCounter; 7], Histogram)>,
}

impl ToolCounters {
    fn series(&self) -> &([IntCounter; 7], Histogram) {
        self.series.get_or_init(|| {
            let name = self.name.as_str();
            (
                Outcome::ALL.map(|o| self.calls.with_label_values(&[name, o.as_str()])),
                self.seconds.with_label_values(&[name]),
            )
        })
    }

    pub(crate) fn count(&self, outcome: Outcome) {
        self.series().0[outcome as usize].inc();
    }

    pub(crate) fn finished(&self, outcome: Outcome, seconds: f64) {
        let (outcomes, histogram) = self.series();
        outcomes[outcome as usize].inc();
        histogram.observe(seconds);
    }
}
