//! A router with MCP servers under one supervisor, and ways to wait on them.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use neuroflow_kit::metrics::Metrics;
use neuroflow_kit::protocol::mcp::{McpServerStatus, McpState};
use neuroflow_kit::protocol::router::{ToolCallRequest, ToolError, ToolOutput};
use neuroflow_kit::supervisor::{Backoff, Supervisor, SupervisorHandle};
use neuroflow_router::mcp::{McpServerConfig, McpServers, host_launcher};
use neuroflow_router::{RouterConfig, Tools};
use serde_json::Value;

pub const WAIT: Duration = Duration::from_secs(20);

/// Path of the in-workspace test MCP server.
pub fn test_server() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_mcp-test-server"))
}

/// The test server, with `args`, as a stdio server config that restarts quickly.
pub fn test_server_config(args: &[&str]) -> McpServerConfig {
    let mut config =
        McpServerConfig::stdio(test_server().display().to_string(), args.iter().copied());
    config.backoff_initial_ms = 20;
    config.backoff_max_ms = 200;
    config
}

pub struct Running {
    pub tools: Tools,
    pub mcp: McpServers,
    pub supervisor: SupervisorHandle,
    pub metrics: Arc<Metrics>,
}

impl Running {
    pub async fn stop(self) {
        self.supervisor.stop(WAIT).await;
    }

    pub async fn call(&self, name: &str, arguments: Value) -> Result<ToolOutput, ToolError> {
        self.call_within(name, arguments, None).await
    }

    pub async fn call_within(
        &self,
        name: &str,
        arguments: Value,
        timeout_ms: Option<u64>,
    ) -> Result<ToolOutput, ToolError> {
        self.tools
            .call(ToolCallRequest {
                name: name.into(),
                arguments,
                timeout_ms,
                caller: None,
            })
            .await
    }

    /// Waits until server `name` is in `state`; panics with its status after [`WAIT`].
    pub async fn wait_state(&self, name: &str, state: McpState) -> McpServerStatus {
        self.wait_status(name, |s| s.state == state).await
    }

    pub async fn wait_status(
        &self,
        name: &str,
        done: impl Fn(&McpServerStatus) -> bool,
    ) -> McpServerStatus {
        let start = Instant::now();
        loop {
            let status = self.mcp.status(name).expect("server exists");
            if done(&status) {
                return status;
            }
            assert!(
                start.elapsed() < WAIT,
                "gave up waiting; status: {status:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits until tool `name` is registered (or not).
    pub async fn wait_tool(&self, name: &str, registered: bool) {
        let start = Instant::now();
        while self.tools.list(&[name.to_string()]).is_empty() == registered {
            assert!(
                start.elapsed() < WAIT,
                "tool {name} never became registered={registered}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// A router and the given MCP servers, under one root supervisor.
pub async fn start(servers: &[(&str, McpServerConfig)]) -> Running {
    let metrics = Metrics::new().unwrap();
    let parts = Tools::build(RouterConfig::default(), &metrics).unwrap();
    let configured: BTreeMap<String, McpServerConfig> = servers
        .iter()
        .map(|(name, config)| (name.to_string(), config.clone()))
        .collect();
    let mcp =
        McpServers::build(parts.tools.clone(), &metrics, host_launcher(), &configured).unwrap();
    let spec = parts
        .supervisor_spec("tools")
        .child(mcp.supervisor)
        .backoff(Backoff::NONE);
    let (supervisor, _join) = Supervisor::start_root(spec, metrics.clone()).await.unwrap();
    Running {
        tools: parts.tools,
        mcp: mcp.servers,
        supervisor,
        metrics,
    }
}

/// The value of the sample of `family` whose labels include all of `labels`.
pub fn metric(metrics: &Metrics, family: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let text = metrics.render();
    text.lines()
        .filter(|l| l.starts_with(family) && !l.starts_with('#'))
        .find(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}
