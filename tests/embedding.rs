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
    let addr = node.local_addr();
    assert_ne!(addr.port(), 0);

    let HttpReply::Status {
        local_addr,
        test_hooks,
    } = node.http().call(HttpMsg::Status, T).await.unwrap();
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
