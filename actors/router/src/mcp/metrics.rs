//! MCP server metrics, by server: state, restarts, registered tools.

use prometheus::{IntCounterVec, IntGaugeVec, Opts};

use neuroflow_kit::metrics::{Metrics, MetricsError};
use neuroflow_kit::protocol::mcp::McpState;

/// The MCP metric families. The `server` label takes configured names only.
#[derive(Clone)]
pub struct McpMetrics {
    state: IntGaugeVec,
    restarts: IntCounterVec,
    tools: IntGaugeVec,
    skipped: IntCounterVec,
}

impl McpMetrics {
    pub fn register(metrics: &Metrics) -> Result<Self, MetricsError> {
        Ok(Self {
            state: metrics.register(IntGaugeVec::new(
                Opts::new(
                    "neuroflow_mcp_server_state",
                    "1 for the state each MCP server is in (starting, up, restarting, failed, stopped), else 0.",
                ),
                &["server", "state"],
            )?)?,
            restarts: metrics.register(IntCounterVec::new(
                Opts::new(
                    "neuroflow_mcp_server_restarts_total",
                    "Attempts to reopen an MCP server's session after the first (process respawns, reconnects), by server.",
                ),
                &["server"],
            )?)?,
            tools: metrics.register(IntGaugeVec::new(
                Opts::new(
                    "neuroflow_mcp_server_tools",
                    "Tools of each MCP server registered with the router.",
                ),
                &["server"],
            )?)?,
            skipped: metrics.register(IntCounterVec::new(
                Opts::new(
                    "neuroflow_mcp_tools_skipped_total",
                    "Tools an MCP server listed that could not be registered (bad name or schema).",
                ),
                &["server"],
            )?)?,
        })
    }

    pub(crate) fn set_state(&self, server: &str, now: McpState) {
        for state in McpState::ALL {
            self.state
                .with_label_values(&[server, state.as_str()])
                .set(i64::from(state == now));
        }
    }

    pub(crate) fn restarted(&self, server: &str) {
        self.restarts.with_label_values(&[server]).inc();
    }

    pub(crate) fn set_tools(&self, server: &str, count: usize) {
        self.tools
            .with_label_values(&[server])
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    pub(crate) fn skipped(&self, server: &str) {
        self.skipped.with_label_values(&[server]).inc();
    }

    /// Removes a server's series once it is removed.
    pub(crate) fn forget(&self, server: &str) {
        for state in McpState::ALL {
            let _ = self.state.remove_label_values(&[server, state.as_str()]);
        }
        let _ = self.restarts.remove_label_values(&[server]);
        let _ = self.tools.remove_label_values(&[server]);
        let _ = self.skipped.remove_label_values(&[server]);
    }
}
