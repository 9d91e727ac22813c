//! The MCP client against the in-workspace rmcp server over stdio: tools registered as
//! `SERVER.TOOL`, results and errors as the model sees them, pagination, list changes,
//! deadlines with cancellation at the server, trace context in `_meta`, resources and
//! prompts.

mod common;

use std::time::{Duration, Instant};

use common::{WAIT, start, test_server_config};
use neuroflow_kit::protocol::mcp::McpState;
use neuroflow_kit::protocol::router::ToolError;
use neuroflow_router::mcp::{McpError, McpServerConfig};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tools_are_registered_namespaced_and_called() {
    let node = start(&[("t", test_server_config(&[]))]).await;
    let status = node.wait_state("t", McpState::Up).await;
    assert_eq!(status.tools, 9, "{status:?}");
    assert_eq!(status.transport, "stdio");
    assert_eq!(status.protocol_version.as_deref(), Some("2025-11-25"));
    assert!(status.pid.is_some());

    let listed = node.tools.list(&["t.*".into()]);
    let names: Vec<&str> = listed.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "t.add", "t.echo", "t.env", "t.fail", "t.grow", "t.pid", "t.refuse", "t.slow",
            "t.trace"
        ]
    );
    let echo = listed.iter().find(|s| s.name == "t.echo").unwrap();
    assert_eq!(echo.provider, "mcp:t");
    assert_eq!(echo.description, "Echoes its text.");
    assert_eq!(echo.parameters["required"], json!(["text"]));

    let out = node
        .call("t.echo", json!({"text": "hi there"}))
        .await
        .unwrap();
    assert_eq!((out.content.as_str(), out.is_error), ("hi there", false));
    let out = node
        .call("t.add", json!({"a": 2, "b": 40.5}))
        .await
        .unwrap();
    assert_eq!(out.content, "42.5");
    // The server's schema is enforced by the router before the call leaves the node.
    let err = node.call("t.echo", json!({"text": 5})).await.unwrap_err();
    assert!(matches!(err, ToolError::InvalidArguments { .. }), "{err:?}");
    // An `isError` result stays an error the model sees.
    let out = node.call("t.fail", json!({})).await.unwrap();
    assert_eq!(
        (out.content.as_str(), out.is_error),
        ("it failed, as asked", true)
    );
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_server_gets_its_env_and_a_few_basics_of_the_nodes_never_the_rest() {
    let mut config = test_server_config(&[]);
    config.env.insert("GREETING".into(), "hello".into());
    let node = start(&[("e", config)]).await;
    node.wait_state("e", McpState::Up).await;
    let env = |name: &'static str| {
        let node = &node;
        async move {
            node.call("e.env", json!({ "name": name }))
                .await
                .unwrap()
                .content
        }
    };
    assert_eq!(env("GREETING").await, "hello");
    assert_eq!(env("PATH").await, std::env::var("PATH").unwrap());
    // Cargo sets this for the test process; the server must not see the node's variables.
    assert!(std::env::var("CARGO_PKG_NAME").is_ok());
    assert_eq!(env("CARGO_PKG_NAME").await, "unset");
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_server_gets_the_configured_headers_and_bearer_token() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // A loopback listener that records the first request's head and answers 500.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    let head = tokio::spawn(async move {
        let (mut conn, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 16 * 1024];
        let mut read = 0;
        while !buf[..read].windows(4).any(|w| w == b"\r\n\r\n") && read < buf.len() {
            let n = conn.read(&mut buf[read..]).await.unwrap();
            if n == 0 {
                break;
            }
            read += n;
        }
        let _ = conn
            .write_all(b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\n\r\n")
            .await;
        String::from_utf8_lossy(&buf[..read]).to_lowercase()
    });
    let mut config = McpServerConfig::http(&url);
    config.bearer_token = Some("s3cret".into());
    config.headers.insert("X-Team".into(), "research".into());
    config.max_restarts = 0;
    let node = start(&[("h", config)]).await;
    let head = tokio::time::timeout(WAIT, head).await.unwrap().unwrap();
    assert!(head.starts_with("post /mcp http/1.1"), "{head}");
    assert!(head.contains("authorization: bearer s3cret"), "{head}");
    assert!(head.contains("x-team: research"), "{head}");
    // The refused session leaves the server failed, and says why.
    let failed = node.wait_state("h", McpState::Failed).await;
    assert!(failed.last_error.is_some(), "{failed:?}");
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paginated_tool_lists_are_read_whole_and_filters_apply() {
    let mut config = test_server_config(&["--page-size", "2"]);
    config.tools = vec!["ec*".into(), "add".into()];
    let node = start(&[("p", config)]).await;
    let status = node.wait_state("p", McpState::Up).await;
    assert_eq!(status.tools, 2, "{status:?}");
    let names: Vec<String> = node.tools.list(&[]).into_iter().map(|s| s.name).collect();
    assert_eq!(names, ["p.add", "p.echo"]);

    // Without the filter, all nine tools arrive across five pages.
    let all = start(&[("q", test_server_config(&["--page-size", "2"]))]).await;
    assert_eq!(all.wait_state("q", McpState::Up).await.tools, 9);
    node.stop().await;
    all.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_tool_list_is_followed() {
    let node = start(&[("g", test_server_config(&[]))]).await;
    node.wait_state("g", McpState::Up).await;
    assert!(node.tools.list(&["g.extra_1".into()]).is_empty());
    let out = node.call("g.grow", json!({})).await.unwrap();
    assert_eq!(out.content, "added extra_1");
    node.wait_tool("g.extra_1", true).await;
    let out = node.call("g.extra_1", json!({})).await.unwrap();
    assert_eq!(out.content, "extra_1 ran");
    assert_eq!(node.mcp.status("g").unwrap().tools, 10);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_past_its_deadline_is_cancelled_at_the_server() {
    let events = std::env::temp_dir().join(format!("mcp-events-{}", std::process::id()));
    let _ = std::fs::remove_file(&events);
    let events_arg = events.display().to_string();
    let node = start(&[("s", test_server_config(&["--events", &events_arg]))]).await;
    node.wait_state("s", McpState::Up).await;

    let started = Instant::now();
    let err = node
        .call_within("s.slow", json!({"ms": 30_000}), Some(200))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ToolError::Timeout {
                timeout_ms: 200,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    // The server hears `notifications/cancelled` and stops working on the call.
    let deadline = Instant::now() + WAIT;
    loop {
        let seen = std::fs::read_to_string(&events).unwrap_or_default();
        if seen.contains("cancelled slow") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the server never saw the cancellation"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The session is still good for the next call.
    let out = node.call("s.slow", json!({"ms": 1})).await.unwrap();
    assert_eq!(out.content, "slept 1 ms");
    let _ = std::fs::remove_file(&events);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_callers_trace_reaches_the_server_in_meta() {
    use neuroflow_kit::actor::{Actor, ActorError, Ctx};
    use neuroflow_kit::envelope::Envelope;
    use neuroflow_kit::supervisor::{ChildSpec, Strategy, Supervisor, SupervisorSpec};
    use neuroflow_kit::trace_context::TraceContext;

    // An actor that calls the tool while handling a message that carries a trace.
    struct Caller(neuroflow_router::Tools);
    impl Actor for Caller {
        const KIND: &'static str = "test.caller";
        type Msg = ();
        type Reply = String;
        type State = ();
        type Args = ();
        async fn started(&self, _: &Ctx<Self>, _: ()) -> Result<(), ActorError> {
            Ok(())
        }
        async fn handle(&self, _: &Ctx<Self>, _: (), _: &mut ()) -> Result<String, ActorError> {
            let request = neuroflow_kit::protocol::router::ToolCallRequest {
                name: "c.trace".into(),
                arguments: json!({}),
                timeout_ms: None,
                caller: None,
            };
            Ok(self.0.call(request).await?.content)
        }
    }

    let node = start(&[("c", test_server_config(&[]))]).await;
    node.wait_state("c", McpState::Up).await;
    let tools = node.tools.clone();
    let (spec, caller) = ChildSpec::actor("caller", move || (Caller(tools.clone()), ()));
    let (sup, _join) = Supervisor::start_root(
        SupervisorSpec::new("callers", Strategy::OneForOne).child(spec),
        node.metrics.clone(),
    )
    .await
    .unwrap();
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let trace = TraceContext::parse(traceparent, None).unwrap();
    let envelope = Envelope::new(()).with_trace(Some(trace));
    let seen = caller.call_envelope(envelope, WAIT).await.unwrap();
    assert_eq!(seen, traceparent);
    sup.stop(WAIT).await;
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resources_and_prompts_are_reachable() {
    let node = start(&[("r", test_server_config(&[]))]).await;
    node.wait_state("r", McpState::Up).await;
    let resources = node.mcp.resources("r").await.unwrap();
    assert_eq!(resources.len(), 1);
    assert_eq!(resources[0].uri, "test://greeting");
    let text = node
        .mcp
        .resource_text("r", "test://greeting")
        .await
        .unwrap();
    assert_eq!(text, "Hello from the test server.");
    let err = node
        .mcp
        .resource_text("r", "test://nothing")
        .await
        .unwrap_err();
    assert!(matches!(err, McpError::Server { .. }), "{err:?}");

    let prompts = node.mcp.prompts("r").await.unwrap();
    assert_eq!(prompts[0].name, "greet");
    let mut args = serde_json::Map::new();
    args.insert("name".into(), json!("Ada"));
    let prompt = node.mcp.get_prompt("r", "greet", args).await.unwrap();
    let message = serde_json::to_value(&prompt.messages[0]).unwrap();
    assert_eq!(message["content"]["text"], "Please greet Ada.");
    assert!(matches!(
        node.mcp.resources("nope").await.unwrap_err(),
        McpError::NoSuchServer(_)
    ));
    node.stop().await;
}
