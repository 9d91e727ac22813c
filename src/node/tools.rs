//! The node's tools: the router's shards under `tools`, the built-in tools, the MCP
//! servers' actors under `tools/mcp`, and the recipient agents call them through.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use neuroflow_kit::CallError;
use neuroflow_kit::metrics::Metrics;
use neuroflow_kit::protocol::router::{RouterMsg, RouterReply};
use neuroflow_kit::protocol::sandbox::{SandboxFailure, SandboxReply};
use neuroflow_kit::recipient::{BoxFuture, Recipient};
use neuroflow_router::builtin::{fs, http, sandbox, time};
use neuroflow_router::mcp::{Launcher, McpServers, spawn_on_host};
use neuroflow_router::{RouterConfig, RouterParts, Tools};

use crate::config::Config;
use crate::node::sandboxes::Sandboxes;

/// The node's tool side, built before the tree starts.
pub struct NodeTools {
    pub router: RouterParts,
    pub mcp: McpServers,
    /// Everything to supervise under `tools`: the shards, the router, the `mcp` supervisor.
    pub children: Vec<neuroflow_kit::supervisor::ChildSpec>,
}

/// Builds the router, registers the built-in tools and prepares the configured MCP
/// servers. `profile_of` gives the sandbox profile of an agent (by name) for
/// `sandbox.exec`.
pub fn build_all(
    config: &Config,
    metrics: &Metrics,
    sandboxes: Arc<OnceLock<Sandboxes>>,
    profile_of: sandbox::ProfileFn,
) -> Result<NodeTools, String> {
    let router = build(config, metrics, sandboxes.clone(), profile_of)?;
    let mcp = McpServers::build(
        router.tools.clone(),
        metrics,
        launcher(sandboxes),
        &config.mcp.servers,
    )
    .map_err(|e| e.to_string())?;
    let mut children = router.children.clone();
    children.push(mcp.supervisor);
    Ok(NodeTools {
        router,
        mcp: mcp.servers,
        children,
    })
}

/// Starts stdio MCP servers on the host, or in the named sandbox profile.
fn launcher(sandboxes: Arc<OnceLock<Sandboxes>>) -> Launcher {
    Arc::new(move |server| {
        let Some(profile) = server.sandbox.clone() else {
            return Box::pin(std::future::ready(spawn_on_host(server)));
        };
        let sandboxes = sandboxes.get().cloned();
        let server = server.clone();
        Box::pin(async move {
            match sandboxes {
                Some(sandboxes) => sandboxes.spawn_stdio(&profile, &server).await,
                None => Err("the node's sandboxes are not running".to_string()),
            }
        })
    })
}

/// Builds the router and registers the built-in tools.
fn build(
    config: &Config,
    metrics: &Metrics,
    sandboxes: Arc<OnceLock<Sandboxes>>,
    profile_of: sandbox::ProfileFn,
) -> Result<RouterParts, String> {
    let timeout = Duration::from_millis(config.tools.timeout_ms);
    let parts = Tools::build(
        RouterConfig {
            shards: config.tools.shards,
            default_timeout: timeout,
            max_timeout: timeout.max(Duration::from_secs(600)),
            ..RouterConfig::default()
        },
        metrics,
    )
    .map_err(|e| e.to_string())?;
    let tools = &parts.tools;
    let register = |tool| tools.register(tool).map_err(|e| e.to_string());
    register(time::tool())?;
    for tool in fs::tools(fs::FsConfig::new(config.node.data_dir.join("workspaces"))) {
        register(tool)?;
    }
    register(
        http::tool(http::HttpConfig {
            allow: config.tools.http_allow.clone(),
            ..http::HttpConfig::default()
        })
        .map_err(|e| format!("tools.http_allow: {e}"))?,
    )?;
    // The sandboxes exist once the tree runs, after the tools are built.
    let exec = sandbox::exec_fn(move |profile, request| {
        let sandboxes = sandboxes.get().cloned();
        async move {
            match sandboxes {
                Some(sandboxes) => sandboxes.exec(&profile, request).await,
                None => SandboxReply::Refused(SandboxFailure {
                    layer: None,
                    message: "the node's sandboxes are not running".into(),
                }),
            }
        }
    });
    register(sandbox::tool(
        exec,
        profile_of,
        sandbox::SandboxToolConfig::default(),
    ))?;
    Ok(parts)
}

/// What agents hold to reach the tools: served by the local handle, so that calls from
/// many agents (and parallel calls from one) run at once rather than queue in a mailbox.
pub fn recipient(tools: Tools) -> Recipient<RouterMsg, RouterReply> {
    Recipient::from_fn(
        "node/tools",
        move |msg| -> BoxFuture<'static, Result<RouterReply, CallError>> {
            let tools = tools.clone();
            Box::pin(async move { Ok(tools.serve(msg).await) })
        },
    )
}
