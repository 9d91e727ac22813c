//! Protocol of the agents: conversations with an LLM that calls tools.
//!
//! The types here are what a conversation is made of (messages, tool calls, usage) and
//! what a running turn tells its subscribers ([`AgentEvent`]); the store, the HTTP API and
//! the console use the same ones.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Who said a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
    /// A tool's result, answering the assistant's tool call `tool_call_id`.
    Tool,
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: Role,
    /// Text (empty for an assistant message that only calls tools).
    pub content: String,
    /// Tool calls the assistant asked for in this message.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// For a `Tool` message: the call it answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    /// For a `Tool` message: whether the tool failed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub is_error: bool,
}

impl ChatMessage {
    pub fn system(content: impl Into<String>) -> Self {
        Self::text(Role::System, content)
    }

    pub fn user(content: impl Into<String>) -> Self {
        Self::text(Role::User, content)
    }

    pub fn assistant(content: impl Into<String>) -> Self {
        Self::text(Role::Assistant, content)
    }

    pub fn tool_result(
        call_id: impl Into<String>,
        content: impl Into<String>,
        is_error: bool,
    ) -> Self {
        Self {
            role: Role::Tool,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: Some(call_id.into()),
            is_error,
        }
    }

    fn text(role: Role, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: None,
            is_error: false,
        }
    }
}

/// A tool call the model asked for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The provider's id for the call (tool results refer to it).
    pub id: String,
    pub name: String,
    /// The arguments object (parsed from the model's JSON text).
    pub arguments: Value,
}

/// Tokens (and their cost) of one LLM call, or summed over many.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// In US dollars, from the node's price table (0 when the model has no price).
    pub cost_usd: f64,
}

impl Usage {
    pub fn add(&mut self, other: &Usage) {
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.cost_usd += other.cost_usd;
    }

    pub fn total_tokens(&self) -> u64 {
        self.input_tokens + self.output_tokens
    }
}

/// An event of one turn, as an agent's subscribers receive it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TurnEvent {
    /// The agent whose turn it is.
    pub agent: String,
    /// The conversation the turn belongs to.
    pub conversation: String,
    /// The `turn_id` of the [`AgentMsg::Chat`] that started the turn.
    pub turn_id: Option<String>,
    pub event: AgentEvent,
}

/// What a running turn tells its subscribers, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AgentEvent {
    /// A piece of the assistant's answer text.
    TextDelta { text: String },
    /// A tool call is starting.
    ToolCallStart {
        id: String,
        name: String,
        arguments: Value,
    },
    /// A tool call ended (its result, or its error, as the model will see it).
    ToolCallEnd {
        id: String,
        name: String,
        content: String,
        is_error: bool,
        duration_ms: u64,
    },
    /// Tokens of one LLM call of the turn.
    Usage { usage: Usage },
    /// The turn's final answer.
    Final { text: String, usage: Usage },
    /// The turn failed (provider error, budget, cancellation, max steps).
    Error { message: String },
}

/// Requests to an agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AgentMsg {
    /// Run one turn: the user says `message`; the reply comes when the turn ends, and its
    /// events go to the agent's subscribers as it runs, marked with `turn_id` (chosen by
    /// the caller, so that it can pick its own turn's events out of the agent's stream).
    Chat {
        message: String,
        #[serde(default)]
        turn_id: Option<String>,
        /// The conversation to continue: the agent's current one when `None`; an id the
        /// agent has not seen starts a conversation of that id. The one named becomes the
        /// agent's current conversation.
        #[serde(default)]
        conversation: Option<String>,
    },
    /// The conversation so far.
    History,
    /// What the agent has spent so far.
    Spent,
}

/// Replies of an agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AgentReply {
    /// A turn ended with an answer.
    Answer {
        text: String,
        usage: Usage,
        steps: u32,
    },
    /// A turn ended without one (provider error, budget, max steps, cancelled).
    TurnFailed {
        message: String,
    },
    History(Vec<ChatMessage>),
    Spent(Usage),
}

/// What an agent is: its model, its instructions, what it may use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentSpec {
    /// Unique on its node; also its name as a tool for other agents.
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub system_prompt: String,
    /// A provider configured on the node (`scripted` is always there).
    #[serde(default = "default_provider")]
    pub provider: String,
    #[serde(default)]
    pub model: String,
    /// Tool names or patterns (`fs.*`) the agent may call.
    #[serde(default)]
    pub tools: Vec<String>,
    /// Sandbox profile for code tools (`sandbox.exec`).
    #[serde(default = "default_sandbox_profile")]
    pub sandbox_profile: String,
    /// LLM calls a turn may make before it ends with an error.
    #[serde(default = "default_max_steps")]
    pub max_steps: u32,
    #[serde(default)]
    pub budget: Budget,
    /// MCP resources read when the agent is spawned and given to it as context, after its
    /// system prompt.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub context: Vec<ContextResource>,
}

/// A resource of one of the node's MCP servers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContextResource {
    pub server: String,
    pub uri: String,
}

fn default_provider() -> String {
    "scripted".into()
}

fn default_sandbox_profile() -> String {
    "standard".into()
}

fn default_max_steps() -> u32 {
    8
}

/// Limits on what an agent may spend; checked before every LLM call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    pub max_tokens: Option<u64>,
    pub max_cost_usd: Option<f64>,
}

impl Budget {
    /// Why `spent` leaves nothing for another call, if it does.
    pub fn exhausted_by(&self, spent: &Usage) -> Option<String> {
        if let Some(max) = self.max_tokens
            && spent.total_tokens() >= max
        {
            return Some(format!(
                "token budget exhausted: {} of {max} tokens used",
                spent.total_tokens()
            ));
        }
        if let Some(max) = self.max_cost_usd
            && spent.cost_usd >= max
        {
            return Some(format!(
                "cost budget exhausted: ${:.4} of ${max:.4} spent",
                spent.cost_usd
            ));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spec_needs_only_a_name() {
        let spec: AgentSpec = serde_json::from_str(r#"{"name": "helper"}"#).unwrap();
        assert_eq!(spec.provider, "scripted");
        assert_eq!(spec.sandbox_profile, "standard");
        assert_eq!(spec.max_steps, 8);
        assert_eq!(spec.budget, Budget::default());
        let err = serde_json::from_str::<AgentSpec>(r#"{"name": "x", "tool": []}"#).unwrap_err();
        assert!(err.to_string().contains("tool"), "{err}");
    }

    #[test]
    fn budgets_say_which_limit_ran_out() {
        let spent = Usage {
            input_tokens: 600,
            output_tokens: 400,
            cost_usd: 0.02,
        };
        let tokens = Budget {
            max_tokens: Some(1000),
            max_cost_usd: None,
        };
        assert!(
            tokens
                .exhausted_by(&spent)
                .unwrap()
                .contains("1000 of 1000 tokens")
        );
        let cost = Budget {
            max_tokens: None,
            max_cost_usd: Some(0.05),
        };
        assert_eq!(cost.exhausted_by(&spent), None);
        assert!(Budget::default().exhausted_by(&spent).is_none());
    }

    #[test]
    fn events_are_tagged_for_the_wire() {
        let event = AgentEvent::TextDelta { text: "hi".into() };
        assert_eq!(
            serde_json::to_value(&event).unwrap(),
            serde_json::json!({"type": "text_delta", "text": "hi"})
        );
        let call = AgentEvent::ToolCallStart {
            id: "call_1".into(),
            name: "fs.read".into(),
            arguments: serde_json::json!({"path": "notes.txt", "max": 10, "deep": {"a": [1, null]}}),
        };
        for event in [event, call] {
            let frame = crate::codec::encode_frame(&event, &Default::default()).unwrap();
            let back: AgentEvent = crate::codec::decode_frame(&frame, &Default::default()).unwrap();
            assert_eq!(back, event);
        }
    }
}
