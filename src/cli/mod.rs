//! The `neuroflow-node` command line: `serve`, `agent run`, `mcp serve` (the node's tools
//! over MCP stdio), `sandbox ...`, and the client of a running node's HTTP API: `login`,
//! `agent create|list|chat|delete`.
//!
//! Exit codes: 0 after a clean (signalled) shutdown or a client command that succeeded; 1
//! when the node fails at run time (cannot listen, cannot create its data directory, its
//! root supervisor gave up), or when a client command fails (the node is unreachable,
//! refuses the request, or the turn fails); 2 for a usage or configuration error (no
//! usable token included).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Config, Overrides};
use crate::node;

mod agent;
mod api_error;
mod client;
mod credentials;
mod login;
mod mcp;
mod remote;
mod sandbox;
mod table;

/// Process exit status of a node that shut down cleanly.
pub const EXIT_OK: u8 = 0;
/// Process exit status of a node that failed at run time.
pub const EXIT_FAILURE: u8 = 1;
/// Process exit status for an invalid command line or configuration.
pub const EXIT_CONFIG: u8 = 2;

/// NeuroFlow node: an actor-system runtime for AI agents.
#[derive(Debug, Parser)]
#[command(name = "neuroflow-node", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the node: supervision tree, HTTP API and metrics, until SIGINT or SIGTERM.
    Serve(ServeArgs),
    /// Log in to a node and save its token for the commands that talk to it.
    Login(login::LoginArgs),
    /// Agents: run one here, or create, list, talk with and delete those of a node.
    #[command(subcommand)]
    Agent(agent::AgentCommand),
    /// The node as an MCP server: its tools offered to an MCP client over stdio.
    #[command(subcommand)]
    Mcp(mcp::McpCommand),
    /// Run code in a sandbox, or check what isolation this host supports.
    #[command(subcommand)]
    Sandbox(sandbox::SandboxCommand),
    /// The sandbox init (started by the node for every sandbox, not by hand).
    #[command(name = "sandbox-init", hide = true)]
    SandboxInit,
}

#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServeArgs {
    /// TOML configuration file (defaults are built in).
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// HTTP listen address, IP:PORT (overrides node.listen and NEUROFLOW_LISTEN).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Data directory, created if missing (overrides node.data_dir and NEUROFLOW_DATA_DIR).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

impl ServeArgs {
    fn overrides(&self) -> Overrides {
        Overrides {
            listen: self.listen,
            data_dir: self.data_dir.clone(),
        }
    }
}

/// Runs a parsed command line and returns the process exit status.
pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Serve(args) => serve(&args),
        Command::Login(args) => login::run(&args),
        Command::Agent(command) => agent::run(command),
        Command::Mcp(command) => mcp::run(command),
        Command::Sandbox(command) => sandbox::run(command),
        Command::SandboxInit => {
            let status = neuroflow_sandbox::init::main();
            ExitCode::from(u8::try_from(status).unwrap_or(EXIT_FAILURE))
        }
    }
}

/// The configuration from its layers; a bad one is reported and becomes exit status 2.
pub(crate) fn load_config(
    path: Option<&std::path::Path>,
    overrides: &Overrides,
) -> Result<Config, ExitCode> {
    Config::load(path, &Config::process_env, overrides).map_err(|err| {
        eprintln!("neuroflow-node: {err}");
        ExitCode::from(EXIT_CONFIG)
    })
}

/// The multi-threaded runtime a command runs on (`workers` threads, else one per core);
/// if it cannot be built, the reason is reported and `on_error` is the exit status.
pub(crate) fn async_runtime(
    workers: Option<usize>,
    on_error: u8,
) -> Result<tokio::runtime::Runtime, ExitCode> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all().thread_name("neuroflow");
    if let Some(workers) = workers {
        builder.worker_threads(workers);
    }
    builder.build().map_err(|err| {
        eprintln!("neuroflow-node: cannot start the async runtime: {err}");
        ExitCode::from(on_error)
    })
}

/// `neuroflow-node serve`: loads the configuration, sets up logging, runs the node.
pub fn serve(args: &ServeArgs) -> ExitCode {
    let config = match load_config(args.config.as_deref(), &args.overrides()) {
        Ok(config) => config,
        Err(code) => return code,
    };
    crate::observability::init(&config);
    let runtime = match async_runtime(None, EXIT_FAILURE) {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    let result = runtime.block_on(node::serve(config));
    // Whatever is left (e.g. a connection still draining past the bound) is abandoned
    // rather than allowed to hold the exit.
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    match result {
        Ok(()) => ExitCode::from(EXIT_OK),
        Err(err) => {
            // Printed plainly rather than logged: it must show whatever the log settings.
            eprintln!("neuroflow-node: {err}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn serve_flags_parse() {
        let cli = Cli::try_parse_from([
            "neuroflow-node",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            "/tmp/x",
            "--config",
            "n.toml",
        ])
        .unwrap();
        let Command::Serve(args) = cli.command else {
            panic!("not serve: {:?}", cli.command);
        };
        assert_eq!(args.listen, Some("127.0.0.1:0".parse().unwrap()));
        assert_eq!(args.data_dir, Some(PathBuf::from("/tmp/x")));
        assert_eq!(args.config, Some(PathBuf::from("n.toml")));
    }

    #[test]
    fn mcp_serve_flags_parse() {
        let cli = Cli::try_parse_from([
            "neuroflow-node",
            "mcp",
            "serve",
            "--config",
            "n.toml",
            "--tools",
            "time.*",
            "--tools",
            "fs.read",
        ])
        .unwrap();
        let Command::Mcp(mcp::McpCommand::Serve(args)) = cli.command else {
            panic!("not mcp serve: {:?}", cli.command);
        };
        assert_eq!(args.config, Some(PathBuf::from("n.toml")));
        assert_eq!(args.tools, ["time.*", "fs.read"]);
        assert_eq!(args.data_dir, None);
    }

    #[test]
    fn client_commands_parse() {
        let cli = Cli::try_parse_from([
            "neuroflow-node",
            "agent",
            "chat",
            "helper",
            "what",
            "time?",
            "--conversation",
            "new",
            "--url",
            "https://node.example/",
        ])
        .unwrap();
        let Command::Agent(agent::AgentCommand::Chat(args)) = cli.command else {
            panic!("not agent chat: {:?}", cli.command);
        };
        assert_eq!(args.message, ["what", "time?"]);
        assert_eq!(args.conversation.as_deref(), Some("new"));
        assert_eq!(args.node.url.to_string(), "https://node.example");

        let cli = Cli::try_parse_from(["neuroflow-node", "login", "--username", "ops"]).unwrap();
        let Command::Login(args) = cli.command else {
            panic!("not login: {:?}", cli.command);
        };
        assert_eq!(args.username, "ops");
    }

    #[test]
    fn a_spec_file_and_spec_flags_do_not_mix() {
        let err = Cli::try_parse_from([
            "neuroflow-node",
            "agent",
            "create",
            "--file",
            "spec.json",
            "--model",
            "m",
        ])
        .unwrap_err();
        assert_eq!(err.exit_code(), i32::from(EXIT_CONFIG));
        let err = Cli::try_parse_from(["neuroflow-node", "agent", "create"]).unwrap_err();
        assert_eq!(err.exit_code(), i32::from(EXIT_CONFIG));
        assert!(Cli::try_parse_from(["neuroflow-node", "agent", "create", "--file", "-"]).is_ok());
    }

    #[test]
    fn bad_listen_flag_is_a_usage_error() {
        let err =
            Cli::try_parse_from(["neuroflow-node", "serve", "--listen", "nowhere"]).unwrap_err();
        assert_eq!(err.exit_code(), i32::from(EXIT_CONFIG));
        assert!(err.to_string().contains("--listen"), "{err}");
    }
}
