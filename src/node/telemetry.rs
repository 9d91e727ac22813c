//! Node telemetry: the node's own metric families and the metrics actor that renders the
//! registry for `/metrics`.

use std::sync::Arc;
use std::time::Instant;

use neuroflow_kit::actor::{Actor, ActorError, Ctx};
use neuroflow_kit::metrics::{Metrics, MetricsError};
use neuroflow_kit::protocol::telemetry::{MetricsMsg, MetricsReply};
use prometheus::{Gauge, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts};

/// The node-level families, registered once per node in its [`Metrics`] registry (not per
/// actor incarnation: registering twice would fail).
#[derive(Clone)]
pub struct NodeMetrics {
    registry: Arc<Metrics>,
    started: Instant,
    uptime: Gauge,
    http_requests: IntCounterVec,
    http_seconds: HistogramVec,
}

impl NodeMetrics {
    /// Registers `neuroflow_node_info`, `neuroflow_node_uptime_seconds`,
    /// `neuroflow_http_requests_total` and `neuroflow_http_request_duration_seconds` in
    /// `registry`.
    pub fn register(
        registry: Arc<Metrics>,
        version: &str,
        started: Instant,
    ) -> Result<Self, MetricsError> {
        let info = registry.register(IntGaugeVec::new(
            Opts::new(
                "neuroflow_node_info",
                "Always 1; labelled with the node's version.",
            ),
            &["version"],
        )?)?;
        info.with_label_values(&[version]).set(1);
        let uptime = registry.register(Gauge::new(
            "neuroflow_node_uptime_seconds",
            "Seconds since the node started.",
        )?)?;
        let http_requests = registry.register(IntCounterVec::new(
            Opts::new(
                "neuroflow_http_requests_total",
                "HTTP requests answered, by route (unmatched paths share one label) and status.",
            ),
            &["route", "status"],
        )?)?;
        let http_seconds = registry.register(HistogramVec::new(
            HistogramOpts::new(
                "neuroflow_http_request_duration_seconds",
                "Time from a request's arrival to its response's head (a stream's body may go on), by route and status.",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0, 30.0, 60.0, 300.0,
            ]),
            &["route", "status"],
        )?)?;
        Ok(Self {
            registry,
            started,
            uptime,
            http_requests,
            http_seconds,
        })
    }

    /// When the node started.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Counts one answered HTTP request and how long it took. `route` must come from a
    /// bounded set.
    pub fn record_http_request(&self, route: &str, status: u16, seconds: f64) {
        let status = status.to_string();
        self.http_requests
            .with_label_values(&[route, &status])
            .inc();
        self.http_seconds
            .with_label_values(&[route, &status])
            .observe(seconds);
    }

    /// The whole registry as Prometheus text, with the uptime brought up to date.
    pub fn render(&self) -> String {
        self.uptime.set(self.started.elapsed().as_secs_f64());
        self.registry.render()
    }
}

/// Owns the rendering of the node's metrics; `/metrics` asks it with
/// [`MetricsMsg::Render`].
pub struct MetricsActor {
    pub metrics: NodeMetrics,
}

impl MetricsActor {
    /// Kind label of the metrics actor.
    pub const KIND: &'static str = "telemetry.metrics";
}

impl Actor for MetricsActor {
    const KIND: &'static str = MetricsActor::KIND;
    type Msg = MetricsMsg;
    type Reply = MetricsReply;
    type State = ();
    type Args = ();

    async fn started(&self, _: &Ctx<Self>, (): ()) -> Result<(), ActorError> {
        Ok(())
    }

    async fn handle(
        &self,
        _: &Ctx<Self>,
        msg: MetricsMsg,
        (): &mut (),
    ) -> Result<MetricsReply, ActorError> {
        match msg {
            MetricsMsg::Render => Ok(MetricsReply::Text(self.metrics.render())),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use neuroflow_kit::supervisor::{ChildSpec, Strategy, Supervisor, SupervisorSpec};

    use super::*;

    #[tokio::test]
    async fn renders_node_and_actor_families() {
        let registry = Metrics::new().unwrap();
        let metrics = NodeMetrics::register(registry.clone(), "9.9.9", Instant::now()).unwrap();
        metrics.record_http_request("/healthz", 200, 0.002);
        let (spec, handle) = ChildSpec::actor("metrics", move || {
            (
                MetricsActor {
                    metrics: metrics.clone(),
                },
                (),
            )
        });
        let (root, _join) = Supervisor::start_root(
            SupervisorSpec::new("t", Strategy::OneForOne).child(spec),
            registry.clone(),
        )
        .await
        .unwrap();
        let MetricsReply::Text(text) = handle
            .call(MetricsMsg::Render, Duration::from_secs(2))
            .await
            .unwrap();
        assert!(
            text.contains("neuroflow_node_info{version=\"9.9.9\"} 1"),
            "{text}"
        );
        assert!(text.contains("neuroflow_node_uptime_seconds "), "{text}");
        assert!(
            text.contains("neuroflow_http_requests_total{route=\"/healthz\",status=\"200\"} 1"),
            "{text}"
        );
        assert!(
            text.contains(
                "neuroflow_actor_restarts_total{kind=\"telemetry.metrics\",name=\"t/metrics\"} 0"
            ),
            "{text}"
        );
        root.stop(Duration::from_secs(2)).await;
    }

    #[test]
    fn registering_twice_is_an_error_not_a_panic() {
        let registry = Metrics::new().unwrap();
        NodeMetrics::register(registry.clone(), "1", Instant::now()).unwrap();
        assert!(NodeMetrics::register(registry, "1", Instant::now()).is_err());
    }
}
