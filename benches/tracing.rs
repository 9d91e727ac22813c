//! What tracing costs: an actor call round trip and an agent turn, with the OpenTelemetry
//! pipeline and exporter on (every span recorded and sent to a collector) against off
//! (no collector configured), in the same run.
//!
//! Two turns are measured, both asking "what time is it?" and calling `time.now`:
//! - through the OpenAI-compatible provider, over HTTP to an LLM server on loopback that
//!   streams its answers at once (the path a deployed node's turn takes, minus the
//!   model's own thinking time);
//! - through the scripted provider (no I/O at all): the floor of a turn, where the
//!   runtime's own cost is everything and tracing's share is at its largest.
//!
//! The tracing subscriber is global to a process, so each side runs in a process of its
//! own (this bench re-executes itself); rounds alternate off / on so that drift in the
//! machine's load falls on both. "On" exports to an OTLP/HTTP receiver on loopback in the
//! measuring process that answers 200 to every batch, so that export work is paid in full.
//!
//! ```sh
//! cargo bench --bench tracing            # 7 rounds per side
//! cargo bench --bench tracing -- 11      # more rounds
//! NEUROFLOW_TRACING_BENCH_RATIO=0.1 cargo bench --bench tracing   # sampling 10% of traces
//! ```
//! Printed: each side's median, the median of the per-round on/off ratios, and their
//! range. Target: < 10% overhead.

use std::process::Command;
use std::time::{Duration, Instant};

use neuroflow::Config;
use neuroflow::kit::protocol::agent::{AgentMsg, AgentReply};
use serde_json::{Value, json};

const MODE_VAR: &str = "NEUROFLOW_TRACING_BENCH_MODE";
const ENDPOINT_VAR: &str = "NEUROFLOW_TRACING_BENCH_ENDPOINT";
const LLM_VAR: &str = "NEUROFLOW_TRACING_BENCH_LLM";
/// `telemetry.sample_ratio` of the "on" side (1 unless set).
const RATIO_VAR: &str = "NEUROFLOW_TRACING_BENCH_RATIO";
const T: Duration = Duration::from_secs(30);

/// What one side measures, in the order printed.
const WORKLOADS: [(&str, &str); 3] = [
    ("call_ns", "actor call round trip"),
    ("http_turn_ns", "agent turn, provider over HTTP"),
    ("scripted_turn_ns", "agent turn, scripted provider"),
];

/// How many of each a side does: actor calls, HTTP turns, scripted turns.
#[derive(Clone, Copy)]
struct Counts {
    calls: usize,
    http_turns: usize,
    scripted_turns: usize,
}

fn main() {
    let measuring = std::env::args().any(|a| a == "--bench");
    if let Ok(mode) = std::env::var(MODE_VAR) {
        let counts = if measuring {
            Counts {
                calls: 1_000_000,
                http_turns: 4_000,
                scripted_turns: 20_000,
            }
        } else {
            Counts {
                calls: 500,
                http_turns: 20,
                scripted_turns: 20,
            }
        };
        measure(&mode, &counts);
        return;
    }
    let rounds: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(if measuring { 7 } else { 1 });
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let endpoint = runtime.block_on(otlp_receiver());
    let llm = runtime.block_on(llm_server());
    let mut results: [Vec<Value>; 2] = [Vec::new(), Vec::new()];
    for round in 0..rounds {
        // Swap which side goes first every round.
        let order = if round % 2 == 0 {
            ["off", "on"]
        } else {
            ["on", "off"]
        };
        for mode in order {
            let out = Command::new(std::env::current_exe().expect("this bench"))
                .args(std::env::args().skip(1))
                .env(MODE_VAR, mode)
                .env(ENDPOINT_VAR, &endpoint)
                .env(LLM_VAR, &llm)
                .output()
                .expect("run a side");
            let line = String::from_utf8_lossy(&out.stdout);
            let v: Value = serde_json::from_str(line.trim()).unwrap_or_else(|_| {
                panic!(
                    "{mode}: no result; stderr:\n{}",
                    String::from_utf8_lossy(&out.stderr)
                )
            });
            if mode == "on" && round == 0 {
                // What the exporter did: every span exported, none dropped, is expected.
                eprint!("{}", String::from_utf8_lossy(&out.stderr));
            }
            results[usize::from(mode == "on")].push(v);
        }
    }
    // Medians of each side, and the median of the per-round ratios: the two sides of a
    // round run back to back, so drift in the machine's load over the run (which moves
    // both medians) cancels out of each round's ratio.
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let figure = |side: usize, round: usize, key: &str| {
        results[side][round][key].as_f64().expect("a figure")
    };
    println!("tracing overhead, {rounds} rounds per side\n");
    println!(
        "{:<32} {:>12} {:>12} {:>10} {:>17}",
        "", "off", "on", "on/off", "per-round range"
    );
    for (key, label) in WORKLOADS {
        let side = |s: usize| median((0..rounds).map(|r| figure(s, r, key)).collect());
        let ratios: Vec<f64> = (0..rounds)
            .map(|r| figure(1, r, key) / figure(0, r, key))
            .collect();
        let (low, high) = ratios
            .iter()
            .fold((f64::MAX, f64::MIN), |(l, h), &r| (l.min(r), h.max(r)));
        let shown = |ns: f64| {
            if ns < 10_000.0 {
                format!("{ns:.0} ns")
            } else {
                format!("{:.1} µs", ns / 1e3)
            }
        };
        println!(
            "{label:<32} {:>12} {:>12} {:>9.3}× {:>8.3}–{:.3}×",
            shown(side(0)),
            shown(side(1)),
            median(ratios),
            low,
            high
        );
    }
}

/// An OTLP/HTTP receiver that takes every batch.
async fn otlp_receiver() -> String {
    use warp::Filter;
    let any = warp::post()
        .and(warp::body::bytes())
        .map(|_body: bytes::Bytes| {
            warp::reply::with_header(Vec::<u8>::new(), "content-type", "application/x-protobuf")
        });
    format!("{}/v1/traces", serve(any).await)
}

/// An OpenAI-compatible Chat Completions server that streams at once: a call of
/// `time.now` when the conversation's last message is the user's, else a short answer.
async fn llm_server() -> String {
    use warp::Filter;
    let completions = warp::post()
        .and(warp::path!("v1" / "chat" / "completions"))
        .and(warp::body::json())
        .map(|body: Value| {
            let after_tool = body["messages"]
                .as_array()
                .and_then(|m| m.last())
                .is_some_and(|m| m["role"] == "tool");
            let delta = if after_tool {
                json!({"content": "It is noon."})
            } else {
                json!({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                    "function": {"name": "time_now", "arguments": "{}"}}]})
            };
            let finish = if after_tool { "stop" } else { "tool_calls" };
            let chunk = |delta: Value, finish: Value| {
                json!({"id": "c", "object": "chat.completion.chunk", "created": 0,
                    "model": "bench", "choices": [{"index": 0, "delta": delta,
                    "finish_reason": finish}]})
            };
            let usage = json!({"id": "c", "object": "chat.completion.chunk", "created": 0,
                "model": "bench", "choices": [],
                "usage": {"prompt_tokens": 20, "completion_tokens": 5, "total_tokens": 25}});
            let body = format!(
                "data: {}\n\ndata: {}\n\ndata: {usage}\n\ndata: [DONE]\n\n",
                chunk(delta, Value::Null),
                chunk(json!({}), json!(finish)),
            );
            warp::reply::with_header(body, "content-type", "text/event-stream")
        });
    serve(completions).await
}

async fn serve<F>(filter: F) -> String
where
    F: warp::Filter + Clone + Send + Sync + 'static,
    F::Extract: warp::Reply,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(warp::serve(filter).incoming(listener).run());
    format!("http://{addr}")
}

/// One side: a node (embedded, tracing on or off) and its workloads.
fn measure(mode: &str, counts: &Counts) {
    let data = std::env::temp_dir().join(format!("neuroflow-tracing-bench-{}", std::process::id()));
    let mut config = Config::default();
    config.node.data_dir = data.clone();
    config.log.level = "warn".into();
    let llm = std::env::var(LLM_VAR).expect("the LLM server's URL");
    config.providers.insert(
        "llm".into(),
        serde_json::from_value(json!({"kind": "openai", "base_url": format!("{llm}/v1")}))
            .expect("provider config"),
    );
    if mode == "on" {
        config.telemetry.otlp_endpoint = std::env::var(ENDPOINT_VAR).ok();
        if let Some(ratio) = std::env::var(RATIO_VAR).ok().and_then(|r| r.parse().ok()) {
            config.telemetry.sample_ratio = ratio;
        }
    }
    neuroflow::observability::init(&config);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    // Measured from a task on the runtime's workers, as the node's own callers are.
    let counts = *counts;
    let result = runtime.block_on(async move {
        tokio::spawn(run_side(config, counts))
            .await
            .expect("the measuring task")
    });
    let _ = std::fs::remove_dir_all(&data);
    println!("{result}");
}

async fn run_side(config: Config, counts: Counts) -> Value {
    let node = neuroflow::Node::start_embedded(&config)
        .await
        .expect("node");
    let spawn = |spec: Value| {
        let spec = serde_json::from_value(spec).expect("spec");
        node.agents().spawn(spec)
    };
    let scripted = spawn(json!({"name": "scripted", "tools": ["time.*"]}))
        .await
        .expect("agent");
    let http = spawn(json!({"name": "http", "provider": "llm", "model": "bench",
        "tools": ["time.*"]}))
    .await
    .expect("agent");

    let call = || scripted.handle.call(AgentMsg::Spent, T);
    for _ in 0..counts.calls / 10 {
        call().await.expect("call");
    }
    let began = Instant::now();
    for _ in 0..counts.calls {
        call().await.expect("call");
    }
    let call_ns = began.elapsed().as_nanos() as f64 / counts.calls as f64;
    let http_turn_ns = turns(&http, counts.http_turns).await;
    let scripted_turn_ns = turns(&scripted, counts.scripted_turns).await;
    if let Some(exporter) = node.exporter() {
        let status = exporter
            .call(neuroflow::kit::protocol::telemetry::ExporterMsg::Flush, T)
            .await
            .expect("flush");
        eprintln!(
            "exported {} spans, dropped {}",
            status.exported, status.dropped
        );
    }
    node.stop().await;
    json!({"call_ns": call_ns, "http_turn_ns": http_turn_ns, "scripted_turn_ns": scripted_turn_ns})
}

/// Nanoseconds per turn over `n` turns (after `n / 10` unmeasured), each in a
/// conversation of its own: a growing conversation would make the turn's cost (cloning
/// the history) drift over the run.
async fn turns(agent: &neuroflow::node::agents::Agent, n: usize) -> f64 {
    let mut next = 0usize;
    let mut turn = || {
        next += 1;
        agent.handle.call(
            AgentMsg::Chat {
                message: "what time is it?".into(),
                turn_id: None,
                conversation: Some(format!("c{next}")),
            },
            T,
        )
    };
    for _ in 0..n / 10 {
        turn().await.expect("turn");
    }
    let began = Instant::now();
    for _ in 0..n {
        match turn().await.expect("turn") {
            AgentReply::Answer { .. } => {}
            other => panic!("the turn failed: {other:?}"),
        }
    }
    began.elapsed().as_nanos() as f64 / n as f64
}
