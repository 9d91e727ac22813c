//! The node's metrics over OTLP: the Prometheus registry, read as it is and sent as an
//! OTLP/HTTP protobuf `ExportMetricsServiceRequest`.
//!
//! Written here because no library turns a `prometheus` registry into OTLP: the node
//! keeps one set of counters (the registry `/metrics` renders) and this maps it, family by
//! family, onto OTLP's data model: counters become cumulative monotonic sums (named
//! without `_total`, as OpenTelemetry names them), gauges gauges, histograms cumulative
//! explicit-bucket histograms.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, Sum, metric, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource as ProtoResource;
use opentelemetry_sdk::Resource;
use prometheus::proto::{MetricFamily, MetricType};
use prost::Message;

/// Sends the registry's metrics to an OTLP/HTTP metrics endpoint.
pub struct MetricsPush {
    client: reqwest::Client,
    endpoint: String,
    resource: ProtoResource,
    started: SystemTime,
}

impl MetricsPush {
    /// Metrics to `endpoint` (`http://…/v1/metrics`), each push bounded by `timeout`,
    /// described by `resource`; cumulative since `started`.
    pub fn new(
        endpoint: &str,
        timeout: Duration,
        resource: &Resource,
        started: SystemTime,
    ) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| format!("OTLP metrics client for {endpoint}: {e}"))?;
        Ok(Self {
            client,
            endpoint: endpoint.to_string(),
            resource: proto_resource(resource),
            started,
        })
    }

    /// Sends `families` as they are now.
    pub async fn push(&self, families: &[MetricFamily]) -> Result<(), String> {
        let request = request(families, &self.resource, self.started, SystemTime::now());
        let response = self
            .client
            .post(&self.endpoint)
            .header("content-type", "application/x-protobuf")
            .body(request.encode_to_vec())
            .send()
            .await
            .map_err(|e| neuroflow_kit::error_chain(&e))?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(format!("the collector answered {}", response.status()))
        }
    }
}

fn nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

fn string_kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.to_string())),
        }),
        ..Default::default()
    }
}

fn proto_resource(resource: &Resource) -> ProtoResource {
    ProtoResource {
        attributes: resource
            .iter()
            .map(|(key, value)| string_kv(key.as_str(), &value.to_string()))
            .collect(),
        ..Default::default()
    }
}

/// `families` as one OTLP request, points stamped `now`, cumulative since `start`.
pub fn request(
    families: &[MetricFamily],
    resource: &ProtoResource,
    start: SystemTime,
    now: SystemTime,
) -> ExportMetricsServiceRequest {
    let (start, now) = (nanos(start), nanos(now));
    let metrics = families
        .iter()
        .filter_map(|family| metric(family, start, now))
        .collect();
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(resource.clone()),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope {
                    name: "neuroflow".into(),
                    ..Default::default()
                }),
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn metric(family: &MetricFamily, start: u64, now: u64) -> Option<Metric> {
    let attributes = |m: &prometheus::proto::Metric| -> Vec<KeyValue> {
        m.get_label()
            .iter()
            .map(|l| string_kv(l.name(), l.value()))
            .collect()
    };
    let number = |m: &prometheus::proto::Metric, value: f64| NumberDataPoint {
        attributes: attributes(m),
        start_time_unix_nano: start,
        time_unix_nano: now,
        value: Some(number_data_point::Value::AsDouble(value)),
        ..Default::default()
    };
    let cumulative = AggregationTemporality::Cumulative as i32;
    let (name, data) = match family.get_field_type() {
        MetricType::COUNTER => (
            family
                .name()
                .strip_suffix("_total")
                .unwrap_or(family.name())
                .to_string(),
            metric::Data::Sum(Sum {
                data_points: family
                    .get_metric()
                    .iter()
                    .map(|m| number(m, m.get_counter().get_value()))
                    .collect(),
                aggregation_temporality: cumulative,
                is_monotonic: true,
            }),
        ),
        MetricType::GAUGE => (
            family.name().to_string(),
            metric::Data::Gauge(Gauge {
                data_points: family
                    .get_metric()
                    .iter()
                    .map(|m| number(m, m.get_gauge().get_value()))
                    .collect(),
            }),
        ),
        MetricType::HISTOGRAM => (
            family.name().to_string(),
            metric::Data::Histogram(Histogram {
                data_points: family
                    .get_metric()
                    .iter()
                    .map(|m| histogram_point(m, attributes(m), start, now))
                    .collect(),
                aggregation_temporality: cumulative,
            }),
        ),
        // The node registers no summaries or untyped families.
        _ => return None,
    };
    Some(Metric {
        name,
        description: family.help().to_string(),
        unit: unit(family.name()).to_string(),
        data: Some(data),
        ..Default::default()
    })
}

/// Prometheus buckets are cumulative counts up to each bound; OTLP's count each bucket
/// alone, with one more bucket past the last bound.
fn histogram_point(
    m: &prometheus::proto::Metric,
    attributes: Vec<KeyValue>,
    start: u64,
    now: u64,
) -> HistogramDataPoint {
    let h = m.get_histogram();
    let mut bounds = Vec::new();
    let mut counts = Vec::new();
    let mut below = 0u64;
    for bucket in h.get_bucket() {
        let bound = bucket.upper_bound();
        let cumulative = bucket.cumulative_count();
        if bound.is_finite() {
            bounds.push(bound);
            counts.push(cumulative.saturating_sub(below));
            below = cumulative;
        }
    }
    counts.push(h.get_sample_count().saturating_sub(below));
    HistogramDataPoint {
        attributes,
        start_time_unix_nano: start,
        time_unix_nano: now,
        count: h.get_sample_count(),
        sum: Some(h.get_sample_sum()),
        bucket_counts: counts,
        explicit_bounds: bounds,
        ..Default::default()
    }
}

/// The UCUM unit a family's name ends in.
fn unit(name: &str) -> &'static str {
    let name = name.strip_suffix("_total").unwrap_or(name);
    if name.ends_with("_seconds") {
        "s"
    } else if name.ends_with("_bytes") {
        "By"
    } else if name.ends_with("_usd") {
        "USD"
    } else {
        "1"
    }
}

#[cfg(test)]
mod tests {
    use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

    use super::*;

    #[test]
    fn families_map_onto_otlp() {
        let registry = Registry::new();
        let calls = IntCounterVec::new(Opts::new("x_calls_total", "Calls."), &["tool"]).unwrap();
        let seconds = HistogramVec::new(
            HistogramOpts::new("x_call_seconds", "Latency.").buckets(vec![0.1, 1.0]),
            &["tool"],
        )
        .unwrap();
        registry.register(Box::new(calls.clone())).unwrap();
        registry.register(Box::new(seconds.clone())).unwrap();
        calls.with_label_values(&["a"]).inc_by(3);
        for v in [0.05, 0.5, 0.7, 5.0] {
            seconds.with_label_values(&["a"]).observe(v);
        }
        let t0 = UNIX_EPOCH + Duration::from_secs(10);
        let t1 = UNIX_EPOCH + Duration::from_secs(20);
        let req = request(&registry.gather(), &ProtoResource::default(), t0, t1);
        let metrics = &req.resource_metrics[0].scope_metrics[0].metrics;
        let sum = metrics.iter().find(|m| m.name == "x_calls").unwrap();
        let Some(metric::Data::Sum(sum)) = &sum.data else {
            panic!("not a sum: {sum:?}")
        };
        assert!(sum.is_monotonic);
        let point = &sum.data_points[0];
        assert_eq!(point.value, Some(number_data_point::Value::AsDouble(3.0)));
        assert_eq!(
            (point.start_time_unix_nano, point.time_unix_nano),
            (10_000_000_000, 20_000_000_000)
        );
        assert_eq!(point.attributes[0].key, "tool");
        let hist = metrics.iter().find(|m| m.name == "x_call_seconds").unwrap();
        assert_eq!(hist.unit, "s");
        let Some(metric::Data::Histogram(hist)) = &hist.data else {
            panic!("not a histogram")
        };
        let point = &hist.data_points[0];
        assert_eq!(point.explicit_bounds, [0.1, 1.0]);
        assert_eq!(point.bucket_counts, [1, 2, 1]);
        assert_eq!(point.count, 4);
        assert_eq!(point.sum, Some(6.25));
    }
}
