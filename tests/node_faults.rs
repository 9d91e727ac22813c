//! Fault injection through the test hooks: the supervision tree restarts what fails, the
//! node keeps serving, and a root that gives up takes the node down with exit status 1.

mod common;

use std::time::{Duration, Instant};

use common::{EXIT_TIMEOUT, NodeBuilder, POLL_TIMEOUT, client, eventually};
use serde_json::Value;

const FAIL_METRICS: &str = "/api/v1/node/actors/telemetry/metrics/fail";
const METRICS_RESTARTED: &str =
    r#"neuroflow_actor_restarts_total{kind="telemetry.metrics",name="node/telemetry/metrics"} 1"#;

fn node_at(tree: &Value, path: &str) -> Value {
    path.split('/')
        .try_fold(tree, |node, name| {
            node["children"]
                .as_array()?
                .iter()
                .find(|c| c["name"] == name)
        })
        .cloned()
        .unwrap_or_else(|| panic!("no {path} in {tree}"))
}

#[tokio::test]
async fn failed_metrics_actor_is_restarted_and_metrics_keep_working() {
    let node = NodeBuilder::serve().test_hooks().start();
    let http = client();

    let response = http.post(node.url(FAIL_METRICS)).send().await.unwrap();
    assert_eq!(response.status(), 202);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["injected"], "telemetry/metrics");

    // The restart shows in /metrics (served by the restarted actor) ...
    let text = eventually(
        POLL_TIMEOUT,
        "the metrics actor's restart in /metrics",
        || {
            let http = http.clone();
            let url = node.url("/metrics");
            async move {
                let response = http.get(url).send().await.ok()?;
                if response.status() != 200 {
                    return None;
                }
                let text = response.text().await.ok()?;
                text.contains(METRICS_RESTARTED).then_some(text)
            }
        },
    )
    .await;
    assert!(
        text.contains(
            r#"neuroflow_actor_failures_total{kind="telemetry.metrics",name="node/telemetry/metrics"} 1"#
        ),
        "{text}"
    );
    // ... and in the tree.
    let tree: Value = node.get_json(&http, "/api/v1/node/tree").await;
    let metrics = node_at(&tree, "telemetry/metrics");
    assert_eq!(metrics["restarts"], 1, "{metrics}");
    assert_eq!(metrics["status"], "running", "{metrics}");
    assert_eq!(node_at(&tree, "telemetry")["restarts"], 0);

    // /metrics keeps working.
    for _ in 0..3 {
        let response = http.get(node.url("/metrics")).send().await.unwrap();
        assert_eq!(response.status(), 200);
    }
    let health: Value = node.get_json(&http, "/healthz").await;
    assert_eq!(health["status"], "ok");
}

#[tokio::test]
async fn metrics_is_503_with_a_clear_body_while_the_actor_restarts() {
    // A long backoff keeps the actor down long enough to be seen down.
    let node = NodeBuilder::serve()
        .test_hooks()
        .config("[supervision]\nbackoff_initial_ms = 3000\nbackoff_max_ms = 3000\n")
        .start();
    let http = client();
    let response = http.post(node.url(FAIL_METRICS)).send().await.unwrap();
    assert_eq!(response.status(), 202);

    let response = http.get(node.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "text/plain; charset=utf-8"
    );
    let body = response.text().await.unwrap();
    assert!(body.starts_with("metrics unavailable:"), "{body}");
    assert!(body.contains("node/telemetry/metrics"), "{body}");

    let tree: Value = node.get_json(&http, "/api/v1/node/tree").await;
    assert_eq!(node_at(&tree, "telemetry/metrics")["status"], "restarting");

    // Failing an actor that is down is refused, not queued.
    let response = http.post(node.url(FAIL_METRICS)).send().await.unwrap();
    assert_eq!(response.status(), 503);

    eventually(POLL_TIMEOUT, "/metrics to come back", || {
        let http = http.clone();
        let url = node.url("/metrics");
        async move { (http.get(url).send().await.ok()?.status() == 200).then_some(()) }
    })
    .await;
}

#[tokio::test]
async fn failed_http_server_serves_the_same_socket_again() {
    let node = NodeBuilder::serve().test_hooks().start();
    let http = client();
    let response = http
        .post(node.url("/api/v1/node/actors/api/http/fail"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);

    // A fresh client per attempt: the failed incarnation closes its connections.
    let tree: Value = eventually(POLL_TIMEOUT, "the restarted http server", || {
        let url = node.url("/api/v1/node/tree");
        async move {
            let tree: Value = client().get(url).send().await.ok()?.json().await.ok()?;
            (node_at(&tree, "api/http")["restarts"] == 1).then_some(tree)
        }
    })
    .await;
    assert_eq!(node_at(&tree, "api/http")["status"], "running");
    let health = client().get(node.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
}

#[tokio::test]
async fn failing_an_unknown_actor_is_404() {
    let node = NodeBuilder::serve().test_hooks().start();
    let http = client();
    for path in ["nope", "telemetry/nope", "telemetry/metrics/deeper"] {
        let response = http
            .post(node.url(&format!("/api/v1/node/actors/{path}/fail")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "not_found", "{body}");
    }
    // The route takes POST only.
    let response = http.get(node.url(FAIL_METRICS)).send().await.unwrap();
    assert_eq!(response.status(), 405);
    assert!(node.process.stderr().contains("test hooks enabled"));
}

#[tokio::test]
async fn fail_route_does_not_exist_without_test_hooks() {
    let node = NodeBuilder::serve().start();
    let http = client();
    let response = http.post(node.url(FAIL_METRICS)).send().await.unwrap();
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
    // Nothing failed.
    let text = node.get_text(&http, "/metrics").await;
    assert!(
        text.contains(
            r#"neuroflow_actor_failures_total{kind="telemetry.metrics",name="node/telemetry/metrics"} 0"#
        ),
        "{text}"
    );
    assert!(!node.process.stderr().contains("test hooks enabled"));
}

#[tokio::test]
async fn root_supervisor_giving_up_exits_with_status_1() {
    // No restart allowed: the failure escalates through `telemetry` to the root.
    let mut node = NodeBuilder::serve()
        .test_hooks()
        .config("[supervision]\nmax_restarts = 0\n")
        .start();
    let begun = Instant::now();
    // The answer may or may not make it out before the node stops; the exit is what counts.
    let _ = client()
        .post(node.url(FAIL_METRICS))
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    let status = node
        .process
        .wait_exit(EXIT_TIMEOUT)
        .unwrap_or_else(|| panic!("node did not exit; stderr:\n{}", node.process.stderr()));
    assert_eq!(status.code(), Some(1), "stderr:\n{}", node.process.stderr());
    assert!(begun.elapsed() < EXIT_TIMEOUT);
    let stderr = node.process.stderr();
    assert!(stderr.contains("root supervisor failed"), "{stderr}");
    assert!(stderr.contains("restart intensity exceeded"), "{stderr}");
}
