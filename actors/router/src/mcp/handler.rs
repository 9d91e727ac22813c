//! The node's side of an MCP session: who it says it is, and what it does with what the
//! server sends unasked (changed tool lists, log messages).

use std::sync::Arc;

use rmcp::ClientHandler;
use rmcp::RoleClient;
#[allow(deprecated)]
use rmcp::model::{
    ClientCapabilities, ClientConfig, Implementation, LoggingLevel,
    LoggingMessageNotificationParam, ProtocolVersion,
};
use rmcp::service::NotificationContext;

/// Called when the server says its tool list changed.
pub(crate) type OnToolsChanged = Arc<dyn Fn() + Send + Sync>;

pub(crate) struct NodeClient {
    server: String,
    on_tools_changed: OnToolsChanged,
}

impl NodeClient {
    pub fn new(server: &str, on_tools_changed: OnToolsChanged) -> Self {
        Self {
            server: server.to_string(),
            on_tools_changed,
        }
    }
}

/// How the node introduces itself to every server.
pub fn client_config() -> ClientConfig {
    ClientConfig::new(
        ClientCapabilities::default(),
        Implementation::new("neuroflow", env!("CARGO_PKG_VERSION")),
    )
    // The newest version with the `initialize` handshake, which every server speaks.
    .with_protocol_version(ProtocolVersion::V_2025_11_25)
}

impl ClientHandler for NodeClient {
    fn get_info(&self) -> ClientConfig {
        client_config()
    }

    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        (self.on_tools_changed)();
    }

    // Logging is deprecated from protocol 2026-07-28 on, but servers speaking 2025-11-25
    // (the version the node asks for) still send it, and it belongs in the node's log.
    #[allow(deprecated)]
    async fn on_logging_message(
        &self,
        params: LoggingMessageNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        let server = &self.server;
        let logger = params.logger.as_deref().unwrap_or("");
        let data = &params.data;
        match params.level {
            LoggingLevel::Debug => tracing::debug!(mcp.server = server, logger, %data),
            LoggingLevel::Info | LoggingLevel::Notice => {
                tracing::info!(mcp.server = server, logger, %data)
            }
            LoggingLevel::Warning => tracing::warn!(mcp.server = server, logger, %data),
            _ => tracing::error!(mcp.server = server, logger, %data),
        }
    }
}
