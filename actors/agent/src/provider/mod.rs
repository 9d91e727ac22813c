//! LLM providers: one trait, streaming first, and three implementations.
//!
//! - [`OpenAiProvider`]: any OpenAI-compatible Chat Completions server (OpenAI, Ollama,
//!   vLLM, llama.cpp server, LM Studio, DeepSeek, Qwen, Moonshot, ...).
//! - [`AnthropicProvider`]: the Anthropic Messages API.
//! - [`ScriptedProvider`]: deterministic, offline, driven by a TOML rules file; the
//!   default when nothing else is configured.
//!
//! A call streams [`LlmChunk`]s to a callback as they arrive and then returns the whole
//! [`LlmResponse`] (text, tool calls with parsed arguments, usage with cost). Whatever a
//! server sends, a call ends in a value or a typed [`ProviderError`], never a panic: bad
//! JSON is `Malformed`, a stream that stops early is `Truncated`.
//!
//! Only the HTTP status before the first byte of a stream is retried (429, 5xx, failed
//! connects): once chunks have gone to the caller a retry would repeat them.

mod anthropic;
mod assemble;
mod config;
mod error;
mod http;
mod openai;
mod pricing;
mod retry;
mod rules;
mod scripted;
mod template;
mod wire_names;

use neuroflow_kit::protocol::agent::{ChatMessage, ToolCall, Usage};
use neuroflow_kit::protocol::router::ToolSpec;
use neuroflow_kit::recipient::BoxFuture;
use neuroflow_kit::sampling;
use neuroflow_kit::span_value::int;
use serde::{Deserialize, Serialize};

pub use anthropic::{AnthropicConfig, AnthropicProvider};
pub use config::{ApiKey, ProviderConfig, ScriptedConfig, build_provider};
pub use error::ProviderError;
pub use http::HttpOptions;
pub use openai::{OpenAiConfig, OpenAiProvider};
pub use pricing::estimate_tokens;
pub use pricing::{ModelPrice, Pricing, PricingError};
pub use retry::RetryPolicy;
pub use rules::{Rules, RulesError};
pub use scripted::{DEFAULT_RULES, ScriptedProvider};
/// Cancels a running call; cloning shares the token, `cancel()` ends the call promptly
/// with [`ProviderError::Cancelled`].
pub use tokio_util::sync::CancellationToken;

/// One call to a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlmRequest {
    pub model: String,
    /// The conversation, system prompt included (as `Role::System` messages).
    pub messages: Vec<ChatMessage>,
    /// Tools the model may call.
    pub tools: Vec<ToolSpec>,
    pub max_tokens: Option<u32>,
    pub temperature: Option<f32>,
}

impl LlmRequest {
    pub fn new(model: impl Into<String>, messages: Vec<ChatMessage>) -> Self {
        Self {
            model: model.into(),
            messages,
            tools: Vec::new(),
            max_tokens: None,
            temperature: None,
        }
    }
}

/// A piece of a response, as it streams in.
#[derive(Debug, Clone, PartialEq)]
pub enum LlmChunk {
    TextDelta(String),
    /// The model began the tool call number `index` (0-based, in order of the response).
    ToolCallStart {
        index: usize,
        id: String,
        name: String,
    },
    /// More of the JSON text of call `index`'s arguments.
    ToolCallArgsDelta {
        index: usize,
        delta: String,
    },
    /// The call's usage, cost included; sent once, at the end.
    Usage(Usage),
}

/// Why the model stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// A final answer.
    EndTurn,
    /// The model wants its tool calls run.
    ToolUse,
    /// The answer hit `max_tokens`.
    MaxTokens,
    /// A content filter cut the answer.
    ContentFilter,
    /// Anything else the server named.
    Other(String),
}

/// A whole response.
#[derive(Debug, Clone, PartialEq)]
pub struct LlmResponse {
    pub text: String,
    pub tool_calls: Vec<ToolCall>,
    /// Tokens and cost (from the [`Pricing`] table) of this call.
    pub usage: Usage,
    /// The server sent no token counts, so `usage` is an estimate ([`estimate_tokens`]).
    pub usage_estimated: bool,
    pub stop_reason: StopReason,
}

impl LlmResponse {
    /// The assistant message to append to the conversation.
    pub fn to_message(&self) -> ChatMessage {
        let mut msg = ChatMessage::assistant(self.text.clone());
        msg.tool_calls = self.tool_calls.clone();
        msg
    }
}

/// Where streamed chunks go.
pub type ChunkSink<'a> = dyn FnMut(LlmChunk) + Send + 'a;

/// A language model behind some API.
///
/// The trait is object-safe (`Arc<dyn LlmProvider>`): `complete` returns a boxed future.
/// Dropping that future, or cancelling `cancel`, ends the request promptly.
pub trait LlmProvider: Send + Sync {
    /// Short name: `openai`, `anthropic`, `scripted`.
    fn name(&self) -> &str;

    /// One line for people: what this provider is and where it talks to.
    fn description(&self) -> String;

    /// Runs one call, streaming its chunks to `on_chunk`.
    fn complete<'a>(
        &'a self,
        req: &'a LlmRequest,
        on_chunk: &'a mut ChunkSink<'_>,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<LlmResponse, ProviderError>>;
}

/// The span of one LLM call (when its trace is sampled), named and attributed after the
/// OpenTelemetry GenAI semantic conventions (a client span, `chat {model}`); usage is
/// recorded on it when the call ends, and `error.type` if it fails.
pub(crate) fn chat_span(provider: &str, model: &str) -> sampling::Traced {
    sampling::open(None, || {
        tracing::info_span!(
            "chat",
            otel.name = %format_args!("chat{}{model}", if model.is_empty() { "" } else { " " }),
            otel.kind = "client",
            gen_ai.operation.name = "chat",
            gen_ai.provider.name = provider,
            gen_ai.request.model = model,
            gen_ai.usage.input_tokens = tracing::field::Empty,
            gen_ai.usage.output_tokens = tracing::field::Empty,
            neuroflow.llm.cost_usd = tracing::field::Empty,
            error.type = tracing::field::Empty,
        )
    })
}

/// Records a call's tokens on the current [`chat_span`].
pub(crate) fn record_usage(usage: &Usage) {
    let span = tracing::Span::current();
    span.record("gen_ai.usage.input_tokens", int(usage.input_tokens));
    span.record("gen_ai.usage.output_tokens", int(usage.output_tokens));
    span.record("neuroflow.llm.cost_usd", usage.cost_usd);
}

/// The start of `s` (at most 200 bytes, cut at a character boundary), for error texts
/// that quote what a server sent.
pub(crate) fn clip(s: &str) -> &str {
    let mut end = s.len().min(200);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
