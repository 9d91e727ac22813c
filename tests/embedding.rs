//! The node as a library: start it in-process, reach its actors through their handles, stop
//! it.

mod common;

use std::time::Duration;

use common::{TempDir, client};
use neuroflow::kit::protocol::api::{HttpMsg, HttpReply};
use neuroflow::kit::protocol::telemetry::{MetricsMsg, MetricsReply};
use neuroflow::kit::supervisor::ChildStatus;
use neuroflow::{Config, Node};

const T: Duration = Duration::from_secs(5);

fn config(dir: &TempDir) -> Config {
    let mut config = Config::default();
    config.node.listen = "127.0.0.1:0".parse().unwrap();
    config.node.data_dir = dir.path().join("data");
    config.node.shutdown_timeout_secs = 5;
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_runs_in_process_and_stops() {
    let dir = TempDir::new("embed");
    let node = Node::start(&config(&dir)).await.unwrap();
    let addr = node.local_addr().unwrap();
    assert_ne!(addr.port(), 0);

    let HttpReply::Status {
        local_addr,
        test_hooks,
    } = node.http().unwrap().call(HttpMsg::Status, T).await.unwrap();
    assert_eq!(local_addr, addr.to_string());
    assert!(!test_hooks);

    let MetricsReply::Text(text) = node.metrics().call(MetricsMsg::Render, T).await.unwrap();
    assert!(text.contains("neuroflow_node_info"), "{text}");

    let agents = node.supervisor("agents").unwrap().tree(T).await.unwrap();
    assert_eq!(agents.path, "node/agents");
    assert_eq!(agents.status, ChildStatus::Running);
    assert!(node.supervisor("nope").is_none());

    let response = client()
        .get(format!("http://{addr}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let root = node.root().clone();
    node.run_until(async { "test done" }).await.unwrap();
    assert!(!root.is_up());
    assert!(std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_port_is_a_bind_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dir = TempDir::new("embed");
    let mut config = config(&dir);
    config.node.listen = taken.local_addr().unwrap();
    let err = match Node::start(&config).await {
        Ok(_) => panic!("started on a taken port"),
        Err(err) => err,
    };
    assert!(matches!(err, neuroflow::NodeError::Bind { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runtime_runs_agents_with_rust_tools_and_streams_each_turn() {
    use neuroflow::kit::protocol::agent::AgentEvent;
    use neuroflow::kit::protocol::router::ToolOutput;
    use neuroflow::{Runtime, agent_spec};

    let dir = TempDir::new("runtime");
    let runtime = Runtime::builder()
        .data_dir(dir.path().join("data"))
        .build()
        .await
        .unwrap();
    assert!(
        runtime.node().local_addr().is_none(),
        "an embedded runtime listens nowhere"
    );
    // A Rust tool under the name the scripted provider's time rule calls.
    runtime
        .register_tool(neuroflow_router::tool_fn(
            neuroflow_router::spec(
                "time.fixed",
                "A fixed clock.",
                serde_json::json!({"type": "object"}),
            ),
            |_, _| async { ToolOutput::ok("noon") },
        ))
        .unwrap();
    let fixed = runtime.tools().list(&["time.fixed".into()]);
    assert_eq!(fixed[0].provider, "local", "registered in-process");
    let agent = runtime
        .spawn_agent(agent_spec("clock").tools(["time.now"]))
        .await
        .unwrap();
    // Two turns at once on one agent: each chat sees its own turn's events only.
    let (mut first, mut second) = (agent.chat("hello"), agent.chat("what time is it?"));
    let mut first_events = Vec::new();
    while let Some(event) = first.next_event().await {
        first_events.push(event);
    }
    let mut second_events = Vec::new();
    while let Some(event) = second.next_event().await {
        second_events.push(event);
    }
    assert!(
        first_events
            .iter()
            .all(|e| !matches!(e, AgentEvent::ToolCallStart { .. }))
    );
    assert!(matches!(
        first_events.last(),
        Some(AgentEvent::Final { .. })
    ));
    assert!(
        second_events
            .iter()
            .any(|e| matches!(e, AgentEvent::ToolCallStart { name, .. } if name == "time.now"))
    );
    assert!(first.answer().await.unwrap().starts_with("Hello!"));
    assert!(second.answer().await.unwrap().starts_with("The time is"));
    assert!(agent.spent().total_tokens() > 0);
    runtime.shutdown().await;
}
