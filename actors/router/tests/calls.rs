//! How calls run: deadlines, panics, shard restarts, concurrency, load and cancellation.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::*;
use neuroflow_kit::protocol::router::{ToolError, ToolOutput};
use neuroflow_router::{RouterConfig, spec, tool_fn};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_past_its_deadline_times_out_and_the_tool_is_dropped() {
    let r = start(2).await;
    let dropped = Arc::new(AtomicBool::new(false));
    let flag = dropped.clone();
    r.tools
        .register(tool_fn(
            spec("slow.forever", "", object_schema()),
            move |_, _| {
                let guard = DropFlag(flag.clone());
                async move {
                    let _guard = guard;
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    "never"
                }
            },
        ))
        .unwrap();
    let started = Instant::now();
    let mut req = request("slow.forever", json!({}));
    req.timeout_ms = Some(200);
    let result = r.tools.call(req).await;
    let took = started.elapsed();
    assert_eq!(
        result,
        Err(ToolError::Timeout {
            tool: "slow.forever".into(),
            timeout_ms: 200
        })
    );
    assert!(
        took >= Duration::from_millis(200) && took < Duration::from_secs(2),
        "{took:?}"
    );
    assert!(
        dropped.load(Ordering::SeqCst),
        "the timed-out tool was not cancelled"
    );

    // The router's default deadline applies when the request names none.
    let r2 = start_with(RouterConfig {
        shards: 1,
        default_timeout: Duration::from_millis(150),
        ..RouterConfig::default()
    })
    .await;
    r2.tools.register(sleepy("slow.sleep", 10_000)).unwrap();
    let result = r2.tools.call(request("slow.sleep", json!({}))).await;
    assert!(
        matches!(
            result,
            Err(ToolError::Timeout {
                timeout_ms: 150,
                ..
            })
        ),
        "{result:?}"
    );
    r.stop().await;
    r2.stop().await;
}

struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_tool_fails_its_call_only() {
    let r = start(1).await;
    r.tools
        .register(tool_fn(
            spec("bad.tool", "", object_schema()),
            |_, _| async {
                if true {
                    panic!("boom in the tool");
                }
                "unreachable"
            },
        ))
        .unwrap();
    r.tools
        .register(tool_fn(
            spec("bad.eager", "", object_schema()),
            |_, _| -> std::future::Ready<&'static str> { panic!("boom before the future") },
        ))
        .unwrap();
    r.tools.register(echo("good.tool")).unwrap();
    for name in ["bad.tool", "bad.eager"] {
        let out = r.tools.call(request(name, json!({}))).await.unwrap();
        assert!(out.is_error, "{out:?}");
        assert!(
            out.content.contains("panicked") && out.content.contains("boom"),
            "{}",
            out.content
        );
    }
    // The one shard holds all three tools and never noticed.
    let shard = &r.tools.shard_handles()[0];
    assert!(shard.is_up());
    let metrics = shard.metrics().unwrap();
    assert_eq!((metrics.failures(), metrics.restarts()), (0, 0));
    assert!(r.tools.call(request("good.tool", json!({}))).await.is_ok());
    assert!(
        r.metrics
            .render()
            .contains(r#"neuroflow_tool_calls_total{outcome="panicked",tool="bad.tool"} 1"#)
    );
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_shard_is_restarted_with_its_tools() {
    let r = start(2).await;
    r.tools.register(echo("kept.tool")).unwrap();
    let owner = r.tools.shard_of("kept.tool");
    let shard = r.tools.shard_handles()[owner].clone();
    r.supervisor
        .inject_failure(&format!("shard-{owner}"), "drill", WAIT)
        .await
        .unwrap();
    let metrics = shard.metrics().unwrap();
    let deadline = Instant::now() + WAIT;
    while !(metrics.restarts() == 1 && shard.is_up()) {
        assert!(Instant::now() < deadline, "shard was not restarted");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(metrics.failures(), 1);
    let out = r
        .tools
        .call(request("kept.tool", json!({"after": "restart"})))
        .await
        .unwrap();
    assert_eq!(common::content(&out), json!({"after": "restart"}));
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_calls_run_concurrently() {
    let r = start(2).await;
    r.tools.register(sleepy("slow.a", 100)).unwrap();
    r.tools.register(sleepy("slow.b", 100)).unwrap();
    let started = Instant::now();
    let calls = (0..100).map(|i| {
        let tools = r.tools.clone();
        let name = if i % 2 == 0 { "slow.a" } else { "slow.b" };
        tokio::spawn(async move { tools.call(request(name, json!({}))).await })
    });
    for call in calls.collect::<Vec<_>>() {
        assert_eq!(call.await.unwrap(), Ok(ToolOutput::ok("done")));
    }
    let took = started.elapsed();
    // Run one after another they would take 10 s; at once, about 100 ms.
    assert!(
        took < Duration::from_secs(2),
        "100 calls of 100 ms took {took:?}"
    );
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_refuses_calls_past_its_in_flight_limit() {
    let r = start_with(RouterConfig {
        shards: 1,
        max_in_flight_per_shard: 2,
        ..RouterConfig::default()
    })
    .await;
    r.tools.register(sleepy("slow.x", 300)).unwrap();
    let running: Vec<_> = (0..2)
        .map(|_| {
            let tools = r.tools.clone();
            tokio::spawn(async move { tools.call(request("slow.x", json!({}))).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let refused = r.tools.call(request("slow.x", json!({}))).await;
    assert!(
        matches!(refused, Err(ToolError::Unavailable { .. })),
        "{refused:?}"
    );
    for call in running {
        assert!(call.await.unwrap().is_ok());
    }
    assert!(r.tools.call(request("slow.x", json!({}))).await.is_ok());
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_that_goes_away_cancels_the_tool() {
    let r = start(1).await;
    let dropped = Arc::new(AtomicBool::new(false));
    let flag = dropped.clone();
    r.tools
        .register(tool_fn(
            spec("slow.cancel", "", object_schema()),
            move |_, _| {
                let guard = DropFlag(flag.clone());
                async move {
                    let _guard = guard;
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    "never"
                }
            },
        ))
        .unwrap();
    let abandoned = tokio::time::timeout(
        Duration::from_millis(100),
        r.tools.call(request("slow.cancel", json!({}))),
    )
    .await;
    assert!(abandoned.is_err());
    let deadline = Instant::now() + WAIT;
    while !dropped.load(Ordering::SeqCst) {
        assert!(Instant::now() < deadline, "the abandoned tool kept running");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    r.stop().await;
}
