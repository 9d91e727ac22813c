//! Node configuration.
//!
//! Four layers, each overriding the one before: built-in defaults, a TOML file
//! (`--config PATH`), environment variables (`NEUROFLOW_*`), command-line flags. Every layer
//! is checked as it is applied, so an error names the place the bad value came from: the key
//! in the file (`node.listen`), the environment variable (`NEUROFLOW_LISTEN`) or the flag.
//! Unknown keys are errors, not silently ignored.
//!
//! ```
//! use neuroflow::config::{Config, Overrides};
//!
//! let env = |name: &str| (name == "NEUROFLOW_LISTEN").then(|| "127.0.0.1:9000".to_string());
//! let config = Config::load(None, &env, &Overrides::default()).unwrap();
//! assert_eq!(config.node.listen.port(), 9000);
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use neuroflow_agent::provider::{Pricing, ProviderConfig};
use neuroflow_kit::supervisor::Backoff;
use neuroflow_router::mcp::McpServerConfig;
use neuroflow_sandbox::profile::{Profile, ProfileConfig};
use serde::{Deserialize, Serialize};
use tracing_subscriber::filter::Targets;

mod api;
mod telemetry;
pub use api::{ApiConfig, AuthConfig, ENV_ADMIN_PASSWORD, ENV_JWT_SECRET, JwtAlgorithm, Secret};
pub use telemetry::{ENV_OTLP_ENDPOINT, TelemetryConfig};

/// Environment variable overriding `node.listen`.
pub const ENV_LISTEN: &str = "NEUROFLOW_LISTEN";
/// Environment variable overriding `node.data_dir`.
pub const ENV_DATA_DIR: &str = "NEUROFLOW_DATA_DIR";
/// Environment variable overriding `log.level`.
pub const ENV_LOG: &str = "NEUROFLOW_LOG";
/// Environment variable overriding `log.level` when `NEUROFLOW_LOG` is unset.
pub const ENV_RUST_LOG: &str = "RUST_LOG";
/// Environment variable overriding `node.shutdown_timeout_secs` (whole seconds).
pub const ENV_SHUTDOWN_TIMEOUT: &str = "NEUROFLOW_SHUTDOWN_TIMEOUT";
/// Environment variable overriding `debug.test_hooks` (`1`/`0`, `true`/`false`, ...).
pub const ENV_TEST_HOOKS: &str = "NEUROFLOW_TEST_HOOKS";

/// Longest accepted shutdown timeout.
const MAX_SHUTDOWN_TIMEOUT_SECS: u64 = 3600;
/// Longest accepted restart-intensity window.
const MAX_WITHIN_SECS: u64 = 86_400;
/// Longest accepted delay between two restarts.
const MAX_BACKOFF_MS: u64 = 600_000;
/// Most tool router shards.
const MAX_SHARDS: usize = 256;
/// Most sandboxes a node keeps built ahead of requests, per profile.
const MAX_WARM: usize = 16;
/// A child that stays up this long starts its backoff afresh.
const BACKOFF_RESET_AFTER: Duration = Duration::from_secs(30);

/// The whole configuration of a node.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub node: NodeConfig,
    pub supervision: SupervisionConfig,
    pub log: LogConfig,
    pub sandbox: SandboxConfig,
    /// `[providers.NAME]`: LLM providers agents can name (`scripted` is always there).
    pub providers: BTreeMap<String, ProviderConfig>,
    /// `[pricing]`: USD per million input / output tokens, by model (`"gpt-4o*"` patterns).
    pub pricing: Pricing,
    pub tools: ToolsConfig,
    /// `[mcp]`: MCP servers whose tools the node uses, and the node's own MCP face.
    pub mcp: McpConfig,
    /// `[api]`: limits of the HTTP API.
    pub api: ApiConfig,
    /// `[auth]`: users, tokens and who may call what.
    pub auth: AuthConfig,
    /// `[telemetry]`: traces to an OTLP collector.
    pub telemetry: TelemetryConfig,
    pub debug: DebugConfig,
}

/// `[mcp]`
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct McpConfig {
    /// `[mcp.servers.NAME]`: a stdio (`command`) or streamable HTTP (`url`) server; its
    /// tools are registered as `NAME.TOOL`.
    pub servers: BTreeMap<String, McpServerConfig>,
    /// `[mcp.serve]`: the node's tools offered to MCP clients.
    pub serve: McpServeConfig,
}

/// `[mcp.serve]`: the node as an MCP server, over streamable HTTP on the node's listener
/// (and over stdio with `neuroflow-node mcp serve`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct McpServeConfig {
    /// Whether the node's HTTP listener answers MCP at `path` (to callers with an
    /// operator's token). Off unless asked for: the tools it offers act on the node's
    /// behalf (files, sandboxes, HTTP).
    pub http: bool,
    pub path: String,
    /// Tools offered (`*` wildcards); all of the node's when empty.
    pub tools: Vec<String>,
    /// Names clients reach the node by (`host` or `host:port`), beyond loopback and the
    /// listen address: any other `Host` is refused, against DNS rebinding.
    pub allowed_hosts: Vec<String>,
}

impl Default for McpServeConfig {
    fn default() -> Self {
        Self {
            http: false,
            path: "/mcp".into(),
            tools: Vec::new(),
            allowed_hosts: Vec::new(),
        }
    }
}

/// `[tools]`: the tool router and the built-in tools.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ToolsConfig {
    /// Router shards the tools are spread over.
    pub shards: usize,
    /// Deadline of a tool call, in milliseconds.
    pub timeout_ms: u64,
    /// Hosts `http.fetch` may reach (`host` or `host:port`); empty: none.
    pub http_allow: Vec<String>,
}

impl Default for ToolsConfig {
    fn default() -> Self {
        Self {
            shards: 4,
            timeout_ms: 60_000,
            http_allow: Vec::new(),
        }
    }
}

/// `[sandbox]`: profiles beyond the built-in `minimal`, `standard` and `strict`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SandboxConfig {
    /// `[sandbox.profiles.NAME]`, each starting from a built-in `base`.
    pub profiles: BTreeMap<String, ProfileConfig>,
    /// Program that runs the sandbox init with the argument `sandbox-init` (default: the
    /// node's own executable). Embedders whose binary has no such subcommand point it at
    /// `neuroflow-node` or `neuroflow-sandbox-init`.
    pub init_program: Option<PathBuf>,
    /// Sandboxes kept built ahead of requests, per profile in use (0: build on request).
    pub warm: usize,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            profiles: BTreeMap::new(),
            init_program: None,
            warm: 1,
        }
    }
}

/// `[node]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeConfig {
    /// Address of the HTTP listener, `IP:PORT`; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Directory for the node's state; created at start.
    pub data_dir: PathBuf,
    /// Bound on a graceful shutdown (draining requests, stopping the tree).
    pub shutdown_timeout_secs: u64,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 7700)),
            data_dir: PathBuf::from("./.neuroflow"),
            shutdown_timeout_secs: 10,
        }
    }
}

/// `[supervision]`: restart intensity and backoff of the node's supervisors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SupervisionConfig {
    /// More restarts than this within `within_secs` and a supervisor gives up (escalates).
    pub max_restarts: u32,
    pub within_secs: u64,
    /// Delay before the first restart of a child; doubles per restart in a row.
    pub backoff_initial_ms: u64,
    /// Cap of the restart delay.
    pub backoff_max_ms: u64,
}

impl Default for SupervisionConfig {
    fn default() -> Self {
        Self {
            max_restarts: 5,
            within_secs: 10,
            backoff_initial_ms: 50,
            backoff_max_ms: 5000,
        }
    }
}

/// `[log]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// A level (`info`) or comma-separated directives (`warn,neuroflow=debug`).
    pub level: String,
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".to_string(),
            format: LogFormat::Text,
        }
    }
}

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// `[debug]`
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DebugConfig {
    /// Enables fault-injection routes (`POST /api/v1/node/actors/{path}/fail`). For tests
    /// and drills only.
    pub test_hooks: bool,
}

/// Values given as command-line flags; they win over every other layer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    pub listen: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
}

/// Where a bad value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A key in the config file.
    File(PathBuf),
    /// An environment variable.
    Env,
    /// The configuration as a whole, after every layer was applied.
    Merged,
}

/// An invalid configuration: which value, where it came from, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub origin: Origin,
    /// Dotted key (`node.listen`) or environment variable name; `None` when the problem is
    /// not tied to one value (unreadable file, TOML syntax).
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.origin {
            Origin::File(path) => write!(f, "invalid config file {}: ", path.display())?,
            Origin::Env => f.write_str("invalid environment variable ")?,
            Origin::Merged => f.write_str("invalid configuration: ")?,
        }
        match &self.key {
            Some(key) => write!(f, "{key}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Builds the configuration from the defaults, an optional file, the environment (read
    /// through `env`, so that callers and tests choose what it holds) and the flags.
    pub fn load(
        file: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
        flags: &Overrides,
    ) -> Result<Self, ConfigError> {
        let mut config = match file {
            Some(path) => Self::from_file(path)?,
            None => Self::default(),
        };
        config.apply_env(env)?;
        config.apply_flags(flags);
        config.validate(&Origin::Merged)?;
        Ok(config)
    }

    /// The process environment, for [`Config::load`].
    pub fn process_env(name: &str) -> Option<String> {
        std::env::var(name).ok()
    }

    /// Reads and checks a TOML config file; absent keys keep their defaults.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let origin = Origin::File(path.to_path_buf());
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            origin: origin.clone(),
            key: None,
            message: format!("cannot read it: {e}"),
        })?;
        Self::from_toml(&text, origin)
    }

    /// Parses and checks TOML text; errors are reported against `origin`.
    pub fn from_toml(text: &str, origin: Origin) -> Result<Self, ConfigError> {
        let de = toml::Deserializer::parse(text).map_err(|e| ConfigError {
            origin: origin.clone(),
            key: None,
            message: toml_message(text, &e),
        })?;
        let config: Config = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            ConfigError {
                origin: origin.clone(),
                key: (path != ".").then_some(path),
                message: toml_message(text, e.inner()),
            }
        })?;
        config.validate(&origin)?;
        Ok(config)
    }

    /// Applies the `NEUROFLOW_*` variables; an empty variable counts as unset.
    pub fn apply_env(&mut self, env: &dyn Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        let get = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        let bad = |name: &str, value: &str, message: String| ConfigError {
            origin: Origin::Env,
            key: Some(name.to_string()),
            message: format!("{message} (got {value:?})"),
        };
        if let Some(v) = get(ENV_LISTEN) {
            self.node.listen = parse_listen(&v).map_err(|m| bad(ENV_LISTEN, &v, m))?;
        }
        if let Some(v) = get(ENV_DATA_DIR) {
            self.node.data_dir = PathBuf::from(v);
        }
        // NEUROFLOW_LOG, else the ecosystem's RUST_LOG (same directive syntax).
        for name in [ENV_LOG, ENV_RUST_LOG] {
            if let Some(v) = get(name) {
                check_level(&v).map_err(|m| bad(name, &v, m))?;
                self.log.level = v;
                break;
            }
        }
        if let Some(v) = get(ENV_SHUTDOWN_TIMEOUT) {
            let secs = v
                .trim()
                .parse::<u64>()
                .map_err(|_| "expected a whole number of seconds".to_string())
                .and_then(|s| check_shutdown_timeout(s).map(|()| s))
                .map_err(|m| bad(ENV_SHUTDOWN_TIMEOUT, &v, m))?;
            self.node.shutdown_timeout_secs = secs;
        }
        if let Some(v) = get(ENV_OTLP_ENDPOINT) {
            self.telemetry.otlp_endpoint = Some(v);
        }
        if let Some(v) = get(ENV_JWT_SECRET) {
            self.auth.jwt_secret = Some(Secret(v));
        }
        if let Some(v) = get(ENV_ADMIN_PASSWORD) {
            self.auth.admin_password = Some(Secret(v));
        }
        if let Some(v) = get(ENV_TEST_HOOKS) {
            self.debug.test_hooks = parse_bool(&v).map_err(|m| bad(ENV_TEST_HOOKS, &v, m))?;
        }
        Ok(())
    }

    /// Applies the command-line flags (already parsed and checked by the CLI).
    pub fn apply_flags(&mut self, flags: &Overrides) {
        if let Some(listen) = flags.listen {
            self.node.listen = listen;
        }
        if let Some(dir) = &flags.data_dir {
            self.node.data_dir = dir.clone();
        }
    }

    /// Checks the constraints the types alone do not express.
    pub fn validate(&self, origin: &Origin) -> Result<(), ConfigError> {
        let err = |key: &str, message: String| ConfigError {
            origin: origin.clone(),
            key: Some(key.to_string()),
            message,
        };
        if self.node.data_dir.as_os_str().is_empty() {
            return Err(err("node.data_dir", "must not be empty".into()));
        }
        check_shutdown_timeout(self.node.shutdown_timeout_secs)
            .map_err(|m| err("node.shutdown_timeout_secs", m))?;
        let s = &self.supervision;
        if !(1..=MAX_WITHIN_SECS).contains(&s.within_secs) {
            return Err(err(
                "supervision.within_secs",
                format!(
                    "must be between 1 and {MAX_WITHIN_SECS} (got {})",
                    s.within_secs
                ),
            ));
        }
        if s.backoff_max_ms > MAX_BACKOFF_MS {
            return Err(err(
                "supervision.backoff_max_ms",
                format!(
                    "must be at most {MAX_BACKOFF_MS} (got {})",
                    s.backoff_max_ms
                ),
            ));
        }
        if s.backoff_initial_ms > s.backoff_max_ms {
            return Err(err(
                "supervision.backoff_initial_ms",
                format!(
                    "must not exceed supervision.backoff_max_ms ({} > {})",
                    s.backoff_initial_ms, s.backoff_max_ms
                ),
            ));
        }
        check_level(&self.log.level).map_err(|m| err("log.level", m))?;
        if !(1..=MAX_SHARDS).contains(&self.tools.shards) {
            return Err(err(
                "tools.shards",
                format!(
                    "must be between 1 and {MAX_SHARDS} (got {})",
                    self.tools.shards
                ),
            ));
        }
        if self.tools.timeout_ms == 0 {
            return Err(err("tools.timeout_ms", "must be more than zero".into()));
        }
        if self.sandbox.warm > MAX_WARM {
            return Err(err(
                "sandbox.warm",
                format!("must be at most {MAX_WARM} (got {})", self.sandbox.warm),
            ));
        }
        for (name, server) in &self.mcp.servers {
            server
                .validate(name)
                .map_err(|m| err(&format!("mcp.servers.{name}"), m))?;
            if let Some(profile) = &server.sandbox
                && Profile::builtin(profile).is_none()
                && !self.sandbox.profiles.contains_key(profile)
            {
                return Err(err(
                    &format!("mcp.servers.{name}.sandbox"),
                    format!("no sandbox profile named {profile:?}"),
                ));
            }
        }
        let path = &self.mcp.serve.path;
        if !path.starts_with('/') || path.len() < 2 || path.contains(['?', '#', ' ']) {
            return Err(err(
                "mcp.serve.path",
                format!("must be a path like \"/mcp\" (got {path:?})"),
            ));
        }
        self.api.validate().map_err(|(key, m)| err(key, m))?;
        self.auth.validate().map_err(|(key, m)| err(key, m))?;
        self.telemetry.validate().map_err(|(key, m)| err(key, m))?;
        for (name, profile) in &self.sandbox.profiles {
            let key = format!("sandbox.profiles.{name}");
            if Profile::builtin(name).is_some() {
                return Err(err(&key, "a built-in profile cannot be redefined".into()));
            }
            profile
                .resolve(name)
                .map_err(|e| err(&format!("{key}.{}", e.field), e.problem))?;
        }
        Ok(())
    }

    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_secs(self.node.shutdown_timeout_secs)
    }

    /// Restart intensity window of the node's supervisors.
    pub fn restart_window(&self) -> Duration {
        Duration::from_secs(self.supervision.within_secs)
    }

    /// Restart backoff of the node's supervisors.
    pub fn backoff(&self) -> Backoff {
        Backoff {
            initial: Duration::from_millis(self.supervision.backoff_initial_ms),
            max: Duration::from_millis(self.supervision.backoff_max_ms),
            reset_after: BACKOFF_RESET_AFTER,
        }
    }
}

impl LogConfig {
    /// The log filter; [`Config::validate`] guarantees that the level parses.
    pub fn filter(&self) -> Targets {
        Targets::from_str(&self.level).unwrap_or_else(|_| Targets::new())
    }
}

/// `value` is within `min..=max`, or the error `key: must be between …` that
/// [`Config::validate`] reports.
pub(crate) fn in_range<T: PartialOrd + fmt::Display>(
    key: &'static str,
    value: T,
    min: T,
    max: T,
) -> Result<(), (&'static str, String)> {
    if value >= min && value <= max {
        Ok(())
    } else {
        Err((
            key,
            format!("must be between {min} and {max} (got {value})"),
        ))
    }
}

/// An error from the TOML parser or deserializer, as one line with its position.
fn toml_message(text: &str, err: &toml::de::Error) -> String {
    let message = err.message().trim_end();
    match err.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("{message} (line {line}, column {column})")
        }
        None => message.to_string(),
    }
}

fn parse_listen(value: &str) -> Result<SocketAddr, String> {
    value
        .trim()
        .parse()
        .map_err(|_| "expected an IP:PORT socket address, e.g. 127.0.0.1:7700".to_string())
}

fn parse_bool(value: &str) -> Result<bool, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err("expected 1/0, true/false, yes/no or on/off".to_string()),
    }
}

fn check_shutdown_timeout(secs: u64) -> Result<(), String> {
    if (1..=MAX_SHUTDOWN_TIMEOUT_SECS).contains(&secs) {
        Ok(())
    } else {
        Err(format!(
            "must be between 1 and {MAX_SHUTDOWN_TIMEOUT_SECS} seconds (got {secs})"
        ))
    }
}

const LEVELS: &[&str] = &["off", "error", "warn", "info", "debug", "trace"];

/// A level filter is `LEVEL` or `TARGET=LEVEL`, comma-separated. Checked strictly: a bare
/// word that is not a level would otherwise be read as a target enabled at every level.
fn check_level(value: &str) -> Result<(), String> {
    let expected = || format!("expected one of {} or TARGET=LEVEL", LEVELS.join(", "));
    if value.trim().is_empty() {
        return Err(format!("empty; {}", expected()));
    }
    for directive in value.split(',').map(str::trim) {
        let level = match directive.split_once('=') {
            Some((target, level)) if !target.trim().is_empty() => level,
            Some(_) => return Err(format!("directive {directive:?} has no target")),
            None => directive,
        };
        if !LEVELS.contains(&level.trim().to_ascii_lowercase().as_str()) {
            return Err(format!("unknown level {:?}; {}", level.trim(), expected()));
        }
    }
    Targets::from_str(value)
        .map(|_| ())
        .map_err(|e| format!("{e}; {}", expected()))
}

#[cfg(test)]
mod tests;
