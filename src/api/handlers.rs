//! Answers of the API's endpoints. Each reaches actors through their handles only.

use neuroflow_kit::protocol::telemetry::{MetricsMsg, MetricsReply};
use neuroflow_kit::supervisor::SupervisorError;
use serde::Serialize;
use warp::http::StatusCode;
use warp::reply::{Reply, Response};

use super::routes::error;
use super::{ApiContext, CALL_TIMEOUT};

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
pub async fn tree(ctx: &ApiContext) -> Response {
    match ctx.root().tree(CALL_TIMEOUT).await {
        Ok(tree) => warp::reply::json(&tree).into_response(),
        Err(err) => supervisor_error(&err),
    }
}

/// `POST /api/v1/node/actors/{path}/fail`: makes the actor at `path` fail as if it had
/// crashed; its supervisor reacts as to a real crash. 202 once the failure is delivered.
pub async fn fail_actor(ctx: &ApiContext, path: &str) -> Response {
    match ctx
        .root()
        .inject_failure(path, INJECTED_REASON, CALL_TIMEOUT)
        .await
    {
        Ok(()) => {
            tracing::warn!(actor = path, "failure injected through the test hooks");
            let body = serde_json::json!({ "injected": path, "reason": INJECTED_REASON });
            warp::reply::with_status(warp::reply::json(&body), StatusCode::ACCEPTED).into_response()
        }
        Err(err) => supervisor_error(&err),
    }
}

fn supervisor_error(err: &SupervisorError) -> Response {
    let (status, code) = match err {
        SupervisorError::NoSuchChild(_) => (StatusCode::NOT_FOUND, "no_such_actor"),
        SupervisorError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        SupervisorError::Timeout(_) => (StatusCode::GATEWAY_TIMEOUT, "timeout"),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
    };
    error(status, code, &err.to_string())
}
