//! The Anthropic Messages API (`POST {base_url}/v1/messages`, streamed).

mod stream;

use std::collections::BTreeMap;
use std::sync::Arc;

use neuroflow_kit::protocol::agent::{ChatMessage, Role};
use neuroflow_kit::recipient::BoxFuture;
use reqwest::header::{ACCEPT, HeaderMap, HeaderValue};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::provider::assemble::Assembly;
use crate::provider::config::{ApiKey, add_headers, parse_base_url};
use crate::provider::error::ProviderError;
use crate::provider::http::{HttpClient, HttpOptions};
use crate::provider::pricing::Pricing;
use crate::provider::wire_names::WireNames;
use crate::provider::{ChunkSink, LlmProvider, LlmRequest, LlmResponse, chat_span};

/// Where and how to reach the Messages API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnthropicConfig {
    /// Without the `/v1` path, e.g. `https://api.anthropic.com`.
    pub base_url: String,
    /// Sent as `x-api-key`.
    pub api_key: Option<ApiKey>,
    /// The `anthropic-version` header.
    pub version: String,
    /// `max_tokens` when the request names none (the API requires one).
    pub default_max_tokens: u32,
    pub extra_headers: BTreeMap<String, String>,
    pub http: HttpOptions,
}

impl Default for AnthropicConfig {
    fn default() -> Self {
        Self {
            base_url: "https://api.anthropic.com".into(),
            api_key: None,
            version: "2023-06-01".into(),
            default_max_tokens: 4096,
            extra_headers: BTreeMap::new(),
            http: HttpOptions::default(),
        }
    }
}

pub struct AnthropicProvider {
    http: HttpClient,
    url: String,
    default_max_tokens: u32,
    pricing: Arc<Pricing>,
}

impl AnthropicProvider {
    pub fn new(config: AnthropicConfig, pricing: Arc<Pricing>) -> Result<Self, ProviderError> {
        let base = parse_base_url(&config.base_url)?;
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static("text/event-stream"));
        let version = HeaderValue::try_from(config.version.as_str())
            .map_err(|_| ProviderError::Config(format!("invalid version {:?}", config.version)))?;
        headers.insert("anthropic-version", version);
        if let Some(key) = &config.api_key {
            headers.insert("x-api-key", key.header_value("")?);
        }
        add_headers(&mut headers, &config.extra_headers)?;
        Ok(Self {
            http: HttpClient::new(config.http, headers)?,
            url: format!("{base}/v1/messages"),
            default_max_tokens: config.default_max_tokens,
            pricing,
        })
    }
}

impl LlmProvider for AnthropicProvider {
    fn name(&self) -> &str {
        "anthropic"
    }

    fn description(&self) -> String {
        format!("Anthropic Messages API at {}", self.url)
    }

    fn complete<'a>(
        &'a self,
        req: &'a LlmRequest,
        on_chunk: &'a mut ChunkSink<'_>,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<LlmResponse, ProviderError>> {
        let span = chat_span("anthropic", &req.model);
        let call = async move {
            let names = WireNames::new(&req.tools);
            let body = request_body(req, &names, self.default_max_tokens);
            let resp = self.http.post(&self.url, &body).await?;
            let mut asm = Assembly::new(on_chunk);
            let done = self
                .http
                .read_events(resp, |ev| stream::on_event(&mut asm, &names, ev))
                .await?;
            // After message_delta's stop_reason only message_stop is still to come.
            if !done && !asm.stopped() {
                return Err(ProviderError::Truncated {
                    what: "the stream ended before message_delta or message_stop".into(),
                });
            }
            asm.finish(req, &self.pricing)
        };
        Box::pin(span.run(self.http.guard(cancel, call)))
    }
}

/// The JSON body of a streamed Messages request.
pub(crate) fn request_body(req: &LlmRequest, names: &WireNames, default_max: u32) -> Value {
    let system: Vec<&str> = req
        .messages
        .iter()
        .filter(|m| m.role == Role::System)
        .map(|m| m.content.as_str())
        .collect();
    let mut body = json!({
        "model": req.model,
        "max_tokens": req.max_tokens.unwrap_or(default_max),
        "messages": messages(&req.messages, names),
        "stream": true,
    });
    if !system.is_empty() {
        body["system"] = system.join("\n\n").into();
    }
    if !req.tools.is_empty() {
        let tools: Vec<Value> = req
            .tools
            .iter()
            .map(|t| {
                json!({
                    "name": names.wire(&t.name),
                    "description": t.description,
                    "input_schema": t.parameters,
                })
            })
            .collect();
        body["tools"] = tools.into();
    }
    if let Some(t) = req.temperature {
        body["temperature"] = t.into();
    }
    body
}

/// Maps the conversation onto alternating user/assistant messages of content blocks:
/// tool results become `tool_result` blocks of a user message, tool calls `tool_use`
/// blocks of the assistant's, and consecutive messages of one side merge into one.
fn messages(conversation: &[ChatMessage], names: &WireNames) -> Vec<Value> {
    let mut out: Vec<(&str, Vec<Value>)> = Vec::new();
    for m in conversation {
        let (role, mut blocks) = match m.role {
            Role::System => continue,
            Role::User => ("user", text_block(&m.content)),
            Role::Tool => {
                let mut block = json!({
                    "type": "tool_result",
                    "tool_use_id": m.tool_call_id,
                    "content": m.content,
                });
                if m.is_error {
                    block["is_error"] = true.into();
                }
                ("user", vec![block])
            }
            Role::Assistant => {
                let mut blocks = text_block(&m.content);
                blocks.extend(m.tool_calls.iter().map(|c| {
                    // `input` must be an object; a model that produced another value
                    // for a call without parameters sent nothing usable.
                    let input = match &c.arguments {
                        Value::Object(_) => c.arguments.clone(),
                        _ => json!({}),
                    };
                    json!({"type": "tool_use", "id": c.id, "name": names.wire(&c.name), "input": input})
                }));
                ("assistant", blocks)
            }
        };
        match out.last_mut() {
            Some((last, prev)) if *last == role => prev.append(&mut blocks),
            _ if blocks.is_empty() => {}
            _ => out.push((role, blocks)),
        }
    }
    out.into_iter()
        .map(|(role, content)| json!({"role": role, "content": content}))
        .collect()
}

/// The API refuses empty text blocks, so empty text is no block at all.
fn text_block(text: &str) -> Vec<Value> {
    if text.is_empty() {
        Vec::new()
    } else {
        vec![json!({"type": "text", "text": text})]
    }
}
