//! A turn through the API: the answer as JSON, or its events as they happen (SSE); and
//! cancelling the running turn.

use std::convert::Infallible;
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use neuroflow_kit::actor::CallError;
use neuroflow_kit::propagation;
use neuroflow_kit::protocol::agent::{AgentEvent, AgentMsg, AgentReply, TurnEvent, Usage};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use warp::http::{StatusCode, header};
use warp::reply::Reply;
use warp::sse::Event;

use super::agents::find;
use super::users::{check_identifier, check_len};
use super::{Answer, ok};
use crate::api::ApiContext;
use crate::api::error::ApiError;
use crate::api::request::Request;

/// Longest message accepted, in characters.
const MAX_MESSAGE: usize = 100_000;
/// Longest conversation id accepted.
const MAX_CONVERSATION_ID: usize = 128;
/// Between SSE keep-alive comments, so that proxies keep a quiet turn's stream open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Body of `POST /api/v1/agents/{name}/messages`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Message {
    message: String,
    /// The conversation to continue; `"new"` starts one; the agent's current one if absent.
    conversation: Option<String>,
}

#[derive(Debug, Serialize)]
struct Answered {
    conversation: String,
    turn_id: String,
    text: String,
    usage: Usage,
    steps: u32,
}

/// `POST /api/v1/agents/{name}/messages`
pub async fn send(ctx: &ApiContext, mut req: Request) -> Answer {
    let name = req.param(0).to_string();
    let body: Message = req.json().await?;
    check_len("message", &body.message, 1, MAX_MESSAGE)?;
    let agent = find(ctx, &name)?;
    let conversation = match body.conversation.as_deref() {
        None => agent.state.conversation_id(),
        Some("new") => neuroflow_agent::agent::new_conversation_id(),
        Some(id) => {
            check_identifier("conversation", id, MAX_CONVERSATION_ID)?;
            // An id the agent has not used starts a conversation of that id; one of
            // another agent's is not this agent's to continue.
            if let Some(found) = ctx.agents()?.store().conversation(id).await?
                && found.agent != name
            {
                return Err(ApiError::conflict(format!(
                    "conversation {id:?} belongs to another agent"
                )));
            }
            id.to_string()
        }
    };
    let turn_id = uuid::Uuid::new_v4().to_string();
    let chat = AgentMsg::Chat {
        message: body.message,
        turn_id: Some(turn_id.clone()),
        conversation: Some(conversation.clone()),
    };
    let timeout = Duration::from_secs(ctx.config().api.turn_timeout_secs);
    let wants_events = req
        .headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"));
    if wants_events {
        // Subscribed before the turn is sent, so that none of its events is missed.
        let events = agent.state.subscribe();
        let handle = agent.handle.clone();
        // In the request's span and trace scope, so that the turn joins its trace.
        let reply = tokio::spawn(propagation::in_current_scope(async move {
            handle.call(chat, timeout).await
        }));
        let stream = turn_stream(conversation, turn_id, events, reply);
        let reply = warp::sse::reply(warp::sse::keep_alive().interval(KEEP_ALIVE).stream(stream));
        return Ok(reply.into_response());
    }
    match agent.handle.call(chat, timeout).await {
        Ok(AgentReply::Answer { text, usage, steps }) => ok(&Answered {
            conversation,
            turn_id,
            text,
            usage,
            steps,
        }),
        Ok(AgentReply::TurnFailed { message }) => Err(turn_failed(message)),
        Ok(other) => Err(ApiError::internal(format!(
            "the agent answered a turn with {other:?}"
        ))),
        Err(e) => Err(call_error(e)),
    }
}

/// The SSE events of one turn: `turn` first, then the agent's events for this turn, until
/// `final` or `error`.
fn turn_stream(
    conversation: String,
    turn_id: String,
    events: broadcast::Receiver<TurnEvent>,
    reply: JoinHandle<Result<AgentReply, CallError>>,
) -> impl Stream<Item = Result<Event, Infallible>> + Send + 'static {
    let first = Event::default()
        .event("turn")
        .data(serde_json::json!({"conversation": conversation, "turn_id": turn_id}).to_string());
    let state = Some((events, reply, turn_id));
    futures_util::stream::once(async move { Ok(first) }).chain(futures_util::stream::unfold(
        state,
        |state| async move {
            let (mut events, mut reply, turn_id) = state?;
            loop {
                tokio::select! {
                    // Events first: the turn emits them all before it replies, so while any
                    // is buffered the reply must not end the stream.
                    biased;
                    received = events.recv() => match received {
                        Ok(event) if event.turn_id.as_deref() == Some(turn_id.as_str()) => {
                            let last = matches!(event.event, AgentEvent::Final { .. } | AgentEvent::Error { .. });
                            let sse = sse_event(&event.event);
                            let next = (!last).then_some((events, reply, turn_id));
                            return Some((Ok(sse), next));
                        }
                        Ok(_) => {}
                        Err(broadcast::error::RecvError::Lagged(missed)) => {
                            let sse = Event::default().event("lagged").data(
                                serde_json::json!({"missed": missed}).to_string(),
                            );
                            return Some((Ok(sse), Some((events, reply, turn_id))));
                        }
                        Err(broadcast::error::RecvError::Closed) => return None,
                    },
                    // The turn ended without its last event reaching us (the actor died,
                    // the call timed out): say so rather than hang.
                    ended = &mut reply => {
                        let message = match ended {
                            Ok(Ok(AgentReply::TurnFailed { message })) => message,
                            // Answered, yet its `final` event never came through (the
                            // channel dropped it).
                            Ok(Ok(_)) => "the turn's events were lost".to_string(),
                            Ok(Err(e)) => e.to_string(),
                            Err(e) => format!("the turn's task ended abnormally: {e}"),
                        };
                        let error = AgentEvent::Error { message };
                        return Some((Ok(sse_event(&error)), None));
                    }
                }
            }
        },
    ))
}

fn sse_event(event: &AgentEvent) -> Event {
    let value = serde_json::to_value(event).unwrap_or_default();
    let kind = value["type"].as_str().unwrap_or("event").to_string();
    Event::default().event(kind).data(value.to_string())
}

/// `POST /api/v1/agents/{name}/cancel`
pub fn cancel(ctx: &ApiContext, name: &str) -> Answer {
    let agent = find(ctx, name)?;
    ok(&serde_json::json!({ "cancelled": agent.state.cancel() }))
}

fn turn_failed(message: String) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "turn_failed", message)
}

/// A failed call to an actor as an API error.
pub fn call_error(e: CallError) -> ApiError {
    match e {
        CallError::Timeout { .. } => {
            ApiError::new(StatusCode::GATEWAY_TIMEOUT, "timeout", e.to_string())
        }
        other => ApiError::unavailable(other.to_string()),
    }
}
