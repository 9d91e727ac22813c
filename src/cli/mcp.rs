//! `neuroflow-node mcp serve`: the node's tools offered to one MCP client over stdin and
//! stdout (the client starts this command as its server).
//!
//! stdout carries only the protocol: logs go to stderr, as everywhere in the node. The
//! node runs embedded (no HTTP listener) with the configured tools, MCP servers included,
//! and stops when stdin closes (the client went away) or on SIGINT/SIGTERM. Exit status 0
//! then; 1 if the node cannot start or the session cannot open; 2 for a bad command line
//! or configuration.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use neuroflow_router::mcp::serve::{McpFace, ToolsCatalog};
use rmcp::ServiceExt;

use super::{EXIT_FAILURE, EXIT_OK};
use crate::config::{Config, Overrides};
use crate::node::Node;
use crate::shutdown::Signals;

#[derive(Debug, Subcommand)]
pub enum McpCommand {
    /// Offer the node's tools to an MCP client over stdin/stdout, until stdin closes.
    Serve(ServeArgs),
}

#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    /// TOML configuration file (defaults are built in).
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Data directory, created if missing (overrides node.data_dir and NEUROFLOW_DATA_DIR).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Tools offered: a name or a `*` pattern, repeatable (default: `[mcp.serve] tools`,
    /// and every tool when that is empty).
    #[arg(long = "tools", value_name = "PATTERN")]
    pub tools: Vec<String>,
}

pub fn run(command: McpCommand) -> ExitCode {
    let McpCommand::Serve(args) = command;
    let overrides = Overrides {
        listen: None,
        data_dir: args.data_dir.clone(),
    };
    let config = match super::load_config(args.config.as_deref(), &overrides) {
        Ok(config) => config,
        Err(code) => return code,
    };
    // To stderr (see `observability`): stdout is the protocol's.
    crate::observability::init(&config);
    let runtime = match super::async_runtime(None, EXIT_FAILURE) {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    let patterns = if args.tools.is_empty() {
        config.mcp.serve.tools.clone()
    } else {
        args.tools
    };
    let result = runtime.block_on(serve(config, patterns));
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    match result {
        Ok(()) => ExitCode::from(EXIT_OK),
        Err(message) => {
            eprintln!("neuroflow-node: {message}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

async fn serve(config: Config, patterns: Vec<String>) -> Result<(), String> {
    let mut signals =
        Signals::install().map_err(|e| format!("cannot install the signal handlers: {e}"))?;
    let node = Node::start_embedded(&config)
        .await
        .map_err(|e| e.to_string())?;
    let face = McpFace::new(ToolsCatalog::new(node.tools().clone(), patterns));
    let outcome = match face.serve(rmcp::transport::stdio()).await {
        Ok(running) => {
            tokio::select! {
                ended = running.waiting() => {
                    tracing::info!(reason = ?ended, "MCP stdio session ended");
                    Ok(())
                }
                signal = signals.recv() => {
                    tracing::info!(%signal, "stopping the MCP stdio session");
                    Ok(())
                }
            }
        }
        Err(err) => Err(format!("the MCP session did not open: {err}")),
    };
    node.stop().await;
    outcome
}
