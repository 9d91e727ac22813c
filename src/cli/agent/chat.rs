//! `neuroflow-node agent chat`: turns of an agent of a running node, streamed to the
//! terminal as the node runs them, shown as `agent run` shows its own turns: the answer
//! on stdout, tool calls on stderr.

use std::io::{BufRead, IsTerminal, Read, Write};

use clap::Args;
use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

use super::turn_view::{Step, TurnView};
use crate::cli::client::{ApiClient, ClientError, is_json};
use crate::cli::remote::{self, CommandError, NodeArgs};
use neuroflow_agent::sse::SseParser;

/// Bound on one event of the stream (a tool's result travels in one).
const MAX_EVENT_BYTES: usize = 4 << 20;
/// Bound on one line of stdin: the node's default limit on a request body.
const MAX_LINE_BYTES: usize = 1 << 20;

#[derive(Debug, Args)]
pub struct ChatArgs {
    #[command(flatten)]
    pub node: NodeArgs,
    /// The agent to talk with.
    pub name: String,
    /// What to say (the words are joined with spaces). Without it, each line of stdin is
    /// one turn, all in the same conversation.
    pub message: Vec<String>,
    /// The conversation to continue, or `new` to start one (default: the agent's current
    /// conversation).
    #[arg(long, value_name = "ID|new")]
    pub conversation: Option<String>,
}

pub async fn chat(args: &ChatArgs) -> Result<(), CommandError> {
    remote::check_name(&args.name)?;
    let client = remote::connect(&args.node)?;
    let conversation = args.conversation.as_deref();
    if !args.message.is_empty() {
        let end = turn(&client, &args.name, &args.message.join(" "), conversation).await?;
        return end.result.map_err(turn_failed);
    }
    // One turn per line. A failed turn is reported and the next line still goes; a
    // request the node refuses (no such agent, busy) ends the chat.
    let interactive = std::io::stdin().is_terminal();
    let mut conversation = args.conversation.clone();
    let (mut turns, mut failed) = (0, 0);
    while let Some(line) = next_line(interactive).await? {
        if line.trim().is_empty() {
            continue;
        }
        turns += 1;
        let end = turn(&client, &args.name, &line, conversation.as_deref()).await?;
        if let Err(message) = end.result {
            failed += 1;
            remote::report(&turn_failed(message));
        }
        conversation = match end.conversation {
            Some(id) => Some(id),
            // Without the new conversation's id, "new" again would start yet another.
            None if conversation.as_deref() == Some("new") => None,
            None => conversation,
        };
    }
    match failed {
        0 => Ok(()),
        _ => Err(CommandError::Failed(format!(
            "{failed} of {turns} turns failed"
        ))),
    }
}

fn turn_failed(message: String) -> CommandError {
    CommandError::Failed(format!("turn failed: {message}"))
}

/// How a turn ended: the conversation it was in (if the node said), and its answer or
/// why there is none.
struct TurnEnd {
    conversation: Option<String>,
    result: Result<(), String>,
}

/// Runs one turn, showing its events as they come.
async fn turn(
    client: &ApiClient,
    agent: &str,
    message: &str,
    conversation: Option<&str>,
) -> Result<TurnEnd, CommandError> {
    let url = client.endpoint(&["agents", agent, "messages"]);
    let what = format!("POST {}", url.path());
    let mut body = json!({ "message": message });
    if let Some(id) = conversation {
        body["conversation"] = json!(id);
    }
    let mut response = client.send(Method::POST, url, Some(&body), true).await?;
    if is_json(&response) {
        // A node (or a proxy) that does not stream answers the whole turn at once.
        let answer: WholeAnswer = client.read_json(response, &what).await?;
        println!("{}", answer.text);
        return Ok(TurnEnd {
            conversation: answer.conversation,
            result: Ok(()),
        });
    }
    let bad = |reason: String| {
        CommandError::Client(ClientError::BadAnswer {
            what: what.clone(),
            reason,
        })
    };
    let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
    let mut view = TurnView::default();
    let mut parser = SseParser::new(MAX_EVENT_BYTES);
    let mut events = Vec::new();
    loop {
        let chunk = client.chunk(&mut response, &what).await?;
        match &chunk {
            Some(bytes) => parser
                .feed(bytes, &mut events)
                .map_err(|e| bad(e.to_string()))?,
            None => parser.finish(&mut events),
        }
        for event in events.drain(..) {
            let result = match view.show(&event, &mut out, &mut err).map_err(bad)? {
                Step::Going => continue,
                Step::Answered => Ok(()),
                Step::Failed(message) => Err(message),
            };
            return Ok(TurnEnd {
                conversation: view.conversation,
                result,
            });
        }
        if chunk.is_none() {
            return Err(CommandError::Failed(format!(
                "{what}: the node ended the stream before the turn ended"
            )));
        }
    }
}

/// The answer of a node that did not stream.
#[derive(Deserialize)]
struct WholeAnswer {
    #[serde(default)]
    conversation: Option<String>,
    text: String,
}

/// The next line of stdin (prompted for on stderr when it is a terminal); `None` at its
/// end. Read on a blocking thread, so that the runtime is free meanwhile.
async fn next_line(interactive: bool) -> Result<Option<String>, CommandError> {
    if interactive {
        eprint!("> ");
        let _ = std::io::stderr().flush();
    }
    let read = tokio::task::spawn_blocking(|| {
        let mut line = Vec::new();
        let limit = u64::try_from(MAX_LINE_BYTES + 1).unwrap_or(u64::MAX);
        std::io::stdin()
            .lock()
            .take(limit)
            .read_until(b'\n', &mut line)
            .map(|_| line)
    })
    .await
    .map_err(|e| CommandError::Failed(format!("cannot read stdin: {e}")))?;
    let line = read.map_err(|e| CommandError::Failed(format!("cannot read stdin: {e}")))?;
    if line.is_empty() {
        return Ok(None);
    }
    if line.len() > MAX_LINE_BYTES {
        return Err(CommandError::Usage(format!(
            "a line of stdin is longer than {MAX_LINE_BYTES} bytes"
        )));
    }
    let line = String::from_utf8_lossy(&line);
    let line = line.strip_suffix('\n').unwrap_or(&line);
    Ok(Some(line.strip_suffix('\r').unwrap_or(line).to_string()))
}
