//! `neuroflow-node agent`: `run` runs one turn of an agent in this process; `create`,
//! `list`, `chat` and `delete` work on the agents of a running node, through its HTTP API.
//!
//! The answer goes to stdout as it is written; tool calls and their results go to stderr
//! as they happen, so that `> answer.txt` keeps only the answer. Exit status 0 with an
//! answer, 1 when the turn fails (or the node cannot be reached or refuses), 2 for a bad
//! command line or configuration.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use neuroflow_agent::provider::{AnthropicConfig, ApiKey, OpenAiConfig, ProviderConfig};
use neuroflow_kit::protocol::agent::AgentEvent;

use super::remote::execute;
use super::{EXIT_CONFIG, EXIT_FAILURE};
use crate::config::{Config, Overrides};
use crate::runtime::{Runtime, agent_spec};

mod chat;
mod manage;
mod turn_view;

#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// Ask an agent one thing and stream its answer (in this process; no node needed).
    Run(Box<RunArgs>),
    /// Create an agent on a node (stored; it comes back when the node restarts).
    Create(Box<manage::CreateArgs>),
    /// List the agents of a node.
    List(manage::ListArgs),
    /// Talk with an agent of a node: one message, or one turn per line of stdin.
    Chat(chat::ChatArgs),
    /// Stop an agent of a node and forget it, with its conversations.
    Delete(manage::DeleteArgs),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// A provider configured in `--config`, `scripted` (built in, offline), or with
    /// `--base-url` a provider kind: `openai` (any OpenAI-compatible server) or `anthropic`.
    #[arg(long, default_value = "scripted")]
    pub provider: String,
    /// The model to ask.
    #[arg(long, default_value = "")]
    pub model: String,
    /// Server of the provider (e.g. http://127.0.0.1:11434/v1 for Ollama). The API key is
    /// read from NEUROFLOW_API_KEY (or OPENAI_API_KEY / ANTHROPIC_API_KEY).
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,
    /// Tools the agent may use: names or patterns, comma-separated (e.g. `time.*,fs.*`).
    #[arg(long, value_delimiter = ',')]
    pub tools: Vec<String>,
    /// System prompt.
    #[arg(long, default_value = "")]
    pub system: String,
    /// Node configuration (providers, pricing, sandbox profiles, tool settings).
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// What to ask.
    pub prompt: String,
}

pub fn run(command: AgentCommand) -> ExitCode {
    match command {
        AgentCommand::Run(args) => run_here(&args),
        AgentCommand::Create(args) => execute(manage::create(&args)),
        AgentCommand::List(args) => execute(manage::list(&args)),
        AgentCommand::Chat(args) => execute(chat::chat(&args)),
        AgentCommand::Delete(args) => execute(manage::delete(&args)),
    }
}

/// `agent run`: the agent lives in this process for one turn.
fn run_here(args: &RunArgs) -> ExitCode {
    let config = match config(args) {
        Ok(config) => config,
        Err(message) => {
            eprintln!("neuroflow-node: {message}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let runtime = match super::async_runtime(Some(2), EXIT_FAILURE) {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    runtime.block_on(turn(config, args))
}

/// The node configuration, plus the provider the flags describe (as `cli`).
fn config(args: &RunArgs) -> Result<Config, String> {
    let mut config = Config::load(
        args.config.as_deref(),
        &Config::process_env,
        &Overrides::default(),
    )
    .map_err(|e| e.to_string())?;
    if let Some(base_url) = &args.base_url {
        let key = ["NEUROFLOW_API_KEY", "OPENAI_API_KEY", "ANTHROPIC_API_KEY"]
            .iter()
            .find_map(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
            .map(ApiKey::new);
        let provider = match args.provider.as_str() {
            "openai" => ProviderConfig::Openai(OpenAiConfig {
                base_url: base_url.clone(),
                api_key: key,
                ..OpenAiConfig::default()
            }),
            "anthropic" => ProviderConfig::Anthropic(AnthropicConfig {
                base_url: base_url.clone(),
                api_key: key,
                ..AnthropicConfig::default()
            }),
            other => {
                return Err(format!(
                    "--base-url needs --provider openai or anthropic (got {other:?})"
                ));
            }
        };
        config.providers.insert("cli".into(), provider);
    }
    Ok(config)
}

async fn turn(config: Config, args: &RunArgs) -> ExitCode {
    let provider = if args.base_url.is_some() {
        "cli"
    } else {
        &args.provider
    };
    let runtime = match Runtime::builder().config(config).build().await {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("neuroflow-node: {err}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let spec = agent_spec("cli")
        .provider(provider)
        .model(&args.model)
        .system_prompt(&args.system)
        .tools(args.tools.iter().map(String::as_str));
    let agent = match runtime.spawn_agent(spec).await {
        Ok(agent) => agent,
        Err(err) => {
            eprintln!("neuroflow-node: {err}");
            runtime.shutdown().await;
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let mut chat = agent.chat(args.prompt.clone());
    let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
    while let Some(event) = chat.next_event().await {
        // A closed stdout or stderr (e.g. `| head`) must not end the turn early.
        let _ = show_event(&event, &mut out, &mut err);
    }
    let status = match chat.answer().await {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("neuroflow-node: {e}");
            ExitCode::from(EXIT_FAILURE)
        }
    };
    let spent = agent.spent();
    eprintln!(
        "[{} tokens in, {} out, ${:.4}]",
        spent.input_tokens, spent.output_tokens, spent.cost_usd
    );
    runtime.shutdown().await;
    status
}

/// Shows one event of a turn: answer text on `out` as it comes, tool calls and their
/// results on `err`.
fn show_event(
    event: &AgentEvent,
    out: &mut impl Write,
    err: &mut impl Write,
) -> std::io::Result<()> {
    match event {
        AgentEvent::TextDelta { text } => write!(out, "{text}").and_then(|()| out.flush()),
        AgentEvent::ToolCallStart {
            name, arguments, ..
        } => {
            writeln!(err, "[tool {name} {arguments}]")
        }
        AgentEvent::ToolCallEnd {
            name,
            content,
            is_error,
            duration_ms,
            ..
        } => {
            let verdict = if *is_error { "failed" } else { "done" };
            writeln!(
                err,
                "[tool {name} {verdict} in {duration_ms} ms: {}]",
                first_line(content)
            )
        }
        AgentEvent::Final { .. } => writeln!(out),
        AgentEvent::Usage { .. } | AgentEvent::Error { .. } => Ok(()),
    }
}

/// The first line of a tool result, shortened for the terminal.
fn first_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default();
    match line.char_indices().nth(120) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line.to_string(),
    }
}
