//! A trivial tool call to a stdio MCP server through the router: `t.echo` on the
//! workspace's test server, from `Tools::call` through the shard, the server's session and
//! its pipes, and back. Target: P50 < 1 ms.
//!
//! Baseline, measured in the same run: the same call made straight with the SDK's client
//! (`Peer::call_tool`) on a session of its own with another process of the same server,
//! so the ratio is what the router, the server's actor link and the result mapping add.
//! Besides criterion's figures, the bench prints per-call percentiles over 5,000 calls.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::Criterion;
use neuroflow_kit::metrics::Metrics;
use neuroflow_kit::protocol::mcp::McpState;
use neuroflow_kit::protocol::router::ToolCallRequest;
use neuroflow_kit::supervisor::{Supervisor, SupervisorHandle};
use neuroflow_router::mcp::{
    McpServerConfig, McpServers, client_config, host_launcher, spawn_on_host,
};
use neuroflow_router::{RouterConfig, Tools};
use rmcp::RoleClient;
use rmcp::model::CallToolRequestParams;
use rmcp::service::{RunningService, serve_client};
use serde_json::json;
use tokio::runtime::Runtime;

const SERVER: &str = env!("CARGO_BIN_EXE_mcp-test-server");
const CALLS: usize = 5_000;
const WARMUP: usize = 500;

struct Setup {
    rt: Runtime,
    tools: Tools,
    supervisor: SupervisorHandle,
    raw: RunningService<RoleClient, rmcp::model::ClientConfig>,
    /// Keeps the baseline's server process alive.
    _raw_process: Box<dyn neuroflow_router::mcp::ServerProcess>,
}

fn setup() -> Setup {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (tools, supervisor, raw, raw_process) = rt.block_on(async {
        let metrics = Metrics::new().unwrap();
        let parts = Tools::build(RouterConfig::default(), &metrics).unwrap();
        let servers = BTreeMap::from([(
            "t".to_string(),
            McpServerConfig::stdio(SERVER, Vec::<String>::new()),
        )]);
        let mcp =
            McpServers::build(parts.tools.clone(), &metrics, host_launcher(), &servers).unwrap();
        let spec = parts.supervisor_spec("tools").child(mcp.supervisor);
        let (supervisor, _) = Supervisor::start_root(spec, metrics).await.unwrap();
        let start = Instant::now();
        while mcp.servers.status("t").unwrap().state != McpState::Up {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "server never came up"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let spawned = spawn_on_host(&McpServerConfig::stdio(SERVER, Vec::<String>::new())).unwrap();
        let raw = serve_client(
            client_config(Default::default()),
            (spawned.stdout, spawned.stdin),
        )
        .await
        .unwrap();
        (parts.tools, supervisor, raw, spawned.process)
    });
    Setup {
        rt,
        tools,
        supervisor,
        raw,
        _raw_process: raw_process,
    }
}

fn routed_request() -> ToolCallRequest {
    ToolCallRequest {
        name: "t.echo".into(),
        arguments: json!({"text": "hello"}),
        timeout_ms: None,
        caller: Some("bench".into()),
    }
}

fn raw_request() -> CallToolRequestParams {
    let mut params = CallToolRequestParams::new("echo");
    params.arguments = json!({"text": "hello"}).as_object().cloned();
    params
}

/// Times `iters` calls made one after another from a task on the runtime.
fn timed_calls(s: &Setup, iters: u64, routed: bool) -> Duration {
    let tools = s.tools.clone();
    let peer = s.raw.peer().clone();
    s.rt.block_on(s.rt.spawn(async move {
        let started = Instant::now();
        for _ in 0..iters {
            if routed {
                black_box(tools.call(routed_request()).await.unwrap());
            } else {
                black_box(peer.call_tool(raw_request()).await.unwrap());
            }
        }
        started.elapsed()
    }))
    .unwrap()
}

fn samples(s: &Setup, routed: bool) -> Vec<Duration> {
    let tools = s.tools.clone();
    let peer = s.raw.peer().clone();
    let mut samples =
        s.rt.block_on(s.rt.spawn(async move {
            let mut samples = Vec::with_capacity(CALLS);
            for i in 0..CALLS + WARMUP {
                let started = Instant::now();
                if routed {
                    let out = tools.call(routed_request()).await.unwrap();
                    assert_eq!(out.content, "hello");
                } else {
                    black_box(peer.call_tool(raw_request()).await.unwrap());
                }
                if i >= WARMUP {
                    samples.push(started.elapsed());
                }
            }
            samples
        }))
        .unwrap();
    samples.sort();
    samples
}

fn at(samples: &[Duration], q: f64) -> f64 {
    let i = ((samples.len() as f64 * q) as usize).min(samples.len() - 1);
    samples[i].as_secs_f64() * 1e6
}

fn main() {
    let s = setup();
    let raw = samples(&s, false);
    let routed = samples(&s, true);
    for (name, v) in [("sdk_client_direct", &raw), ("through_router", &routed)] {
        println!(
            "mcp_stdio/{name}: P50 {:.1} µs, P90 {:.1} µs, P99 {:.1} µs ({CALLS} calls)",
            at(v, 0.5),
            at(v, 0.9),
            at(v, 0.99)
        );
    }
    println!(
        "mcp_stdio: through the router / SDK client direct = x{:.2} at P50, x{:.2} at P99",
        at(&routed, 0.5) / at(&raw, 0.5),
        at(&routed, 0.99) / at(&raw, 0.99)
    );
    let mut c = Criterion::default().configure_from_args();
    let mut group = c.benchmark_group("mcp_stdio");
    group.bench_function("sdk_client_direct", |b| {
        b.iter_custom(|n| timed_calls(&s, n, false))
    });
    group.bench_function("through_router", |b| {
        b.iter_custom(|n| timed_calls(&s, n, true))
    });
    group.finish();
    c.final_summary();
    s.rt.block_on(s.supervisor.stop(Duration::from_secs(5)));
}
