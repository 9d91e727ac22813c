//! A server that dies comes back: calls fail fast while it is down, its tools return with
//! it, restarts are counted, and a server that keeps dying is given up on until restarted.

mod common;

use std::time::{Duration, Instant};

use common::{WAIT, metric, start, test_server_config};
use neuroflow_kit::protocol::mcp::McpState;
use neuroflow_router::mcp::McpServerConfig;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_fails_fast_then_comes_back_with_its_tools() {
    let mut config = test_server_config(&[]);
    // Long enough to see the restarting state from a call.
    config.backoff_initial_ms = 500;
    config.backoff_max_ms = 500;
    let node = start(&[("k", config)]).await;
    let up = node.wait_state("k", McpState::Up).await;
    let out = node
        .call("k.echo", json!({"text": "before"}))
        .await
        .unwrap();
    assert_eq!(out.content, "before");

    let pid = up.pid.expect("a stdio server has a pid");
    kill(Pid::from_raw(i32::try_from(pid).unwrap()), Signal::SIGKILL).unwrap();
    node.wait_state("k", McpState::Restarting).await;

    // While it is down, a call fails at once and says why.
    let started = Instant::now();
    let out = node
        .call("k.echo", json!({"text": "during"}))
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_millis(200),
        "{:?}",
        started.elapsed()
    );
    assert!(out.is_error);
    assert!(
        out.content
            .starts_with("MCP server k is unavailable: restarting"),
        "{}",
        out.content
    );
    // Its tools stay registered meanwhile: the model sees why they fail.
    assert_eq!(node.tools.list(&["k.*".into()]).len(), 9);

    let back = node.wait_state("k", McpState::Up).await;
    assert_eq!(back.restarts, 1);
    assert_ne!(back.pid, Some(pid), "a new process");
    assert!(
        back.last_error
            .as_deref()
            .unwrap_or_default()
            .contains("closed the session"),
        "{back:?}"
    );
    let out = node.call("k.pid", json!({})).await.unwrap();
    assert_eq!(out.content, back.pid.unwrap().to_string());
    assert_eq!(
        metric(
            &node.metrics,
            "neuroflow_mcp_server_restarts_total",
            &[("server", "k")]
        ),
        Some(1.0)
    );
    assert_eq!(
        metric(
            &node.metrics,
            "neuroflow_mcp_server_state",
            &[("server", "k"), ("state", "up")]
        ),
        Some(1.0)
    );
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_dying_during_a_call_fails_that_call_at_once() {
    // Exits when the third call arrives, without answering it.
    let node = start(&[("d", test_server_config(&["--crash-after", "2"]))]).await;
    node.wait_state("d", McpState::Up).await;
    for n in 0..2 {
        let out = node
            .call("d.echo", json!({"text": n.to_string()}))
            .await
            .unwrap();
        assert_eq!(out.content, n.to_string());
    }
    let started = Instant::now();
    let out = node.call("d.slow", json!({"ms": 60_000})).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(out.is_error);
    assert!(
        out.content.contains("MCP server d is unavailable"),
        "{}",
        out.content
    );

    let back = node
        .wait_status("d", |s| s.state == McpState::Up && s.restarts == 1)
        .await;
    assert_eq!(back.tools, 9);
    let out = node.call("d.add", json!({"a": 1, "b": 1})).await.unwrap();
    assert_eq!(out.content, "2");
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_starts_is_given_up_on_within_its_intensity() {
    let missing = std::env::temp_dir().join("no-such-mcp-server-binary");
    let mut config = McpServerConfig::stdio(missing.display().to_string(), Vec::<String>::new());
    config.max_restarts = 2;
    config.backoff_initial_ms = 10;
    config.backoff_max_ms = 20;
    let node = start(&[("gone", config)]).await;
    let failed = node.wait_state("gone", McpState::Failed).await;
    assert_eq!(failed.restarts, 2, "{failed:?}");
    let error = failed.last_error.unwrap_or_default();
    assert!(
        error.contains("gave up after more than 2 restarts"),
        "{error}"
    );
    assert!(error.contains("could not start"), "{error}");
    // No more attempts once failed.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(node.mcp.status("gone").unwrap().restarts, 2);
    assert_eq!(
        metric(
            &node.metrics,
            "neuroflow_mcp_server_state",
            &[("server", "gone"), ("state", "failed")]
        ),
        Some(1.0)
    );
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_server_is_brought_back_by_hand_and_servers_come_and_go() {
    // Dies at its first call, every time: three crashes exhaust an intensity of two.
    let mut config = test_server_config(&["--crash-after", "0"]);
    config.max_restarts = 2;
    let node = start(&[]).await;
    node.mcp.add("c", config).await.unwrap();
    let mut crashes = 0;
    let deadline = Instant::now() + WAIT;
    while node.mcp.status("c").unwrap().state != McpState::Failed {
        assert!(Instant::now() < deadline, "{:?}", node.mcp.status("c"));
        if node.mcp.status("c").unwrap().state == McpState::Up {
            let out = node.call("c.echo", json!({"text": "x"})).await.unwrap();
            assert!(out.is_error);
            crashes += 1;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(crashes, 3);
    let out = node.call("c.echo", json!({"text": "x"})).await.unwrap();
    assert!(
        out.content
            .starts_with("MCP server c is unavailable: it failed and is no longer restarted"),
        "{}",
        out.content
    );

    node.mcp.restart("c").await.unwrap();
    let back = node.wait_state("c", McpState::Up).await;
    assert_eq!(back.restarts, 3);

    // Removing a server takes its tools away; adding twice is refused.
    assert!(node.mcp.add("c", test_server_config(&[])).await.is_err());
    node.mcp.remove("c").await.unwrap();
    node.wait_tool("c.echo", false).await;
    assert!(node.mcp.status("c").is_err());
    node.stop().await;
}

/// A child process killed when dropped, so that a failing test leaves none behind.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The conformance fixture server on `port` (0: any), and the URL it printed.
fn start_http_server(port: u16) -> (Killed, String) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_mcp-conformance-server"))
        .arg(port.to_string())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .unwrap();
    let child = Killed(child);
    assert!(line.starts_with("http://127.0.0.1:"), "{line:?}");
    (child, line.trim().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_server_that_goes_away_is_reconnected_when_it_is_back() {
    let (server, url) = start_http_server(0);
    let port: u16 = url
        .trim_end_matches("/mcp")
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let mut config = McpServerConfig::http(&url);
    config.backoff_initial_ms = 50;
    config.backoff_max_ms = 200;
    config.max_restarts = 100;
    let node = start(&[("h", config)]).await;
    let up = node.wait_state("h", McpState::Up).await;
    assert_eq!(up.transport, "http");
    let out = node.call("h.test_simple_text", json!({})).await.unwrap();
    assert_eq!(out.content, "This is a simple text response for testing.");

    drop(server);
    // The next call finds the connection gone, fails at once, and has the session reopened.
    let started = Instant::now();
    let out = node.call("h.test_simple_text", json!({})).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(out.is_error);
    assert!(
        out.content.contains("MCP server h is unavailable"),
        "{}",
        out.content
    );
    let down = node.wait_state("h", McpState::Restarting).await;
    assert!(down.last_error.is_some());
    let out = node.call("h.test_simple_text", json!({})).await.unwrap();
    assert!(
        out.content
            .starts_with("MCP server h is unavailable: restarting"),
        "{}",
        out.content
    );

    // Back on the same address: a new session, the same tools.
    let (_again, _) = start_http_server(port);
    let back = node
        .wait_status("h", |s| s.state == McpState::Up && s.restarts >= 1)
        .await;
    assert_eq!(back.tools, up.tools);
    let out = node.call("h.test_simple_text", json!({})).await.unwrap();
    assert_eq!(out.content, "This is a simple text response for testing.");
    node.stop().await;
}
