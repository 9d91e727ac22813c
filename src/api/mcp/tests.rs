use neuroflow_router::mcp::serve::{Catalog, Offers};
use warp::http::StatusCode;

use super::*;

/// A catalog offering an empty tool list: enough to open sessions.
struct Empty;

impl Catalog for Empty {
    fn offers(&self) -> Offers {
        Offers::tools()
    }
}

const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"bridge-test","version":"1.0.0"}}}"#;

fn face(
    settings: &HttpSettings,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone + use<> {
    filter(
        McpHttp::new(McpFace::new(Empty), settings, CancellationToken::new()),
        "/mcp",
    )
}

async fn post<F>(face: &F, headers: &[(&str, &str)], body: &str) -> (StatusCode, HeaderMap, String)
where
    F: Filter<Extract = (Response,), Error = warp::Rejection> + Clone + 'static,
{
    let mut request = warp::test::request()
        .method("POST")
        .path("/mcp")
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        request.body(body).reply(face),
    )
    .await
    .expect("the face answers within 10 s");
    let body = String::from_utf8_lossy(response.body()).into_owned();
    (response.status(), response.headers().clone(), body)
}

#[tokio::test]
async fn initialize_on_a_loopback_host_opens_a_session() {
    let face = face(&HttpSettings::default());
    let (status, headers, body) = post(&face, &[("host", "localhost:7700")], INITIALIZE).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(headers.contains_key(SESSION_HEADER), "{headers:?}");
    assert!(body.contains(r#""protocolVersion":"2025-11-25""#), "{body}");
    assert!(body.contains(r#""tools":{}"#), "{body}");
}

#[tokio::test]
async fn rebinding_hosts_and_foreign_origins_are_refused() {
    let face = face(&HttpSettings::default());
    let evil = [
        ("host", "evil.example.com"),
        ("origin", "http://evil.example.com"),
    ];
    let (status, headers, _) = post(&face, &evil, INITIALIZE).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(!headers.contains_key(SESSION_HEADER));

    let foreign = [
        ("host", "127.0.0.1:7700"),
        ("origin", "http://evil.example.com"),
    ];
    let (status, _, _) = post(&face, &foreign, INITIALIZE).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    for (host, origin) in [
        ("127.0.0.1:7700", "http://127.0.0.1:7700"),
        ("[::1]:7700", "http://[::1]:7700"),
        ("localhost", "http://localhost"),
    ] {
        let (status, _, body) =
            post(&face, &[("host", host), ("origin", origin)], INITIALIZE).await;
        assert_eq!(status, StatusCode::OK, "{host} {origin}: {body}");
    }
}

#[tokio::test]
async fn other_paths_are_left_to_the_next_filter() {
    let face = face(&HttpSettings::default());
    for path in ["/", "/mcp/", "/mcpx", "/api/v1/node/tree"] {
        let passed = warp::test::request()
            .method("POST")
            .path(path)
            .header("host", "localhost")
            .filter(&face)
            .await;
        assert!(passed.is_err(), "{path} was taken");
    }
}

#[tokio::test]
async fn bodies_past_the_limit_are_refused_with_413() {
    let settings = HttpSettings {
        max_body_bytes: 64,
        ..HttpSettings::default()
    };
    let face = face(&settings);
    let (status, _, body) = post(&face, &[("host", "localhost")], INITIALIZE).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
}

#[tokio::test]
async fn sessions_past_the_cap_are_refused_with_503() {
    let settings = HttpSettings {
        max_sessions: 1,
        ..HttpSettings::default()
    };
    let face = face(&settings);
    let (status, _, _) = post(&face, &[("host", "localhost")], INITIALIZE).await;
    assert_eq!(status, StatusCode::OK);
    let (status, headers, body) = post(&face, &[("host", "localhost")], INITIALIZE).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(headers["retry-after"], "5");
    assert!(body.contains("too_many_sessions"), "{body}");
}

#[test]
fn the_listen_address_is_an_allowed_host_only_when_specific() {
    let hosts = |ip: &str| node_settings(ip.parse().unwrap()).allowed_hosts;
    assert!(hosts("10.1.2.3").contains(&"10.1.2.3".to_string()));
    assert!(hosts("fd00::7").contains(&"fd00::7".to_string()));
    assert_eq!(hosts("0.0.0.0"), HttpSettings::default().allowed_hosts);
    assert_eq!(hosts("127.0.0.1"), HttpSettings::default().allowed_hosts);
}

#[test]
fn the_face_never_shadows_an_api_route() {
    assert_eq!(usable_path("/mcp", false).as_deref(), Some("/mcp"));
    assert_eq!(
        usable_path("/tools/mcp", false).as_deref(),
        Some("/tools/mcp")
    );
    assert_eq!(usable_path("mcp", false), None);
    assert_eq!(usable_path("", false), None);
    assert_eq!(usable_path("/metrics", false), None);
    assert_eq!(usable_path("/healthz", false), None);
    assert_eq!(usable_path("/api/v1/node/actors/x/fail", true), None);
}
