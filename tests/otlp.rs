//! Traces through a real collector: the node binary sends OTLP/HTTP to `rotel` (PyPI), which
//! forwards to a receiver in this test that decodes the protobuf. One agent turn that calls
//! a sandboxed tool must arrive as one connected trace: the HTTP request, the turn, the
//! LLM call, the tool and the sandbox, each span's parent among them (or the caller's),
//! none orphaned.
//!
//! `rotel-agent` is found through `NEUROFLOW_ROTEL` or `PATH`; without it the test skips
//! with a reason, and fails under `NEUROFLOW_REQUIRE_ROTEL=1` (which `scripts/test` sets
//! after installing it).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::{Value, json};
use warp::Filter;

use common::api::status_of;
use common::{NodeBuilder, TempDir, client, eventually, require_isolation};

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

const RULES: &str = r#"
[[rule]]
name = "run"
contains = ["run"]
calls = [{ tool = "sandbox.exec", args = { code = "echo traced" } }]
reply = "It printed {tool_result}"
"#;

fn rotel() -> Option<PathBuf> {
    if let Ok(path) = std::env::var("NEUROFLOW_ROTEL") {
        return Some(PathBuf::from(path));
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("rotel-agent"))
            .find(|p| p.is_file())
    })
}

/// Spans the receiver has decoded, by span id (hex).
type Received = Arc<Mutex<BTreeMap<String, Span>>>;
/// Metric names the receiver has seen, with their number of data points.
type ReceivedMetrics = Arc<Mutex<BTreeMap<String, usize>>>;

/// A request body, unzipped if the collector gzipped it.
fn plain(encoding: Option<String>, body: &[u8]) -> Vec<u8> {
    match encoding.as_deref() {
        Some("gzip") => {
            let mut plain = Vec::new();
            let _ = std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(body), &mut plain);
            plain
        }
        _ => body.to_vec(),
    }
}

/// An OTLP/HTTP receiver on loopback: what the collector forwards lands in `Received`
/// and `ReceivedMetrics`.
async fn receiver() -> (SocketAddr, Received, ReceivedMetrics) {
    let received: Received = Arc::default();
    let metrics: ReceivedMetrics = Arc::default();
    let sink = received.clone();
    let metric_sink = metrics.clone();
    let metric_route = warp::post()
        .and(warp::path!("v1" / "metrics"))
        .and(warp::header::optional::<String>("content-encoding"))
        .and(warp::body::bytes())
        .map(move |encoding: Option<String>, body: bytes::Bytes| {
            let body = plain(encoding, &body);
            if let Ok(request) = ExportMetricsServiceRequest::decode(&body[..]) {
                let mut seen = metric_sink.lock().unwrap();
                for metric in request
                    .resource_metrics
                    .into_iter()
                    .flat_map(|r| r.scope_metrics)
                    .flat_map(|s| s.metrics)
                {
                    use opentelemetry_proto::tonic::metrics::v1::metric::Data;
                    let points = match &metric.data {
                        Some(Data::Sum(s)) => s.data_points.len(),
                        Some(Data::Gauge(g)) => g.data_points.len(),
                        Some(Data::Histogram(h)) => h.data_points.len(),
                        _ => 0,
                    };
                    seen.insert(metric.name, points);
                }
            }
            let answer = ExportMetricsServiceResponse::default().encode_to_vec();
            warp::reply::with_header(answer, "content-type", "application/x-protobuf")
        });
    let traces = warp::post()
        .and(warp::path!("v1" / "traces"))
        .and(warp::header::optional::<String>("content-encoding"))
        .and(warp::body::bytes())
        .map(move |encoding: Option<String>, body: bytes::Bytes| {
            let body = plain(encoding, &body);
            if let Ok(request) = ExportTraceServiceRequest::decode(&body[..]) {
                let mut spans = sink.lock().unwrap();
                for span in request
                    .resource_spans
                    .into_iter()
                    .flat_map(|r| r.scope_spans)
                    .flat_map(|s| s.spans)
                {
                    spans.insert(hex(&span.span_id), span);
                }
            }
            let answer = ExportTraceServiceResponse::default().encode_to_vec();
            warp::reply::with_header(answer, "content-type", "application/x-protobuf")
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        warp::serve(traces.or(metric_route).unify())
            .incoming(listener)
            .run(),
    );
    (addr, received, metrics)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The collector, killed on drop.
struct Collector(Child);

impl Drop for Collector {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn an_agent_turn_arrives_as_one_connected_trace() {
    let Some(rotel) = rotel() else {
        assert!(
            std::env::var("NEUROFLOW_REQUIRE_ROTEL").as_deref() != Ok("1"),
            "rotel-agent not found (NEUROFLOW_ROTEL or PATH) and NEUROFLOW_REQUIRE_ROTEL=1"
        );
        eprintln!("skipping: rotel-agent not found (set NEUROFLOW_ROTEL or install rotel)");
        return;
    };
    let dir = TempDir::new("otlp");
    let (receiver_addr, received, received_metrics) = receiver().await;
    let (http_port, grpc_port) = (free_port(), free_port());
    let collector = Command::new(&rotel)
        .args([
            "start",
            "--exporter",
            "otlp",
            "--otlp-exporter-protocol",
            "http",
        ])
        .arg("--otlp-http-endpoint")
        .arg(format!("127.0.0.1:{http_port}"))
        .arg("--otlp-grpc-endpoint")
        .arg(format!("127.0.0.1:{grpc_port}"))
        .arg("--otlp-exporter-endpoint")
        .arg(format!("http://{receiver_addr}"))
        .arg("--pid-file")
        .arg(dir.path().join("rotel.pid"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start rotel");
    let _collector = Collector(collector);
    eventually(
        Duration::from_secs(10),
        "the collector listening",
        || async {
            std::net::TcpStream::connect(("127.0.0.1", http_port))
                .ok()
                .map(drop)
        },
    )
    .await;

    let rules = dir.file("rules.toml", RULES);
    let node = NodeBuilder::serve()
        .env(
            "NEUROFLOW_OTLP_ENDPOINT",
            &format!("http://127.0.0.1:{http_port}/v1/traces"),
        )
        .config(&format!(
            "[telemetry]\nmetrics_interval_secs = 1\n\
             [providers.rules]\nkind = \"scripted\"\nrules = \"{}\"\n",
            rules.display()
        ))
        .start();
    let http = client();
    let created = http
        .post(node.url("/api/v1/agents"))
        .json(&json!({"name": "runner", "provider": "rules", "tools": ["sandbox.*"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let answer: Value = http
        .post(node.url("/api/v1/agents/runner/messages"))
        .header("traceparent", format!("00-{TRACE_ID}-{CALLER_SPAN}-01"))
        .json(&json!({"message": "run it"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let text = answer["text"].as_str().unwrap_or_default();
    if !text.contains("traced") && !require_isolation() {
        eprintln!("skipping: the sandbox could not run here: {answer}");
        return;
    }
    assert!(text.contains("traced"), "{answer}");

    // The turn's spans, once the sandbox's has arrived (the exporter batches for up to 1 s).
    let spans = eventually(Duration::from_secs(20), "the turn's spans", || async {
        let spans: Vec<Span> = received
            .lock()
            .unwrap()
            .values()
            .filter(|s| hex(&s.trace_id) == TRACE_ID)
            .cloned()
            .collect();
        let names: BTreeSet<String> = spans.iter().map(|s| s.name.clone()).collect();
        let complete = names.iter().any(|n| n.starts_with("sandbox.exec"))
            && names
                .iter()
                .any(|n| n.starts_with("POST /api/v1/agents/{name}/messages"));
        complete.then_some(spans)
    })
    .await;
    let by_id: BTreeMap<String, &Span> = spans.iter().map(|s| (hex(&s.span_id), s)).collect();
    eprintln!(
        "trace {TRACE_ID}: {:?}",
        spans.iter().map(|s| s.name.as_str()).collect::<Vec<_>>()
    );
    let name_of = |id: &str| by_id.get(id).map(|s| s.name.clone());
    // No orphans: every span's parent is in the trace, or is the caller's span.
    for span in &spans {
        let parent = hex(&span.parent_span_id);
        assert!(
            parent == CALLER_SPAN || by_id.contains_key(&parent),
            "span {:?} has parent {parent}, not in the trace: {:?}",
            span.name,
            spans.iter().map(|s| &s.name).collect::<Vec<_>>()
        );
    }
    // The chain: sandbox ⊂ tool ⊂ turn ⊂ HTTP request ⊂ caller.
    let ancestors = |span: &Span| {
        let mut chain = Vec::new();
        let mut parent = hex(&span.parent_span_id);
        while let Some(name) = name_of(&parent) {
            chain.push(name);
            parent = hex(&by_id[&parent].parent_span_id);
        }
        chain
    };
    let find = |prefix: &str| {
        spans
            .iter()
            .find(|s| s.name.starts_with(prefix))
            .unwrap_or_else(|| {
                panic!(
                    "no {prefix} span among {:?}",
                    spans.iter().map(|s| &s.name).collect::<Vec<_>>()
                )
            })
    };
    let sandbox = find("sandbox.exec");
    let chain = ancestors(sandbox);
    for expected in [
        "execute_tool sandbox.exec",
        "invoke_agent runner",
        "POST /api/v1/agents/{name}/messages",
    ] {
        assert!(
            chain.iter().any(|n| n == expected),
            "{expected:?} is not an ancestor of the sandbox span: {chain:?}"
        );
    }
    let chat = find("chat");
    assert!(ancestors(chat).iter().any(|n| n == "invoke_agent runner"));
    let attribute = |span: &Span, key: &str| {
        span.attributes
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.as_ref())
            .map(|v| format!("{:?}", v.value))
    };
    // Counts arrive as integers, which a backend can sum (an unsigned value recorded as
    // is would arrive as its text).
    for key in ["gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens"] {
        assert!(
            attribute(chat, key).is_some_and(|v| v.starts_with("Some(IntValue(")),
            "{key}: {:?}",
            chat.attributes
        );
    }
    assert!(
        attribute(sandbox, "neuroflow.sandbox.wall_time_us")
            .is_some_and(|v| v.starts_with("Some(IntValue(")),
        "{:?}",
        sandbox.attributes
    );
    assert!(
        attribute(sandbox, "neuroflow.sandbox.end_reason").is_some_and(|v| v.contains("exited")),
        "{:?}",
        sandbox.attributes
    );
    let server = find("POST /api/v1/agents/{name}/messages");
    assert!(
        attribute(server, "http.response.status_code").is_some_and(|v| v == "Some(IntValue(200))"),
        "{:?}",
        server.attributes
    );

    // Every request is traced, health checks included.
    let health = http.get(node.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    eventually(
        Duration::from_secs(10),
        "the health check's span",
        || async {
            received
                .lock()
                .unwrap()
                .values()
                .any(|s| s.name == "GET /healthz")
                .then_some(())
        },
    )
    .await;

    // The node's metrics arrive too, the turn's among them.
    let metrics = eventually(Duration::from_secs(15), "the node's metrics", || async {
        let seen = received_metrics.lock().unwrap().clone();
        let has = |name: &str| seen.get(name).is_some_and(|points| *points > 0);
        (has("neuroflow_http_requests")
            && has("neuroflow_llm_tokens")
            && has("neuroflow_agent_turns")
            && has("neuroflow_http_request_duration_seconds"))
        .then_some(seen)
    })
    .await;
    assert!(
        metrics.contains_key("neuroflow_exporter_spans"),
        "{metrics:?}"
    );

    // The page with every family the turn touched passes promtool's lint.
    let text = node.get_text(&http, "/metrics").await;
    assert!(text.contains("neuroflow_llm_calls_total{"), "{text}");
    match common::promtool_check(&text) {
        Some((ok, report)) => assert!(ok, "promtool check metrics rejected the page:\n{report}"),
        None if require_isolation() => panic!("promtool is required but not installed"),
        None => eprintln!("skipping the promtool check: promtool is not installed"),
    }
}

#[tokio::test]
async fn with_the_collector_down_the_node_works_and_counts_what_it_lost() {
    // A port nothing listens on: every export fails at once.
    let closed = free_port();
    let node = NodeBuilder::serve()
        .env(
            "NEUROFLOW_OTLP_ENDPOINT",
            &format!("http://127.0.0.1:{closed}/v1/traces"),
        )
        .config("[telemetry]\nexport_retries = 0\nexport_timeout_ms = 500\n")
        .start();
    let http = client();
    for _ in 0..20 {
        let response = http.get(node.url("/api/v1/agents")).send().await.unwrap();
        assert_eq!(response.status(), 200);
    }
    let failed = eventually(Duration::from_secs(15), "failed spans counted", || async {
        let text = node.get_text(&http, "/metrics").await;
        text.lines()
            .find_map(|l| l.strip_prefix(r#"neuroflow_exporter_spans_total{outcome="failed"} "#))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .filter(|n| *n >= 20)
    })
    .await;
    assert!(failed >= 20, "{failed}");
    let health = http.get(node.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
}

/// A node sending its spans straight to the test's receiver (the node speaks OTLP/HTTP
/// itself), recording `ratio` of new traces.
async fn node_sampling(ratio: f64) -> (common::Node, Received) {
    let (receiver_addr, received, _) = receiver().await;
    let node = NodeBuilder::serve()
        .env(
            "NEUROFLOW_OTLP_ENDPOINT",
            &format!("http://{receiver_addr}/v1/traces"),
        )
        .config(&format!("[telemetry]\nsample_ratio = {ratio:?}\n"))
        .start();
    (node, received)
}

#[tokio::test]
async fn sampling_follows_the_ratio_and_the_callers_decision() {
    let (node, received) = node_sampling(0.0).await;
    let http = client();
    // Ratio 0: requests that start a trace are not recorded…
    for _ in 0..5 {
        assert_eq!(status_of(http.get(node.url("/healthz"))).await, 200);
    }
    // …but a caller's sampled trace is followed (parent-based).
    assert_eq!(
        status_of(
            http.get(node.url("/healthz"))
                .header("traceparent", format!("00-{TRACE_ID}-{CALLER_SPAN}-01"))
        )
        .await,
        200
    );
    eventually(Duration::from_secs(10), "the caller's trace", || async {
        received
            .lock()
            .unwrap()
            .values()
            .any(|s| hex(&s.trace_id) == TRACE_ID && s.name == "GET /healthz")
            .then_some(())
    })
    .await;
    let others: Vec<String> = received
        .lock()
        .unwrap()
        .values()
        .filter(|s| hex(&s.trace_id) != TRACE_ID)
        .map(|s| s.name.clone())
        .collect();
    assert!(
        others.is_empty(),
        "unsampled traces were recorded: {others:?}"
    );
}

#[tokio::test]
async fn an_unsampled_trace_records_nothing_and_a_sampled_one_is_whole() {
    let (node, received) = node_sampling(0.5).await;
    let http = client();
    let created = http
        .post(node.url("/api/v1/agents"))
        .json(&json!({"name": "clock", "tools": ["time.*"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    // Each turn asks the time: the HTTP request, the turn, two LLM calls, the tool.
    let ask = |traceparent: Option<String>| {
        let mut request = http
            .post(node.url("/api/v1/agents/clock/messages"))
            .json(&json!({"message": "what time is it?"}));
        if let Some(traceparent) = traceparent {
            request = request.header("traceparent", traceparent);
        }
        status_of(request)
    };
    const TURNS: usize = 40;
    for _ in 0..TURNS {
        assert_eq!(ask(None).await, 200);
    }
    // A caller that did not sample its trace: nothing of it may be recorded.
    const UNSAMPLED: &str = "5bf92f3577b34da6a3ce929d0e0e4737";
    assert_eq!(
        ask(Some(format!("00-{UNSAMPLED}-{CALLER_SPAN}-00"))).await,
        200
    );
    // Then a sampled one, which ends after everything above: once its turn has arrived,
    // so has every span ended before it (the exporter sends in order). Streamed, so that
    // the turn runs in a task of its own, which must still join the request's trace.
    let streamed = http
        .post(node.url("/api/v1/agents/clock/messages"))
        .header("traceparent", format!("00-{TRACE_ID}-{CALLER_SPAN}-01"))
        .header("accept", "text/event-stream")
        .json(&json!({"message": "what time is it?"}))
        .send()
        .await
        .unwrap();
    assert_eq!(streamed.status(), 200);
    let events = streamed.text().await.unwrap();
    assert!(events.contains("event:final"), "{events}");
    eventually(Duration::from_secs(15), "the last turn's spans", || async {
        let spans = received.lock().unwrap();
        let last = spans.values().filter(|s| hex(&s.trace_id) == TRACE_ID);
        (last.filter(|s| s.name.starts_with("execute_tool")).count() == 1).then_some(())
    })
    .await;

    let spans: Vec<Span> = received.lock().unwrap().values().cloned().collect();
    let mut traces: BTreeMap<String, Vec<&Span>> = BTreeMap::new();
    for span in &spans {
        traces.entry(hex(&span.trace_id)).or_default().push(span);
    }
    assert!(
        !traces.contains_key(UNSAMPLED),
        "the caller's unsampled trace was recorded"
    );
    traces.remove(TRACE_ID);
    // The agent's creation is a trace of its own, sampled or not.
    traces.retain(|_, spans| spans.iter().all(|s| s.name != "POST /api/v1/agents"));
    // Roughly half the turns, each whole: at 0.5, all or none of 40 is a 2^-39 chance.
    let shapes: Vec<Vec<&str>> = traces
        .values()
        .map(|spans| spans.iter().map(|s| s.name.as_str()).collect())
        .collect();
    assert!(
        (1..TURNS).contains(&traces.len()),
        "{} of {TURNS} turns recorded at ratio 0.5: {shapes:?}",
        traces.len()
    );
    for (trace, spans) in &traces {
        let ids: BTreeSet<String> = spans.iter().map(|s| hex(&s.span_id)).collect();
        let mut names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
        names.sort_unstable();
        let roots: Vec<&str> = spans
            .iter()
            .filter(|s| !ids.contains(&hex(&s.parent_span_id)))
            .map(|s| s.name.as_str())
            .collect();
        assert_eq!(
            roots,
            ["POST /api/v1/agents/{name}/messages"],
            "trace {trace} has other roots than its request: {names:?}"
        );
        for expected in ["chat", "execute_tool time.now", "invoke_agent clock"] {
            let n = names.iter().filter(|n| n.starts_with(expected)).count();
            let want = if expected == "chat" { 2 } else { 1 };
            assert_eq!(n, want, "trace {trace}: {names:?}");
        }
    }
}
