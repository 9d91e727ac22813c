//! OpenAI-compatible Chat Completions (`POST {base_url}/chat/completions`, streamed).
//!
//! The same wire format is spoken by OpenAI, Ollama (`http://localhost:11434/v1`),
//! vLLM, llama.cpp server, LM Studio, DeepSeek, Qwen (DashScope compatible mode),
//! Moonshot and others; only the base URL, key and extra headers differ.

mod stream;

use std::collections::BTreeMap;
use std::sync::Arc;

use neuroflow_kit::protocol::agent::{ChatMessage, Role};
use neuroflow_kit::recipient::BoxFuture;
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap, HeaderValue};
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

/// Where and how to reach an OpenAI-compatible server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OpenAiConfig {
    /// Up to and including the API version, e.g. `https://api.openai.com/v1`.
    pub base_url: String,
    /// Sent as `Authorization: Bearer …`; local servers usually need none.
    pub api_key: Option<ApiKey>,
    /// Added to every request (e.g. `OpenAI-Organization`, a gateway's routing header).
    pub extra_headers: BTreeMap<String, String>,
    pub http: HttpOptions,
}

impl Default for OpenAiConfig {
    fn default() -> Self {
        Self {
            base_url: "https://api.openai.com/v1".into(),
            api_key: None,
            extra_headers: BTreeMap::new(),
            http: HttpOptions::default(),
        }
    }
}

pub struct OpenAiProvider {
    http: HttpClient,
    url: String,
    pricing: Arc<Pricing>,
}

impl OpenAiProvider {
    pub fn new(config: OpenAiConfig, pricing: Arc<Pricing>) -> Result<Self, ProviderError> {
        let base = parse_base_url(&config.base_url)?;
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static("text/event-stream"));
        if let Some(key) = &config.api_key {
            headers.insert(AUTHORIZATION, key.header_value("Bearer ")?);
        }
        add_headers(&mut headers, &config.extra_headers)?;
        Ok(Self {
            http: HttpClient::new(config.http, headers)?,
            url: format!("{base}/chat/completions"),
            pricing,
        })
    }
}

impl LlmProvider for OpenAiProvider {
    fn name(&self) -> &str {
        "openai"
    }

    fn description(&self) -> String {
        format!("OpenAI-compatible Chat Completions at {}", self.url)
    }

    fn complete<'a>(
        &'a self,
        req: &'a LlmRequest,
        on_chunk: &'a mut ChunkSink<'_>,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<LlmResponse, ProviderError>> {
        let span = chat_span("openai", &req.model);
        let call = async move {
            let names = WireNames::new(&req.tools);
            let body = request_body(req, &names);
            let resp = self.http.post(&self.url, &body).await?;
            let mut asm = Assembly::new(on_chunk);
            let done = self
                .http
                .read_events(resp, |ev| stream::on_event(&mut asm, &names, ev))
                .await?;
            // A server that leaves out `[DONE]` after the finish reason lost nothing.
            if !done && !asm.stopped() {
                return Err(ProviderError::Truncated {
                    what: "the stream ended before a finish_reason or [DONE]".into(),
                });
            }
            asm.finish(req, &self.pricing)
        };
        Box::pin(span.run(self.http.guard(cancel, call)))
    }
}

/// The JSON body of a streamed chat completion.
pub(crate) fn request_body(req: &LlmRequest, names: &WireNames) -> Value {
    let messages: Vec<Value> = req.messages.iter().map(|m| message(m, names)).collect();
    let mut body = json!({
        "model": req.model,
        "messages": messages,
        "stream": true,
        "stream_options": {"include_usage": true},
    });
    // Some compatible servers refuse an empty `tools` array, so it is left out.
    if !req.tools.is_empty() {
        let tools: Vec<Value> = req
            .tools
            .iter()
            .map(|t| {
                json!({"type": "function", "function": {
                    "name": names.wire(&t.name),
                    "description": t.description,
                    "parameters": t.parameters,
                }})
            })
            .collect();
        body["tools"] = tools.into();
    }
    if let Some(n) = req.max_tokens {
        body["max_tokens"] = n.into();
    }
    if let Some(t) = req.temperature {
        body["temperature"] = t.into();
    }
    body
}

fn message(m: &ChatMessage, names: &WireNames) -> Value {
    match m.role {
        Role::System => json!({"role": "system", "content": m.content}),
        Role::User => json!({"role": "user", "content": m.content}),
        Role::Assistant if m.tool_calls.is_empty() => {
            json!({"role": "assistant", "content": m.content})
        }
        Role::Assistant => {
            let calls: Vec<Value> = m
                .tool_calls
                .iter()
                .map(|c| {
                    json!({"id": c.id, "type": "function", "function": {
                        "name": names.wire(&c.name),
                        // The API wants the arguments as JSON text, not an object.
                        "arguments": c.arguments.to_string(),
                    }})
                })
                .collect();
            let content = if m.content.is_empty() {
                Value::Null
            } else {
                m.content.clone().into()
            };
            json!({"role": "assistant", "content": content, "tool_calls": calls})
        }
        Role::Tool => {
            // The format has no error flag for tool results, so the text says it.
            let content = if m.is_error {
                format!("Error: {}", m.content)
            } else {
                m.content.clone()
            };
            json!({"role": "tool", "tool_call_id": m.tool_call_id, "content": content})
        }
    }
}
