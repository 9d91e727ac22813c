//! The warp filter in front of the route table: routes the request, checks its token
//! against the route's role, reads nothing it does not need, and answers every request —
//! misses and failures included — with the API's JSON error shape.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Buf;
use futures_util::StreamExt;
use warp::Filter;
use warp::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use warp::path::FullPath;
use warp::reply::Response;

use std::time::Instant;

use neuroflow_kit::TraceContext;
use neuroflow_kit::{sampling, span_value};

use super::error::ApiError;
use super::request::{BodyStream, Request};
use super::routes::{self, Access, Miss, Op};
use super::{ApiContext, handlers};
use crate::auth::{Claims, Role};

/// The whole API as one warp filter.
pub fn api(
    ctx: ApiContext,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone + Send + Sync + 'static {
    warp::path::full()
        .and(warp::method())
        .and(raw_query())
        .and(warp::header::headers_cloned())
        .and(warp::addr::remote())
        .and(body())
        .and(warp::any().map(move || ctx.clone()))
        .then(dispatch)
}

/// The query string, empty when there is none.
pub fn raw_query() -> impl Filter<Extract = (String,), Error = Infallible> + Clone {
    warp::query::raw().or(warp::any().map(String::new)).unify()
}

fn body() -> impl Filter<Extract = (BodyStream,), Error = warp::Rejection> + Clone {
    warp::body::stream().map(boxed)
}

fn boxed<S, B>(stream: S) -> BodyStream
where
    S: futures_util::Stream<Item = Result<B, warp::Error>> + Send + 'static,
    B: Buf,
{
    Box::pin(stream.map(|chunk| chunk.map(|mut buf| buf.copy_to_bytes(buf.remaining()))))
}

async fn dispatch(
    path: FullPath,
    method: Method,
    query: String,
    headers: HeaderMap,
    remote: Option<SocketAddr>,
    body: BodyStream,
    ctx: ApiContext,
) -> Response {
    let began = Instant::now();
    let resolved = routes::resolve(&method, path.as_str(), ctx.test_hooks());
    let label = match &resolved {
        Ok(matched) => matched.route.path,
        Err(miss) => miss.label(),
    };
    // The server span of the request (HTTP semantic conventions), continuing the caller's
    // trace when it sent a `traceparent`; none when the trace is not sampled.
    let traced = sampling::open(incoming_trace(&headers), || {
        tracing::info_span!(
            "http.request",
            otel.name = %format_args!("{method} {label}"),
            otel.kind = "server",
            http.request.method = %method,
            http.route = label,
            url.path = path.as_str(),
            client.address = tracing::field::Empty,
            http.response.status_code = tracing::field::Empty,
        )
    });
    let span = traced.span().clone();
    if let Some(remote) = remote
        && !span.is_disabled()
    {
        span.record("client.address", remote.ip().to_string());
    }
    let answer = async {
        match resolved {
            Err(miss) => miss_response(&miss, &method, path.as_str()),
            Ok(matched) => {
                let route = matched.route;
                match authenticate(&ctx, route.access, route.op, &headers, &query) {
                    Err(e) => e.into_response(),
                    Ok(claims) => {
                        let req = Request {
                            params: matched.params,
                            query,
                            headers,
                            remote,
                            claims,
                            body: std::sync::Mutex::new(body),
                            max_body: ctx.config().api.max_body_bytes,
                        };
                        handlers::handle(&ctx, route.op, req)
                            .await
                            .unwrap_or_else(ApiError::into_response)
                    }
                }
            }
        }
    };
    let response = traced.run(answer).await;
    let status = response.status().as_u16();
    span.record("http.response.status_code", span_value::int(status));
    ctx.node_metrics()
        .record_http_request(label, status, began.elapsed().as_secs_f64());
    tracing::debug!(%method, path = path.as_str(), route = label, status, "http request");
    response
}

/// The caller's trace context, from its `traceparent` and `tracestate` headers (W3C Trace
/// Context); a malformed one is ignored, as the standard asks.
fn incoming_trace(headers: &HeaderMap) -> Option<TraceContext> {
    let parent = headers.get("traceparent")?.to_str().ok()?;
    let state = headers.get("tracestate").and_then(|v| v.to_str().ok());
    TraceContext::parse(parent, state).ok()
}

/// The caller's claims if the route wants a token (and the token allows the route).
pub fn authenticate(
    ctx: &ApiContext,
    access: Access,
    op: Op,
    headers: &HeaderMap,
    query: &str,
) -> Result<Option<Claims>, ApiError> {
    let required = match access {
        Access::Public => return Ok(None),
        Access::Metrics if !ctx.config().auth.protect_metrics => return Ok(None),
        Access::Metrics => Role::Viewer,
        Access::Role(role) => role,
    };
    let header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    // Browsers cannot set headers on a WebSocket: its token may come in the query.
    let header = header.or_else(|| {
        (op == Op::Events)
            .then(|| query_token(query))
            .flatten()
            .map(|t| format!("Bearer {t}"))
    });
    let claims = ctx.auth().authorize(header.as_deref(), required)?;
    Ok(Some(claims))
}

fn query_token(query: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "access_token")
        .map(|(_, v)| v.into_owned())
}

fn miss_response(miss: &Miss, method: &Method, path: &str) -> Response {
    match miss {
        Miss::NotFound => {
            ApiError::not_found(format!("no route for {method} {path}")).into_response()
        }
        Miss::MethodNotAllowed(_, allowed) => {
            let allow: Vec<&str> = allowed.iter().map(Method::as_str).collect();
            let allow = allow.join(", ");
            let mut response = ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                format!("{method} is not allowed on {path}; use {allow}"),
            )
            .into_response();
            if let Ok(value) = HeaderValue::from_str(&allow) {
                response.headers_mut().insert(header::ALLOW, value);
            }
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use neuroflow_kit::metrics::Metrics;
    use neuroflow_kit::supervisor::{ChildSpec, SupervisorHandle};
    use neuroflow_router::{RouterConfig, Tools};
    use serde_json::Value;

    use super::*;
    use crate::api::{ApiContext, ApiParts};
    use crate::auth::{Auth, TokenIssuer};
    use crate::config::{Config, Secret};
    use crate::node::telemetry::{MetricsActor, NodeMetrics};
    use crate::store::Store;

    const SECRET: &str = "dispatch-test-secret-dispatch-test-0123";

    /// A context whose tree never started: the state of the API in the moments between
    /// the server starting and the node attaching its services.
    fn unstarted(dir: &std::path::Path) -> ApiContext {
        let registry = Metrics::new().unwrap();
        let metrics = NodeMetrics::register(registry.clone(), "x", Instant::now()).unwrap();
        let actor_metrics = metrics.clone();
        let (_never_started, handle) = ChildSpec::actor("metrics", move || {
            let metrics = actor_metrics.clone();
            (MetricsActor { metrics }, ())
        });
        let mut config = Config::default();
        config.auth.jwt_secret = Some(Secret(SECRET.into()));
        config.debug.test_hooks = true;
        let auth = Auth::new(&config.auth, dir, Store::open(dir).unwrap()).unwrap();
        ApiContext::new(ApiParts {
            version: "x",
            node_metrics: metrics,
            metrics_actor: handle,
            root: SupervisorHandle::new("node"),
            tools: Tools::build(RouterConfig::default(), &registry)
                .unwrap()
                .tools,
            registry,
            auth,
            config,
        })
    }

    #[tokio::test]
    async fn answers_503_before_the_node_has_started() {
        let dir = std::env::temp_dir().join(format!("neuroflow-dispatch-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ctx = unstarted(&dir);
        let token = TokenIssuer::hs256(SECRET.as_bytes(), Duration::from_secs(60))
            .unwrap()
            .issue("admin", Role::Admin)
            .unwrap()
            .token;
        for (method, path) in [
            ("GET", "/healthz"),
            ("GET", "/metrics"),
            ("GET", "/api/v1/node/tree"),
            ("GET", "/api/v1/agents"),
            ("GET", "/api/v1/node/summary"),
            ("POST", "/api/v1/node/actors/telemetry/metrics/fail"),
        ] {
            let response = warp::test::request()
                .method(method)
                .path(path)
                .header("authorization", format!("Bearer {token}"))
                .reply(&api(ctx.clone()))
                .await;
            assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE, "{path}");
            if path.starts_with("/api/") {
                let body: Value = serde_json::from_slice(response.body()).unwrap();
                assert_eq!(body["error"]["code"], "unavailable", "{path}: {body}");
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
