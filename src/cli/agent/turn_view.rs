//! How `agent chat` shows the events of a streamed turn: as `agent run` shows its own,
//! plus the conversation the node names and the turn's usage.

use std::io::Write;

use neuroflow_kit::protocol::agent::AgentEvent;
use serde::Deserialize;
use serde_json::Value;

use neuroflow_agent::sse::SseEvent;

/// The first event of a streamed turn.
#[derive(Deserialize)]
struct TurnStart {
    conversation: String,
}

/// Where a turn stands after an event.
pub enum Step {
    Going,
    Answered,
    Failed(String),
}

/// What has been shown of one turn.
#[derive(Default)]
pub struct TurnView {
    pub conversation: Option<String>,
    /// Some answer text has been shown, so `final` need not show it.
    text_shown: bool,
}

impl TurnView {
    /// Shows one event of the stream; an event it does not know is skipped, so that a
    /// newer node can add some. Output that cannot be written (a closed pipe) must not
    /// end the turn early, so write errors are dropped.
    pub fn show(
        &mut self,
        event: &SseEvent,
        out: &mut impl Write,
        err: &mut impl Write,
    ) -> Result<Step, String> {
        if event.event == "turn" {
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
        if !AGENT_EVENTS.contains(&event.event.as_str()) {
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
        .map_err(|e| format!("its `{}` event: {e}", event.event))?;
    if let Value::Object(fields) = &mut data {
        fields
            .entry("type")
            .or_insert_with(|| Value::from(event.event.clone()));
    }
    serde_json::from_value(data).map_err(|e| format!("its `{}` event: {e}", event.event))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(name: &str, data: &str) -> SseEvent {
        SseEvent {
            event: name.into(),
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
