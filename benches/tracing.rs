//! What tracing costs: an actor call round trip and an agent turn, with the OpenTelemetry
//! pipeline and exporter on (every span recorded and sent to a collector) against off
//! (no collector configured), in the same run.
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
//! Target: < 10% overhead on both.

use std::process::Command;
use std::time::{Duration, Instant};

use neuroflow::Config;
use neuroflow::kit::protocol::agent::{AgentMsg, AgentReply};
use serde_json::{Value, json};

const MODE_VAR: &str = "NEUROFLOW_TRACING_BENCH_MODE";
const ENDPOINT_VAR: &str = "NEUROFLOW_TRACING_BENCH_ENDPOINT";
/// `telemetry.sample_ratio` of the "on" side (1 unless set).
const RATIO_VAR: &str = "NEUROFLOW_TRACING_BENCH_RATIO";
const T: Duration = Duration::from_secs(30);

fn main() {
    let measuring = std::env::args().any(|a| a == "--bench");
    if let Ok(mode) = std::env::var(MODE_VAR) {
        let (calls, turns) = if measuring {
            (200_000, 20_000)
        } else {
            (500, 20)
        };
        measure(&mode, calls, turns);
        return;
    }
    let rounds: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(if measuring { 7 } else { 1 });
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let endpoint = runtime.block_on(receiver());
    let mut results: [Vec<(f64, f64)>; 2] = [Vec::new(), Vec::new()];
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
                .output()
                .expect("run a side");
            let line = String::from_utf8_lossy(&out.stdout);
            let v: Value = serde_json::from_str(line.trim()).unwrap_or_else(|_| {
                panic!(
                    "{mode}: no result; stderr:\n{}",
                    String::from_utf8_lossy(&out.stderr)
                )
            });
            let side = usize::from(mode == "on");
            results[side].push((
                v["call_ns"].as_f64().unwrap(),
                v["turn_us"].as_f64().unwrap(),
            ));
        }
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let side = |i: usize| {
        (
            median(results[i].iter().map(|r| r.0).collect()),
            median(results[i].iter().map(|r| r.1).collect()),
        )
    };
    let ((call_off, turn_off), (call_on, turn_on)) = (side(0), side(1));
    println!("tracing overhead, median of {rounds} rounds per side\n");
    println!("{:<28} {:>12} {:>12} {:>10}", "", "off", "on", "on/off");
    println!(
        "{:<28} {:>10.0}ns {:>10.0}ns {:>9.3}×",
        "actor call round trip",
        call_off,
        call_on,
        call_on / call_off
    );
    println!(
        "{:<28} {:>10.1}µs {:>10.1}µs {:>9.3}×",
        "agent turn (scripted)",
        turn_off,
        turn_on,
        turn_on / turn_off
    );
}

/// An OTLP/HTTP receiver that takes every batch.
async fn receiver() -> String {
    use warp::Filter;
    let any = warp::post()
        .and(warp::body::bytes())
        .map(|_body: bytes::Bytes| {
            warp::reply::with_header(Vec::<u8>::new(), "content-type", "application/x-protobuf")
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(warp::serve(any).incoming(listener).run());
    format!("http://{addr}/v1/traces")
}

/// One side: a node (embedded, tracing on or off), `calls` actor calls and `turns` turns.
fn measure(mode: &str, calls: usize, turns: usize) {
    let data = std::env::temp_dir().join(format!("neuroflow-tracing-bench-{}", std::process::id()));
    let mut config = Config::default();
    config.node.data_dir = data.clone();
    config.log.level = "warn".into();
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
    let for_task = config.clone();
    let (call_ns, turn_us) = runtime.block_on(async move {
        tokio::spawn(run_side(for_task, calls, turns))
            .await
            .expect("the measuring task")
    });
    let _ = std::fs::remove_dir_all(&data);
    println!("{}", json!({"call_ns": call_ns, "turn_us": turn_us}));
}

async fn run_side(config: Config, calls: usize, turns: usize) -> (f64, f64) {
    {
        let node = neuroflow::Node::start_embedded(&config)
            .await
            .expect("node");
        let spec = serde_json::from_value(json!({"name": "bench", "tools": ["time.*"]})).unwrap();
        let agent = node.agents().spawn(spec).await.expect("agent");
        let call = || agent.handle.call(AgentMsg::Spent, T);
        for _ in 0..calls / 10 {
            call().await.expect("call");
        }
        let began = Instant::now();
        for _ in 0..calls {
            call().await.expect("call");
        }
        let call_ns = began.elapsed().as_nanos() as f64 / calls as f64;
        // Each turn in a conversation of its own: a growing conversation would make the
        // turn's cost (cloning the history) drift over the run.
        let next = std::sync::atomic::AtomicUsize::new(0);
        let turn = || {
            let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            agent.handle.call(
                AgentMsg::Chat {
                    message: "what time is it?".into(),
                    turn_id: None,
                    conversation: Some(format!("c{n}")),
                },
                T,
            )
        };
        for _ in 0..turns / 10 {
            turn().await.expect("turn");
        }
        let began = Instant::now();
        for _ in 0..turns {
            match turn().await.expect("turn") {
                AgentReply::Answer { .. } => {}
                other => panic!("the turn failed: {other:?}"),
            }
        }
        let turn_us = began.elapsed().as_secs_f64() * 1e6 / turns as f64;
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
        (call_ns, turn_us)
    }
}
