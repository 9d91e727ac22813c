//! The route table: which operation a request reaches, who may call it, and the `route`
//! label of `neuroflow_http_requests_total` (the template, so that labels stay bounded;
//! unmatched paths share one). A path that exists with other methods is a 405 naming
//! them; any other miss is a 404.

use warp::http::Method;

use crate::auth::Role;

/// `route` label of requests that matched no route.
pub const UNMATCHED: &str = "unmatched";

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Public,
    /// A token with at least this role.
    Role(Role),
    /// Public, or viewer when `auth.protect_metrics`.
    Metrics,
}

/// What a route does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Healthz,
    Metrics,
    Login,
    Me,
    ListUsers,
    CreateUser,
    ListAgents,
    CreateAgent,
    GetAgent,
    UpdateAgent,
    DeleteAgent,
    SendMessage,
    CancelTurn,
    ListConversations,
    GetConversation,
    ListTools,
    ListSandboxes,
    ExecSandbox,
    NodeInfo,
    NodeTree,
    NodeSummary,
    Events,
    OpenApi,
    /// Test hooks only: `{path}` spans several segments.
    FailActor,
}

/// One route.
#[derive(Debug)]
pub struct Route {
    pub method: Method,
    /// Path template; `{name}` matches one segment.
    pub path: &'static str,
    pub op: Op,
    pub access: Access,
}

const fn route(method: Method, path: &'static str, op: Op, access: Access) -> Route {
    Route {
        method,
        path,
        op,
        access,
    }
}

const VIEWER: Access = Access::Role(Role::Viewer);
const OPERATOR: Access = Access::Role(Role::Operator);
const ADMIN: Access = Access::Role(Role::Admin);

/// Every route of the API. `/api/v1/openapi.json` describes the `/api/v1` ones.
pub static ROUTES: &[Route] = &[
    route(Method::GET, "/healthz", Op::Healthz, Access::Public),
    route(Method::GET, "/metrics", Op::Metrics, Access::Metrics),
    route(
        Method::POST,
        "/api/v1/auth/login",
        Op::Login,
        Access::Public,
    ),
    route(Method::GET, "/api/v1/auth/me", Op::Me, VIEWER),
    route(Method::GET, "/api/v1/users", Op::ListUsers, ADMIN),
    route(Method::POST, "/api/v1/users", Op::CreateUser, ADMIN),
    route(Method::GET, "/api/v1/agents", Op::ListAgents, VIEWER),
    route(Method::POST, "/api/v1/agents", Op::CreateAgent, OPERATOR),
    route(Method::GET, "/api/v1/agents/{name}", Op::GetAgent, VIEWER),
    route(
        Method::PUT,
        "/api/v1/agents/{name}",
        Op::UpdateAgent,
        OPERATOR,
    ),
    route(
        Method::DELETE,
        "/api/v1/agents/{name}",
        Op::DeleteAgent,
        OPERATOR,
    ),
    route(
        Method::POST,
        "/api/v1/agents/{name}/messages",
        Op::SendMessage,
        OPERATOR,
    ),
    route(
        Method::POST,
        "/api/v1/agents/{name}/cancel",
        Op::CancelTurn,
        OPERATOR,
    ),
    route(
        Method::GET,
        "/api/v1/agents/{name}/conversations",
        Op::ListConversations,
        VIEWER,
    ),
    route(
        Method::GET,
        "/api/v1/conversations/{id}",
        Op::GetConversation,
        VIEWER,
    ),
    route(Method::GET, "/api/v1/tools", Op::ListTools, VIEWER),
    route(Method::GET, "/api/v1/sandboxes", Op::ListSandboxes, VIEWER),
    route(
        Method::POST,
        "/api/v1/sandboxes/exec",
        Op::ExecSandbox,
        OPERATOR,
    ),
    route(Method::GET, "/api/v1/node/info", Op::NodeInfo, VIEWER),
    route(Method::GET, "/api/v1/node/tree", Op::NodeTree, VIEWER),
    route(Method::GET, "/api/v1/node/summary", Op::NodeSummary, VIEWER),
    route(Method::GET, "/api/v1/events", Op::Events, VIEWER),
    route(Method::GET, "/api/v1/openapi.json", Op::OpenApi, VIEWER),
];

/// The fault-injection route, present only with test hooks.
pub static FAIL_ACTOR: Route = route(
    Method::POST,
    "/api/v1/node/actors/{path}/fail",
    Op::FailActor,
    ADMIN,
);

/// A request matched to its route.
#[derive(Debug)]
pub struct Matched {
    pub route: &'static Route,
    /// Values of the `{…}` segments, in order.
    pub params: Vec<String>,
}

/// Why a request matched no route.
#[derive(Debug, PartialEq, Eq)]
pub enum Miss {
    NotFound,
    /// The path (of this template) exists with these methods.
    MethodNotAllowed(&'static str, Vec<Method>),
}

impl Miss {
    /// The label of a miss: the template of a path that exists, else [`UNMATCHED`].
    pub fn label(&self) -> &'static str {
        match self {
            Self::NotFound => UNMATCHED,
            Self::MethodNotAllowed(template, _) => template,
        }
    }
}

/// The route `method path` reaches.
pub fn resolve(method: &Method, path: &str, test_hooks: bool) -> Result<Matched, Miss> {
    let mut allowed = Vec::new();
    let mut template = UNMATCHED;
    for route in ROUTES {
        if let Some(params) = match_path(route.path, path) {
            if route.method == method {
                return Ok(Matched { route, params });
            }
            allowed.push(route.method.clone());
            template = route.path;
        }
    }
    if test_hooks && let Some(actor) = fail_actor_path(path) {
        if method == FAIL_ACTOR.method {
            return Ok(Matched {
                route: &FAIL_ACTOR,
                params: vec![actor],
            });
        }
        allowed.push(FAIL_ACTOR.method.clone());
        template = FAIL_ACTOR.path;
    }
    if allowed.is_empty() {
        Err(Miss::NotFound)
    } else {
        Err(Miss::MethodNotAllowed(template, allowed))
    }
}

/// The `{…}` values if `path` fits `template`. A parameter is one non-empty segment,
/// percent-decoded.
fn match_path(template: &str, path: &str) -> Option<Vec<String>> {
    let mut params = Vec::new();
    let mut segments = path.split('/');
    for expected in template.split('/') {
        let segment = segments.next()?;
        if expected.starts_with('{') {
            if segment.is_empty() {
                return None;
            }
            params.push(percent_decode(segment)?);
        } else if expected != segment {
            return None;
        }
    }
    segments.next().is_none().then_some(params)
}

fn percent_decode(segment: &str) -> Option<String> {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

const ACTORS_PREFIX: &str = "/api/v1/node/actors/";
const FAIL_SUFFIX: &str = "/fail";

fn fail_actor_path(path: &str) -> Option<String> {
    let actor = path
        .strip_prefix(ACTORS_PREFIX)?
        .strip_suffix(FAIL_SUFFIX)?;
    let valid = !actor.is_empty() && actor.split('/').all(|seg| !seg.is_empty());
    valid.then(|| actor.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(method: Method, path: &str) -> Result<(Op, Vec<String>), Miss> {
        resolve(&method, path, false).map(|m| (m.route.op, m.params))
    }

    #[test]
    fn resolves_routes_and_their_parameters() {
        assert_eq!(op(Method::GET, "/healthz"), Ok((Op::Healthz, vec![])));
        assert_eq!(
            op(Method::PUT, "/api/v1/agents/helper"),
            Ok((Op::UpdateAgent, vec!["helper".into()]))
        );
        assert_eq!(
            op(Method::POST, "/api/v1/agents/a%20b/messages"),
            Ok((Op::SendMessage, vec!["a b".into()]))
        );
        assert_eq!(op(Method::GET, "/api/v1/agents/"), Err(Miss::NotFound));
        assert_eq!(op(Method::GET, "/healthz/"), Err(Miss::NotFound));
        assert_eq!(op(Method::GET, "/api/v1/agents/a/b"), Err(Miss::NotFound));
        assert_eq!(
            op(Method::PATCH, "/api/v1/agents/x"),
            Err(Miss::MethodNotAllowed(
                "/api/v1/agents/{name}",
                vec![Method::GET, Method::PUT, Method::DELETE]
            ))
        );
    }

    #[test]
    fn fail_route_exists_only_with_test_hooks() {
        let path = "/api/v1/node/actors/telemetry/metrics/fail";
        assert!(resolve(&Method::POST, path, false).is_err());
        let matched = resolve(&Method::POST, path, true).unwrap();
        assert_eq!(matched.route.op, Op::FailActor);
        assert_eq!(matched.params, ["telemetry/metrics"]);
        for bad in [
            "/api/v1/node/actors/fail",
            "/api/v1/node/actors//fail",
            "/api/v1/node/actors/a//b/fail",
        ] {
            assert!(resolve(&Method::POST, bad, true).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_api_route_wants_a_token_but_login() {
        for route in ROUTES.iter().filter(|r| r.path.starts_with("/api/")) {
            let public = route.access == Access::Public;
            assert_eq!(public, route.op == Op::Login, "{}", route.path);
        }
        assert_eq!(FAIL_ACTOR.access, Access::Role(Role::Admin));
    }
}
