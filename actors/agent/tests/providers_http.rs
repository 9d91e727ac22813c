//! Retries, timeouts and cancellation of the HTTP providers, against loopback servers
//! (through the OpenAI-compatible provider; the plumbing is shared).

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use neuroflow_agent::provider::{
    CancellationToken, LlmChunk, LlmProvider, LlmRequest, OpenAiConfig, OpenAiProvider,
    ProviderError,
};
use neuroflow_kit::protocol::agent::ChatMessage;
use serde_json::json;
use support::{End, MockServer, Reply, data_events};

fn ok_stream() -> Reply {
    let payloads = vec![
        json!({"choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": null}]})
            .to_string(),
        json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}).to_string(),
        json!({"choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 1}}).to_string(),
        "[DONE]".into(),
    ];
    Reply::stream(data_events(&payloads))
}

/// A stream that sends one text delta and then goes quiet for `silence`.
fn stalling_stream(silence: Duration) -> Reply {
    let first =
        json!({"choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": null}]});
    Reply::Stream {
        chunks: data_events(&[first.to_string()]),
        gap: Duration::ZERO,
        end: End::Stall(silence),
    }
}

fn provider(url: &str, tweak: impl FnOnce(&mut OpenAiConfig)) -> OpenAiProvider {
    let mut config = OpenAiConfig {
        base_url: format!("{url}/v1"),
        ..Default::default()
    };
    config.http.retry.initial_backoff_ms = 20;
    config.http.total_timeout_ms = 15_000;
    tweak(&mut config);
    OpenAiProvider::new(config, Arc::default()).unwrap()
}

fn req() -> LlmRequest {
    LlmRequest::new("m", vec![ChatMessage::user("hi")])
}

async fn call(p: &OpenAiProvider, cancel: &CancellationToken) -> Result<String, ProviderError> {
    let mut sink = |_: LlmChunk| {};
    p.complete(&req(), &mut sink, cancel).await.map(|r| r.text)
}

#[tokio::test]
async fn rate_limit_with_retry_after_waits_then_retries() {
    let limited = Reply::status(429, &[("retry-after", "1")], r#"{"error":"slow down"}"#);
    let server = MockServer::start(vec![limited, ok_stream()]).await;
    let p = provider(&server.url, |_| {});
    let text = call(&p, &CancellationToken::new()).await.unwrap();
    assert_eq!(text, "hi");
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2);
    let waited = reqs[1].at - reqs[0].at;
    assert!(
        waited >= Duration::from_millis(950) && waited < Duration::from_secs(3),
        "waited {waited:?}"
    );
}

#[tokio::test]
async fn rate_limits_stop_after_the_attempt_bound() {
    let limited = || Reply::status(429, &[("retry-after", "0")], "");
    let server = MockServer::start(vec![limited(), limited(), limited()]).await;
    let p = provider(&server.url, |c| c.http.retry.max_attempts = 2);
    let err = call(&p, &CancellationToken::new()).await.unwrap_err();
    assert!(
        matches!(err, ProviderError::RateLimited { attempts: 2, .. }),
        "{err:?}"
    );
    assert_eq!(server.hits(), 2);
}

#[tokio::test]
async fn a_retry_after_longer_than_the_policy_allows_fails_at_once() {
    let limited = Reply::status(429, &[("retry-after", "3600")], "");
    let server = MockServer::start(vec![limited, ok_stream()]).await;
    let p = provider(&server.url, |_| {});
    let started = Instant::now();
    let err = call(&p, &CancellationToken::new()).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2));
    match err {
        ProviderError::RateLimited {
            retry_after,
            attempts: 1,
        } => assert_eq!(retry_after, Some(Duration::from_secs(3600))),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn server_errors_are_retried_then_reported_with_the_body() {
    let failing = || Reply::status(500, &[], r#"{"error":{"message":"boom"}}"#);
    let server = MockServer::start(vec![failing(), failing(), failing(), ok_stream()]).await;
    let p = provider(&server.url, |c| c.http.retry.max_attempts = 3);
    let err = call(&p, &CancellationToken::new()).await.unwrap_err();
    match &err {
        ProviderError::Http {
            status: 500,
            body,
            attempts: 3,
        } => assert!(body.contains("boom"), "{body}"),
        other => panic!("{other:?}"),
    }
    assert!(err.is_transient());
    assert_eq!(server.hits(), 3);
}

#[tokio::test]
async fn a_server_error_then_success_succeeds() {
    let server = MockServer::start(vec![Reply::status(503, &[], ""), ok_stream()]).await;
    let p = provider(&server.url, |_| {});
    assert_eq!(call(&p, &CancellationToken::new()).await.unwrap(), "hi");
    assert_eq!(server.hits(), 2);
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    let bad = Reply::status(401, &[], r#"{"error":{"message":"Incorrect API key"}}"#);
    let server = MockServer::start(vec![bad, ok_stream()]).await;
    let p = provider(&server.url, |_| {});
    let err = call(&p, &CancellationToken::new()).await.unwrap_err();
    assert!(
        matches!(
            err,
            ProviderError::Http {
                status: 401,
                attempts: 1,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(!err.is_transient());
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn the_total_timeout_ends_a_slow_stream() {
    let server = MockServer::start(vec![stalling_stream(Duration::from_secs(20))]).await;
    let p = provider(&server.url, |c| c.http.total_timeout_ms = 500);
    let started = Instant::now();
    let err = call(&p, &CancellationToken::new()).await.unwrap_err();
    assert!(
        matches!(err, ProviderError::Timeout(d) if d == Duration::from_millis(500)),
        "{err:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn the_idle_timeout_ends_a_silent_stream() {
    let server = MockServer::start(vec![stalling_stream(Duration::from_secs(20))]).await;
    let p = provider(&server.url, |c| c.http.idle_timeout_ms = 300);
    let started = Instant::now();
    let err = call(&p, &CancellationToken::new()).await.unwrap_err();
    assert!(matches!(err, ProviderError::Timeout(_)), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn cancelling_mid_stream_returns_cancelled_promptly() {
    let server = MockServer::start(vec![stalling_stream(Duration::from_secs(20))]).await;
    let p = provider(&server.url, |_| {});
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    let mut cancelled_at = None;
    let mut sink = |c: LlmChunk| {
        if matches!(c, LlmChunk::TextDelta(_)) {
            trigger.cancel();
            cancelled_at = Some(Instant::now());
        }
    };
    let err = p.complete(&req(), &mut sink, &cancel).await.unwrap_err();
    assert!(matches!(err, ProviderError::Cancelled), "{err:?}");
    let after = cancelled_at.expect("a delta arrived").elapsed();
    assert!(after < Duration::from_millis(500), "took {after:?}");
}

#[tokio::test]
async fn cancelling_during_a_retry_wait_returns_cancelled_promptly() {
    let limited = Reply::status(429, &[("retry-after", "10")], "");
    let server = MockServer::start(vec![limited, ok_stream()]).await;
    let p = provider(&server.url, |_| {});
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        trigger.cancel();
    });
    let started = Instant::now();
    let err = call(&p, &cancel).await.unwrap_err();
    assert!(matches!(err, ProviderError::Cancelled), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn a_refused_connection_is_a_transport_error_after_retries() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let p = provider(&url, |c| c.http.retry.max_attempts = 2);
    let err = call(&p, &CancellationToken::new()).await.unwrap_err();
    assert!(matches!(err, ProviderError::Transport(_)), "{err:?}");
}

#[tokio::test]
async fn requests_carry_the_trace_they_are_made_in_sampled_or_not() {
    use neuroflow_kit::TraceContext;
    use neuroflow_kit::propagation::with_trace;
    let server = MockServer::start(vec![ok_stream(), ok_stream(), ok_stream()]).await;
    let p = provider(&server.url, |_| {});
    let cancel = CancellationToken::new();
    assert_eq!(call(&p, &cancel).await.unwrap(), "hi");
    let headers = ["01", "00"]
        .map(|flags| format!("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-{flags}"));
    for header in &headers {
        let trace = TraceContext::parse(header, None).unwrap();
        let answer = with_trace(trace, tracing::Span::none(), call(&p, &cancel)).await;
        assert_eq!(answer.unwrap(), "hi");
    }
    let sent: Vec<Option<String>> = server
        .requests()
        .iter()
        .map(|r| r.header("traceparent").map(String::from))
        .collect();
    // None outside a trace; the caller's otherwise, its `sampled` flag kept: a server
    // that traces follows the decision not to record as well.
    assert_eq!(
        sent,
        [None, Some(headers[0].clone()), Some(headers[1].clone())]
    );
}
