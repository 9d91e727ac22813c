//! Reading the Chat Completions event stream: `data: {chunk}` events, then
//! `data: [DONE]`.

use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::provider::assemble::Assembly;
use crate::provider::error::ProviderError;
use crate::provider::wire_names::WireNames;
use crate::provider::{StopReason, clip};
use crate::sse::SseEvent;

#[derive(Deserialize)]
struct WireChunk {
    #[serde(default, deserialize_with = "null_as_default")]
    choices: Vec<WireChoice>,
    usage: Option<WireUsage>,
    error: Option<Value>,
}

#[derive(Deserialize)]
struct WireChoice {
    #[serde(default, deserialize_with = "null_as_default")]
    delta: WireDelta,
    finish_reason: Option<String>,
}

#[derive(Deserialize, Default)]
struct WireDelta {
    content: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    tool_calls: Vec<WireToolDelta>,
}

#[derive(Deserialize)]
struct WireToolDelta {
    index: Option<u64>,
    id: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    function: WireFunction,
}

#[derive(Deserialize, Default)]
struct WireFunction {
    name: Option<String>,
    arguments: Option<String>,
}

#[derive(Deserialize)]
struct WireUsage {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
}

/// vLLM and others send `null` where OpenAI sends an empty list or leaves a key out.
fn null_as_default<'de, D: Deserializer<'de>, T: Default + Deserialize<'de>>(
    d: D,
) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Handles one `data:` event; `Ok(true)` at `[DONE]`.
pub(super) fn on_event(
    asm: &mut Assembly,
    names: &WireNames,
    ev: SseEvent,
) -> Result<bool, ProviderError> {
    let data = ev.data.trim();
    if data == "[DONE]" {
        return Ok(true);
    }
    if data.is_empty() {
        return Ok(false);
    }
    let chunk: WireChunk = serde_json::from_str(data).map_err(|e| {
        ProviderError::malformed(format!("stream chunk is not valid: {e}: {}", clip(data)))
    })?;
    if let Some(err) = chunk.error {
        let kind = err["type"]
            .as_str()
            .or(err["code"].as_str())
            .unwrap_or("error");
        let message = err["message"]
            .as_str()
            .map_or_else(|| err.to_string(), String::from);
        return Err(ProviderError::Api {
            kind: kind.to_string(),
            message,
        });
    }
    if let Some(u) = chunk.usage {
        asm.usage(u.prompt_tokens, u.completion_tokens);
    }
    // One choice is asked for (no `n`), so only the first is read.
    if let Some(choice) = chunk.choices.into_iter().next() {
        if let Some(text) = choice.delta.content {
            asm.text(&text);
        }
        for tc in choice.delta.tool_calls {
            let key = match (tc.index, &tc.id) {
                (Some(i), _) => i,
                // Without an index, an id marks a new call and no id continues the last.
                (None, Some(_)) => asm.call_count() as u64,
                (None, None) => asm.call_count().saturating_sub(1) as u64,
            };
            if !asm.has_call(key) {
                let id = tc.id.filter(|id| !id.is_empty());
                let id = id.unwrap_or_else(|| format!("call_{key}"));
                asm.start_call(key, id, tc.function.name.unwrap_or_default(), names)?;
            }
            if let Some(args) = tc.function.arguments {
                asm.args(key, &args)?;
            }
        }
        if let Some(reason) = choice.finish_reason {
            asm.stop(match reason.as_str() {
                "stop" => StopReason::EndTurn,
                "tool_calls" | "function_call" => StopReason::ToolUse,
                "length" => StopReason::MaxTokens,
                "content_filter" => StopReason::ContentFilter,
                _ => StopReason::Other(reason),
            });
        }
    }
    Ok(false)
}
