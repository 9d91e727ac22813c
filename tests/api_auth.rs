//! Who may call the node's HTTP API: every route's token and role checks, login and its
//! rate limit, the admin made on first start, and RS256 tokens.

mod common;

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use neuroflow::auth::Role;
use nix::sys::signal::Signal;
use serde_json::{Value, json};

use common::api::{agent, assert_error, forged, status_of};
use common::{ADMIN_PASSWORD, NodeBuilder, client_as, token};

#[tokio::test]
async fn every_api_route_checks_the_token_and_the_role() {
    let node = NodeBuilder::serve().test_hooks().start();
    let anonymous = client_as(None);
    let protected = [
        ("GET", "/api/v1/auth/me"),
        ("GET", "/api/v1/users"),
        ("POST", "/api/v1/users"),
        ("GET", "/api/v1/agents"),
        ("POST", "/api/v1/agents"),
        ("GET", "/api/v1/agents/x"),
        ("PUT", "/api/v1/agents/x"),
        ("DELETE", "/api/v1/agents/x"),
        ("POST", "/api/v1/agents/x/messages"),
        ("POST", "/api/v1/agents/x/cancel"),
        ("GET", "/api/v1/agents/x/conversations"),
        ("GET", "/api/v1/conversations/c"),
        ("GET", "/api/v1/tools"),
        ("GET", "/api/v1/sandboxes"),
        ("POST", "/api/v1/sandboxes/exec"),
        ("GET", "/api/v1/node/info"),
        ("GET", "/api/v1/node/tree"),
        ("GET", "/api/v1/node/summary"),
        ("GET", "/api/v1/events"),
        ("GET", "/api/v1/openapi.json"),
        ("POST", "/api/v1/node/actors/telemetry/metrics/fail"),
    ];
    let secret = common::JWT_SECRET.as_bytes();
    let expired = {
        let claims =
            json!({"sub": "admin", "role": "admin", "iss": "neuroflow", "iat": 1, "exp": 2});
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(secret),
        )
        .unwrap()
    };
    let good = token("admin", Role::Admin);
    let tampered = {
        let mut parts: Vec<String> = good.split('.').map(String::from).collect();
        parts[1] = URL_SAFE_NO_PAD
            .encode(r#"{"sub":"eve","role":"admin","iss":"neuroflow","iat":1,"exp":99999999999}"#);
        parts.join(".")
    };
    let bad_tokens = [
        ("missing", None),
        ("expired", Some(expired)),
        ("tampered", Some(tampered)),
        ("alg none", Some(forged("none", ""))),
        ("HS384", Some(forged("HS384", "c2lnbmF0dXJl"))),
        ("garbage", Some("not.a.token".to_string())),
    ];
    for (method, path) in protected {
        for (what, bad) in &bad_tokens {
            let mut request = anonymous.request(method.parse().unwrap(), node.url(path));
            if let Some(bad) = bad {
                request = request.bearer_auth(bad);
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 401, "{method} {path} with {what} token");
            let body: Value = response.json().await.unwrap();
            assert_error(&body, "unauthorized");
        }
    }

    // Roles: a viewer reads but does not act, an operator acts but does not administer.
    let viewer = client_as(Some(Role::Viewer));
    let operator = client_as(Some(Role::Operator));
    let response = viewer.get(node.url("/api/v1/agents")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let response = viewer
        .post(node.url("/api/v1/agents"))
        .json(&agent("v", "scripted"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert_error(&response.json().await.unwrap(), "forbidden");
    assert_eq!(
        status_of(operator.get(node.url("/api/v1/users"))).await,
        403
    );
    assert_eq!(
        status_of(operator.post(node.url("/api/v1/node/actors/telemetry/metrics/fail"))).await,
        403
    );
    let me: Value = viewer
        .get(node.url("/api/v1/auth/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (me["username"].as_str(), me["role"].as_str()),
        (Some("user-viewer"), Some("viewer"))
    );

    // Public: health and metrics (by default).
    for path in ["/healthz", "/metrics"] {
        let response = anonymous.get(node.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
}

#[tokio::test]
async fn login_issues_tokens_and_is_rate_limited() {
    let node = NodeBuilder::serve()
        .config("[auth]\nlogin_per_minute = 3\nprotect_metrics = true\n")
        .start();
    let http = client_as(None);
    let login = |password: &str| {
        http.post(node.url("/api/v1/auth/login"))
            .json(&json!({"username": "admin", "password": password}))
            .send()
    };
    let response = login(ADMIN_PASSWORD).await.unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["role"], "admin");
    let expires_in = body["expires_in"].as_u64().unwrap();
    assert!((3590..=3600).contains(&expires_in), "{body}");
    let issued = body["access_token"].as_str().unwrap().to_string();

    // The issued token works, and metrics now want one.
    assert_eq!(
        status_of(http.get(node.url("/api/v1/auth/me")).bearer_auth(&issued)).await,
        200
    );
    assert_eq!(status_of(http.get(node.url("/metrics"))).await, 401);
    assert_eq!(
        status_of(http.get(node.url("/metrics")).bearer_auth(&issued)).await,
        200
    );

    for _ in 0..2 {
        let response = login("wrong password").await.unwrap();
        assert_eq!(response.status(), 401);
        assert_error(&response.json().await.unwrap(), "unauthorized");
    }
    // Three attempts this minute: the fourth is refused whatever it says.
    let response = login(ADMIN_PASSWORD).await.unwrap();
    assert_eq!(response.status(), 429);
    let retry: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_error(&response.json().await.unwrap(), "rate_limited");

    // Unknown fields and bad bodies name what is wrong.
    assert_eq!(
        status_of(
            http.post(node.url("/api/v1/auth/login"))
                .header("content-type", "text/plain")
                .body("admin")
        )
        .await,
        415
    );
}

#[tokio::test]
async fn the_first_start_makes_an_admin_and_shows_its_password_once() {
    let node = NodeBuilder::serve()
        .env("NEUROFLOW_ADMIN_PASSWORD", "")
        .start();
    let stderr = common::eventually(Duration::from_secs(5), "the password line", || async {
        let stderr = node.process.stderr();
        stderr.contains("with password").then_some(stderr)
    })
    .await;
    let password = stderr
        .split("with password ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .to_string();
    assert!(password.len() >= 20, "{password:?}");
    let http = client_as(None);
    let login = |node: &common::Node| {
        http.post(node.url("/api/v1/auth/login"))
            .json(&json!({"username": "admin", "password": password}))
            .send()
    };
    assert_eq!(login(&node).await.unwrap().status(), 200);
    // A restart keeps the admin, and says nothing of its password.
    let node = node.restart(Signal::SIGTERM);
    assert_eq!(login(&node).await.unwrap().status(), 200);
    assert!(!node.process.stderr().contains("with password"));
}

#[tokio::test]
async fn tokens_may_be_rs256_and_then_hs256_is_refused() {
    let keys = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/jwt");
    let node = NodeBuilder::serve()
        .config(&format!(
            "[auth]\nalgorithm = \"RS256\"\nprivate_key = \"{keys}/rsa-private.pem\"\n\
             public_key = \"{keys}/rsa-public.pem\"\n"
        ))
        .start();
    let http = client_as(None);
    let login: Value = http
        .post(node.url("/api/v1/auth/login"))
        .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let issued = login["access_token"].as_str().unwrap();
    let header = jsonwebtoken::decode_header(issued).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::RS256);
    let me = http
        .get(node.url("/api/v1/auth/me"))
        .bearer_auth(issued)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    // An HS256 token, even one keyed with the public key, is refused.
    let public = std::fs::read(format!("{keys}/rsa-public.pem")).unwrap();
    let claims = json!({"sub": "admin", "role": "admin", "iss": "neuroflow", "iat": 1, "exp": 99999999999u64});
    for key in [public.as_slice(), common::JWT_SECRET.as_bytes()] {
        let forged = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(key),
        )
        .unwrap();
        assert_eq!(
            status_of(http.get(node.url("/api/v1/auth/me")).bearer_auth(forged)).await,
            401
        );
    }
}
