//! The router end to end: registration, listing, routing, validation, the router actor
//! and the metrics.

mod common;

use common::*;
use neuroflow_kit::protocol::router::{RouterMsg, RouterReply, ToolError, ToolOutput};
use neuroflow_router::{RegisterError, spec, tool_fn};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registered_tools_are_listed_by_pattern_and_unregistered() {
    let r = start(4).await;
    for name in ["fs.read", "fs.write", "time.now", "weather.lookup"] {
        r.tools.register(echo(name)).unwrap();
    }
    let names = |patterns: &[&str]| -> Vec<String> {
        let patterns: Vec<String> = patterns.iter().map(|p| p.to_string()).collect();
        r.tools
            .list(&patterns)
            .into_iter()
            .map(|s| s.name)
            .collect()
    };
    assert_eq!(
        names(&[]),
        ["fs.read", "fs.write", "time.now", "weather.lookup"]
    );
    assert_eq!(names(&["fs.*"]), ["fs.read", "fs.write"]);
    assert_eq!(
        names(&["*.now", "weather.lookup"]),
        ["time.now", "weather.lookup"]
    );
    assert!(names(&["nothing*"]).is_empty());

    assert_eq!(
        r.tools.register(echo("fs.read")),
        Err(RegisterError::Duplicate("fs.read".into()))
    );
    assert!(matches!(
        r.tools.register(echo("bad name")),
        Err(RegisterError::InvalidName { .. })
    ));
    let bad_schema = tool_fn(
        spec("x.y", "", json!({"type": "object", "required": 5})),
        |_, _| async { "" },
    );
    assert!(matches!(
        r.tools.register(bad_schema),
        Err(RegisterError::InvalidSchema { .. })
    ));

    assert!(r.tools.unregister("fs.read"));
    assert!(!r.tools.unregister("fs.read"));
    assert_eq!(names(&["fs.*"]), ["fs.write"]);
    let gone = r.tools.call(request("fs.read", json!({}))).await;
    assert_eq!(gone, Err(ToolError::UnknownTool("fs.read".into())));
    // Registered again at runtime, it works again.
    r.tools.register(echo("fs.read")).unwrap();
    assert!(r.tools.call(request("fs.read", json!({}))).await.is_ok());
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_run_on_the_shard_that_owns_the_tool() {
    let r = start(4).await;
    let names: Vec<String> = (0..40).map(|i| format!("tool.t{i}")).collect();
    for name in &names {
        r.tools.register(echo(name)).unwrap();
        assert_eq!(r.tools.holder(name), Some(r.tools.shard_of(name)));
    }
    let shards = r.tools.shard_handles();
    let handled = || -> Vec<u64> {
        shards
            .iter()
            .map(|s| s.metrics().unwrap().handled())
            .collect()
    };
    for name in &names {
        let owner = r.tools.shard_of(name);
        let before = handled();
        let out = r
            .tools
            .call(request(name, json!({"n": name})))
            .await
            .unwrap();
        assert_eq!(common::content(&out), json!({"n": name}));
        let after = handled();
        for (i, (b, a)) in before.iter().zip(&after).enumerate() {
            assert_eq!(
                *a,
                b + u64::from(i == owner),
                "shard {i} after calling {name}"
            );
        }
    }
    // Stop one shard: exactly its tools become unavailable.
    let victim = r.tools.shard_of(&names[0]);
    r.supervisor
        .stop_child(&format!("shard-{victim}"), WAIT)
        .await
        .unwrap();
    for name in &names {
        let result = r.tools.call(request(name, json!({}))).await;
        if r.tools.shard_of(name) == victim {
            assert!(
                matches!(result, Err(ToolError::Unavailable { .. })),
                "{name}: {result:?}"
            );
        } else {
            assert!(result.is_ok(), "{name}: {result:?}");
        }
    }
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_arguments_name_the_json_pointer_and_unknown_tools_are_errors() {
    let r = start(2).await;
    let schema = json!({
        "type": "object",
        "properties": {"city": {"type": "object", "properties": {"zip": {"type": "string"}}}},
        "required": ["city"]
    });
    r.tools
        .register(tool_fn(
            spec("weather.lookup", "Weather.", schema),
            |_, _| async { "sunny" },
        ))
        .unwrap();
    let err = r
        .tools
        .call(request("weather.lookup", json!({"city": {"zip": 12345}})))
        .await
        .unwrap_err();
    match err {
        ToolError::InvalidArguments {
            tool,
            path,
            message,
        } => {
            assert_eq!(tool, "weather.lookup");
            assert_eq!(path, "/city/zip");
            assert!(message.contains("string"), "{message}");
        }
        other => panic!("expected InvalidArguments, got {other:?}"),
    }
    let missing = r.tools.call(request("weather.lookup", json!({}))).await;
    assert!(
        matches!(missing, Err(ToolError::InvalidArguments { ref path, .. }) if path.is_empty())
    );
    // `null` arguments count as `{}` (models send it for tools without parameters).
    r.tools.register(echo("no.args")).unwrap();
    assert!(r.tools.call(request("no.args", json!(null))).await.is_ok());

    let unknown = r.tools.call(request("no.such.tool", json!({}))).await;
    assert_eq!(unknown, Err(ToolError::UnknownTool("no.such.tool".into())));
    let text = r.metrics.render();
    assert!(
        text.contains("neuroflow_tool_unknown_calls_total 1"),
        "{text}"
    );
    assert!(
        text.contains(
            r#"neuroflow_tool_calls_total{outcome="invalid_arguments",tool="weather.lookup"} 2"#
        ),
        "{text}"
    );
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_router_actor_answers_router_messages() {
    let r = start(3).await;
    r.tools.register(echo("echo.one")).unwrap();
    let router = r.router.recipient();
    let listed = router
        .call(
            RouterMsg::List {
                patterns: vec!["echo.*".into()],
            },
            WAIT,
        )
        .await
        .unwrap();
    match listed {
        RouterReply::Tools(specs) => assert_eq!(specs.len(), 1),
        other => panic!("{other:?}"),
    }
    let called = router
        .call(
            RouterMsg::Call(as_agent("echo.one", json!({"x": 1}), "alice")),
            WAIT,
        )
        .await
        .unwrap();
    assert_eq!(
        called,
        RouterReply::Result(Ok(ToolOutput::ok(r#"{"x":1}"#)))
    );
    let unknown = router
        .call(RouterMsg::Call(request("nope", json!({}))), WAIT)
        .await
        .unwrap();
    assert_eq!(
        unknown,
        RouterReply::Result(Err(ToolError::UnknownTool("nope".into())))
    );
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_caller_reaches_the_tool_and_metrics_are_per_tool() {
    let r = start(2).await;
    r.tools
        .register(tool_fn(
            spec("who.ami", "", object_schema()),
            |_, ctx| async move { ctx.caller().unwrap_or("nobody").to_string() },
        ))
        .unwrap();
    let out = r
        .tools
        .call(as_agent("who.ami", json!({}), "alice"))
        .await
        .unwrap();
    assert_eq!(out.content, "alice");
    let text = r.metrics.render();
    assert!(
        text.contains(r#"neuroflow_tool_calls_total{outcome="ok",tool="who.ami"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"neuroflow_tool_call_seconds_count{tool="who.ami"} 1"#),
        "{text}"
    );
    assert!(text.contains(r#"kind="tools.shard""#), "{text}");
    r.tools.unregister("who.ami");
    assert!(!r.metrics.render().contains(r#"tool="who.ami""#));
    r.stop().await;
}
