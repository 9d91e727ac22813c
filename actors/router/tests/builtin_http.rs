//! http.fetch against loopback servers made by the tests.

mod common;

use std::time::{Duration, Instant};

use common::*;
use neuroflow_kit::protocol::router::ToolOutput;
use neuroflow_router::builtin::http::{HttpConfig, tool};
use serde_json::{Value, json};

async fn router_allowing(allow: Vec<String>) -> Running {
    let r = start(2).await;
    let config = HttpConfig {
        allow,
        max_response_bytes: 4096,
        timeout: Duration::from_secs(5),
        ..HttpConfig::default()
    };
    r.tools.register(tool(config).unwrap()).unwrap();
    r
}

async fn fetch(r: &Running, args: Value) -> ToolOutput {
    r.tools.call(request("http.fetch", args)).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowlisted_hosts_are_fetched_and_others_refused_without_a_connection() {
    let allowed = Server::start(|method, path, body| {
        Reply::ok(format!("{method} {path} {}", String::from_utf8_lossy(body)))
    })
    .await;
    let other = Server::start(|_, _, _| Reply::ok("should never be reached")).await;
    let r = router_allowing(vec![allowed.addr.to_string()]).await;

    let out = fetch(&r, json!({"url": allowed.url("/hello")})).await;
    assert!(!out.is_error, "{}", out.content);
    let got = content(&out);
    assert_eq!(
        (got["status"].clone(), got["body"].clone()),
        (json!(200), json!("GET /hello "))
    );
    assert_eq!(got["content_type"], "text/plain");

    let out = fetch(
        &r,
        json!({"url": allowed.url("/p"), "method": "POST", "body": "payload"}),
    )
    .await;
    assert_eq!(content(&out)["body"], "POST /p payload");

    // Same address, another port: not allowed, and never contacted.
    let out = fetch(&r, json!({"url": other.url("/")})).await;
    assert!(
        out.is_error && out.content.contains("not on the allowlist"),
        "{}",
        out.content
    );
    let out = fetch(
        &r,
        json!({"url": format!("http://localhost:{}/", allowed.addr.port())}),
    )
    .await;
    assert!(
        out.is_error,
        "a host name that resolves to an allowed address is still another host"
    );
    let out = fetch(&r, json!({"url": "file:///etc/passwd"})).await;
    assert!(out.is_error);
    let out = fetch(
        &r,
        json!({"url": allowed.url("/"), "headers": {"Host": "evil.test"}}),
    )
    .await;
    assert!(
        out.is_error && out.content.contains("may not be set"),
        "{}",
        out.content
    );
    assert_eq!(other.hits(), 0);
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_are_followed_only_to_allowlisted_hosts() {
    let elsewhere = Server::start(|_, _, _| Reply::ok("leaked")).await;
    let target = elsewhere.url("/loot");
    let allowed = Server::start(move |_, path, _| match path {
        "/away" => Reply::redirect(&target),
        "/home" => Reply::redirect("/final"),
        _ => Reply::ok("arrived"),
    })
    .await;
    let r = router_allowing(vec![allowed.addr.to_string()]).await;

    let out = fetch(&r, json!({"url": allowed.url("/home")})).await;
    let got = content(&out);
    assert_eq!(got["body"], "arrived");
    assert_eq!(got["url"], allowed.url("/final"));

    let out = fetch(&r, json!({"url": allowed.url("/away")})).await;
    assert!(out.is_error, "{}", out.content);
    assert!(
        out.content.contains("refused: not on the allowlist"),
        "{}",
        out.content
    );
    assert_eq!(elsewhere.hits(), 0);
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_bodies_are_cut_at_the_limit() {
    let server = Server::start(|_, _, _| Reply::ok(vec![b'z'; 100_000])).await;
    let r = router_allowing(vec![server.addr.to_string()]).await;
    let got = content(&fetch(&r, json!({"url": server.url("/")})).await);
    assert_eq!(got["body"].as_str().unwrap().len(), 4096);
    assert_eq!(got["truncated"], true);
    let got = content(&fetch(&r, json!({"url": server.url("/"), "max_bytes": 10})).await);
    assert_eq!(got["body"], "zzzzzzzzzz");
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_answers_times_out() {
    let server = Server::start(|_, _, _| Reply::Hang).await;
    let r = router_allowing(vec![server.addr.to_string()]).await;
    let started = Instant::now();
    let out = fetch(&r, json!({"url": server.url("/"), "timeout_ms": 300})).await;
    let took = started.elapsed();
    assert!(
        out.is_error && out.content.contains("timed out after 300 ms"),
        "{}",
        out.content
    );
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(3),
        "{took:?}"
    );
    // Under a tighter router deadline the tool gives up first and says so.
    let mut req = request("http.fetch", json!({"url": server.url("/")}));
    req.timeout_ms = Some(400);
    let out = r.tools.call(req).await.unwrap();
    assert!(
        out.is_error && out.content.contains("timed out"),
        "{}",
        out.content
    );
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_statuses_are_failed_results() {
    let server = Server::start(|_, _, _| Reply::Respond {
        status: 503,
        headers: vec![],
        body: b"busy".to_vec(),
    })
    .await;
    let r = router_allowing(vec![format!("127.0.0.1:{}", server.addr.port())]).await;
    let out = fetch(&r, json!({"url": server.url("/")})).await;
    assert!(out.is_error);
    assert_eq!(content(&out)["status"], 503);
    r.stop().await;
}
