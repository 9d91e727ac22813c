//! The scripted provider: a deterministic stand-in for a model, for offline demos,
//! examples and tests, and the default when no LLM provider is configured.
//!
//! It keeps no state between calls: each call reads the conversation since the latest
//! user message, picks the first rule that matches that message (and whose tools the
//! request offers), counts the tool-calling steps already answered, and either asks
//! for the next step's calls or renders the reply. A restarted agent therefore carries
//! on exactly where it was.

use std::sync::Arc;
use std::time::Duration;

use neuroflow_kit::protocol::agent::{ChatMessage, Role, ToolCall, Usage};
use neuroflow_kit::recipient::BoxFuture;
use tokio_util::sync::CancellationToken;

use super::error::ProviderError;
use super::pricing::{Pricing, estimate_request_tokens, estimate_tokens};
use super::rules::{Matcher, Rule, Rules};
use super::template::{Template, Values};
use super::{ChunkSink, LlmChunk, LlmProvider, LlmRequest, LlmResponse, StopReason, chat_span};

/// The rules used when none are configured: greeting, time via `time.now`, echo.
pub const DEFAULT_RULES: &str = include_str!("../../scripted/default.toml");

/// How many pieces a reply streams in.
const PIECES: usize = 4;

const BUILT_IN_FALLBACK: &str = "I am NeuroFlow's built-in scripted provider (offline, \
    deterministic; no LLM provider is configured), and no rule of mine matches \"{input}\".";

pub struct ScriptedProvider {
    rules: Rules,
    fallback: Template,
    pricing: Arc<Pricing>,
}

impl ScriptedProvider {
    pub fn new(rules: Rules, pricing: Arc<Pricing>) -> Self {
        let fallback = rules.fallback.clone().unwrap_or_else(|| {
            let scope = super::template::Scope {
                groups: None,
                tools: &[],
            };
            Template::parse(BUILT_IN_FALLBACK, &scope).unwrap_or_else(|_| Template::literal(""))
        });
        Self {
            rules,
            fallback,
            pricing,
        }
    }

    /// The provider with [`DEFAULT_RULES`].
    pub fn default_rules(pricing: Arc<Pricing>) -> Self {
        // The default file ships inside the binary and a unit test parses it, so a
        // failure here is a build defect; even then the provider still answers.
        let rules = Rules::parse(DEFAULT_RULES, "built-in default").unwrap_or_else(|e| {
            tracing::error!(%e, "built-in scripted rules are invalid");
            Rules::empty("built-in default (invalid, so empty)")
        });
        Self::new(rules, pricing)
    }

    fn decide(&self, req: &LlmRequest) -> (String, Vec<ToolCall>) {
        let turn = Turn::read(&req.messages);
        let offered = |t: &String| req.tools.iter().any(|s| &s.name == t);
        for rule in &self.rules.rules {
            if !rule.tools.iter().all(offered) {
                continue;
            }
            let captures = match &rule.matcher {
                Matcher::Regex(re) => match re.captures(turn.input) {
                    Some(c) => Some(c),
                    None => continue,
                },
                Matcher::Contains(words) => {
                    let lower = turn.input.to_lowercase();
                    if !words.iter().any(|w| lower.contains(w.as_str())) {
                        continue;
                    }
                    None
                }
            };
            let values = Values {
                input: turn.input,
                captures: captures.as_ref(),
                steps: &turn.steps,
            };
            tracing::debug!(rule = %rule.name, "scripted rule matched");
            return respond(rule, &turn, &values);
        }
        let values = Values {
            input: turn.input,
            captures: None,
            steps: &[],
        };
        (self.fallback.render(&values), Vec::new())
    }
}

fn respond(rule: &Rule, turn: &Turn, values: &Values) -> (String, Vec<ToolCall>) {
    let done = turn.steps.len();
    match rule.steps.get(done) {
        Some(step) => {
            let calls = step
                .iter()
                .enumerate()
                .map(|(i, c)| ToolCall {
                    // Unique in the conversation: the user message's position, the
                    // step and the call.
                    id: format!("scripted_{}_{done}_{i}", turn.user_at),
                    name: c.tool.clone(),
                    arguments: c.args.render(values),
                })
                .collect();
            (String::new(), calls)
        }
        None => (rule.reply.render(values), Vec::new()),
    }
}

/// The conversation since the latest user message.
struct Turn<'a> {
    input: &'a str,
    user_at: usize,
    /// Results of each tool-calling step since then: (tool name, content).
    steps: Vec<Vec<(String, String)>>,
}

impl<'a> Turn<'a> {
    fn read(messages: &'a [ChatMessage]) -> Self {
        let user_at = messages.iter().rposition(|m| m.role == Role::User);
        let input = user_at.map_or("", |i| messages[i].content.as_str());
        let since = user_at.map_or(messages, |i| &messages[i + 1..]);
        let mut steps: Vec<Vec<(String, String)>> = Vec::new();
        let mut calls: &[ToolCall] = &[];
        for m in since {
            match m.role {
                Role::Assistant if !m.tool_calls.is_empty() => {
                    calls = &m.tool_calls;
                    steps.push(Vec::new());
                }
                Role::Tool => {
                    let id = m.tool_call_id.as_deref();
                    let name = calls.iter().find(|c| Some(c.id.as_str()) == id);
                    if let (Some(step), Some(call)) = (steps.last_mut(), name) {
                        step.push((call.name.clone(), m.content.clone()));
                    }
                }
                _ => {}
            }
        }
        Self {
            input,
            user_at: user_at.unwrap_or(0),
            steps,
        }
    }
}

/// Splits `text` into at most [`PIECES`] pieces at spaces, so it streams like a model.
fn pieces(text: &str) -> Vec<&str> {
    let words: Vec<&str> = text.split_inclusive(' ').collect();
    let per = words.len().div_ceil(PIECES).max(1);
    let mut out = Vec::new();
    let mut start = 0;
    for group in words.chunks(per) {
        let len: usize = group.iter().map(|w| w.len()).sum();
        out.push(&text[start..start + len]);
        start += len;
    }
    out
}

impl LlmProvider for ScriptedProvider {
    fn name(&self) -> &str {
        "scripted"
    }

    fn description(&self) -> String {
        format!(
            "scripted: NeuroFlow's built-in deterministic offline provider ({} rules from {}), \
             the default when no LLM provider is configured",
            self.rules.len(),
            self.rules.source()
        )
    }

    fn complete<'a>(
        &'a self,
        req: &'a LlmRequest,
        on_chunk: &'a mut ChunkSink<'_>,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<LlmResponse, ProviderError>> {
        let span = chat_span("scripted", &req.model);
        let call = async move {
            if cancel.is_cancelled() {
                return Err(ProviderError::Cancelled);
            }
            let (text, tool_calls) = self.decide(req);
            let delay = Duration::from_millis(self.rules.delta_delay_ms);
            for (i, piece) in pieces(&text).into_iter().enumerate() {
                if i > 0 && !delay.is_zero() {
                    tokio::select! {
                        () = cancel.cancelled() => return Err(ProviderError::Cancelled),
                        () = tokio::time::sleep(delay) => {}
                    }
                }
                on_chunk(LlmChunk::TextDelta(piece.to_string()));
            }
            let mut output = estimate_tokens(&text);
            for (index, c) in tool_calls.iter().enumerate() {
                let args = c.arguments.to_string();
                output += estimate_tokens(&c.name) + estimate_tokens(&args);
                on_chunk(LlmChunk::ToolCallStart {
                    index,
                    id: c.id.clone(),
                    name: c.name.clone(),
                });
                on_chunk(LlmChunk::ToolCallArgsDelta { index, delta: args });
            }
            let usage = Usage {
                input_tokens: estimate_request_tokens(req),
                output_tokens: output,
                cost_usd: 0.0,
            };
            let usage = self.pricing.priced(&req.model, usage);
            super::record_usage(&usage);
            on_chunk(LlmChunk::Usage(usage));
            let stop_reason = if tool_calls.is_empty() {
                StopReason::EndTurn
            } else {
                StopReason::ToolUse
            };
            Ok(LlmResponse {
                text,
                tool_calls,
                usage,
                usage_estimated: true,
                stop_reason,
            })
        };
        Box::pin(span.run(call))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_rejoin_to_the_text() {
        for text in ["", "one", "a b c d e f g h i", "  spaced   out  "] {
            let p = pieces(text);
            assert!(p.len() <= PIECES);
            assert_eq!(p.concat(), text);
        }
        assert_eq!(pieces("a b c d e f g h").len(), 4);
    }

    #[test]
    fn default_rules_parse() {
        let rules = Rules::parse(DEFAULT_RULES, "default").unwrap();
        assert!(rules.len() >= 3);
        assert!(DEFAULT_RULES.lines().next().unwrap().contains("scripted"));
    }
}
