//! Every agent is also a tool, `agent.NAME`, that other agents can call.

use neuroflow_kit::protocol::agent::{AgentMsg, AgentReply};
use neuroflow_kit::protocol::router::ToolOutput;
use neuroflow_router::{spec, tool_fn};
use serde_json::json;

use super::{Agent, Agents, tool_name};

impl Agents {
    /// `agent.NAME`: asks the agent and returns its answer as the tool's result.
    pub(super) fn as_tool(&self, agent: &Agent) -> neuroflow_router::Tool {
        let spec_ = agent.state.spec();
        let description = if spec_.description.is_empty() {
            format!("Ask the agent {:?}.", spec_.name)
        } else {
            spec_.description.clone()
        };
        let (handle, name, timeout) = (
            agent.handle.clone(),
            spec_.name.clone(),
            self.inner.turn_timeout,
        );
        let mut tool_spec = spec(
            &tool_name(&name),
            &description,
            json!({
                "type": "object",
                "properties": {"message": {"type": "string", "description": "What to ask."}},
                "required": ["message"],
                "additionalProperties": false
            }),
        );
        tool_spec.provider = "agent".into();
        tool_fn(tool_spec, move |args, ctx| {
            let (handle, name) = (handle.clone(), name.clone());
            async move {
                // An agent asking itself would wait on its own busy mailbox.
                if ctx.caller.as_deref() == Some(name.as_str()) {
                    return ToolOutput::error("an agent cannot call itself");
                }
                let message = args["message"].as_str().unwrap_or_default().to_string();
                let chat = AgentMsg::Chat {
                    message,
                    turn_id: None,
                    conversation: None,
                };
                match handle.call(chat, timeout).await {
                    Ok(AgentReply::Answer { text, .. }) => ToolOutput::ok(text),
                    Ok(AgentReply::TurnFailed { message }) => ToolOutput::error(message),
                    Ok(other) => ToolOutput::error(format!("unexpected reply {other:?}")),
                    Err(e) => ToolOutput::error(e.to_string()),
                }
            }
        })
    }
}
