//! The MCP conformance suite's client under test, built on the node's MCP client actor.
//!
//! The runner starts it as `mcp-conformance-client URL` with the scenario's name in
//! `MCP_CONFORMANCE_SCENARIO`. It connects the way a node does (an `McpServers` actor with
//! a streamable HTTP server config, under a supervisor, tools registered in a router),
//! makes the calls the scenario expects, and exits 0 once done, 1 if the session never
//! opened or a call could not be made.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use neuroflow_kit::metrics::Metrics;
use neuroflow_kit::protocol::mcp::McpState;
use neuroflow_kit::protocol::router::ToolCallRequest;
use neuroflow_kit::supervisor::Supervisor;
use neuroflow_router::mcp::{ElicitationPolicy, McpServerConfig, McpServers, host_launcher};
use neuroflow_router::{RouterConfig, Tools};
use serde_json::{Value, json};

/// Name the server is registered under; its tools are `conformance.TOOL`.
const SERVER: &str = "conformance";
/// Longest the whole run may take; the runner's own timeout is 30 s.
const RUN_LIMIT: Duration = Duration::from_secs(20);

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let url = std::env::args().next_back().unwrap_or_default();
    let scenario = std::env::var("MCP_CONFORMANCE_SCENARIO").unwrap_or_default();
    let code = match tokio::time::timeout(RUN_LIMIT, run(&url, &scenario)).await {
        Ok(Ok(())) => 0,
        Ok(Err(why)) => {
            eprintln!("mcp-conformance-client ({scenario}): {why}");
            1
        }
        Err(_) => {
            eprintln!("mcp-conformance-client ({scenario}): gave up after {RUN_LIMIT:?}");
            1
        }
    };
    std::process::exit(code);
}

/// The tool a scenario calls, with its arguments; `None` for scenarios that only connect.
fn call_for(scenario: &str) -> Option<(&'static str, Value)> {
    match scenario {
        "tools_call" => Some(("add_numbers", json!({"a": 2, "b": 3}))),
        "elicitation-sep1034-client-defaults" => {
            Some(("test_client_elicitation_defaults", json!({})))
        }
        "sse-retry" => Some(("test_reconnection", json!({}))),
        // The auth scenarios need an OAuth client, which the node does not have: they fail
        // at the first request, which answers 401.
        _ => None,
    }
}

async fn run(url: &str, scenario: &str) -> Result<(), String> {
    let metrics = Metrics::new().map_err(|e| e.to_string())?;
    let router = Tools::build(RouterConfig::default(), &metrics).map_err(|e| e.to_string())?;
    let mut config = McpServerConfig::http(url);
    config.elicitation = ElicitationPolicy::Defaults;
    // One attempt: a conformance run judges the first session.
    config.max_restarts = 0;
    let servers = BTreeMap::from([(SERVER.to_string(), config)]);
    let mcp = McpServers::build(router.tools.clone(), &metrics, host_launcher(), &servers)
        .map_err(|e| e.to_string())?;
    let spec = router.supervisor_spec("tools").child(mcp.supervisor);
    let (supervisor, _join) = Supervisor::start_root(spec, metrics)
        .await
        .map_err(|e| e.to_string())?;

    let result = async {
        wait_until_settled(&mcp.servers).await?;
        let Some((tool, arguments)) = call_for(scenario) else {
            return Ok(());
        };
        let request = ToolCallRequest {
            name: format!("{SERVER}.{tool}"),
            arguments,
            timeout_ms: Some(10_000),
            caller: None,
        };
        let output = router
            .tools
            .call(request)
            .await
            .map_err(|e| e.to_string())?;
        println!("{tool}: {}", output.content);
        if output.is_error {
            return Err(format!("{tool} failed: {}", output.content));
        }
        Ok(())
    }
    .await;
    supervisor.stop(Duration::from_secs(5)).await;
    result
}

/// Waits for the session to open (or to fail for good).
async fn wait_until_settled(mcp: &McpServers) -> Result<(), String> {
    let start = Instant::now();
    loop {
        let status = mcp.status(SERVER).map_err(|e| e.to_string())?;
        match status.state {
            McpState::Up => return Ok(()),
            McpState::Failed => {
                return Err(status.last_error.unwrap_or_else(|| "failed".into()));
            }
            _ if start.elapsed() > RUN_LIMIT => return Err(format!("not up: {status:?}")),
            _ => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
}
