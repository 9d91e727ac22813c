//! Protocol of the tool router: list tools, call one.
//!
//! Agents reach tools only through these messages; the router maps a tool name onto the
//! shard that owns it, which validates the arguments against the tool's JSON Schema,
//! enforces the call's deadline and runs it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A tool as models see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    /// Unique name (`fs.read`, `weather.lookup`, `mcp_server.tool`).
    pub name: String,
    pub description: String,
    /// JSON Schema of the arguments object.
    pub parameters: Value,
    /// Who runs it: `builtin`, `agent` (another agent), `mcp:SERVER`, or `local` (an
    /// executor registered in-process, e.g. a Rust closure).
    #[serde(default = "local_provider")]
    pub provider: String,
}

fn local_provider() -> String {
    "local".into()
}

/// Requests to the tool router.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum RouterMsg {
    /// The specs of every registered tool whose name matches one of `patterns` (all
    /// tools when empty; `*` matches any run of characters).
    List { patterns: Vec<String> },
    /// Run one tool.
    Call(ToolCallRequest),
}

/// Replies of the tool router.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum RouterReply {
    Tools(Vec<ToolSpec>),
    /// The tool's result. A failed tool is a result too (`is_error`), which the model
    /// sees; only a call that could not be made at all is a [`ToolError`].
    Result(Result<ToolOutput, ToolError>),
}

/// One tool call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCallRequest {
    pub name: String,
    /// The arguments object, as the model produced it.
    pub arguments: Value,
    /// Longest the tool may run, in milliseconds (the router's default when `None`).
    pub timeout_ms: Option<u64>,
    /// The agent on whose behalf the call is made, for tools that act per agent (its
    /// workspace, its sandbox profile).
    pub caller: Option<String>,
}

/// What a tool returned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolOutput {
    /// Text for the model (a JSON document where the tool returns data).
    pub content: String,
    /// The tool ran but failed; `content` says how.
    pub is_error: bool,
}

impl ToolOutput {
    pub fn ok(content: impl Into<String>) -> Self {
        Self {
            content: content.into(),
            is_error: false,
        }
    }

    pub fn error(content: impl Into<String>) -> Self {
        Self {
            content: content.into(),
            is_error: true,
        }
    }
}

/// Why a tool call could not be made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ToolError {
    #[error("no tool named {0:?}")]
    UnknownTool(String),
    /// The arguments do not match the tool's schema; `path` is the JSON pointer of the
    /// offending value.
    #[error("invalid arguments for {tool}: {path}: {message}")]
    InvalidArguments {
        tool: String,
        path: String,
        message: String,
    },
    #[error("tool {tool} did not finish within {timeout_ms} ms")]
    Timeout { tool: String, timeout_ms: u64 },
    /// The tool's provider is down (e.g. an MCP server restarting).
    #[error("tool {tool} is unavailable: {reason}")]
    Unavailable { tool: String, reason: String },
}

impl ToolError {
    /// The text a model sees when its call could not be made.
    pub fn as_output(&self) -> ToolOutput {
        ToolOutput::error(self.to_string())
    }
}
