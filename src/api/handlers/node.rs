//! The node itself: health, metrics, the supervision tree, facts and a summary for the
//! console, the OpenAPI document, and the fault-injection hook.

use neuroflow_kit::protocol::telemetry::{MetricsMsg, MetricsReply};
use neuroflow_kit::supervisor::SupervisorError;
use serde::Serialize;
use warp::http::StatusCode;
use warp::reply::{Reply, Response};

use super::{Answer, json, ok};
use crate::api::error::ApiError;
use crate::api::{ApiContext, CALL_TIMEOUT};

/// The API's OpenAPI 3.1 document.
pub const OPENAPI: &str = include_str!("../openapi.json");

/// Content type of the Prometheus text exposition format.
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Reason given to an actor failed through the test hooks.
pub const INJECTED_REASON: &str = "failure injected through the test hooks";

/// Body of `GET /healthz`.
#[derive(Debug, Serialize)]
pub struct Health {
    /// `"ok"`, or `"degraded"` when the root supervisor is not running.
    pub status: &'static str,
    pub version: &'static str,
    pub uptime_seconds: u64,
}

/// `GET /healthz`: 200 while the root supervisor runs, else 503.
pub async fn healthz(ctx: &ApiContext) -> Response {
    let up = ctx.root().is_up();
    let health = Health {
        status: if up { "ok" } else { "degraded" },
        version: ctx.version(),
        uptime_seconds: ctx.uptime().as_secs(),
    };
    let status = if up {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    warp::reply::with_status(warp::reply::json(&health), status).into_response()
}

/// `GET /metrics`: the metrics actor renders the registry; 503 while it is unavailable.
pub async fn metrics(ctx: &ApiContext) -> Response {
    let (status, body) = match ctx
        .metrics_actor()
        .call(MetricsMsg::Render, CALL_TIMEOUT)
        .await
    {
        Ok(MetricsReply::Text(text)) => (StatusCode::OK, text),
        Err(err) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("metrics unavailable: {err}\n"),
        ),
    };
    let content_type = if status.is_success() {
        PROMETHEUS_CONTENT_TYPE
    } else {
        "text/plain; charset=utf-8"
    };
    let reply = warp::reply::with_header(body, "content-type", content_type);
    warp::reply::with_status(reply, status).into_response()
}

/// `GET /api/v1/node/tree`: the live supervision tree.
pub async fn tree(ctx: &ApiContext) -> Answer {
    let tree = ctx
        .root()
        .tree(CALL_TIMEOUT)
        .await
        .map_err(supervisor_error)?;
    ok(&tree)
}

/// Body of `GET /api/v1/node/info`.
#[derive(Debug, Serialize)]
struct Info {
    version: &'static str,
    uptime_seconds: u64,
    listen: String,
    agents: usize,
    tools: usize,
    providers: Vec<String>,
    sandbox_profiles: Vec<String>,
    test_hooks: bool,
}

/// `GET /api/v1/node/info`
pub async fn info(ctx: &ApiContext) -> Answer {
    let agents = ctx.agents()?;
    let mut providers: Vec<String> = ctx.config().providers.keys().cloned().collect();
    providers.push("scripted".into());
    providers.sort();
    ok(&Info {
        version: ctx.version(),
        uptime_seconds: ctx.uptime().as_secs(),
        listen: ctx.config().node.listen.to_string(),
        agents: agents.names().len(),
        tools: ctx.tools().list(&[]).len(),
        providers,
        sandbox_profiles: ctx.sandboxes()?.profiles(),
        test_hooks: ctx.test_hooks(),
    })
}

/// `GET /api/v1/node/summary`: counts, and per-minute rates over the last minute or so.
pub async fn summary(ctx: &ApiContext) -> Answer {
    let summary = ctx.summary().take(ctx)?;
    ok(&summary)
}

/// `GET /api/v1/openapi.json`
pub fn openapi() -> Response {
    warp::reply::with_header(OPENAPI, "content-type", "application/json").into_response()
}

/// `POST /api/v1/node/actors/{path}/fail`: makes the actor at `path` fail as if it had
/// crashed; its supervisor reacts as to a real crash. 202 once the failure is delivered.
pub async fn fail_actor(ctx: &ApiContext, path: &str) -> Answer {
    ctx.root()
        .inject_failure(path, INJECTED_REASON, CALL_TIMEOUT)
        .await
        .map_err(supervisor_error)?;
    tracing::warn!(actor = path, "failure injected through the test hooks");
    let body = serde_json::json!({ "injected": path, "reason": INJECTED_REASON });
    Ok(json(StatusCode::ACCEPTED, &body))
}

/// A supervisor's refusal as an API error.
pub fn supervisor_error(err: SupervisorError) -> ApiError {
    let (status, code) = match err {
        SupervisorError::NoSuchChild(_) => (StatusCode::NOT_FOUND, "not_found"),
        SupervisorError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        SupervisorError::Timeout(_) => (StatusCode::GATEWAY_TIMEOUT, "timeout"),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
    };
    ApiError::new(status, code, err.to_string())
}
