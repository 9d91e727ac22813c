//! How to reach one MCP server and how hard to try: the `[mcp.servers.NAME]` tables of the
//! node config, or values built in code.

use std::collections::BTreeMap;
use std::time::Duration;

use neuroflow_kit::supervisor::{Backoff, Intensity};
use serde::{Deserialize, Serialize};

/// One MCP server. Exactly one of `command` (a stdio server the node starts) and `url` (a
/// streamable HTTP server) is set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpServerConfig {
    /// Program of a stdio server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Environment of a stdio server. On the host it gets only these and a few basics of
    /// the node's ([`INHERITED_ENV`](super::launch::INHERITED_ENV): `PATH`, `HOME`, …),
    /// never the node's secrets; in a sandbox, these on top of the profile's.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Working directory of a stdio server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// Sandbox profile to start a stdio server in (`minimal`, `standard`, `strict`, or a
    /// configured one); on the host when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<String>,
    /// Endpoint of a streamable HTTP server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Extra HTTP headers sent with every request.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Sent as `Authorization: Bearer …`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token: Option<String>,
    /// Longest the session's opening (start, initialize, first tool list) may take.
    #[serde(default = "default_startup_timeout_ms")]
    pub startup_timeout_ms: u64,
    /// At most this many restarts within `restart_window_ms`; one more and the server is
    /// marked failed and left alone until restarted by hand.
    #[serde(default = "default_max_restarts")]
    pub max_restarts: u32,
    #[serde(default = "default_restart_window_ms")]
    pub restart_window_ms: u64,
    /// First delay before a restart; it doubles with each restart in a row.
    #[serde(default = "default_backoff_initial_ms")]
    pub backoff_initial_ms: u64,
    #[serde(default = "default_backoff_max_ms")]
    pub backoff_max_ms: u64,
    /// Only these tools of the server are registered (`*` wildcards; all when empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<String>,
    /// What to answer when the server asks for input mid-call (`elicitation/create`).
    #[serde(default)]
    pub elicitation: ElicitationPolicy,
}

/// How the node answers a server's request for input. Agents run without a person at
/// hand, so the node never makes answers up: it declines, or takes the defaults the server
/// itself offered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ElicitationPolicy {
    /// Decline every request (the node does not announce the capability).
    #[default]
    Decline,
    /// Accept with the schema's defaults when every required field has one; else decline.
    Defaults,
}

fn default_startup_timeout_ms() -> u64 {
    30_000
}
fn default_max_restarts() -> u32 {
    5
}
fn default_restart_window_ms() -> u64 {
    60_000
}
fn default_backoff_initial_ms() -> u64 {
    200
}
fn default_backoff_max_ms() -> u64 {
    10_000
}

/// How the node talks to a server, resolved from its config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    Stdio,
    Http,
}

impl TransportKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stdio => "stdio",
            Self::Http => "http",
        }
    }
}

impl McpServerConfig {
    /// A stdio server started as `command args…`.
    pub fn stdio(
        command: impl Into<String>,
        args: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        Self {
            command: Some(command.into()),
            args: args.into_iter().map(Into::into).collect(),
            ..Self::empty()
        }
    }

    /// A streamable HTTP server at `url`.
    pub fn http(url: impl Into<String>) -> Self {
        Self {
            url: Some(url.into()),
            ..Self::empty()
        }
    }

    fn empty() -> Self {
        Self {
            command: None,
            args: Vec::new(),
            env: BTreeMap::new(),
            cwd: None,
            sandbox: None,
            url: None,
            headers: BTreeMap::new(),
            bearer_token: None,
            startup_timeout_ms: default_startup_timeout_ms(),
            max_restarts: default_max_restarts(),
            restart_window_ms: default_restart_window_ms(),
            backoff_initial_ms: default_backoff_initial_ms(),
            backoff_max_ms: default_backoff_max_ms(),
            tools: Vec::new(),
            elicitation: ElicitationPolicy::default(),
        }
    }

    /// Says what is wrong with the config of server `name`, if anything.
    pub fn validate(&self, name: &str) -> Result<TransportKind, String> {
        crate::export::check_name(name).map_err(|e| format!("mcp server name {name:?}: {e}"))?;
        if name.contains('.') {
            return Err(format!(
                "mcp server name {name:?}: '.' separates the server from its tools (`{name}.TOOL`)"
            ));
        }
        let kind = match (&self.command, &self.url) {
            (Some(command), None) if !command.trim().is_empty() => TransportKind::Stdio,
            (None, Some(url)) => {
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(format!("mcp server {name}: url {url:?} is not http(s)"));
                }
                TransportKind::Http
            }
            (Some(_), Some(_)) => {
                return Err(format!(
                    "mcp server {name}: set either `command` (stdio) or `url` (http), not both"
                ));
            }
            _ => {
                return Err(format!(
                    "mcp server {name}: set `command` (a stdio server) or `url` (a streamable HTTP server)"
                ));
            }
        };
        let misplaced = match kind {
            TransportKind::Stdio => (!self.headers.is_empty() || self.bearer_token.is_some())
                .then_some("`headers` and `bearer_token` are for http servers"),
            TransportKind::Http => (!self.args.is_empty()
                || !self.env.is_empty()
                || self.cwd.is_some()
                || self.sandbox.is_some())
            .then_some("`args`, `env`, `cwd` and `sandbox` are for stdio servers"),
        };
        if let Some(why) = misplaced {
            return Err(format!("mcp server {name}: {why}"));
        }
        if self.startup_timeout_ms == 0 {
            return Err(format!(
                "mcp server {name}: startup_timeout_ms must be above 0"
            ));
        }
        if self.backoff_initial_ms > self.backoff_max_ms {
            return Err(format!(
                "mcp server {name}: backoff_initial_ms ({}) is above backoff_max_ms ({})",
                self.backoff_initial_ms, self.backoff_max_ms
            ));
        }
        Ok(kind)
    }

    pub fn startup_timeout(&self) -> Duration {
        Duration::from_millis(self.startup_timeout_ms)
    }

    pub fn intensity(&self) -> Intensity {
        Intensity {
            max_restarts: self.max_restarts,
            within: Duration::from_millis(self.restart_window_ms),
        }
    }

    pub fn backoff(&self) -> Backoff {
        Backoff {
            initial: Duration::from_millis(self.backoff_initial_ms),
            max: Duration::from_millis(self.backoff_max_ms),
            // A session that stayed up this long starts the next run of restarts afresh.
            reset_after: Duration::from_millis(self.restart_window_ms),
        }
    }
}
