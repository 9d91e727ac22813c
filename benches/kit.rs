//! Costs of the actor kit, each against the baseline it must stay close to.
//!
//! - `envelope_codec`: MessagePack frame encode + decode of a typical ~200-byte message
//!   (target < 1 µs).
//! - `actor_call`: a request/reply round trip through the kit (envelope, span, metrics,
//!   deadline) against the same round trip as a raw ractor call (target ≤ 1.3× raw).
//! - `supervisor_restart`: from a crash to the replacement having handled its first message.
//!
//! Run: `cargo bench --bench kit`. Figures are recorded in docs/performance.md.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group};
use neuroflow_kit::actor::{Actor, ActorError, ActorHandle, Ctx};
use neuroflow_kit::codec::{FrameConfig, decode_frame, encode_frame_into};
use neuroflow_kit::envelope::{ActorPath, Envelope};
use neuroflow_kit::metrics::Metrics;
use neuroflow_kit::supervisor::{Backoff, ChildSpec, Strategy, Supervisor, SupervisorSpec};
use neuroflow_kit::timer_anchor::TimerAnchor;
use neuroflow_kit::trace_context::TraceContext;
use ractor::{ActorProcessingErr, ActorRef, RpcReplyPort};
use serde::{Deserialize, Serialize};

const TIMEOUT: Duration = Duration::from_secs(5);

/// A chat turn as an agent would send it to its LLM actor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ChatTurn {
    conversation: u64,
    role: String,
    content: String,
    max_tokens: Option<u32>,
}

fn typical_envelope() -> Envelope<ChatTurn> {
    let trace = TraceContext::parse(
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        None,
    )
    .ok();
    Envelope::new(ChatTurn {
        conversation: 42,
        role: "user".into(),
        content: "Summarise the failing test and propose a one-line fix.".into(),
        max_tokens: Some(512),
    })
    .with_trace(trace)
    .with_sender(ActorPath::root("node").child("agents").child("triage"))
    .with_timeout(TIMEOUT)
}

fn envelope_codec(c: &mut Criterion) {
    let envelope = typical_envelope();
    let cfg = FrameConfig::default();
    let mut buf = Vec::new();
    encode_frame_into(&mut buf, &envelope, &cfg).unwrap();
    println!("envelope_codec: frame of {} bytes", buf.len());
    c.bench_function("envelope_codec/encode_decode", |b| {
        b.iter(|| {
            buf.clear();
            encode_frame_into(&mut buf, black_box(&envelope), &cfg).unwrap();
            let back: Envelope<ChatTurn> = decode_frame(black_box(&buf), &cfg).unwrap();
            black_box(back)
        })
    });
}

/// The kit side of the comparison.
struct Echo;

#[derive(Serialize, Deserialize)]
enum EchoMsg {
    Echo(u64),
    /// Which incarnation is answering (to see a restart complete).
    Incarnation,
}

static INCARNATIONS: AtomicU64 = AtomicU64::new(0);

impl Actor for Echo {
    const KIND: &'static str = "bench.echo";
    type Msg = EchoMsg;
    type Reply = u64;
    type State = u64;
    type Args = ();

    async fn started(&self, _: &Ctx<Self>, _: ()) -> Result<u64, ActorError> {
        Ok(INCARNATIONS.fetch_add(1, Ordering::Relaxed))
    }

    async fn handle(&self, _: &Ctx<Self>, msg: EchoMsg, me: &mut u64) -> Result<u64, ActorError> {
        Ok(match msg {
            EchoMsg::Echo(n) => n + 1,
            EchoMsg::Incarnation => *me,
        })
    }
}

/// The raw ractor side: the same work, no kit.
struct RawEcho;

enum RawMsg {
    Echo(u64, RpcReplyPort<u64>),
}

impl ractor::Actor for RawEcho {
    type Msg = RawMsg;
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<RawMsg>, _: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }

    async fn handle(
        &self,
        _: ActorRef<RawMsg>,
        msg: RawMsg,
        _: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        let RawMsg::Echo(n, reply) = msg;
        let _ = reply.send(n + 1);
        Ok(())
    }
}

type RuntimeFn = fn() -> tokio::runtime::Runtime;

/// The node's runtime: multi-threaded, one worker per core of this 2-core machine.
fn node_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// One thread: no cross-thread wake-ups, so the kit's own cost stands out most.
fn single_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn echo_tree(
    backoff: Backoff,
) -> (
    neuroflow_kit::supervisor::SupervisorHandle,
    ActorHandle<Echo>,
) {
    let (spec, echo) = ChildSpec::actor("echo", || (Echo, ()));
    let tree = SupervisorSpec::new("bench", Strategy::OneForOne)
        .backoff(backoff)
        .intensity(u32::MAX, Duration::from_secs(1))
        .child(spec);
    let (root, _) = Supervisor::start_root(tree, Metrics::new().unwrap())
        .await
        .unwrap();
    (root, echo)
}

/// Raw ractor vs the kit, in one group per runtime flavour. The caller runs as a task on
/// the runtime, as an actor or a request handler does.
fn actor_call(c: &mut Criterion) {
    let flavours: [(&str, RuntimeFn); 2] = [
        ("actor_call", node_runtime),
        ("actor_call_single_thread", single_thread_runtime),
    ];
    for (group_name, runtime) in flavours {
        let rt = runtime();
        let (root, kit) = rt.block_on(echo_tree(Backoff::NONE));
        let (raw, _) = rt
            .block_on(ractor::Actor::spawn(None, RawEcho, ()))
            .unwrap();
        let mut group = c.benchmark_group(group_name);
        group.bench_function("raw_ractor", |b| {
            b.iter_custom(|iters| {
                let raw = raw.clone();
                rt.block_on(rt.spawn(async move {
                    let start = Instant::now();
                    for i in 0..iters {
                        let r = raw
                            .call(|port| RawMsg::Echo(i, port), Some(TIMEOUT))
                            .await
                            .unwrap();
                        black_box(r);
                    }
                    start.elapsed()
                }))
                .unwrap()
            })
        });
        group.bench_function("kit", |b| {
            b.iter_custom(|iters| {
                let kit = kit.clone();
                rt.block_on(rt.spawn(async move {
                    let start = Instant::now();
                    for i in 0..iters {
                        black_box(kit.call(EchoMsg::Echo(i), TIMEOUT).await.unwrap());
                    }
                    start.elapsed()
                }))
                .unwrap()
            })
        });
        group.finish();
        report_ratio(group_name, "kit", "raw_ractor");
        rt.block_on(root.stop(TIMEOUT));
        raw.stop(None);
    }
}

/// Prints `group: a/b = ratio` from the estimates criterion has just written, so the
/// comparison is read off one run rather than two figures from different runs.
fn report_ratio(group: &str, a: &str, b: &str) {
    let estimate = |bench: &str| -> Option<f64> {
        let path = format!("target/criterion/{group}/{bench}/new/estimates.json");
        let text = std::fs::read_to_string(path).ok()?;
        let json: serde_json::Value = serde_json::from_str(&text).ok()?;
        json["mean"]["point_estimate"].as_f64()
    };
    if let (Some(x), Some(y)) = (estimate(a), estimate(b)) {
        println!("{group}: {a} / {b} = {:.2} ({x:.0} ns / {y:.0} ns)", x / y);
    }
}

fn supervisor_restart(c: &mut Criterion) {
    let rt = node_runtime();
    let (root, echo) = rt.block_on(echo_tree(Backoff::NONE));
    c.bench_function("supervisor_restart/crash_to_first_reply", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let old = echo.call(EchoMsg::Incarnation, TIMEOUT).await.unwrap();
                    let start = Instant::now();
                    echo.inject_failure("bench").unwrap();
                    // Calls fail (the old incarnation is gone, or the handle is between
                    // incarnations) until the replacement answers.
                    loop {
                        match echo.call(EchoMsg::Incarnation, TIMEOUT).await {
                            Ok(now) if now != old => break,
                            _ => tokio::task::yield_now().await,
                        }
                    }
                    total += start.elapsed();
                }
                total
            })
        })
    });
    rt.block_on(root.stop(TIMEOUT));
}

/// Paired comparison of the same calls, alternating raw and kit rounds so that drift of the
/// machine (frequency, neighbours) hits both alike; prints the median per-round ratio.
fn paired_call_ratio(
    runtime: fn() -> tokio::runtime::Runtime,
    label: &str,
    rounds: usize,
    calls: u64,
) {
    let rt = runtime();
    let (root, kit) = rt.block_on(echo_tree(Backoff::NONE));
    let (raw, _) = rt
        .block_on(ractor::Actor::spawn(None, RawEcho, ()))
        .unwrap();
    let time_raw = |raw: ActorRef<RawMsg>| async move {
        let start = Instant::now();
        for i in 0..calls {
            black_box(
                raw.call(|port| RawMsg::Echo(i, port), Some(TIMEOUT))
                    .await
                    .unwrap(),
            );
        }
        start.elapsed()
    };
    let time_kit = |kit: ActorHandle<Echo>| async move {
        let start = Instant::now();
        for i in 0..calls {
            black_box(kit.call(EchoMsg::Echo(i), TIMEOUT).await.unwrap());
        }
        start.elapsed()
    };
    let mut ratios = Vec::with_capacity(rounds);
    let (mut raw_ns, mut kit_ns) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        // Alternate which side goes first, too.
        let (r, k) = if round % 2 == 0 {
            let r = rt.block_on(rt.spawn(time_raw(raw.clone()))).unwrap();
            (r, rt.block_on(rt.spawn(time_kit(kit.clone()))).unwrap())
        } else {
            let k = rt.block_on(rt.spawn(time_kit(kit.clone()))).unwrap();
            (rt.block_on(rt.spawn(time_raw(raw.clone()))).unwrap(), k)
        };
        ratios.push(k.as_secs_f64() / r.as_secs_f64());
        raw_ns.push(r.as_nanos() as f64 / calls as f64);
        kit_ns.push(k.as_nanos() as f64 / calls as f64);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let q = |v: &Vec<f64>, p: f64| v[((v.len() - 1) as f64 * p) as usize];
    let m = median(&mut ratios);
    println!(
        "paired {label}: kit / raw_ractor = {m:.2} (quartiles {:.2}..{:.2}; median {:.0} ns vs {:.0} ns per call; {rounds} rounds x {calls} calls each)",
        q(&ratios, 0.25),
        q(&ratios, 0.75),
        median(&mut kit_ns),
        median(&mut raw_ns),
    );
    rt.block_on(root.stop(TIMEOUT));
    raw.stop(None);
}

/// Paired comparison of kit calls on the node's runtime with a [`TimerAnchor`] running and
/// without one, alternating rounds: what a pending timer saves every call's deadline.
fn paired_anchor_ratio(rounds: usize, calls: u64) {
    let rt = node_runtime();
    let (root, kit) = rt.block_on(echo_tree(Backoff::NONE));
    let time_kit = |kit: ActorHandle<Echo>, anchored: bool| async move {
        let anchor = anchored.then(TimerAnchor::start);
        let start = Instant::now();
        for i in 0..calls {
            black_box(kit.call(EchoMsg::Echo(i), TIMEOUT).await.unwrap());
        }
        let took = start.elapsed();
        drop(anchor);
        took
    };
    let mut ratios = Vec::with_capacity(rounds);
    for round in 0..rounds {
        let run = |anchored| {
            rt.block_on(rt.spawn(time_kit(kit.clone(), anchored)))
                .unwrap()
        };
        let (with, without) = if round % 2 == 0 {
            let with = run(true);
            (with, run(false))
        } else {
            let without = run(false);
            (run(true), without)
        };
        ratios.push(with.as_secs_f64() / without.as_secs_f64());
    }
    ratios.sort_by(f64::total_cmp);
    let q = |p: f64| ratios[((ratios.len() - 1) as f64 * p) as usize];
    println!(
        "paired actor_call: with / without timer anchor = {:.2} (quartiles {:.2}..{:.2}; {rounds} rounds x {calls} calls each)",
        q(0.5),
        q(0.25),
        q(0.75),
    );
    rt.block_on(root.stop(TIMEOUT));
}

criterion_group!(benches, envelope_codec, actor_call, supervisor_restart);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    // Under `cargo test` benches run once as a smoke test; keep the paired run tiny there.
    let measuring = std::env::args().any(|a| a == "--bench");
    let (rounds, calls) = if measuring { (41, 20_000) } else { (3, 100) };
    paired_call_ratio(node_runtime, "actor_call", rounds, calls);
    paired_anchor_ratio(rounds, calls);
    paired_call_ratio(
        single_thread_runtime,
        "actor_call_single_thread",
        rounds,
        calls,
    );
}
