//! The route table and the warp filter that dispatches on it.
//!
//! One table decides which endpoint a request reaches, which method it takes, what the
//! `route` label of `neuroflow_http_requests_total` is (bounded: unmatched paths share one
//! label), and whether a miss is a 404 or a 405. Errors are JSON:
//! `{"error": {"code": "...", "message": "..."}}`.

use std::convert::Infallible;

use serde_json::json;
use warp::Filter;
use warp::http::{Method, StatusCode, header};
use warp::path::FullPath;
use warp::reply::{Reply, Response};

use super::{ApiContext, handlers};

/// `route` label of requests that matched no route.
pub const UNMATCHED: &str = "unmatched";

const ACTORS_PREFIX: &str = "/api/v1/node/actors/";
const FAIL_SUFFIX: &str = "/fail";

/// An endpoint of the API, resolved from a request path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// `GET /healthz`
    Healthz,
    /// `GET /metrics`
    Metrics,
    /// `GET /api/v1/node/tree`
    Tree,
    /// `POST /api/v1/node/actors/{path}/fail` (test hooks only); holds `{path}`, relative
    /// to the root supervisor.
    FailActor(String),
}

impl Endpoint {
    /// The endpoint at `path`, if any. The fault-injection route exists only with
    /// `test_hooks`.
    pub fn resolve(path: &str, test_hooks: bool) -> Option<Self> {
        match path {
            "/healthz" => Some(Self::Healthz),
            "/metrics" => Some(Self::Metrics),
            "/api/v1/node/tree" => Some(Self::Tree),
            _ if test_hooks => {
                let actor = path
                    .strip_prefix(ACTORS_PREFIX)?
                    .strip_suffix(FAIL_SUFFIX)?;
                let valid = !actor.is_empty() && actor.split('/').all(|seg| !seg.is_empty());
                valid.then(|| Self::FailActor(actor.to_string()))
            }
            _ => None,
        }
    }

    /// The one method the endpoint answers.
    pub fn method(&self) -> Method {
        match self {
            Self::Healthz | Self::Metrics | Self::Tree => Method::GET,
            Self::FailActor(_) => Method::POST,
        }
    }

    /// Route template, used as the metrics label.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Healthz => "/healthz",
            Self::Metrics => "/metrics",
            Self::Tree => "/api/v1/node/tree",
            Self::FailActor(_) => "/api/v1/node/actors/{path}/fail",
        }
    }
}

/// The whole API as one warp filter. It never rejects: every request gets an answer.
pub fn api(
    ctx: ApiContext,
) -> impl Filter<Extract = (Response,), Error = Infallible> + Clone + Send + Sync + 'static {
    warp::path::full()
        .and(warp::method())
        .and(warp::any().map(move || ctx.clone()))
        .then(dispatch)
}

async fn dispatch(path: FullPath, method: Method, ctx: ApiContext) -> Response {
    let endpoint = Endpoint::resolve(path.as_str(), ctx.test_hooks());
    let response = match &endpoint {
        None => error(
            StatusCode::NOT_FOUND,
            "not_found",
            &format!("no route for {method} {}", path.as_str()),
        ),
        Some(endpoint) if method != endpoint.method() => {
            let allow = endpoint.method();
            let mut response = error(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                &format!("{method} is not allowed on {}; use {allow}", path.as_str()),
            );
            if let Ok(value) = allow.as_str().parse() {
                response.headers_mut().insert(header::ALLOW, value);
            }
            response
        }
        Some(Endpoint::Healthz) => handlers::healthz(&ctx).await,
        Some(Endpoint::Metrics) => handlers::metrics(&ctx).await,
        Some(Endpoint::Tree) => handlers::tree(&ctx).await,
        Some(Endpoint::FailActor(actor)) => handlers::fail_actor(&ctx, actor).await,
    };
    let route = endpoint.as_ref().map_or(UNMATCHED, Endpoint::label);
    let status = response.status();
    ctx.node_metrics()
        .record_http_request(route, status.as_u16());
    tracing::debug!(%method, path = path.as_str(), route, status = status.as_u16(), "http request");
    response
}

/// A JSON error response: `{"error": {"code": code, "message": message}}`.
pub fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({ "error": { "code": code, "message": message } });
    warp::reply::with_status(warp::reply::json(&body), status).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_routes() {
        assert_eq!(
            Endpoint::resolve("/healthz", false),
            Some(Endpoint::Healthz)
        );
        assert_eq!(
            Endpoint::resolve("/metrics", false),
            Some(Endpoint::Metrics)
        );
        assert_eq!(
            Endpoint::resolve("/api/v1/node/tree", false),
            Some(Endpoint::Tree)
        );
        assert_eq!(Endpoint::resolve("/healthz/", false), None);
        assert_eq!(Endpoint::resolve("/", false), None);
        assert_eq!(Endpoint::resolve("/nope", true), None);
    }

    #[test]
    fn fail_route_exists_only_with_test_hooks() {
        let path = "/api/v1/node/actors/telemetry/metrics/fail";
        assert_eq!(Endpoint::resolve(path, false), None);
        assert_eq!(
            Endpoint::resolve(path, true),
            Some(Endpoint::FailActor("telemetry/metrics".into()))
        );
        for bad in [
            "/api/v1/node/actors/fail",
            "/api/v1/node/actors//fail",
            "/api/v1/node/actors/a//b/fail",
            "/api/v1/node/actors/telemetry",
        ] {
            assert_eq!(Endpoint::resolve(bad, true), None, "{bad}");
        }
    }

    #[test]
    fn labels_are_templates() {
        let fail = Endpoint::FailActor("x/y".into());
        assert_eq!(fail.label(), "/api/v1/node/actors/{path}/fail");
        assert_eq!(fail.method(), Method::POST);
        assert_eq!(Endpoint::Metrics.method(), Method::GET);
    }
}

#[cfg(test)]
mod dispatch_tests {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use neuroflow_kit::metrics::Metrics;
    use neuroflow_kit::supervisor::{
        ChildSpec, Strategy, Supervisor, SupervisorHandle, SupervisorSpec,
    };
    use serde_json::Value;

    use neuroflow_router::{RouterConfig, Tools};

    use super::*;
    use crate::config::Config;
    use crate::node::telemetry::{MetricsActor, NodeMetrics};

    /// A router whose actors never start: enough for routes that do not call tools.
    fn tools(registry: &Metrics) -> Tools {
        Tools::build(RouterConfig::default(), registry)
            .unwrap()
            .tools
    }

    async fn context(test_hooks: bool) -> (ApiContext, SupervisorHandle, Arc<Metrics>) {
        let registry = Metrics::new().unwrap();
        let metrics =
            NodeMetrics::register(registry.clone(), "0.0.0-test", Instant::now()).unwrap();
        let node_metrics = metrics.clone();
        let (spec, handle) = ChildSpec::actor("metrics", move || {
            let metrics = node_metrics.clone();
            (MetricsActor { metrics }, ())
        });
        let (root, _join) = Supervisor::start_root(
            SupervisorSpec::new("node", Strategy::OneForOne).child(spec),
            registry.clone(),
        )
        .await
        .unwrap();
        let ctx = ApiContext::new(
            "0.0.0-test",
            test_hooks,
            metrics,
            handle,
            root.clone(),
            tools(&registry),
            Config::default(),
        );
        (ctx, root, registry)
    }

    async fn get(ctx: &ApiContext, method: &str, path: &str) -> (StatusCode, String) {
        let response = warp::test::request()
            .method(method)
            .path(path)
            .reply(&api(ctx.clone()))
            .await;
        let body = String::from_utf8_lossy(response.body()).into_owned();
        (response.status(), body)
    }

    #[tokio::test]
    async fn healthz_is_degraded_when_the_root_is_down() {
        let (ctx, root, _) = context(false).await;
        let (status, body) = get(&ctx, "GET", "/healthz").await;
        assert_eq!(status, StatusCode::OK);
        let health: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(health["status"], "ok");
        assert_eq!(health["version"], "0.0.0-test");

        root.stop(Duration::from_secs(2)).await;
        let (status, body) = get(&ctx, "GET", "/healthz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        let health: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(health["status"], "degraded");

        // The other endpoints say the actors are unavailable rather than hang or panic.
        let (status, body) = get(&ctx, "GET", "/metrics").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.starts_with("metrics unavailable:"), "{body}");
        let (status, body) = get(&ctx, "GET", "/api/v1/node/tree").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        let error: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(error["error"]["code"], "unavailable");
    }

    #[tokio::test]
    async fn answers_503_before_the_tree_has_started() {
        let registry = Metrics::new().unwrap();
        let metrics = NodeMetrics::register(registry.clone(), "x", Instant::now()).unwrap();
        let actor_metrics = metrics.clone();
        let (_never_started, handle) = ChildSpec::actor("metrics", move || {
            let metrics = actor_metrics.clone();
            (MetricsActor { metrics }, ())
        });
        let root = SupervisorHandle::new("node");
        let ctx = ApiContext::new(
            "x",
            true,
            metrics,
            handle,
            root,
            tools(&registry),
            Config::default(),
        );
        for (method, path) in [
            ("GET", "/healthz"),
            ("GET", "/metrics"),
            ("GET", "/api/v1/node/tree"),
            ("POST", "/api/v1/node/actors/telemetry/metrics/fail"),
        ] {
            let (status, body) = get(&ctx, method, path).await;
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{path}: {body}");
        }
    }

    #[tokio::test]
    async fn misses_are_json_404_and_405() {
        let (ctx, root, registry) = context(false).await;
        let (status, body) = get(&ctx, "GET", "/missing").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let error: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(error["error"]["code"], "not_found");
        assert_eq!(error["error"]["message"], "no route for GET /missing");

        let response = warp::test::request()
            .method("PUT")
            .path("/metrics")
            .reply(&api(ctx.clone()))
            .await;
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(response.headers()["allow"], "GET");

        // Without test hooks the fault route is a plain miss.
        let (status, _) = get(&ctx, "POST", "/api/v1/node/actors/metrics/fail").await;
        assert_eq!(status, StatusCode::NOT_FOUND);

        let text = registry.render();
        assert!(
            text.contains(r#"neuroflow_http_requests_total{route="unmatched",status="404"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"neuroflow_http_requests_total{route="/metrics",status="405"} 1"#),
            "{text}"
        );
        root.stop(Duration::from_secs(2)).await;
    }

    #[tokio::test]
    async fn fail_route_injects_through_the_root() {
        let (ctx, root, registry) = context(true).await;
        let (status, body) = get(&ctx, "POST", "/api/v1/node/actors/metrics/fail").await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        let mut failures = 0;
        for _ in 0..100 {
            failures = registry
                .actor(MetricsActor::KIND, "node/metrics")
                .failures();
            if failures == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(failures, 1);
        let (status, body) = get(&ctx, "POST", "/api/v1/node/actors/nothing/fail").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(body.contains("no_such_actor"), "{body}");
        root.stop(Duration::from_secs(2)).await;
    }
}
