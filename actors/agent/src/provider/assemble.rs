//! Building a whole response out of streamed pieces, for the HTTP providers.
//!
//! Both wire formats stream text deltas and tool calls whose JSON arguments arrive in
//! fragments keyed by a number (OpenAI's `index`, Anthropic's content-block `index`).
//! [`Assembly`] forwards each piece to the caller's sink as it comes and, at the end,
//! parses the arguments, maps tool names back and prices the usage.

use std::collections::HashMap;

use neuroflow_kit::protocol::agent::{ToolCall, Usage};
use serde_json::Value;

use super::error::ProviderError;
use super::pricing::{Pricing, estimate_request_tokens, estimate_tokens};
use super::wire_names::WireNames;
use super::{ChunkSink, LlmChunk, LlmRequest, LlmResponse, StopReason};

struct PartialCall {
    id: String,
    name: String,
    args: String,
}

pub(crate) struct Assembly<'s, 'c> {
    sink: &'s mut ChunkSink<'c>,
    text: String,
    calls: Vec<PartialCall>,
    /// Wire key → position in `calls`.
    keys: HashMap<u64, usize>,
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    stop: Option<StopReason>,
}

impl<'s, 'c> Assembly<'s, 'c> {
    pub fn new(sink: &'s mut ChunkSink<'c>) -> Self {
        Self {
            sink,
            text: String::new(),
            calls: Vec::new(),
            keys: HashMap::new(),
            input_tokens: None,
            output_tokens: None,
            stop: None,
        }
    }

    pub fn text(&mut self, delta: &str) {
        if !delta.is_empty() {
            self.text.push_str(delta);
            (self.sink)(LlmChunk::TextDelta(delta.to_string()));
        }
    }

    pub fn has_call(&self, key: u64) -> bool {
        self.keys.contains_key(&key)
    }

    pub fn call_count(&self) -> usize {
        self.calls.len()
    }

    /// A tool call begins. `name` is the wire name; the caller sees the local one.
    pub fn start_call(
        &mut self,
        key: u64,
        id: String,
        name: String,
        names: &WireNames,
    ) -> Result<(), ProviderError> {
        if self.has_call(key) {
            return Err(ProviderError::malformed(format!(
                "tool call {key} started twice"
            )));
        }
        if name.is_empty() {
            return Err(ProviderError::malformed(format!(
                "tool call {key} has no function name"
            )));
        }
        let index = self.calls.len();
        self.keys.insert(key, index);
        let name = names.local(&name);
        (self.sink)(LlmChunk::ToolCallStart {
            index,
            id: id.clone(),
            name: name.clone(),
        });
        self.calls.push(PartialCall {
            id,
            name,
            args: String::new(),
        });
        Ok(())
    }

    pub fn args(&mut self, key: u64, delta: &str) -> Result<(), ProviderError> {
        let Some(&index) = self.keys.get(&key) else {
            return Err(ProviderError::malformed(format!(
                "arguments for tool call {key}, which never started"
            )));
        };
        if !delta.is_empty() {
            self.calls[index].args.push_str(delta);
            (self.sink)(LlmChunk::ToolCallArgsDelta {
                index,
                delta: delta.to_string(),
            });
        }
        Ok(())
    }

    /// Records token counts; a count the server leaves out keeps its earlier value.
    pub fn usage(&mut self, input: Option<u64>, output: Option<u64>) {
        self.input_tokens = input.or(self.input_tokens);
        self.output_tokens = output.or(self.output_tokens);
    }

    pub fn stop(&mut self, reason: StopReason) {
        self.stop = Some(reason);
    }

    pub fn stopped(&self) -> bool {
        self.stop.is_some()
    }

    /// The whole response. Arguments that are not JSON are [`ProviderError::Malformed`]
    /// naming the call; a missing count is estimated (and flagged as such).
    pub fn finish(self, req: &LlmRequest, pricing: &Pricing) -> Result<LlmResponse, ProviderError> {
        let mut tool_calls = Vec::with_capacity(self.calls.len());
        for (i, call) in self.calls.into_iter().enumerate() {
            let arguments = if call.args.trim().is_empty() {
                // A call without parameters streams no argument text at all.
                Value::Object(Default::default())
            } else {
                serde_json::from_str(&call.args).map_err(|e| {
                    ProviderError::malformed(format!(
                        "arguments of tool call {i} ({}) are not JSON: {e}",
                        call.name
                    ))
                })?
            };
            tool_calls.push(ToolCall {
                id: call.id,
                name: call.name,
                arguments,
            });
        }
        let mut stop_reason = self.stop.unwrap_or(StopReason::EndTurn);
        // Some servers (Ollama among them) say "stop" although the answer is tool calls.
        if !tool_calls.is_empty() && stop_reason == StopReason::EndTurn {
            stop_reason = StopReason::ToolUse;
        }
        let usage_estimated = self.input_tokens.is_none() || self.output_tokens.is_none();
        let output_estimate = || {
            let args: u64 = tool_calls
                .iter()
                .map(|c| estimate_tokens(&c.name) + estimate_tokens(&c.arguments.to_string()))
                .sum();
            estimate_tokens(&self.text) + args
        };
        let usage = pricing.priced(
            &req.model,
            Usage {
                input_tokens: self
                    .input_tokens
                    .unwrap_or_else(|| estimate_request_tokens(req)),
                output_tokens: self.output_tokens.unwrap_or_else(output_estimate),
                cost_usd: 0.0,
            },
        );
        super::record_usage(&usage);
        (self.sink)(LlmChunk::Usage(usage));
        Ok(LlmResponse {
            text: self.text,
            tool_calls,
            usage,
            usage_estimated,
            stop_reason,
        })
    }
}
