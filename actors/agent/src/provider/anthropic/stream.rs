//! Reading the Messages event stream: message_start, content blocks (text, tool_use)
//! and their deltas, message_delta, message_stop, ping and error events.

use serde::Deserialize;

use crate::provider::assemble::Assembly;
use crate::provider::error::ProviderError;
use crate::provider::wire_names::WireNames;
use crate::provider::{StopReason, clip};
use crate::sse::SseEvent;

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireEvent {
    MessageStart {
        message: WireMessage,
    },
    ContentBlockStart {
        index: u64,
        content_block: WireBlock,
    },
    ContentBlockDelta {
        index: u64,
        delta: WireDelta,
    },
    MessageDelta {
        #[serde(default)]
        delta: WireMessageDelta,
        usage: Option<WireUsage>,
    },
    MessageStop,
    Error {
        error: WireError,
    },
    /// `ping`, `content_block_stop` and event types added after this was written.
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
struct WireMessage {
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireBlock {
    Text {
        #[serde(default)]
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
    },
    /// Thinking and server-tool blocks carry nothing the conversation keeps.
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireDelta {
    TextDelta {
        text: String,
    },
    InputJsonDelta {
        partial_json: String,
    },
    #[serde(other)]
    Other,
}

#[derive(Deserialize, Default)]
struct WireMessageDelta {
    stop_reason: Option<String>,
}

#[derive(Deserialize)]
struct WireUsage {
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    cache_creation_input_tokens: Option<u64>,
    cache_read_input_tokens: Option<u64>,
}

impl WireUsage {
    /// Input tokens, cached ones included: they were all sent (the price table has one
    /// input price, so cache discounts are not modelled).
    fn input(&self) -> Option<u64> {
        let cached = self.cache_creation_input_tokens.unwrap_or(0)
            + self.cache_read_input_tokens.unwrap_or(0);
        self.input_tokens.map(|n| n + cached)
    }
}

#[derive(Deserialize)]
struct WireError {
    #[serde(rename = "type")]
    kind: String,
    message: String,
}

/// Handles one event; `Ok(true)` at `message_stop`.
pub(super) fn on_event(
    asm: &mut Assembly,
    names: &WireNames,
    ev: SseEvent,
) -> Result<bool, ProviderError> {
    let event: WireEvent = serde_json::from_str(&ev.data).map_err(|e| {
        ProviderError::malformed(format!(
            "{} event is not valid: {e}: {}",
            if ev.event.is_empty() {
                "stream"
            } else {
                &ev.event
            },
            clip(&ev.data)
        ))
    })?;
    match event {
        WireEvent::MessageStart { message } => {
            if let Some(u) = message.usage {
                asm.usage(u.input(), u.output_tokens);
            }
        }
        WireEvent::ContentBlockStart {
            index,
            content_block,
        } => match content_block {
            WireBlock::Text { text } => asm.text(&text),
            WireBlock::ToolUse { id, name } => asm.start_call(index, id, name, names)?,
            WireBlock::Other => {}
        },
        WireEvent::ContentBlockDelta { index, delta } => match delta {
            WireDelta::TextDelta { text } => asm.text(&text),
            WireDelta::InputJsonDelta { partial_json } => asm.args(index, &partial_json)?,
            WireDelta::Other => {}
        },
        WireEvent::MessageDelta { delta, usage } => {
            if let Some(u) = usage {
                // output_tokens here is the running total, not an increment.
                asm.usage(u.input(), u.output_tokens);
            }
            if let Some(reason) = delta.stop_reason {
                asm.stop(match reason.as_str() {
                    "end_turn" | "stop_sequence" => StopReason::EndTurn,
                    "tool_use" => StopReason::ToolUse,
                    "max_tokens" => StopReason::MaxTokens,
                    "refusal" => StopReason::ContentFilter,
                    _ => StopReason::Other(reason),
                });
            }
        }
        WireEvent::MessageStop => return Ok(true),
        WireEvent::Error { error } => {
            return Err(ProviderError::Api {
                kind: error.kind,
                message: error.message,
            });
        }
        WireEvent::Other => {}
    }
    Ok(false)
}
