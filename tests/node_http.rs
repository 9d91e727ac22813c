//! The node's HTTP API, over loopback against the real binary: health, metrics (checked by
//! promtool), the live supervision tree, and JSON errors.

mod common;

use common::{NodeBuilder, client, promtool_check, require_isolation};
use serde_json::Value;

const SUPERVISORS: [&str; 6] = ["telemetry", "sandboxes", "tools", "agents", "mesh", "api"];

#[tokio::test]
async fn healthz_reports_ok_version_and_uptime() {
    let node = NodeBuilder::serve().start();
    let response = client().get(node.url("/healthz")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert!(body["uptime_seconds"].is_u64(), "{body}");
}

#[tokio::test]
async fn metrics_has_per_actor_families_and_passes_promtool() {
    let node = NodeBuilder::serve().start();
    let http = client();
    // A first scrape so that the metrics actor has handled a message.
    http.get(node.url("/metrics")).send().await.unwrap();
    let response = http.get(node.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = response.text().await.unwrap();

    let metrics = r#"{kind="telemetry.metrics",name="node/telemetry/metrics"}"#;
    for family in [
        "neuroflow_actor_failures_total",
        "neuroflow_actor_restarts_total",
        "neuroflow_actor_mailbox_depth",
        "neuroflow_actor_messages_expired_total",
    ] {
        assert!(
            text.contains(&format!("{family}{metrics} 0\n")),
            "{family}\n{text}"
        );
    }
    assert!(
        text.contains(&format!("neuroflow_actor_messages_handled_total{metrics} ")),
        "{text}"
    );
    assert!(text.contains("neuroflow_actor_handling_seconds_bucket{kind=\"telemetry.metrics\""));
    assert!(
        text.contains("neuroflow_actor_restarts_total{kind=\"api.http\",name=\"node/api/http\"} 0")
    );
    for supervisor in
        std::iter::once("node".to_string()).chain(SUPERVISORS.iter().map(|s| format!("node/{s}")))
    {
        let series = format!(
            "neuroflow_actor_restarts_total{{kind=\"supervisor\",name=\"{supervisor}\"}} 0"
        );
        assert!(text.contains(&series), "{series}\n{text}");
    }
    assert!(
        text.contains(&format!(
            "neuroflow_node_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        )),
        "{text}"
    );
    assert!(text.contains("# TYPE neuroflow_node_uptime_seconds gauge"));
    // The first scrape was counted.
    assert!(
        text.contains(r#"neuroflow_http_requests_total{route="/metrics",status="200"} 1"#),
        "{text}"
    );

    match promtool_check(&text) {
        Some((ok, report)) => assert!(ok, "promtool check metrics rejected the page:\n{report}"),
        None if require_isolation() => {
            panic!("promtool is required (NEUROFLOW_REQUIRE_ISOLATION=1) but not installed")
        }
        None => eprintln!("SKIPPED promtool check: promtool is not installed"),
    }
}

#[tokio::test]
async fn tree_lists_the_supervisors_and_their_children() {
    let node = NodeBuilder::serve().start();
    let response = client()
        .get(node.url("/api/v1/node/tree"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let tree: Value = response.json().await.unwrap();
    assert_eq!(tree["path"], "node");
    assert_eq!(tree["kind"], "supervisor");
    assert_eq!(tree["status"], "running");
    let children = tree["children"].as_array().unwrap();
    let names: Vec<&str> = children
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, SUPERVISORS);
    for child in children {
        assert_eq!(child["kind"], "supervisor", "{child}");
        assert_eq!(child["status"], "running", "{child}");
        assert_eq!(child["restarts"], 0, "{child}");
    }
    let only_child = |i: usize| {
        let kids = children[i]["children"].as_array().unwrap();
        assert_eq!(kids.len(), 1, "{}", children[i]);
        kids[0].clone()
    };
    let metrics = only_child(0);
    assert_eq!(metrics["kind"], "telemetry.metrics");
    assert_eq!(metrics["path"], "node/telemetry/metrics");
    assert_eq!(metrics["status"], "running");
    let http = only_child(5);
    assert_eq!(http["kind"], "api.http");
    assert_eq!(http["path"], "node/api/http");
    assert_eq!(http["status"], "running");
}

#[tokio::test]
async fn unknown_routes_and_wrong_methods_get_json_errors() {
    let node = NodeBuilder::serve().start();
    let http = client();

    for path in [
        "/",
        "/nope",
        "/healthz/extra",
        "/api/v1/node",
        "/api/v1/node/actors/telemetry/fail",
    ] {
        let response = http.get(node.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 404, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "not_found", "{path}");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(path),
            "{body}"
        );
    }

    for path in ["/healthz", "/metrics", "/api/v1/node/tree"] {
        let response = http.post(node.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 405, "{path}");
        assert_eq!(response.headers()["allow"], "GET", "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "method_not_allowed", "{path}");
        assert!(body["error"]["message"].is_string(), "{body}");
    }

    let response = http.delete(node.url("/nope")).send().await.unwrap();
    assert_eq!(response.status(), 404);

    // Unmatched paths share one bounded label.
    let text = node.get_text(&http, "/metrics").await;
    assert!(
        text.contains(r#"neuroflow_http_requests_total{route="unmatched",status="404"} 6"#),
        "{text}"
    );
    assert!(
        text.contains(r#"neuroflow_http_requests_total{route="/healthz",status="405"} 1"#),
        "{text}"
    );
}
