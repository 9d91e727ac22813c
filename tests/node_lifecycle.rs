//! The node's life as a process: start-up output, configuration errors, graceful shutdown
//! on SIGTERM and SIGINT, and what it leaves behind.

mod common;

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::time::Duration;

use common::{BIN, NodeBuilder, TempDir, client, descendants};
use nix::sys::signal::Signal;
use serde_json::Value;

/// Starts a node, uses it, signals it, and checks the exit: status 0, in time, no process
/// of its own left, the port released.
async fn graceful_exit_on(signal: Signal) {
    let node = NodeBuilder::serve()
        .env("NEUROFLOW_SHUTDOWN_TIMEOUT", "5")
        .start();
    let addr = node.addr();
    let data_dir = node.dir.path().join("data");
    assert!(data_dir.is_dir(), "data dir not created");
    // Leave a keep-alive connection open in the client's pool.
    let http = client();
    let response = http.get(node.url("/healthz")).send().await.unwrap();
    assert_eq!(response.status(), 200);

    let pid = node.process.pid();
    let children = descendants(pid);
    let (status, elapsed, stderr) = node.stop_with(signal);
    assert_eq!(status.code(), Some(0), "stderr:\n{stderr}");
    assert!(elapsed < Duration::from_secs(6), "took {elapsed:?}");
    assert!(stderr.contains(&format!("reason={signal}")), "{stderr}");
    assert!(stderr.contains("node stopped"), "{stderr}");
    let left: Vec<_> = children.iter().filter(|p| p.alive()).collect();
    assert!(
        left.is_empty(),
        "processes of the node left behind: {left:?}"
    );
    assert!(
        TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err(),
        "{addr} still accepts connections"
    );
}

#[tokio::test]
async fn sigterm_stops_gracefully_with_status_0() {
    graceful_exit_on(Signal::SIGTERM).await;
}

#[tokio::test]
async fn sigint_stops_gracefully_with_status_0() {
    graceful_exit_on(Signal::SIGINT).await;
}

#[test]
fn a_stalled_request_does_not_hold_the_exit_past_the_shutdown_timeout() {
    let node = NodeBuilder::serve()
        .env("NEUROFLOW_SHUTDOWN_TIMEOUT", "2")
        .start();
    // Half a request: the connection is busy, so draining waits for it until its bound.
    let mut stalled = TcpStream::connect(node.addr()).unwrap();
    stalled
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let (status, elapsed, stderr) = node.stop_with(Signal::SIGTERM);
    assert_eq!(status.code(), Some(0), "stderr:\n{stderr}");
    assert!(
        elapsed < Duration::from_secs(4),
        "took {elapsed:?}; stderr:\n{stderr}"
    );
}

#[test]
fn prints_the_listening_line_with_the_bound_port() {
    let node = NodeBuilder::serve().start();
    let stdout = node.process.stdout();
    assert_eq!(
        stdout,
        format!("neuroflow-node listening on {}\n", node.url)
    );
    assert_ne!(node.addr().port(), 0);
}

#[test]
fn json_log_format_writes_json_lines() {
    let node = NodeBuilder::serve()
        .config("[log]\nformat = \"json\"\nlevel = \"debug\"\n")
        .start();
    let (status, _, stderr) = node.stop_with(Signal::SIGTERM);
    assert!(status.success());
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(lines.len() >= 3, "{stderr}");
    for line in lines {
        let event: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(
            event["level"].is_string() && event["timestamp"].is_string(),
            "{line}"
        );
    }
}

#[test]
fn log_level_filters_events() {
    let node = NodeBuilder::serve().env("NEUROFLOW_LOG", "warn").start();
    let (status, _, stderr) = node.stop_with(Signal::SIGTERM);
    assert!(status.success());
    assert!(!stderr.contains("node started"), "{stderr}");
}

#[test]
fn port_in_use_is_a_clear_error() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let dir = TempDir::new("bind");
    let output = Command::new(BIN)
        .args(["serve", "--listen", &addr.to_string(), "--data-dir"])
        .arg(dir.path().join("data"))
        .env_remove("NEUROFLOW_LISTEN")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("cannot listen on {addr}")),
        "{stderr}"
    );
    assert!(
        stderr.to_lowercase().contains("address already in use"),
        "{stderr}"
    );
    assert!(output.stdout.is_empty());
    drop(taken);
}

#[test]
fn an_unusable_data_dir_is_a_clear_error() {
    let dir = TempDir::new("datadir");
    // A file where the data directory should be.
    let file = dir.file("occupied", "");
    let output = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "cannot create the data directory {}",
            file.display()
        )),
        "{stderr}"
    );
}

/// Runs a node that must refuse its configuration: exit status 2, the key named.
fn refuses(builder: NodeBuilder, names: &[&str]) {
    let (status, stderr) = builder.run_to_exit();
    assert_eq!(status.code(), Some(2), "stderr:\n{stderr}");
    for name in names {
        assert!(stderr.contains(name), "{name:?} not in:\n{stderr}");
    }
}

#[test]
fn bad_toml_is_refused_with_its_position() {
    refuses(
        NodeBuilder::serve().config("[node\nlisten = \"127.0.0.1:0\"\n"),
        &["invalid config file", "node.toml", "line 1"],
    );
}

#[test]
fn unknown_key_is_refused() {
    refuses(
        NodeBuilder::serve().config("[node]\nport = 7700\n"),
        &["node.port", "unknown field"],
    );
    refuses(
        NodeBuilder::serve().config("[telemetry]\nenabled = true\n"),
        &["telemetry", "unknown field"],
    );
}

#[test]
fn bad_values_in_the_file_are_refused() {
    refuses(
        NodeBuilder::serve().config("[node]\nlisten = \"localhost\"\n"),
        &["node.listen", "invalid socket address"],
    );
    refuses(
        NodeBuilder::serve().config("[node]\nshutdown_timeout_secs = \"10\"\n"),
        &["node.shutdown_timeout_secs", "invalid type"],
    );
    refuses(
        NodeBuilder::serve().config("[log]\nlevel = \"chatty\"\n"),
        &["log.level", "chatty"],
    );
}

#[test]
fn bad_environment_values_are_refused() {
    refuses(
        NodeBuilder::serve().env("NEUROFLOW_LISTEN", "127.0.0.1"),
        &["NEUROFLOW_LISTEN", "127.0.0.1"],
    );
    refuses(
        NodeBuilder::serve().env("NEUROFLOW_SHUTDOWN_TIMEOUT", "0"),
        &["NEUROFLOW_SHUTDOWN_TIMEOUT"],
    );
    refuses(
        NodeBuilder::serve().env("NEUROFLOW_TEST_HOOKS", "perhaps"),
        &["NEUROFLOW_TEST_HOOKS"],
    );
}

#[test]
fn bad_flag_is_refused() {
    let output = Command::new(BIN)
        .args(["serve", "--listen", "nowhere"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--listen"));
}

#[test]
fn flags_win_over_the_environment() {
    // NEUROFLOW_LISTEN points at a port that is taken; --listen (port 0) must win.
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let node = NodeBuilder::serve()
        .env("NEUROFLOW_LISTEN", &taken.local_addr().unwrap().to_string())
        .start();
    assert_ne!(node.addr(), taken.local_addr().unwrap());
}

#[test]
fn version_is_printed() {
    let output = Command::new(BIN).arg("--version").output().unwrap();
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        format!("neuroflow-node {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn help_lists_only_existing_subcommands() {
    let output = Command::new(BIN).arg("--help").output().unwrap();
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    let commands: Vec<&str> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    // `sandbox-init` is started by the node only and stays hidden.
    assert_eq!(
        commands,
        ["serve", "login", "agent", "mcp", "sandbox", "help"],
        "{help}"
    );
    let output = Command::new(BIN).args(["mcp", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(help.contains("serve"), "{help}");
    let output = Command::new(BIN)
        .args(["sandbox", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(help.contains("exec") && help.contains("check"), "{help}");
}
