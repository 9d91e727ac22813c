//! One turn: user message → model → tool calls (in parallel) → results → model … until a
//! final answer, the step limit, the budget, an error, or cancellation.

use std::time::Instant;

use neuroflow_kit::protocol::agent::{AgentEvent, AgentReply, ChatMessage, ToolCall, Usage};
use neuroflow_kit::protocol::router::{
    RouterMsg, RouterReply, ToolCallRequest, ToolOutput, ToolSpec,
};
use tokio::task::JoinSet;

use super::{AgentDeps, AgentState};
use crate::provider::{CancellationToken, LlmChunk, LlmRequest};

pub(super) async fn run(
    state: &AgentState,
    deps: &AgentDeps,
    message: String,
    turn_id: Option<String>,
) -> AgentReply {
    let cancel = CancellationToken::new();
    state.memory().running = Some(cancel.clone());
    let turn = Turn {
        state,
        id: &turn_id,
    };
    let result = run_turn(turn, deps, message, &cancel).await;
    state.memory().running = None;
    match result {
        Ok((text, usage, steps)) => {
            state.emit(
                &turn_id,
                AgentEvent::Final {
                    text: text.clone(),
                    usage,
                },
            );
            AgentReply::Answer { text, usage, steps }
        }
        Err(message) => {
            state.emit(
                &turn_id,
                AgentEvent::Error {
                    message: message.clone(),
                },
            );
            AgentReply::TurnFailed { message }
        }
    }
}

/// The turn being run: the agent's state, and the id its events carry.
#[derive(Clone, Copy)]
struct Turn<'a> {
    state: &'a AgentState,
    id: &'a Option<String>,
}

impl Turn<'_> {
    fn emit(&self, event: AgentEvent) {
        self.state.emit(self.id, event);
    }
}

async fn run_turn(
    turn: Turn<'_>,
    deps: &AgentDeps,
    message: String,
    cancel: &CancellationToken,
) -> Result<(String, Usage, u32), String> {
    let state = turn.state;
    let spec = state.spec();
    let provider = deps
        .providers
        .get(&spec.provider)
        .ok_or_else(|| format!("no provider named {:?} on this node", spec.provider))?;
    let tools = allowed_tools(deps, &spec.tools).await?;
    state.memory().conversation.push(ChatMessage::user(message));
    let mut used = Usage::default();
    for step in 1..=spec.max_steps {
        if cancel.is_cancelled() {
            return Err("the turn was cancelled".into());
        }
        if let Some(why) = spec.budget.exhausted_by(&state.spent()) {
            return Err(why);
        }
        let mut messages = Vec::new();
        if !spec.system_prompt.is_empty() {
            messages.push(ChatMessage::system(spec.system_prompt.clone()));
        }
        messages.extend(state.conversation());
        let mut req = LlmRequest::new(spec.model.clone(), messages);
        req.tools = tools.clone();
        let mut on_chunk = |chunk: LlmChunk| {
            if let LlmChunk::TextDelta(text) = chunk {
                turn.emit(AgentEvent::TextDelta { text });
            }
        };
        let response = provider
            .complete(&req, &mut on_chunk, cancel)
            .await
            .map_err(|e| e.to_string())?;
        used.add(&response.usage);
        {
            let mut memory = state.memory();
            memory.spent.add(&response.usage);
            memory.conversation.push(response.to_message());
        }
        deps.node_spent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .add(&response.usage);
        turn.emit(AgentEvent::Usage {
            usage: response.usage,
        });
        if response.tool_calls.is_empty() {
            return Ok((response.text, used, step));
        }
        let results = call_tools(turn, deps, &tools, response.tool_calls, cancel).await?;
        state.memory().conversation.extend(results);
    }
    Err(format!(
        "the turn used its {} steps without a final answer",
        spec.max_steps
    ))
}

/// The tools the agent may use: those its patterns match on the router.
async fn allowed_tools(deps: &AgentDeps, patterns: &[String]) -> Result<Vec<ToolSpec>, String> {
    if patterns.is_empty() {
        return Ok(Vec::new());
    }
    let list = RouterMsg::List {
        patterns: patterns.to_vec(),
    };
    match deps.tools.call(list, deps.tool_timeout).await {
        Ok(RouterReply::Tools(tools)) => Ok(tools),
        Ok(other) => Err(format!("the tool router answered a list with {other:?}")),
        Err(e) => Err(format!("cannot list tools: {e}")),
    }
}

/// Runs the model's tool calls at once; returns their results in the order asked. A
/// failing tool is a result the model sees, never the end of the turn.
async fn call_tools(
    turn: Turn<'_>,
    deps: &AgentDeps,
    allowed: &[ToolSpec],
    calls: Vec<ToolCall>,
    cancel: &CancellationToken,
) -> Result<Vec<ChatMessage>, String> {
    let mut running = JoinSet::new();
    for (index, call) in calls.iter().cloned().enumerate() {
        turn.emit(AgentEvent::ToolCallStart {
            id: call.id.clone(),
            name: call.name.clone(),
            arguments: call.arguments.clone(),
        });
        let permitted = allowed.iter().any(|t| t.name == call.name);
        let (tools, timeout, caller) = (
            deps.tools.clone(),
            deps.tool_timeout,
            turn.state.spec().name.clone(),
        );
        running.spawn(async move {
            let began = Instant::now();
            let output = if permitted {
                let req = ToolCallRequest {
                    name: call.name.clone(),
                    arguments: call.arguments.clone(),
                    timeout_ms: u64::try_from(timeout.as_millis()).ok(),
                    caller: Some(caller),
                };
                match tools.call(RouterMsg::Call(req), timeout).await {
                    Ok(RouterReply::Result(Ok(output))) => output,
                    Ok(RouterReply::Result(Err(e))) => e.as_output(),
                    Ok(other) => ToolOutput::error(format!("unexpected router reply {other:?}")),
                    Err(e) => ToolOutput::error(format!("tool router unavailable: {e}")),
                }
            } else {
                ToolOutput::error(format!(
                    "tool {:?} is not available to this agent",
                    call.name
                ))
            };
            (index, call, output, began.elapsed())
        });
    }
    let mut results: Vec<Option<ChatMessage>> = vec![None; calls.len()];
    loop {
        let next = tokio::select! {
            next = running.join_next() => next,
            () = cancel.cancelled() => {
                running.abort_all();
                return Err("the turn was cancelled".into());
            }
        };
        let Some(joined) = next else { break };
        let Ok((index, call, output, took)) = joined else {
            continue; // a panicking call task: its slot is filled below
        };
        turn.emit(AgentEvent::ToolCallEnd {
            id: call.id.clone(),
            name: call.name.clone(),
            content: output.content.clone(),
            is_error: output.is_error,
            duration_ms: u64::try_from(took.as_millis()).unwrap_or(u64::MAX),
        });
        if let Some(slot) = results.get_mut(index) {
            *slot = Some(ChatMessage::tool_result(
                call.id,
                output.content,
                output.is_error,
            ));
        }
    }
    Ok(results
        .into_iter()
        .zip(calls)
        .map(|(result, call)| {
            result
                .unwrap_or_else(|| ChatMessage::tool_result(call.id, "the tool call failed", true))
        })
        .collect())
}
