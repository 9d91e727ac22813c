//! `neuroflow-node agent chat`: turns of an agent of a running node, streamed to the
//! terminal as the node runs them, shown as `agent run` shows its own turns: the answer
//! on stdout, tool calls on stderr.

use std::io::{BufRead, IsTerminal, Read, Write};

use clap::Args;
use neuroflow_kit::protocol::agent::AgentEvent;
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::cli::client::{ApiClient, ClientError, is_json};
use crate::cli::remote::{self, CommandError, NodeArgs};
use crate::cli::sse::{SseEvent, SseParser};

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
            None => parser.finish(),
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

/// The first event of a streamed turn.
#[derive(Deserialize)]
struct TurnStart {
    conversation: String,
}

enum Step {
    Going,
    Answered,
    Failed(String),
}

/// What has been shown of one turn.
#[derive(Default)]
struct TurnView {
    conversation: Option<String>,
    /// Some answer text has been shown, so `final` need not show it.
    text_shown: bool,
}

impl TurnView {
    /// Shows one event of the stream; an event it does not know is skipped, so that a
    /// newer node can add some. Output that cannot be written (a closed pipe) must not
    /// end the turn early, so write errors are dropped.
    fn show(
        &mut self,
        event: &SseEvent,
        out: &mut impl Write,
        err: &mut impl Write,
    ) -> Result<Step, String> {
        if event.name == "turn" {
            let start: TurnStart =
                serde_json::from_str(&event.data).map_err(|e| format!("its `turn` event: {e}"))?;
            self.conversation = Some(start.conversation);
            return Ok(Step::Going);
        }
        const AGENT_EVENTS: [&str; 6] = [
            "text_delta",
            "tool_call_start",
            "tool_call_end",
            "usage",
            "final",
            "error",
        ];
        if !AGENT_EVENTS.contains(&event.name.as_str()) {
            return Ok(Step::Going);
        }
        let agent_event = agent_event(event)?;
        match &agent_event {
            AgentEvent::TextDelta { .. } => self.text_shown = true,
            AgentEvent::Final { text, .. } if !self.text_shown => {
                // A provider that does not stream gives the answer only here.
                let _ = write!(out, "{text}");
            }
            _ => {}
        }
        let _ = super::show_event(&agent_event, out, err);
        Ok(match agent_event {
            AgentEvent::Final { usage, .. } => {
                let _ = writeln!(
                    err,
                    "[{} tokens in, {} out, ${:.4}]",
                    usage.input_tokens, usage.output_tokens, usage.cost_usd
                );
                Step::Answered
            }
            AgentEvent::Error { message } => Step::Failed(message),
            _ => Step::Going,
        })
    }
}

/// An agent event from its SSE event: the data is the event, tagged with its `type`; the
/// event's name stands in for a missing tag.
fn agent_event(event: &SseEvent) -> Result<AgentEvent, String> {
    let mut data: Value = serde_json::from_str(&event.data)
        .map_err(|e| format!("its `{}` event: {e}", event.name))?;
    if let Value::Object(fields) = &mut data {
        fields
            .entry("type")
            .or_insert_with(|| Value::from(event.name.clone()));
    }
    serde_json::from_value(data).map_err(|e| format!("its `{}` event: {e}", event.name))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn event(name: &str, data: &str) -> SseEvent {
        SseEvent {
            name: name.into(),
            data: data.into(),
        }
    }

    /// Shows `events` in order: stdout, stderr, and the last step.
    fn show_all(events: &[SseEvent]) -> (String, String, Result<Step, String>, TurnView) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let mut view = TurnView::default();
        let mut last = Ok(Step::Going);
        for e in events {
            last = view.show(e, &mut out, &mut err);
            if last.is_err() {
                break;
            }
        }
        let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
        (text(out), text(err), last, view)
    }

    #[test]
    fn a_streamed_turn_shows_answer_tools_and_usage() {
        let (out, err, last, view) = show_all(&[
            event("turn", r#"{"conversation":"c-1","turn_id":"t-1"}"#),
            event(
                "tool_call_start",
                r#"{"type":"tool_call_start","id":"1","name":"time.now","arguments":{}}"#,
            ),
            event(
                "tool_call_end",
                r#"{"id":"1","name":"time.now","content":"12:00\nmore","is_error":false,"duration_ms":3}"#,
            ),
            event("ping", "{}"),
            event("text_delta", r#"{"type":"text_delta","text":"The time "}"#),
            event("text_delta", r#"{"type":"text_delta","text":"is 12:00."}"#),
            event(
                "final",
                r#"{"type":"final","text":"The time is 12:00.","usage":{"input_tokens":5,"output_tokens":2,"cost_usd":0.0}}"#,
            ),
        ]);
        assert!(matches!(last, Ok(Step::Answered)));
        assert_eq!(view.conversation.as_deref(), Some("c-1"));
        assert_eq!(out, "The time is 12:00.\n");
        assert_eq!(
            err,
            "[tool time.now {}]\n[tool time.now done in 3 ms: 12:00]\n[5 tokens in, 2 out, $0.0000]\n"
        );
    }

    #[test]
    fn a_final_without_deltas_still_shows_the_answer() {
        let usage = r#"{"input_tokens":1,"output_tokens":1,"cost_usd":0.0}"#;
        let (out, _, last, _) = show_all(&[event(
            "final",
            &format!(r#"{{"text":"whole","usage":{usage}}}"#),
        )]);
        assert!(matches!(last, Ok(Step::Answered)));
        assert_eq!(out, "whole\n");
    }

    #[test]
    fn an_error_event_fails_the_turn() {
        let (_, _, last, _) = show_all(&[event("error", r#"{"message":"budget exhausted"}"#)]);
        assert!(matches!(last, Ok(Step::Failed(m)) if m == "budget exhausted"));
    }

    #[test]
    fn malformed_events_are_errors_not_panics() {
        for bad in [
            event("turn", "{}"),
            event("text_delta", "not json"),
            event("final", r#"{"text": 5}"#),
            event("tool_call_end", r#"[1, 2]"#),
        ] {
            let (_, _, last, _) = show_all(std::slice::from_ref(&bad));
            assert!(last.is_err(), "{bad:?}");
        }
    }
}
