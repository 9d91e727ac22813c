//! Helpers of the HTTP API tests: scripted agents, requests, and the error shape.
#![allow(dead_code)]

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{Node, NodeBuilder, TempDir};

pub const RULES: &str = r#"
[[rule]]
name = "time"
contains = ["time"]
calls = [{ tool = "time.now", args = {} }]
reply = "The time is {tool_result}."

[[rule]]
name = "slow"
contains = ["slowly"]
reply = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen twenty"

[[rule]]
name = "hello"
contains = ["hello"]
reply = "Hello there, friend."
"#;

pub fn node_with_rules(dir: &TempDir) -> NodeBuilder {
    let rules = dir.file("rules.toml", RULES);
    let slow = dir.file(
        "slow.toml",
        &format!("[settings]\ndelta_delay_ms = 300\n{RULES}"),
    );
    NodeBuilder::serve().config(&format!(
        "[providers.rules]\nkind = \"scripted\"\nrules = \"{}\"\n\
         [providers.slow]\nkind = \"scripted\"\nrules = \"{}\"\n",
        rules.display(),
        slow.display()
    ))
}

pub fn agent(name: &str, provider: &str) -> Value {
    json!({"name": name, "provider": provider, "tools": ["time.*"], "system_prompt": "Be brief."})
}

pub async fn create(http: &reqwest::Client, node: &Node, spec: &Value) -> Value {
    let response = http
        .post(node.url("/api/v1/agents"))
        .json(spec)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json().await.unwrap()
}

pub async fn say(
    http: &reqwest::Client,
    node: &Node,
    agent: &str,
    body: Value,
) -> (StatusCode, Value) {
    let response = http
        .post(node.url(&format!("/api/v1/agents/{agent}/messages")))
        .json(&body)
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap())
}

pub fn assert_error(body: &Value, code: &str) {
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
}

/// A token whose header says `alg` but that is otherwise well formed.
pub fn forged(alg: &str, signature: &str) -> String {
    let header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#));
    let claims = URL_SAFE_NO_PAD
        .encode(r#"{"sub":"admin","role":"admin","iss":"neuroflow","iat":1,"exp":99999999999}"#);
    format!("{header}.{claims}.{signature}")
}

/// Sends `request` and gives its status (panics on a transport error).
pub async fn status_of(request: reqwest::RequestBuilder) -> StatusCode {
    request
        .send()
        .await
        .expect("the request is answered")
        .status()
}
