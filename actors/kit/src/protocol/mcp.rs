//! What the node says about the MCP servers it is connected to.
//!
//! Each configured server is a supervised actor that keeps a session open, restarts the
//! server (or reconnects) when it goes away, and registers its tools with the router.
//! [`McpServerStatus`] is that actor's account of its server: the node tree, the API and
//! the embedding API all report it.

use serde::{Deserialize, Serialize};

/// Where a server's session stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum McpState {
    /// The first session is being opened.
    Starting,
    /// A session is open; calls go through.
    Up,
    /// The session ended; a new one is opened after a backoff. Calls fail fast meanwhile.
    Restarting,
    /// More restarts than the restart intensity allows: no more attempts until asked.
    Failed,
    /// The server was removed or the node is stopping.
    Stopped,
}

impl McpState {
    pub const ALL: [McpState; 5] = [
        Self::Starting,
        Self::Up,
        Self::Restarting,
        Self::Failed,
        Self::Stopped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Up => "up",
            Self::Restarting => "restarting",
            Self::Failed => "failed",
            Self::Stopped => "stopped",
        }
    }
}

/// One MCP server as its actor sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct McpServerStatus {
    /// The configured name; its tools are registered as `NAME.TOOL`.
    pub name: String,
    /// `stdio` or `http`.
    pub transport: String,
    pub state: McpState,
    /// Attempts to open a session after the first (process respawns, reconnects), whether
    /// they succeeded or not.
    pub restarts: u64,
    /// Tools of the server registered with the router.
    pub tools: usize,
    /// The server's process id, for a stdio server running on the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// The negotiated protocol version, while up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol_version: Option<String>,
    /// The server's own name and version, as it introduced itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// Why the last session ended or failed to open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// While restarting: how long until the next attempt, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_in_ms: Option<u64>,
}
