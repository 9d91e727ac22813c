//! In-process tool call through the router: a trivial echo tool, called through the local
//! `Tools` handle (admission by the owning shard actor, execution in its own task) and
//! through the router actor (a `RouterMsg::Call` message). Target: P50 < 20 µs.
//!
//! Besides criterion's figures (means over batches), the bench prints true per-call
//! percentiles measured over 20,000 single calls.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::Criterion;
use neuroflow_kit::ActorHandle;
use neuroflow_kit::metrics::Metrics;
use neuroflow_kit::protocol::router::{RouterMsg, ToolCallRequest, ToolOutput};
use neuroflow_kit::supervisor::{Supervisor, SupervisorHandle};
use neuroflow_router::{RouterConfig, ToolRouter, Tools, spec, tool_fn};
use serde_json::json;
use tokio::runtime::Runtime;

struct Setup {
    rt: Runtime,
    tools: Tools,
    router: ActorHandle<ToolRouter>,
    supervisor: SupervisorHandle,
}

fn setup() -> Setup {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (tools, router, supervisor) = rt.block_on(async {
        let metrics = Metrics::new().unwrap();
        let parts = Tools::build(RouterConfig::default(), &metrics).unwrap();
        let tree = parts.supervisor_spec("tools");
        let (supervisor, _) = Supervisor::start_root(tree, metrics).await.unwrap();
        let echo = tool_fn(
            spec("bench.echo", "Echoes.", json!({"type": "object"})),
            |args, _| async move { ToolOutput::ok(args.to_string()) },
        );
        parts.tools.register(echo).unwrap();
        (parts.tools, parts.router, supervisor)
    });
    Setup {
        rt,
        tools,
        router,
        supervisor,
    }
}

fn request() -> ToolCallRequest {
    ToolCallRequest {
        name: "bench.echo".into(),
        arguments: json!({"text": "hello"}),
        timeout_ms: None,
        caller: Some("bench".into()),
    }
}

/// Runs `iters` calls in a task on the runtime (as an agent would) and times them.
fn timed_calls(s: &Setup, iters: u64, via_actor: bool) -> Duration {
    let (tools, router) = (s.tools.clone(), s.router.clone());
    s.rt.block_on(s.rt.spawn(async move {
        let started = Instant::now();
        for _ in 0..iters {
            if via_actor {
                let msg = RouterMsg::Call(request());
                black_box(router.call(msg, Duration::from_secs(5)).await.unwrap());
            } else {
                black_box(tools.call(request()).await.unwrap());
            }
        }
        started.elapsed()
    }))
    .unwrap()
}

fn percentiles(s: &Setup, via_actor: bool) {
    let (tools, router) = (s.tools.clone(), s.router.clone());
    let mut samples =
        s.rt.block_on(s.rt.spawn(async move {
            let mut samples = Vec::with_capacity(20_000);
            for i in 0..22_000 {
                let started = Instant::now();
                if via_actor {
                    let msg = RouterMsg::Call(request());
                    black_box(router.call(msg, Duration::from_secs(5)).await.unwrap());
                } else {
                    black_box(tools.call(request()).await.unwrap());
                }
                // The first 2,000 calls warm up caches, pools and the allocator.
                if i >= 2_000 {
                    samples.push(started.elapsed());
                }
            }
            samples
        }))
        .unwrap();
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    println!(
        "tool_call/{}: P50 {:.1} µs, P90 {:.1} µs, P99 {:.1} µs (20,000 calls)",
        if via_actor {
            "router_actor"
        } else {
            "tools_handle"
        },
        at(0.50).as_secs_f64() * 1e6,
        at(0.90).as_secs_f64() * 1e6,
        at(0.99).as_secs_f64() * 1e6,
    );
}

fn main() {
    let s = Arc::new(setup());
    percentiles(&s, false);
    percentiles(&s, true);
    let mut c = Criterion::default().configure_from_args();
    let mut group = c.benchmark_group("tool_call");
    group.bench_function("tools_handle", |b| {
        b.iter_custom(|n| timed_calls(&s, n, false))
    });
    group.bench_function("router_actor", |b| {
        b.iter_custom(|n| timed_calls(&s, n, true))
    });
    group.finish();
    c.final_summary();
    s.rt.block_on(s.supervisor.stop(Duration::from_secs(5)));
}
