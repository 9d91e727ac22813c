//! Logs and traces of the process: `tracing` events to stderr (text, or JSON lines
//! carrying the trace and span ids), and, with `[telemetry] otlp_endpoint`, spans to an
//! OpenTelemetry pipeline whose finished spans wait in a bounded queue for the node's
//! exporter actor. Which traces are recorded is decided before their first span is
//! opened (head sampling, `neuroflow_kit::sampling`).
//!
//! ```text
//! tracing ─┬─▶ fmt layer (log.level) ─▶ stderr
//!          └─▶ tracing-opentelemetry (neuroflow targets) ─▶ SDK tracer (parent-based) ─▶ SpanQueue ─▶ ExporterActor
//! ```

mod json;

use std::io::IsTerminal;
use std::sync::OnceLock;

use neuroflow_exporter::{ExportSettings, ExporterMetrics, SpanInbox, span_queue};
use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, filter, fmt};

use crate::config::{Config, LogFormat};

/// What the installed pipeline hands the node: the queue's far end, and the resource its
/// spans describe.
pub struct Pipeline {
    pub inbox: SpanInbox,
    pub resource: Resource,
    /// Kept so that the tracer stays alive as long as the process.
    _provider: SdkTracerProvider,
}

static PIPELINE: OnceLock<Pipeline> = OnceLock::new();

/// The span pipeline this process installed, if it installed one.
pub fn pipeline() -> Option<&'static Pipeline> {
    PIPELINE.get()
}

/// Installs the global subscriber. Does nothing if one is already installed (an embedding
/// application's own, or a second call).
pub fn init(config: &Config) {
    let log = &config.log;
    let fmt_layer = match log.format {
        LogFormat::Text => fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .with_filter(log.filter())
            .boxed(),
        LogFormat::Json => fmt::layer()
            .with_writer(std::io::stderr)
            .event_format(json::JsonWithTrace)
            .with_filter(log.filter())
            .boxed(),
    };
    let tracing = config.telemetry.otlp_endpoint.is_some().then(|| {
        let telemetry = &config.telemetry;
        let resource = Resource::builder()
            .with_service_name(telemetry.service_name.clone())
            .with_attribute(KeyValue::new("service.version", crate::VERSION))
            .with_attribute(KeyValue::new(
                "service.instance.id",
                uuid::Uuid::new_v4().to_string(),
            ))
            .build();
        let (queue, inbox) = span_queue(
            telemetry.queue_spans,
            ExportSettings::default().max_batch,
            ExporterMetrics::new(),
        );
        // New traces are sampled before their first span is opened (see
        // `neuroflow_kit::sampling`), so a root that reaches the SDK is already chosen;
        // below a root, the parent's flag decides, as before.
        crate::kit::sampling::set_ratio(telemetry.sample_ratio);
        let provider = SdkTracerProvider::builder()
            .with_sampler(Sampler::ParentBased(Box::new(Sampler::AlwaysOn)))
            .with_resource(resource.clone())
            .with_span_processor(queue)
            .build();
        let tracer = provider.tracer("neuroflow");
        let layer = tracing_opentelemetry::layer()
            .with_tracer(tracer)
            // Busy/idle timings and thread and code-location attributes cost on every poll
            // or span, and a trace backend derives what matters from start and end.
            .with_tracked_inactivity(false)
            .with_threads(false)
            .with_location(false)
            // The module a span was opened in says nothing its name and GenAI attributes
            // do not, and costs an attribute on every span, built and encoded.
            .with_target(false)
            // Attaching the span's OpenTelemetry context on every enter (every poll of an
            // instrumented future) serves OpenTelemetry-instrumented libraries, and the node
            // has none: its propagation reads the context from the tracing span.
            .with_context_activation(false)
            // The node's own spans only (a library's internals, hyper's and reqwest's, would
            // also trace the exporter's own requests, in a loop), and events at INFO and
            // above as span events: debug logging must not grow every span. A `Targets`
            // filter, not a closure: it tells `tracing` which callsites can never be
            // recorded (and the highest level that can), so that hyper's trace-level
            // events cost nothing instead of a filter call each.
            .with_filter(
                filter::Targets::new()
                    .with_target(crate::kit::sampling::RECORDED_TARGETS, tracing::Level::INFO),
            );
        (layer, inbox, resource, provider)
    });
    let (otel_layer, pipeline) = match tracing {
        Some((layer, inbox, resource, provider)) => (
            Some(layer),
            Some(Pipeline {
                inbox,
                resource,
                _provider: provider,
            }),
        ),
        None => (None, None),
    };
    let installed = tracing_subscriber::registry()
        .with(fmt_layer)
        .with(otel_layer)
        .try_init();
    // An already installed subscriber is not an error for a library.
    if installed.is_ok()
        && let Some(pipeline) = pipeline
    {
        let _ = PIPELINE.set(pipeline);
    }
}
