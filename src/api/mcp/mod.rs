//! The MCP face over HTTP: the SDK's streamable HTTP server ([`StreamableHttpService`],
//! stateful sessions) bridged into warp, in front of the API's route table.
//!
//! [`filter`] answers one path and rejects every other, so the node puts it before
//! [`super::routes::api`] and other paths keep the route table's 404/405 answers; the
//! conformance fixture serves the same filter over its own catalog. The bridge hands the
//! request (method, path, headers, body as a stream) to the service and streams its answer
//! back with status and headers kept; SSE answers flow as they are produced.
//!
//! Limits: request bodies are capped while they stream ([`HttpSettings::max_body_bytes`],
//! 413 past it), open sessions are capped ([`HttpSettings::max_sessions`], 503 past it),
//! and a session idles out after the SDK's keep-alive (5 minutes). DNS-rebinding
//! protection stays on: the `Host` header must name an allowed host (loopback by default),
//! and a browser's `Origin`, when sent, a loopback origin.

mod sessions;

use std::net::IpAddr;
use std::sync::Arc;

use bytes::Buf;
use futures_util::{Stream, TryStreamExt};
use http_body_util::{BodyDataStream, StreamBody};
use neuroflow_router::mcp::serve::{McpFace, ToolsCatalog};
use rmcp::transport::StreamableHttpServerConfig;
use rmcp::transport::StreamableHttpService;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use tokio_util::sync::CancellationToken;
use warp::Filter;
use warp::http::{HeaderMap, Method, StatusCode};
use warp::path::FullPath;
use warp::reply::{Reply, Response};

pub use sessions::{BoundedSessions, SessionsError};

use super::ApiContext;
use super::error::ApiError;
use super::routes;
use crate::auth::Role;

/// A JSON error response in the API's shape.
fn error(status: StatusCode, code: &'static str, message: &str) -> Response {
    ApiError::new(status, code, message).into_response()
}

/// Decides whether a request may reach the face; the refusal is the response.
pub type Gate = Arc<dyn Fn(&HeaderMap) -> Result<(), Box<Response>> + Send + Sync>;

/// The header carrying the session id of a streamable HTTP session.
const SESSION_HEADER: &str = "mcp-session-id";

/// Limits and host checks of the HTTP face.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpSettings {
    /// `Host` values accepted (`host` or `host:port`). Anything else is refused with 403:
    /// a page whose domain an attacker re-points at this address cannot reach the tools.
    pub allowed_hosts: Vec<String>,
    /// `Origin` values accepted when a browser sends one (`scheme://host[:port|:*]`).
    pub allowed_origins: Vec<String>,
    /// Most sessions open at once.
    pub max_sessions: usize,
    /// Largest request body, in bytes.
    pub max_body_bytes: usize,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            allowed_hosts: ["localhost", "127.0.0.1", "::1"].map(String::from).to_vec(),
            allowed_origins: ["http://localhost:*", "http://127.0.0.1:*", "http://[::1]:*"]
                .map(String::from)
                .to_vec(),
            max_sessions: 256,
            max_body_bytes: 4 << 20,
        }
    }
}

/// The SDK's HTTP service over one face, with the session manager it uses (kept to refuse
/// a new session with 503 before the SDK would answer 500).
#[derive(Clone)]
pub struct McpHttp {
    service: StreamableHttpService<McpFace, BoundedSessions>,
    sessions: Arc<BoundedSessions>,
    gate: Option<Gate>,
}

impl McpHttp {
    /// Sessions end, and their streams with them, when `cancel` is cancelled: a server
    /// shutting down does not wait on clients' open SSE streams.
    pub fn new(face: McpFace, settings: &HttpSettings, cancel: CancellationToken) -> Self {
        let config = StreamableHttpServerConfig::default()
            .with_allowed_hosts(settings.allowed_hosts.clone())
            .with_allowed_origins(settings.allowed_origins.clone())
            .with_max_request_body_bytes(settings.max_body_bytes)
            .with_cancellation_token(cancel);
        let sessions = Arc::new(BoundedSessions::new(
            LocalSessionManager::default(),
            settings.max_sessions,
        ));
        let service =
            StreamableHttpService::new(move || Ok(face.clone()), sessions.clone(), config);
        Self {
            service,
            sessions,
            gate: None,
        }
    }

    /// Only requests `gate` lets through reach the face.
    pub fn with_gate(mut self, gate: Gate) -> Self {
        self.gate = Some(gate);
        self
    }

    pub fn sessions(&self) -> &BoundedSessions {
        &self.sessions
    }

    /// Answers one HTTP request.
    pub async fn handle<S, B>(
        &self,
        method: Method,
        path: &str,
        headers: HeaderMap,
        body: S,
    ) -> Response
    where
        S: Stream<Item = Result<B, warp::Error>> + Send + 'static,
        B: Buf + Send + 'static,
    {
        if let Some(gate) = &self.gate
            && let Err(refused) = gate(&headers)
        {
            return *refused;
        }
        let opens_session = method == Method::POST && !headers.contains_key(SESSION_HEADER);
        if opens_session && self.sessions.is_full() {
            let mut response = error(
                StatusCode::SERVICE_UNAVAILABLE,
                "too_many_sessions",
                &format!(
                    "{} MCP sessions are open, the most this node keeps; try again later",
                    self.sessions.max()
                ),
            );
            response
                .headers_mut()
                .insert(warp::http::header::RETRY_AFTER, 5.into());
            return response;
        }
        let body =
            StreamBody::new(body.map_ok(|mut chunk| {
                http_body::Frame::data(chunk.copy_to_bytes(chunk.remaining()))
            }));
        let mut request = http::Request::new(body);
        *request.method_mut() = method;
        *request.headers_mut() = headers;
        match path.parse() {
            Ok(uri) => *request.uri_mut() = uri,
            Err(_) => return error(StatusCode::BAD_REQUEST, "bad_request", "invalid path"),
        }
        let answer = self.service.handle(request).await;
        let (parts, body) = answer.into_parts();
        let mut response = warp::reply::stream(BodyDataStream::new(body)).into_response();
        *response.status_mut() = parts.status;
        *response.headers_mut() = parts.headers;
        response
    }
}

/// The HTTP face at `path` (exactly; other paths are rejected, for the filters after it).
pub fn filter(
    http: McpHttp,
    path: &str,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone + Send + Sync + use<> {
    let path: Arc<str> = Arc::from(path);
    warp::path::full()
        .and_then(move |full: FullPath| {
            let ours = full.as_str() == &*path;
            async move {
                if ours {
                    Ok(full)
                } else {
                    Err(warp::reject::not_found())
                }
            }
        })
        .and(warp::method())
        .and(warp::header::headers_cloned())
        .and(warp::body::stream())
        .then(move |path: FullPath, method, headers, body| {
            let http = http.clone();
            async move { http.handle(method, path.as_str(), headers, body).await }
        })
}

/// The node's HTTP face: its tools (the `[mcp.serve] tools` subset) at `[mcp.serve] path`,
/// counted in `neuroflow_http_requests_total` under that path. Rejects every request when
/// `[mcp.serve] http` is off or the path is not one the face can take (it is logged).
pub fn node_filter(
    api: &ApiContext,
    cancel: CancellationToken,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone + Send + Sync + use<> {
    let serve = &api.config().mcp.serve;
    let path = usable_path(&serve.path, api.test_hooks());
    let enabled = serve.http && path.is_some();
    if serve.http && path.is_none() {
        tracing::error!(
            path = %serve.path,
            "MCP face not served: [mcp.serve] path must start with '/' and not be an API route"
        );
    }
    // A path no request can have stands for "off", so that both cases are one filter type.
    let path = if enabled {
        path.unwrap_or_default()
    } else {
        String::new()
    };
    let catalog = ToolsCatalog::new(api.tools().clone(), serve.tools.clone());
    let mut settings = node_settings(api.config().node.listen.ip());
    settings
        .allowed_hosts
        .extend(serve.allowed_hosts.iter().cloned());
    // The face acts with the node's tools: it wants an operator's token, as the API's
    // routes that act do.
    let auth = api.clone();
    let gate: Gate = Arc::new(move |headers: &HeaderMap| {
        let header = headers
            .get(warp::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        auth.auth()
            .authorize(header, Role::Operator)
            .map(drop)
            .map_err(|e| Box::new(ApiError::from(e).into_response()))
    });
    let http = McpHttp::new(McpFace::new(catalog), &settings, cancel).with_gate(gate);
    let label: Arc<str> = Arc::from(path.as_str());
    let api = api.clone();
    // The clock starts when the face's filter has matched the path; the request counts
    // under the face's path.
    warp::any()
        .map(std::time::Instant::now)
        .and(filter(http, &path))
        .map(move |began: std::time::Instant, response: Response| {
            let status = response.status().as_u16();
            api.node_metrics()
                .record_http_request(&label, status, began.elapsed().as_secs_f64());
            tracing::debug!(route = %label, status, "mcp request");
            response
        })
}

/// `path` if the face can be served there: absolute, and not shadowing an API route.
fn usable_path(path: &str, test_hooks: bool) -> Option<String> {
    let usable = path.starts_with('/')
        && matches!(
            routes::resolve(&Method::GET, path, test_hooks),
            Err(routes::Miss::NotFound)
        );
    usable.then(|| path.to_string())
}

/// Loopback hosts, and the listen address itself when it is one specific address: a client
/// naming the node by that IP is not a rebinding (an attacker controls names, not the
/// address a literal IP names). A wildcard listen adds nothing: which names are the
/// node's is not known here.
fn node_settings(listen: IpAddr) -> HttpSettings {
    let mut settings = HttpSettings::default();
    if !listen.is_loopback() && !listen.is_unspecified() {
        settings.allowed_hosts.push(listen.to_string());
    }
    settings
}

#[cfg(test)]
mod tests;
