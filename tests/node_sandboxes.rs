//! The node's sandboxes: one supervised actor per run, profiles from the config, metrics.

mod common;

use std::time::{Duration, Instant};

use common::{TempDir, require_isolation};
use neuroflow::kit::protocol::sandbox::{EndReason, ExecRequest, SandboxReply};
use neuroflow::kit::protocol::telemetry::{MetricsMsg, MetricsReply};
use neuroflow::{Config, Node};
use neuroflow_sandbox::{HostSupport, Profile};

const T: Duration = Duration::from_secs(10);

fn isolation_available() -> bool {
    let host = HostSupport::detect();
    let missing = host.missing(&Profile::builtin("standard").unwrap());
    match (host.is_root, missing) {
        (true, None) => true,
        (root, missing) => {
            let reason = format!(
                "root: {root}, missing layer: {:?}",
                missing.map(|m| m.layer)
            );
            assert!(!require_isolation(), "sandbox required but {reason}");
            eprintln!("skipping: {reason}");
            false
        }
    }
}

fn config(dir: &TempDir, extra: &str) -> Config {
    let text = format!(
        "[node]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n[sandbox]\ninit_program = \"{}\"\n{extra}",
        dir.path().join("data").display(),
        env!("CARGO_BIN_EXE_neuroflow-node"),
    );
    let path = dir.file("node.toml", &text);
    Config::load(Some(&path), &|_| None, &Default::default()).unwrap()
}

fn request(line: &str) -> ExecRequest {
    ExecRequest {
        command: "/bin/sh".into(),
        args: vec!["-c".into(), line.into()],
        ..ExecRequest::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_run_is_a_supervised_actor_with_metrics() {
    if !isolation_available() {
        return;
    }
    let dir = TempDir::new("node-sandboxes");
    let node = Node::start(&config(&dir, "")).await.unwrap();
    let sandboxes = node.sandboxes().clone();

    // While a run is going, its actor is in the tree under `sandboxes`.
    let slow = tokio::spawn({
        let sandboxes = sandboxes.clone();
        async move {
            sandboxes
                .exec("standard", request("sleep 1; echo slept"))
                .await
        }
    });
    let supervisor = node.supervisor("sandboxes").unwrap().clone();
    let deadline = Instant::now() + T;
    let running = loop {
        let tree = supervisor.tree(T).await.unwrap();
        if let Some(child) = tree.children.iter().find(|c| c.kind == "sandbox") {
            break child.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no sandbox actor appeared: {tree:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        running.path.starts_with("node/sandboxes/sandbox-"),
        "{running:?}"
    );
    let SandboxReply::Done(outcome) = slow.await.unwrap() else {
        panic!("refused");
    };
    assert_eq!(outcome.stdout, b"slept\n");
    // Done runs leave the tree.
    let tree = supervisor.tree(T).await.unwrap();
    assert!(
        tree.children.iter().all(|c| c.kind != "sandbox"),
        "{tree:?}"
    );

    let SandboxReply::Done(outcome) = sandboxes.exec("strict", request("exit 3")).await else {
        panic!("refused");
    };
    assert_eq!(
        (outcome.end, outcome.exit_code),
        (EndReason::Exited, Some(3))
    );

    let MetricsReply::Text(text) = node.metrics().call(MetricsMsg::Render, T).await.unwrap();
    for line in [
        "neuroflow_sandbox_ends_total{profile=\"standard\",reason=\"exited\"} 1",
        "neuroflow_sandbox_ends_total{profile=\"strict\",reason=\"exited\"} 1",
        "neuroflow_sandbox_ends_total{profile=\"standard\",reason=\"oom-killed\"} 0",
        "neuroflow_sandbox_start_seconds_count{profile=\"standard\"} 1",
        "neuroflow_sandbox_output_bytes_total{profile=\"standard\"} 6",
    ] {
        assert!(text.contains(line), "missing {line} in\n{text}");
    }
    if let Some((ok, report)) = common::promtool_check(&text) {
        assert!(ok, "{report}");
    }
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_profiles_and_refusals() {
    if !isolation_available() {
        return;
    }
    let dir = TempDir::new("node-profiles");
    let node = Node::start(&config(
        &dir,
        "[sandbox.profiles.tiny]\nbase = \"strict\"\n[sandbox.profiles.tiny.limits]\noutput = \"4K\"\n",
    ))
    .await
    .unwrap();
    let sandboxes = node.sandboxes();
    assert!(sandboxes.profiles().contains(&"tiny".to_string()));
    let SandboxReply::Done(outcome) = sandboxes.exec("tiny", request("yes")).await else {
        panic!("refused");
    };
    assert_eq!(outcome.end, EndReason::OutputCapped);
    assert_eq!(outcome.stdout.len(), 4096);

    let SandboxReply::Refused(failure) = sandboxes.exec("nope", request("true")).await else {
        panic!("an unknown profile must be refused");
    };
    assert!(
        failure.message.contains("unknown sandbox profile \"nope\""),
        "{failure:?}"
    );
    node.stop().await;
}
