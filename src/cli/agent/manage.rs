//! `neuroflow-node agent create|list|delete`: a node's agents, through its HTTP API.

use std::io::Read;
use std::path::PathBuf;

use clap::Args;
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::cli::client::{ApiClient, Page};
use crate::cli::remote::{self, CommandError, NodeArgs};
use crate::cli::table::{self, Column};

/// Bound on the agents `agent list` fetches, however many pages the node offers.
const MAX_LISTED: usize = 10_000;
/// The largest page the API gives.
const PAGE_SIZE: usize = 200;

#[derive(Debug, Args)]
pub struct CreateArgs {
    #[command(flatten)]
    pub node: NodeArgs,
    /// The agent's name: letters, digits, '-' and '_'.
    #[arg(required_unless_present = "file")]
    pub name: Option<String>,
    /// A provider configured on the node (the node's default is `scripted`).
    #[arg(long)]
    pub provider: Option<String>,
    /// The model to ask.
    #[arg(long)]
    pub model: Option<String>,
    /// System prompt.
    #[arg(long, value_name = "TEXT")]
    pub system: Option<String>,
    /// Tools the agent may use: names or patterns, comma-separated (e.g. `time.*,fs.*`).
    #[arg(long, value_delimiter = ',')]
    pub tools: Option<Vec<String>>,
    /// What the agent is for (shown to other agents that may call it).
    #[arg(long)]
    pub description: Option<String>,
    /// LLM calls a turn may make.
    #[arg(long, value_name = "N")]
    pub max_steps: Option<u32>,
    /// Sandbox profile for the agent's code tools.
    #[arg(long, value_name = "PROFILE")]
    pub sandbox_profile: Option<String>,
    /// The whole AgentSpec as a JSON file (`-` for stdin), instead of the flags.
    #[arg(long, value_name = "PATH", conflicts_with_all = [
        "name", "provider", "model", "system", "tools", "description", "max_steps",
        "sandbox_profile",
    ])]
    pub file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub node: NodeArgs,
    /// Print the agents as the node describes them, a JSON array.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    #[command(flatten)]
    pub node: NodeArgs,
    /// The agent to stop and forget, with its conversations.
    pub name: String,
}

pub async fn create(args: &CreateArgs) -> Result<(), CommandError> {
    let spec = match &args.file {
        Some(path) => spec_file(path)?,
        None => spec_from_flags(args),
    };
    if let Some(name) = spec.get("name").and_then(Value::as_str) {
        remote::check_name(name)?;
    }
    let client = remote::connect(&args.node)?;
    let agent: Value = client
        .json(Method::POST, client.endpoint(&["agents"]), Some(&spec))
        .await?;
    println!("{}", pretty(&agent));
    Ok(())
}

pub async fn list(args: &ListArgs) -> Result<(), CommandError> {
    let client = remote::connect(&args.node)?;
    let agents = all_agents(&client).await?;
    if args.json {
        println!("{}", pretty(&Value::Array(agents)));
        return Ok(());
    }
    let rows = agents
        .into_iter()
        .map(|agent| {
            let agent: AgentRow = serde_json::from_value(agent).map_err(|err| {
                CommandError::Failed(format!(
                    "an agent the node listed is not what this client expects: {err}"
                ))
            })?;
            Ok(agent.cells())
        })
        .collect::<Result<Vec<_>, CommandError>>()?;
    print!("{}", table::render(&AgentRow::COLUMNS, &rows));
    Ok(())
}

pub async fn delete(args: &DeleteArgs) -> Result<(), CommandError> {
    remote::check_name(&args.name)?;
    let client = remote::connect(&args.node)?;
    let url = client.endpoint(&["agents", &args.name]);
    client.send(Method::DELETE, url, None, false).await?;
    println!("deleted {}", table::printable(&args.name, usize::MAX));
    Ok(())
}

/// Every agent, page after page, up to [`MAX_LISTED`].
async fn all_agents(client: &ApiClient) -> Result<Vec<Value>, CommandError> {
    let mut agents = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = client.endpoint(&["agents"]);
        url.query_pairs_mut()
            .append_pair("limit", &PAGE_SIZE.to_string());
        if let Some(cursor) = &cursor {
            url.query_pairs_mut().append_pair("cursor", cursor);
        }
        let page: Page<Value> = client.json(Method::GET, url, None).await?;
        let empty = page.items.is_empty();
        agents.extend(page.items);
        if agents.len() >= MAX_LISTED {
            agents.truncate(MAX_LISTED);
            eprintln!("neuroflow-node: showing the first {MAX_LISTED} agents only");
            return Ok(agents);
        }
        match page.next_cursor {
            // A page with nothing on it that promises more would have the client ask
            // forever.
            Some(_) if empty => {
                return Err(CommandError::Failed(
                    "the node sent an empty page of agents with a cursor to more".into(),
                ));
            }
            Some(next) => cursor = Some(next),
            None => return Ok(agents),
        }
    }
}

/// The spec the flags describe: only what was given, so that the node fills in its own
/// defaults.
fn spec_from_flags(args: &CreateArgs) -> Value {
    let mut spec = Map::new();
    let mut put = |key: &str, value: Option<Value>| {
        if let Some(value) = value {
            spec.insert(key.to_string(), value);
        }
    };
    put("name", args.name.clone().map(Value::from));
    put("description", args.description.clone().map(Value::from));
    put("system_prompt", args.system.clone().map(Value::from));
    put("provider", args.provider.clone().map(Value::from));
    put("model", args.model.clone().map(Value::from));
    put(
        "tools",
        args.tools.as_ref().map(|tools| {
            json!(
                tools
                    .iter()
                    .map(|t| t.trim())
                    .filter(|t| !t.is_empty())
                    .collect::<Vec<_>>()
            )
        }),
    );
    put(
        "sandbox_profile",
        args.sandbox_profile.clone().map(Value::from),
    );
    put("max_steps", args.max_steps.map(Value::from));
    Value::Object(spec)
}

/// An AgentSpec from a file (or stdin); the node checks its fields.
fn spec_file(path: &std::path::Path) -> Result<Value, CommandError> {
    let shown = path.display();
    let mut text = String::new();
    let read = if path.as_os_str() == "-" {
        std::io::stdin().read_to_string(&mut text).map(|_| ())
    } else {
        std::fs::read_to_string(path).map(|t| text = t)
    };
    read.map_err(|err| CommandError::Usage(format!("cannot read {shown}: {err}")))?;
    let spec: Value = serde_json::from_str(&text)
        .map_err(|err| CommandError::Usage(format!("{shown} is not JSON: {err}")))?;
    if !spec.is_object() {
        return Err(CommandError::Usage(format!(
            "{shown}: an AgentSpec is a JSON object, e.g. {{\"name\": \"helper\"}}"
        )));
    }
    Ok(spec)
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

/// What `agent list` shows of an agent. Lenient on purpose: a node newer than this client
/// may add fields, and a missing one shows as empty rather than failing the listing.
#[derive(Debug, Deserialize)]
struct AgentRow {
    name: String,
    #[serde(default)]
    spec: SpecCells,
    #[serde(default)]
    busy: bool,
    #[serde(default)]
    spent: Spent,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct SpecCells {
    provider: String,
    model: String,
    tools: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Spent {
    input_tokens: u64,
    output_tokens: u64,
    cost_usd: f64,
}

impl AgentRow {
    const COLUMNS: [Column; 7] = [
        column("NAME", 32, false),
        column("PROVIDER", 16, false),
        column("MODEL", 24, false),
        column("TOOLS", 32, false),
        column("BUSY", 4, false),
        column("TOKENS", 12, true),
        column("COST", 12, true),
    ];

    fn cells(&self) -> Vec<String> {
        vec![
            self.name.clone(),
            self.spec.provider.clone(),
            self.spec.model.clone(),
            self.spec.tools.join(","),
            if self.busy { "yes" } else { "no" }.to_string(),
            self.spent
                .input_tokens
                .saturating_add(self.spent.output_tokens)
                .to_string(),
            format!("${:.4}", self.spent.cost_usd),
        ]
    }
}

const fn column(title: &'static str, max_width: usize, right: bool) -> Column {
    Column {
        title,
        max_width,
        right,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_agent_becomes_a_row_of_the_table() {
        let agent = json!({
            "name": "helper",
            "spec": {"name": "helper", "provider": "scripted", "model": "", "tools": ["time.*", "fs.read"]},
            "busy": false,
            "spent": {"input_tokens": 89, "output_tokens": 19, "cost_usd": 0.25},
            "conversation": null,
            "added_by_a_newer_node": 1,
        });
        let row: AgentRow = serde_json::from_value(agent).unwrap();
        let table = table::render(&AgentRow::COLUMNS, &[row.cells()]);
        assert_eq!(
            table,
            "NAME    PROVIDER  MODEL  TOOLS           BUSY  TOKENS     COST\n\
             helper  scripted         time.*,fs.read  no       108  $0.2500\n"
        );
    }

    #[test]
    fn flags_send_only_what_was_given() {
        let args = CreateArgs {
            node: NodeArgs {
                url: Default::default(),
            },
            name: Some("helper".into()),
            provider: None,
            model: Some("m".into()),
            system: None,
            tools: Some(vec!["time.*".into(), " ".into()]),
            description: None,
            max_steps: Some(3),
            sandbox_profile: None,
            file: None,
        };
        assert_eq!(
            spec_from_flags(&args),
            json!({"name": "helper", "model": "m", "tools": ["time.*"], "max_steps": 3})
        );
    }
}
