//! Answers of the API's operations, one module per area. Each reaches the node through
//! the [`ApiContext`] only.

mod agents;
pub mod events;
mod messages;
pub mod node;
mod sandboxes;
mod users;

use serde::Serialize;
use warp::http::StatusCode;
use warp::reply::{Reply, Response};

use super::ApiContext;
use super::error::ApiError;
use super::request::Request;
use super::routes::Op;

/// What an operation answers: a response, or the error it became.
pub type Answer = Result<Response, ApiError>;

/// Runs operation `op`.
pub async fn handle(ctx: &ApiContext, op: Op, req: Request) -> Answer {
    match op {
        Op::Healthz => Ok(node::healthz(ctx).await),
        Op::Metrics => Ok(node::metrics(ctx).await),
        Op::NodeTree => node::tree(ctx).await,
        Op::NodeInfo => node::info(ctx).await,
        Op::NodeSummary => node::summary(ctx).await,
        Op::FailActor => node::fail_actor(ctx, req.param(0)).await,
        Op::OpenApi => Ok(node::openapi()),
        Op::Login => users::login(ctx, req).await,
        Op::Me => users::me(&req),
        Op::ListUsers => users::list(ctx, &req).await,
        Op::CreateUser => users::create(ctx, req).await,
        Op::ListAgents => agents::list(ctx, &req),
        Op::CreateAgent => agents::create(ctx, req).await,
        Op::GetAgent => agents::get(ctx, req.param(0)),
        Op::UpdateAgent => agents::update(ctx, req).await,
        Op::DeleteAgent => agents::delete(ctx, req.param(0)).await,
        Op::ListConversations => agents::conversations(ctx, &req).await,
        Op::GetConversation => agents::conversation(ctx, req.param(0)).await,
        Op::SendMessage => messages::send(ctx, req).await,
        Op::CancelTurn => messages::cancel(ctx, req.param(0)),
        Op::ListTools => sandboxes::tools(ctx, &req).await,
        Op::ListSandboxes => sandboxes::list(ctx).await,
        Op::ExecSandbox => sandboxes::exec(ctx, req).await,
        // Reached only without an upgrade: the WebSocket filter answers upgrades.
        Op::Events => Err(ApiError::invalid(
            "",
            "this route is a WebSocket: send an upgrade request",
        )),
    }
}

/// `value` as JSON with `status`.
pub fn json<T: Serialize>(status: StatusCode, value: &T) -> Response {
    warp::reply::with_status(warp::reply::json(value), status).into_response()
}

/// `value` as JSON with 200.
pub fn ok<T: Serialize>(value: &T) -> Answer {
    Ok(json(StatusCode::OK, value))
}
