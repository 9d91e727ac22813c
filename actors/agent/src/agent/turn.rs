//! One turn: user message → model → tool calls (in parallel) → results → model … until a
//! final answer, the step limit, the budget, an error, or cancellation.

use std::time::Instant;

use neuroflow_kit::protocol::agent::{AgentEvent, AgentReply, ChatMessage, ToolCall, Usage};
use neuroflow_kit::protocol::router::{
    RouterMsg, RouterReply, ToolCallRequest, ToolOutput, ToolSpec,
};
use neuroflow_kit::span_value::int;
use neuroflow_kit::{propagation, sampling};
use tokio::task::JoinSet;

use super::{AgentDeps, AgentState, JournalEntry};
use crate::provider::{CancellationToken, LlmChunk, LlmRequest};

/// What a turn was asked to do.
pub(super) struct TurnRequest {
    pub message: String,
    pub turn_id: Option<String>,
    pub conversation: Option<String>,
}

pub(super) async fn run(state: &AgentState, deps: &AgentDeps, req: TurnRequest) -> AgentReply {
    let name = &state.spec().name;
    // GenAI conventions: the agent's turn is an `invoke_agent` span; its LLM calls and
    // tool executions are its children.
    let traced = sampling::open(None, || {
        tracing::info_span!(
            "agent.turn",
            otel.name = %format_args!("invoke_agent {name}"),
            gen_ai.operation.name = "invoke_agent",
            gen_ai.agent.name = name.as_str(),
            gen_ai.conversation.id = tracing::field::Empty,
            neuroflow.turn.steps = tracing::field::Empty,
            error.type = tracing::field::Empty,
        )
    });
    let span = traced.span().clone();
    let reply = traced.run(run_in(state, deps, req, &span)).await;
    match &reply {
        AgentReply::Answer { steps, .. } => {
            span.record("neuroflow.turn.steps", int(*steps));
        }
        _ => {
            span.record("error.type", "turn_failed");
        }
    }
    if let Some(metrics) = &deps.metrics {
        metrics.turn(matches!(reply, AgentReply::Answer { .. }));
    }
    reply
}

async fn run_in(
    state: &AgentState,
    deps: &AgentDeps,
    req: TurnRequest,
    span: &tracing::Span,
) -> AgentReply {
    let conversation = match switch_conversation(state, deps, req.conversation).await {
        Ok(id) => id,
        Err(message) => return AgentReply::TurnFailed { message },
    };
    span.record("gen_ai.conversation.id", conversation.as_str());
    let cancel = CancellationToken::new();
    state.memory().running = Some(cancel.clone());
    let turn = Turn {
        state,
        deps,
        id: &req.turn_id,
        conversation: &conversation,
    };
    let mut recorded = Vec::new();
    let mut result = run_turn(turn, req.message, &cancel, &mut recorded).await;
    if let Some(journal) = &deps.journal
        && !recorded.is_empty()
    {
        // The answer is given only once the turn is durable: a caller told "done" never
        // loses it to a crash.
        let name = &state.spec().name;
        if let Err(e) = journal.record(name, &conversation, recorded).await {
            result = Err(format!("the turn's messages could not be stored: {e}"));
        }
    }
    state.memory().running = None;
    match result {
        Ok((text, usage, steps)) => {
            turn.emit(AgentEvent::Final {
                text: text.clone(),
                usage,
            });
            AgentReply::Answer { text, usage, steps }
        }
        Err(message) => {
            turn.emit(AgentEvent::Error {
                message: message.clone(),
            });
            AgentReply::TurnFailed { message }
        }
    }
}

/// Makes `wanted` the current conversation (read back from the journal, or from the
/// parked ones); returns the id of the conversation the turn continues.
async fn switch_conversation(
    state: &AgentState,
    deps: &AgentDeps,
    wanted: Option<String>,
) -> Result<String, String> {
    let current = state.conversation_id();
    let Some(wanted) = wanted.filter(|id| *id != current) else {
        return Ok(current);
    };
    let messages = match &deps.journal {
        Some(journal) => journal
            .load(&state.spec().name, &wanted)
            .await
            .map_err(|e| format!("cannot read conversation {wanted}: {e}"))?
            .unwrap_or_default(),
        None => state.memory().parked.remove(&wanted).unwrap_or_default(),
    };
    let mut memory = state.memory();
    let previous = std::mem::replace(&mut memory.conversation, messages);
    let previous_id = std::mem::replace(&mut memory.conversation_id, wanted.clone());
    if deps.journal.is_none() {
        memory.parked.insert(previous_id, previous);
    }
    Ok(wanted)
}

/// The turn being run: the agent's state, the conversation, and the id its events carry.
#[derive(Clone, Copy)]
struct Turn<'a> {
    state: &'a AgentState,
    deps: &'a AgentDeps,
    id: &'a Option<String>,
    conversation: &'a str,
}

impl Turn<'_> {
    fn emit(&self, event: AgentEvent) {
        self.state
            .emit(self.deps.events.as_ref(), self.conversation, self.id, event);
    }

    /// Adds `message` to the conversation, and to what the journal will record.
    fn push(&self, recorded: &mut Vec<JournalEntry>, message: ChatMessage, usage: Option<Usage>) {
        if self.deps.journal.is_some() {
            recorded.push(JournalEntry {
                message: message.clone(),
                usage,
            });
        }
        self.state.memory().conversation.push(message);
    }
}

async fn run_turn(
    turn: Turn<'_>,
    message: String,
    cancel: &CancellationToken,
    recorded: &mut Vec<JournalEntry>,
) -> Result<(String, Usage, u32), String> {
    let (state, deps) = (turn.state, turn.deps);
    let spec = state.spec();
    let provider = deps
        .providers
        .get(&spec.provider)
        .ok_or_else(|| format!("no provider named {:?} on this node", spec.provider))?;
    let tools = allowed_tools(deps, &spec.tools).await?;
    turn.push(recorded, ChatMessage::user(message), None);
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
        let began = Instant::now();
        let response = provider.complete(&req, &mut on_chunk, cancel).await;
        if let Some(metrics) = &deps.metrics {
            let usage = response.as_ref().ok().map(|r| &r.usage);
            metrics.llm_call(
                &spec.provider,
                &spec.model,
                began.elapsed().as_secs_f64(),
                usage,
            );
        }
        let response = response.map_err(|e| e.to_string())?;
        used.add(&response.usage);
        state.memory().spent.add(&response.usage);
        turn.push(recorded, response.to_message(), Some(response.usage));
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
        for result in results {
            turn.push(recorded, result, None);
        }
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
        // The call's task continues the turn's span and scope, so that the router's
        // execute_tool span (and what it runs) joins the turn's trace, or knows that the
        // trace is not sampled.
        running.spawn(propagation::in_current_scope(async move {
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
        }));
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
