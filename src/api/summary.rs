//! The console's summary of the node: counts now, and per-minute rates.
//!
//! Rates come from the node's own counters, sampled when the summary is asked for: the
//! sampler keeps a few recent samples and measures each rate against the newest sample at
//! least a minute old (or the oldest it has, saying over how long).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::ApiContext;
use super::error::ApiError;

/// Window the rates aim for.
const WINDOW: Duration = Duration::from_secs(60);
/// Samples kept; with [`MIN_SPACING`] they cover a few windows.
const SAMPLES: usize = 64;
/// Closest two kept samples may be: a burst of requests does not crowd out the window.
const MIN_SPACING: Duration = Duration::from_secs(5);

/// The counters a rate is taken of.
#[derive(Debug, Clone, Copy, Default)]
struct Counters {
    http_requests: f64,
    tool_calls: f64,
    tool_errors: f64,
    tokens: f64,
    restarts: f64,
    sandbox_runs: f64,
}

/// Body of `GET /api/v1/node/summary`.
#[derive(Debug, Serialize)]
pub struct Summary {
    pub uptime_seconds: u64,
    pub agents: AgentCounts,
    pub tools: u64,
    /// Totals since the node started.
    pub totals: Totals,
    /// Per minute, over `window_seconds` (0 and no rates on the first request).
    pub per_minute: Rates,
    pub window_seconds: f64,
}

#[derive(Debug, Serialize)]
pub struct AgentCounts {
    pub total: u64,
    pub busy: u64,
}

#[derive(Debug, Serialize)]
pub struct Totals {
    pub http_requests: u64,
    pub tool_calls: u64,
    pub tool_errors: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost_usd: f64,
    pub actor_restarts: u64,
    pub actor_failures: u64,
    pub sandbox_runs: u64,
    pub mailbox_depth: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct Rates {
    pub http_requests: f64,
    pub tool_calls: f64,
    pub tool_errors: f64,
    pub tokens: f64,
    pub actor_restarts: f64,
    pub sandbox_runs: f64,
}

#[derive(Default)]
pub(super) struct Sampler {
    samples: Mutex<VecDeque<(Instant, Counters)>>,
}

impl Sampler {
    /// The summary now; keeps this moment as a sample.
    pub fn take(&self, ctx: &ApiContext) -> Result<Summary, ApiError> {
        let agents = ctx.agents()?;
        let list = agents.list();
        let spent = agents.spent();
        let names = [
            "neuroflow_http_requests_total",
            "neuroflow_tool_calls_total",
            "neuroflow_actor_restarts_total",
            "neuroflow_actor_failures_total",
            "neuroflow_sandbox_ends_total",
            "neuroflow_actor_mailbox_depth",
        ];
        let all = ctx.registry().totals(&names, None);
        // Every outcome but `ok` (errors, timeouts, panics, refusals) is a failed call.
        let ok = ctx
            .registry()
            .totals(&["neuroflow_tool_calls_total"], Some(("outcome", "ok")));
        let errors = [(all[1] - ok[0]).max(0.0)];
        let now = Counters {
            http_requests: all[0],
            tool_calls: all[1],
            tool_errors: errors[0],
            tokens: spent.total_tokens() as f64,
            restarts: all[2],
            sandbox_runs: all[4],
        };
        let at = Instant::now();
        let (per_minute, window) = self.rates(at, now);
        Ok(Summary {
            uptime_seconds: ctx.uptime().as_secs(),
            agents: AgentCounts {
                total: list.len() as u64,
                busy: list.iter().filter(|a| a.state.busy()).count() as u64,
            },
            tools: ctx.tools().list(&[]).len() as u64,
            totals: Totals {
                http_requests: all[0] as u64,
                tool_calls: all[1] as u64,
                tool_errors: errors[0] as u64,
                input_tokens: spent.input_tokens,
                output_tokens: spent.output_tokens,
                cost_usd: spent.cost_usd,
                actor_restarts: all[2] as u64,
                actor_failures: all[3] as u64,
                sandbox_runs: all[4] as u64,
                mailbox_depth: all[5].max(0.0) as u64,
            },
            per_minute,
            window_seconds: window.as_secs_f64(),
        })
    }

    fn rates(&self, at: Instant, now: Counters) -> (Rates, Duration) {
        let mut samples = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        let base = samples
            .iter()
            .rev()
            .find(|(t, _)| at.duration_since(*t) >= WINDOW)
            .or_else(|| samples.front())
            .copied();
        if samples
            .back()
            .is_none_or(|(t, _)| at.duration_since(*t) >= MIN_SPACING)
        {
            if samples.len() == SAMPLES {
                samples.pop_front();
            }
            samples.push_back((at, now));
        }
        let Some((then, before)) = base else {
            return (Rates::default(), Duration::ZERO);
        };
        let window = at.duration_since(then);
        if window.is_zero() {
            return (Rates::default(), window);
        }
        let per_minute = |a: f64, b: f64| ((a - b).max(0.0)) * 60.0 / window.as_secs_f64();
        let rates = Rates {
            http_requests: per_minute(now.http_requests, before.http_requests),
            tool_calls: per_minute(now.tool_calls, before.tool_calls),
            tool_errors: per_minute(now.tool_errors, before.tool_errors),
            tokens: per_minute(now.tokens, before.tokens),
            actor_restarts: per_minute(now.restarts, before.restarts),
            sandbox_runs: per_minute(now.sandbox_runs, before.sandbox_runs),
        };
        (rates, window)
    }
}
