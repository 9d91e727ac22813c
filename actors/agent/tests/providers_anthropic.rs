//! The Anthropic provider against a loopback server speaking the Messages streaming
//! format (events shaped as the real API sends them).

mod support;

use std::sync::Arc;

use neuroflow_agent::provider::{
    AnthropicConfig, AnthropicProvider, ApiKey, CancellationToken, LlmChunk, LlmProvider,
    LlmRequest, LlmResponse, ModelPrice, Pricing, ProviderError, StopReason,
};
use neuroflow_kit::protocol::agent::{ChatMessage, ToolCall};
use neuroflow_kit::protocol::router::ToolSpec;
use serde_json::{Value, json};
use support::{End, MockServer, Reply, typed_events};

const MODEL: &str = "claude-sonnet-4-5";

fn message_start(input_tokens: u64) -> Value {
    json!({"type": "message_start", "message": {
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL", "type": "message", "role": "assistant",
        "content": [], "model": MODEL, "stop_reason": null, "stop_sequence": null,
        "usage": {"input_tokens": input_tokens, "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0, "output_tokens": 1}}})
}

fn text_start(index: u64) -> Value {
    json!({"type": "content_block_start", "index": index,
        "content_block": {"type": "text", "text": ""}})
}

fn text_delta(index: u64, text: &str) -> Value {
    json!({"type": "content_block_delta", "index": index,
        "delta": {"type": "text_delta", "text": text}})
}

fn tool_start(index: u64, id: &str, name: &str) -> Value {
    json!({"type": "content_block_start", "index": index,
        "content_block": {"type": "tool_use", "id": id, "name": name, "input": {}}})
}

fn json_delta(index: u64, partial: &str) -> Value {
    json!({"type": "content_block_delta", "index": index,
        "delta": {"type": "input_json_delta", "partial_json": partial}})
}

fn block_stop(index: u64) -> Value {
    json!({"type": "content_block_stop", "index": index})
}

fn message_delta(stop_reason: &str, output_tokens: u64) -> Value {
    json!({"type": "message_delta",
        "delta": {"stop_reason": stop_reason, "stop_sequence": null},
        "usage": {"output_tokens": output_tokens}})
}

fn message_stop() -> Value {
    json!({"type": "message_stop"})
}

fn text_answer() -> Vec<Value> {
    vec![
        message_start(25),
        text_start(0),
        json!({"type": "ping"}),
        text_delta(0, "Hello"),
        text_delta(0, "!"),
        block_stop(0),
        message_delta("end_turn", 15),
        message_stop(),
    ]
}

fn provider(url: &str) -> AnthropicProvider {
    let config = AnthropicConfig {
        base_url: url.into(),
        api_key: Some(ApiKey::new("sk-ant-test")),
        ..Default::default()
    };
    let mut pricing = Pricing::default();
    let price = ModelPrice {
        input: 3.0,
        output: 15.0,
    };
    pricing.set("claude-sonnet-4*", price).unwrap();
    AnthropicProvider::new(config, Arc::new(pricing)).unwrap()
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
    LlmRequest::new(MODEL, vec![ChatMessage::user("Hello")])
}

fn tool(name: &str) -> ToolSpec {
    ToolSpec {
        provider: "local".into(),
        name: name.into(),
        description: "gets the weather".into(),
        parameters: json!({"type": "object", "properties": {"location": {"type": "string"}},
            "required": ["location"]}),
    }
}

#[tokio::test]
async fn streamed_text_answer_with_usage_and_cost() {
    let mut events = typed_events(&text_answer());
    let split = events.remove(3);
    let (a, b) = split.split_at(10);
    events.insert(3, b.to_string());
    events.insert(3, a.to_string());
    let server = MockServer::start(vec![Reply::stream(events)]).await;
    let (r, chunks) = run(&provider(&server.url), &hello()).await;
    let r = r.unwrap();
    assert_eq!(r.text, "Hello!");
    assert_eq!(r.stop_reason, StopReason::EndTurn);
    assert_eq!((r.usage.input_tokens, r.usage.output_tokens), (25, 15));
    assert!(!r.usage_estimated);
    let cost = (25.0 * 3.0 + 15.0 * 15.0) / 1e6;
    assert!((r.usage.cost_usd - cost).abs() < 1e-12);
    assert_eq!(
        chunks,
        vec![
            LlmChunk::TextDelta("Hello".into()),
            LlmChunk::TextDelta("!".into()),
            LlmChunk::Usage(r.usage),
        ]
    );
}

#[tokio::test]
async fn tool_use_blocks_are_assembled_after_text() {
    let events = vec![
        message_start(400),
        text_start(0),
        text_delta(0, "Let me check."),
        block_stop(0),
        tool_start(1, "toolu_01A", "weather_get"),
        json_delta(1, ""),
        json_delta(1, "{\"location\": \"San"),
        json_delta(1, " Francisco, CA\"}"),
        block_stop(1),
        tool_start(2, "toolu_01B", "time_now"),
        block_stop(2),
        message_delta("tool_use", 89),
        message_stop(),
    ];
    let server = MockServer::start(vec![Reply::stream(typed_events(&events))]).await;
    let mut req = hello();
    req.tools = vec![tool("weather.get"), tool("time.now")];
    let (r, chunks) = run(&provider(&server.url), &req).await;
    let r = r.unwrap();
    assert_eq!(r.text, "Let me check.");
    assert_eq!(r.stop_reason, StopReason::ToolUse);
    assert_eq!(
        r.tool_calls,
        vec![
            ToolCall {
                id: "toolu_01A".into(),
                name: "weather.get".into(),
                arguments: json!({"location": "San Francisco, CA"}),
            },
            ToolCall {
                id: "toolu_01B".into(),
                name: "time.now".into(),
                arguments: json!({}),
            },
        ]
    );
    assert!(chunks.contains(&LlmChunk::ToolCallStart {
        index: 0,
        id: "toolu_01A".into(),
        name: "weather.get".into()
    }));
    assert_eq!(r.usage.output_tokens, 89);
}

#[tokio::test]
async fn request_body_and_headers_follow_the_api() {
    let server = MockServer::start(vec![Reply::stream(typed_events(&text_answer()))]).await;
    let mut assistant = ChatMessage::assistant("Checking.");
    assistant.tool_calls = vec![
        ToolCall {
            id: "toolu_1".into(),
            name: "weather.get".into(),
            arguments: json!({"location": "Paris"}),
        },
        ToolCall {
            id: "toolu_2".into(),
            name: "weather.get".into(),
            arguments: json!({"location": "Oslo"}),
        },
    ];
    let mut req = LlmRequest::new(
        MODEL,
        vec![
            ChatMessage::system("You are terse."),
            ChatMessage::user("Weather in Paris and Oslo?"),
            assistant,
            ChatMessage::tool_result("toolu_1", "18°C", false),
            ChatMessage::tool_result("toolu_2", "station offline", true),
        ],
    );
    req.tools = vec![tool("weather.get")];
    req.temperature = Some(0.0);
    let (r, _) = run(&provider(&server.url), &req).await;
    r.unwrap();
    let got = &server.requests()[0];
    assert_eq!(
        (got.method.as_str(), got.path.as_str()),
        ("POST", "/v1/messages")
    );
    assert_eq!(got.header("x-api-key"), Some("sk-ant-test"));
    assert_eq!(got.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(got.header("authorization"), None);
    assert_eq!(
        got.body,
        json!({
            "model": MODEL,
            "max_tokens": 4096,
            "stream": true,
            "temperature": 0.0,
            "system": "You are terse.",
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "Weather in Paris and Oslo?"}]},
                {"role": "assistant", "content": [
                    {"type": "text", "text": "Checking."},
                    {"type": "tool_use", "id": "toolu_1", "name": "weather_get", "input": {"location": "Paris"}},
                    {"type": "tool_use", "id": "toolu_2", "name": "weather_get", "input": {"location": "Oslo"}}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18°C"},
                    {"type": "tool_result", "tool_use_id": "toolu_2", "content": "station offline", "is_error": true}
                ]}
            ],
            "tools": [{"name": "weather_get", "description": "gets the weather",
                "input_schema": {"type": "object", "properties": {"location": {"type": "string"}},
                    "required": ["location"]}}]
        })
    );
}

#[tokio::test]
async fn an_error_event_is_an_api_error() {
    let events = vec![
        message_start(10),
        text_start(0),
        text_delta(0, "Hi"),
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
    ];
    let server = MockServer::start(vec![Reply::stream(typed_events(&events))]).await;
    let (r, _) = run(&provider(&server.url), &hello()).await;
    match r {
        Err(e @ ProviderError::Api { .. }) => {
            assert_eq!(e.to_string(), "overloaded_error: Overloaded");
            assert!(e.is_transient());
        }
        other => panic!("expected Api, got {other:?}"),
    }
}

#[tokio::test]
async fn a_cut_connection_mid_stream_is_truncated() {
    let mut events = typed_events(&text_answer());
    events.truncate(4);
    let server = MockServer::start(vec![Reply::Stream {
        chunks: events,
        gap: std::time::Duration::ZERO,
        end: End::Cut,
    }])
    .await;
    let (r, _) = run(&provider(&server.url), &hello()).await;
    assert!(matches!(r, Err(ProviderError::Truncated { .. })), "{r:?}");
}

#[tokio::test]
async fn a_stream_ending_before_message_delta_is_truncated() {
    let mut events = typed_events(&text_answer());
    events.truncate(5);
    let server = MockServer::start(vec![Reply::stream(events)]).await;
    let (r, _) = run(&provider(&server.url), &hello()).await;
    match r {
        Err(ProviderError::Truncated { what }) => assert!(what.contains("message_stop"), "{what}"),
        other => panic!("expected Truncated, got {other:?}"),
    }
}

#[tokio::test]
async fn bad_tool_input_json_and_bad_events_are_malformed() {
    let bad_input = vec![
        message_start(1),
        tool_start(0, "toolu_1", "weather_get"),
        json_delta(0, "{\"location\": \"Par"),
        message_delta("tool_use", 5),
        message_stop(),
    ];
    let bad_event = vec![
        message_start(1),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta"}}),
    ];
    let unknown_block = vec![message_start(1), json_delta(3, "{}")];
    for (events, expect) in [
        (bad_input, "tool call 0 (weather.get)"),
        (bad_event, "content_block_delta event is not valid"),
        (unknown_block, "never started"),
    ] {
        let server = MockServer::start(vec![Reply::stream(typed_events(&events))]).await;
        let mut req = hello();
        req.tools = vec![tool("weather.get")];
        let (r, _) = run(&provider(&server.url), &req).await;
        match r {
            Err(ProviderError::Malformed { what }) => assert!(what.contains(expect), "{what}"),
            other => panic!("expected Malformed ({expect}), got {other:?}"),
        }
    }
}

#[tokio::test]
async fn overloaded_529_is_retried() {
    let overloaded = Reply::status(
        529,
        &[("content-type", "application/json")],
        r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
    );
    let server = MockServer::start(vec![
        overloaded,
        Reply::stream(typed_events(&text_answer())),
    ])
    .await;
    let mut config = AnthropicConfig {
        base_url: server.url.clone(),
        ..Default::default()
    };
    config.http.retry.initial_backoff_ms = 10;
    let p = AnthropicProvider::new(config, Arc::default()).unwrap();
    let (r, _) = run(&p, &hello()).await;
    assert_eq!(r.unwrap().text, "Hello!");
    assert_eq!(server.hits(), 2);
}
