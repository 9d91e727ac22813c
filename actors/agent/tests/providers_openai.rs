//! The OpenAI-compatible provider against a loopback server speaking the Chat
//! Completions streaming format (chunks shaped as the real API sends them).

mod support;

use std::sync::Arc;

use neuroflow_agent::provider::{
    ApiKey, CancellationToken, LlmChunk, LlmProvider, LlmRequest, LlmResponse, ModelPrice,
    OpenAiConfig, OpenAiProvider, Pricing, ProviderError, StopReason,
};
use neuroflow_kit::protocol::agent::{ChatMessage, ToolCall};
use neuroflow_kit::protocol::router::ToolSpec;
use serde_json::{Value, json};
use support::{End, MockServer, Reply, data_events};

fn chunk(delta: Value, finish: Option<&str>) -> String {
    json!({
        "id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG",
        "object": "chat.completion.chunk",
        "created": 1741570283,
        "model": "gpt-4o-mini-2024-07-18",
        "service_tier": "default",
        "system_fingerprint": "fp_06737a9306",
        "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
        "usage": null
    })
    .to_string()
}

fn usage_chunk(prompt: u64, completion: u64) -> String {
    json!({
        "id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG",
        "object": "chat.completion.chunk",
        "created": 1741570283,
        "model": "gpt-4o-mini-2024-07-18",
        "system_fingerprint": "fp_06737a9306",
        "choices": [],
        "usage": {
            "prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}
        }
    })
    .to_string()
}

fn text_stream(parts: &[&str]) -> Vec<String> {
    let mut payloads = vec![chunk(
        json!({"role": "assistant", "content": "", "refusal": null}),
        None,
    )];
    payloads.extend(parts.iter().map(|p| chunk(json!({"content": p}), None)));
    payloads.push(chunk(json!({}), Some("stop")));
    payloads.push(usage_chunk(9, 12));
    payloads.push("[DONE]".into());
    data_events(&payloads)
}

fn provider(url: &str) -> OpenAiProvider {
    let mut config = OpenAiConfig {
        base_url: format!("{url}/v1"),
        api_key: Some(ApiKey::new("sk-test")),
        ..Default::default()
    };
    config
        .extra_headers
        .insert("OpenAI-Organization".into(), "org-neuroflow".into());
    let mut pricing = Pricing::default();
    let price = ModelPrice {
        input: 0.15,
        output: 0.6,
    };
    pricing.set("gpt-4o-mini", price).unwrap();
    OpenAiProvider::new(config, Arc::new(pricing)).unwrap()
}

fn tool(name: &str) -> ToolSpec {
    ToolSpec {
        provider: "local".into(),
        name: name.into(),
        description: format!("the {name} tool"),
        parameters: json!({"type": "object", "properties": {"city": {"type": "string"}}}),
    }
}

async fn run(
    p: &dyn LlmProvider,
    req: &LlmRequest,
) -> (Result<LlmResponse, ProviderError>, Vec<LlmChunk>) {
    let mut chunks = Vec::new();
    let cancel = CancellationToken::new();
    let r = p.complete(req, &mut |c| chunks.push(c), &cancel).await;
    (r, chunks)
}

fn hello() -> LlmRequest {
    LlmRequest::new("gpt-4o-mini", vec![ChatMessage::user("Say hello")])
}

#[tokio::test]
async fn streamed_text_answer_with_usage_and_cost() {
    let mut events = text_stream(&["Hel", "lo, ", "world!"]);
    // One event split across two writes, mid-JSON, to exercise reassembly.
    let second = events.remove(2);
    let (a, b) = second.split_at(second.len() / 2);
    events.insert(2, b.to_string());
    events.insert(2, a.to_string());
    let server = MockServer::start(vec![Reply::stream(events)]).await;
    let (r, chunks) = run(&provider(&server.url), &hello()).await;
    let r = r.unwrap();
    assert_eq!(r.text, "Hello, world!");
    assert_eq!(r.stop_reason, StopReason::EndTurn);
    assert!(r.tool_calls.is_empty());
    assert_eq!((r.usage.input_tokens, r.usage.output_tokens), (9, 12));
    assert!(!r.usage_estimated);
    let cost = (9.0 * 0.15 + 12.0 * 0.6) / 1e6;
    assert!(
        (r.usage.cost_usd - cost).abs() < 1e-12,
        "{}",
        r.usage.cost_usd
    );
    let deltas: Vec<&LlmChunk> = chunks
        .iter()
        .filter(|c| matches!(c, LlmChunk::TextDelta(_)))
        .collect();
    assert_eq!(
        deltas,
        ["Hel", "lo, ", "world!"]
            .map(|t| LlmChunk::TextDelta(t.into()))
            .iter()
            .collect::<Vec<_>>()
    );
    assert_eq!(chunks.last(), Some(&LlmChunk::Usage(r.usage)));
}

#[tokio::test]
async fn parallel_tool_calls_are_assembled_by_index() {
    let call_start = |index: u64, id: &str, name: &str| {
        json!({"tool_calls": [{"index": index, "id": id, "type": "function",
            "function": {"name": name, "arguments": ""}}]})
    };
    let args = |index: u64, text: &str| json!({"tool_calls": [{"index": index, "function": {"arguments": text}}]});
    let payloads = vec![
        chunk(
            json!({"role": "assistant", "content": null, "refusal": null}),
            None,
        ),
        chunk(call_start(0, "call_w", "weather_lookup"), None),
        chunk(args(0, "{\"ci"), None),
        chunk(call_start(1, "call_t", "time_now"), None),
        chunk(args(0, "ty\": \"Par"), None),
        chunk(args(1, "{}"), None),
        chunk(args(0, "is\"}"), None),
        chunk(json!({}), Some("tool_calls")),
        usage_chunk(80, 40),
        "[DONE]".into(),
    ];
    let server = MockServer::start(vec![Reply::stream(data_events(&payloads))]).await;
    let mut req = LlmRequest::new("gpt-4o-mini", vec![ChatMessage::user("weather and time?")]);
    req.tools = vec![tool("weather.lookup"), tool("time.now")];
    let (r, chunks) = run(&provider(&server.url), &req).await;
    let r = r.unwrap();
    assert_eq!(r.stop_reason, StopReason::ToolUse);
    assert_eq!(
        r.tool_calls,
        vec![
            ToolCall {
                id: "call_w".into(),
                name: "weather.lookup".into(),
                arguments: json!({"city": "Paris"}),
            },
            ToolCall {
                id: "call_t".into(),
                name: "time.now".into(),
                arguments: json!({}),
            },
        ]
    );
    assert!(chunks.contains(&LlmChunk::ToolCallStart {
        index: 1,
        id: "call_t".into(),
        name: "time.now".into()
    }));
    let arg_text: String = chunks
        .iter()
        .filter_map(|c| match c {
            LlmChunk::ToolCallArgsDelta { index: 0, delta } => Some(delta.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(arg_text, "{\"city\": \"Paris\"}");
}

#[tokio::test]
async fn request_body_and_headers_follow_the_api() {
    let server = MockServer::start(vec![Reply::stream(text_stream(&["ok"]))]).await;
    let mut assistant = ChatMessage::assistant("");
    assistant.tool_calls = vec![ToolCall {
        id: "call_1".into(),
        name: "time.now".into(),
        arguments: json!({"tz": "UTC"}),
    }];
    let mut req = LlmRequest::new(
        "gpt-4o-mini",
        vec![
            ChatMessage::system("Be brief."),
            ChatMessage::user("time?"),
            assistant,
            ChatMessage::tool_result("call_1", "no clock", true),
            ChatMessage::user("thanks"),
        ],
    );
    req.tools = vec![tool("time.now")];
    req.max_tokens = Some(256);
    req.temperature = Some(0.5);
    let (r, _) = run(&provider(&server.url), &req).await;
    r.unwrap();
    let got = &server.requests()[0];
    assert_eq!(
        (got.method.as_str(), got.path.as_str()),
        ("POST", "/v1/chat/completions")
    );
    assert_eq!(got.header("authorization"), Some("Bearer sk-test"));
    assert_eq!(got.header("openai-organization"), Some("org-neuroflow"));
    assert_eq!(got.header("content-type"), Some("application/json"));
    assert_eq!(
        got.body,
        json!({
            "model": "gpt-4o-mini",
            "stream": true,
            "stream_options": {"include_usage": true},
            "max_tokens": 256,
            "temperature": 0.5,
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "time?"},
                {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1",
                    "type": "function",
                    "function": {"name": "time_now", "arguments": "{\"tz\":\"UTC\"}"}}]},
                {"role": "tool", "tool_call_id": "call_1", "content": "Error: no clock"},
                {"role": "user", "content": "thanks"}
            ],
            "tools": [{"type": "function", "function": {"name": "time_now",
                "description": "the time.now tool",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]
        })
    );
}

#[tokio::test]
async fn a_bad_json_chunk_is_malformed() {
    let mut events = text_stream(&["fine"]);
    events.insert(
        2,
        "data: {\"id\":\"x\",\"choices\":[{\"delta\":{\"content\":\"b\n\n".into(),
    );
    let server = MockServer::start(vec![Reply::stream(events)]).await;
    let (r, _) = run(&provider(&server.url), &hello()).await;
    match r {
        Err(ProviderError::Malformed { what }) => assert!(what.contains("not valid"), "{what}"),
        other => panic!("expected Malformed, got {other:?}"),
    }
}

#[tokio::test]
async fn tool_arguments_that_are_not_json_are_malformed_naming_the_call() {
    let payloads = vec![
        chunk(
            json!({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
            "function": {"name": "time_now", "arguments": "{\"tz\": "}}]}),
            None,
        ),
        chunk(json!({}), Some("tool_calls")),
        "[DONE]".into(),
    ];
    let server = MockServer::start(vec![Reply::stream(data_events(&payloads))]).await;
    let mut req = hello();
    req.tools = vec![tool("time.now")];
    let (r, _) = run(&provider(&server.url), &req).await;
    match r {
        Err(ProviderError::Malformed { what }) => {
            assert!(what.contains("tool call 0 (time.now)"), "{what}")
        }
        other => panic!("expected Malformed, got {other:?}"),
    }
}

#[tokio::test]
async fn a_cut_connection_mid_stream_is_truncated() {
    let mut events = text_stream(&["Hel", "lo"]);
    events.truncate(3);
    let server = MockServer::start(vec![Reply::Stream {
        chunks: events,
        gap: std::time::Duration::ZERO,
        end: End::Cut,
    }])
    .await;
    let (r, chunks) = run(&provider(&server.url), &hello()).await;
    assert!(matches!(r, Err(ProviderError::Truncated { .. })), "{r:?}");
    // What did arrive was streamed before the failure.
    assert!(chunks.contains(&LlmChunk::TextDelta("lo".into())));
}

#[tokio::test]
async fn a_stream_closed_cleanly_before_the_end_is_truncated() {
    let mut events = text_stream(&["Hel", "lo"]);
    events.truncate(3);
    let server = MockServer::start(vec![Reply::stream(events)]).await;
    let (r, _) = run(&provider(&server.url), &hello()).await;
    match r {
        Err(ProviderError::Truncated { what }) => assert!(what.contains("[DONE]"), "{what}"),
        other => panic!("expected Truncated, got {other:?}"),
    }
}

#[tokio::test]
async fn an_error_object_in_the_stream_is_an_api_error() {
    let error = json!({"error": {"message": "The server had an error", "type": "server_error",
        "param": null, "code": null}});
    let events = data_events(&[chunk(json!({"content": "a"}), None), error.to_string()]);
    let server = MockServer::start(vec![Reply::stream(events)]).await;
    let (r, _) = run(&provider(&server.url), &hello()).await;
    match r {
        Err(ProviderError::Api { kind, message }) => {
            assert_eq!(kind, "server_error");
            assert_eq!(message, "The server had an error");
        }
        other => panic!("expected Api, got {other:?}"),
    }
}

#[tokio::test]
async fn without_a_usage_chunk_usage_is_estimated_and_flagged() {
    // Like a server that ignores stream_options, and ends without [DONE].
    let payloads = vec![
        chunk(json!({"content": "twelve chars"}), None),
        chunk(json!({}), Some("stop")),
    ];
    let server = MockServer::start(vec![Reply::stream(data_events(&payloads))]).await;
    let (r, _) = run(&provider(&server.url), &hello()).await;
    let r = r.unwrap();
    assert!(r.usage_estimated);
    assert_eq!(r.usage.output_tokens, 3);
    assert_eq!(r.usage.input_tokens, 3, "\"Say hello\" is 9 bytes");
}

#[tokio::test]
async fn a_json_document_instead_of_a_stream_is_malformed() {
    let body = r#"{"id":"x","object":"chat.completion","choices":[]}"#;
    let reply = Reply::status(200, &[("content-type", "application/json")], body);
    let server = MockServer::start(vec![reply]).await;
    let (r, _) = run(&provider(&server.url), &hello()).await;
    match r {
        Err(ProviderError::Malformed { what }) => assert!(what.contains("event stream"), "{what}"),
        other => panic!("expected Malformed, got {other:?}"),
    }
}

#[tokio::test]
async fn oversized_events_and_bodies_are_refused() {
    let big = "x".repeat(4096);
    for (max_event, max_body) in [(1024, 1 << 20), (1 << 20, 2048)] {
        let server = MockServer::start(vec![Reply::stream(text_stream(&[&big]))]).await;
        let mut config = OpenAiConfig {
            base_url: format!("{}/v1", server.url),
            ..Default::default()
        };
        config.http.max_event_bytes = max_event;
        config.http.max_response_bytes = max_body;
        let p = OpenAiProvider::new(config, Arc::default()).unwrap();
        let (r, _) = run(&p, &hello()).await;
        assert!(
            matches!(
                r,
                Err(ProviderError::Malformed { .. } | ProviderError::TooLarge { limit: 2048 })
            ),
            "{r:?}"
        );
    }
}
