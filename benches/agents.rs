//! Agents at scale, each figure against a baseline measured in the same run:
//!
//! - memory per idle agent: resident memory after starting N agents, minus the runtime's
//!   own before them, over N (target < 20 KB);
//! - scripted turns per second: one turn (with a tool call) on each of the N agents, all
//!   at once;
//! - turn overhead: a turn of one agent on the scripted provider, beside a direct call of
//!   the same provider for the same message (the model's own cost), sequentially.
//!
//! ```sh
//! cargo bench --bench agents              # 10,000 agents
//! cargo bench --bench agents -- 2000      # fewer
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use neuroflow::kit::protocol::agent::{AgentMsg, AgentReply, ChatMessage};
use neuroflow::{Runtime, agent_spec};
use neuroflow_agent::provider::{
    CancellationToken, LlmChunk, LlmProvider, LlmRequest, Pricing, ScriptedProvider,
};

const T: Duration = Duration::from_secs(120);

/// Resident memory of this process, in bytes.
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    pages * u64::try_from(page).unwrap_or(4096)
}

fn percentile(v: &mut [Duration], q: f64) -> Duration {
    v.sort();
    v[((v.len() - 1) as f64 * q) as usize]
}

fn main() {
    let measuring = std::env::args().any(|a| a == "--bench");
    let agents: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(if measuring { 10_000 } else { 100 });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let data = std::env::temp_dir().join(format!("neuroflow-bench-{}", std::process::id()));
        let nf = Runtime::builder().data_dir(&data).build().await.unwrap();

        // Memory: the runtime alone, then with N idle agents.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let before = rss();
        let mut handles = Vec::with_capacity(agents);
        for i in 0..agents {
            let agent = nf
                .spawn_agent(agent_spec(&format!("a{i}")).tools(["time.now"]))
                .await
                .unwrap();
            handles.push(agent);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let after = rss();
        let per_agent = after.saturating_sub(before) as f64 / agents as f64;
        println!(
            "agents: {agents} idle agents: {:.1} MiB before, {:.1} MiB after: {:.1} KB per agent (target < 20 KB)",
            before as f64 / 1048576.0,
            after as f64 / 1048576.0,
            per_agent / 1024.0
        );

        // Throughput: one scripted turn with a tool call on every agent, all at once.
        let began = Instant::now();
        let mut turns = tokio::task::JoinSet::new();
        for i in 0..agents {
            let agent = nf.agent(&format!("a{i}")).unwrap();
            turns.spawn(async move { agent.chat("what time is it?").answer().await });
        }
        let mut ok = 0;
        while let Some(turn) = turns.join_next().await {
            if turn.is_ok_and(|t| t.is_ok()) {
                ok += 1;
            }
        }
        let took = began.elapsed();
        println!(
            "agents: {ok} of {agents} turns (each: model, time.now, model) in {:.2} s: {:.0} turns/s",
            took.as_secs_f64(),
            ok as f64 / took.as_secs_f64()
        );

        // Overhead of a turn over the model call it makes, on one agent.
        // Few enough that the growing conversation stays small beside the turn itself.
        let rounds = if measuring { 200 } else { 20 };
        let provider = Arc::new(ScriptedProvider::default_rules(Arc::new(Pricing::default())));
        let one = nf.spawn_agent(agent_spec("solo")).await.unwrap();
        let handle = nf.node().agents().get("solo").unwrap().handle;
        let (mut turns, mut calls) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            let began = Instant::now();
            let reply = handle
                .call(
                    AgentMsg::Chat {
                        message: "hello".into(),
                        turn_id: None,
                        conversation: None,
                    },
                    T,
                )
                .await
                .unwrap();
            turns.push(began.elapsed());
            assert!(matches!(reply, AgentReply::Answer { .. }));

            let req = LlmRequest::new("", vec![ChatMessage::user("hello")]);
            let began = Instant::now();
            let mut sink = |_: LlmChunk| {};
            provider
                .complete(&req, &mut sink, &CancellationToken::new())
                .await
                .unwrap();
            calls.push(began.elapsed());
        }
        let (turn, call) = (percentile(&mut turns, 0.5), percentile(&mut calls, 0.5));
        println!(
            "agents: turn P50 {:.1} us vs the model call alone {:.1} us: overhead {:.1} us per turn ({rounds} rounds)",
            turn.as_secs_f64() * 1e6,
            call.as_secs_f64() * 1e6,
            turn.saturating_sub(call).as_secs_f64() * 1e6,
        );
        drop((handles, one));
        nf.shutdown().await;
        let _ = std::fs::remove_dir_all(&data);
    });
}
