//! `GET /api/v1/events`: every agent's events, live, over a WebSocket; what the console's
//! conversation debugger watches.

use futures_util::{SinkExt, StreamExt};
use neuroflow_kit::protocol::agent::TurnEvent;
use serde::Deserialize;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use warp::Filter;
use warp::http::HeaderMap;
use warp::reply::{Reply, Response};
use warp::ws::{Message, WebSocket, Ws};

use crate::api::ApiContext;
use crate::api::dispatch::{authenticate, raw_query};
use crate::api::error::ApiError;
use crate::api::request::Request;
use crate::api::routes::{Access, Op, ROUTES};

/// Largest frame a client may send (it only needs to close).
const MAX_CLIENT_FRAME: usize = 4096;
/// Route label of the WebSocket.
const LABEL: &str = "/api/v1/events";

/// `?agent=&conversation=` of the stream (the token may come as `access_token`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Filters {
    agent: Option<String>,
    conversation: Option<String>,
    #[allow(dead_code)]
    access_token: Option<String>,
}

impl Filters {
    fn keeps(&self, event: &TurnEvent) -> bool {
        self.agent.as_ref().is_none_or(|a| *a == event.agent)
            && self
                .conversation
                .as_ref()
                .is_none_or(|c| *c == event.conversation)
    }
}

/// Upgrades to the event stream; a request without an upgrade goes on to the route table.
/// The stream ends when `shutdown` is cancelled.
pub fn filter(
    ctx: ApiContext,
    shutdown: CancellationToken,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone + Send + Sync + 'static {
    warp::path!("api" / "v1" / "events")
        .and(warp::get())
        .and(warp::ws())
        .and(warp::header::headers_cloned())
        .and(raw_query())
        .and(warp::any().map(move || (ctx.clone(), shutdown.clone())))
        .map(
            |ws: Ws, headers: HeaderMap, query: String, (ctx, shutdown)| {
                let began = std::time::Instant::now();
                let response = upgrade(ws, &headers, query, &ctx, shutdown)
                    .unwrap_or_else(ApiError::into_response);
                ctx.node_metrics().record_http_request(
                    LABEL,
                    response.status().as_u16(),
                    began.elapsed().as_secs_f64(),
                );
                response
            },
        )
}

fn upgrade(
    ws: Ws,
    headers: &HeaderMap,
    query: String,
    ctx: &ApiContext,
    shutdown: CancellationToken,
) -> Result<Response, ApiError> {
    let access = ROUTES
        .iter()
        .find(|r| r.op == Op::Events)
        .map_or(Access::Role(crate::auth::Role::Viewer), |r| r.access);
    authenticate(ctx, access, Op::Events, headers, &query)?;
    let filters: Filters = Request::query_of(&query)?;
    let events = ctx.agents()?.events();
    Ok(ws
        .max_message_size(MAX_CLIENT_FRAME)
        .on_upgrade(move |socket| stream(socket, events, filters, shutdown))
        .into_response())
}

/// Sends every kept event until the client goes, the node stops, or the stream closes.
async fn stream(
    socket: WebSocket,
    mut events: broadcast::Receiver<TurnEvent>,
    filters: Filters,
    shutdown: CancellationToken,
) {
    let (mut tx, mut rx) = socket.split();
    loop {
        let frame = tokio::select! {
            () = shutdown.cancelled() => break,
            incoming = rx.next() => match incoming {
                Some(Ok(message)) if !message.is_close() => continue,
                _ => break,
            },
            received = events.recv() => match received {
                Ok(event) if filters.keeps(&event) => match serde_json::to_string(&event) {
                    Ok(text) => text,
                    Err(_) => continue,
                },
                Ok(_) => continue,
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    serde_json::json!({ "lagged": missed }).to_string()
                }
                Err(broadcast::error::RecvError::Closed) => break,
            },
        };
        if tx.send(Message::text(frame)).await.is_err() {
            break;
        }
    }
    let _ = tx.send(Message::close()).await;
}

#[cfg(test)]
mod tests {
    use neuroflow_kit::protocol::agent::AgentEvent;

    use super::*;

    fn event(agent: &str, conversation: &str) -> TurnEvent {
        TurnEvent {
            agent: agent.into(),
            conversation: conversation.into(),
            turn_id: None,
            event: AgentEvent::TextDelta { text: "x".into() },
        }
    }

    #[test]
    fn filters_keep_the_named_agent_and_conversation() {
        let all: Filters = Request::query_of("access_token=t").unwrap();
        assert!(all.keeps(&event("a", "c1")));
        let agent: Filters = Request::query_of("agent=a").unwrap();
        assert!(agent.keeps(&event("a", "c1")));
        assert!(!agent.keeps(&event("b", "c1")));
        let both: Filters = Request::query_of("agent=a&conversation=c2").unwrap();
        assert!(both.keeps(&event("a", "c2")));
        assert!(!both.keeps(&event("a", "c1")));
        assert!(!both.keeps(&event("b", "c2")));
        assert!(Request::query_of::<Filters>("colour=red").is_err());
    }
}
