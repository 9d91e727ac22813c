//! What agents cost and how their turns end, in the node's registry.

use neuroflow_kit::metrics::{Metrics, MetricsError};
use neuroflow_kit::protocol::agent::Usage;
use prometheus::{CounterVec, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts};

/// LLM calls by provider and model, and turns by outcome.
#[derive(Clone)]
pub struct AgentMetrics {
    calls: IntCounterVec,
    call_seconds: HistogramVec,
    tokens: IntCounterVec,
    cost: CounterVec,
    turns: IntCounterVec,
    /// Agents running on the node.
    pub agents: IntGauge,
}

impl AgentMetrics {
    pub fn register(registry: &Metrics) -> Result<Self, MetricsError> {
        let pm = &["provider", "model"];
        Ok(Self {
            calls: registry.register(IntCounterVec::new(
                Opts::new(
                    "neuroflow_llm_calls_total",
                    "LLM calls by provider, model and outcome (ok, error).",
                ),
                &["provider", "model", "outcome"],
            )?)?,
            call_seconds: registry.register(HistogramVec::new(
                HistogramOpts::new(
                    "neuroflow_llm_call_duration_seconds",
                    "Time from sending an LLM call to its last chunk.",
                )
                .buckets(vec![
                    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
                ]),
                pm,
            )?)?,
            tokens: registry.register(IntCounterVec::new(
                Opts::new(
                    "neuroflow_llm_tokens_total",
                    "Tokens of LLM calls by provider, model and direction (input, output).",
                ),
                &["provider", "model", "direction"],
            )?)?,
            cost: registry.register(CounterVec::new(
                Opts::new(
                    "neuroflow_llm_cost_usd_total",
                    "What LLM calls cost, in US dollars, from the node's price table.",
                ),
                pm,
            )?)?,
            turns: registry.register(IntCounterVec::new(
                Opts::new(
                    "neuroflow_agent_turns_total",
                    "Agent turns by outcome (answered, failed).",
                ),
                &["outcome"],
            )?)?,
            agents: registry.register(IntGauge::new(
                "neuroflow_agents",
                "Agents running on the node.",
            )?)?,
        })
    }

    pub(crate) fn llm_call(
        &self,
        provider: &str,
        model: &str,
        seconds: f64,
        usage: Option<&Usage>,
    ) {
        let outcome = if usage.is_some() { "ok" } else { "error" };
        self.calls
            .with_label_values(&[provider, model, outcome])
            .inc();
        self.call_seconds
            .with_label_values(&[provider, model])
            .observe(seconds);
        if let Some(usage) = usage {
            self.tokens
                .with_label_values(&[provider, model, "input"])
                .inc_by(usage.input_tokens);
            self.tokens
                .with_label_values(&[provider, model, "output"])
                .inc_by(usage.output_tokens);
            self.cost
                .with_label_values(&[provider, model])
                .inc_by(usage.cost_usd.max(0.0));
        }
    }

    pub(crate) fn turn(&self, answered: bool) {
        let outcome = if answered { "answered" } else { "failed" };
        self.turns.with_label_values(&[outcome]).inc();
    }
}
