//! The node's HTTP API against the real binary: agents and their conversations kept across
//! restarts (and a kill -9), turns as JSON and as SSE, the live event WebSocket, sandboxes,
//! and the API's error shape, limits and logs.

mod common;

use std::time::Duration;

use futures_util::StreamExt;
use neuroflow::auth::Role;
use nix::sys::signal::Signal;
use reqwest::StatusCode;
use serde_json::{Value, json};

use common::api::{agent, assert_error, create, node_with_rules, say, status_of};
use common::{NodeBuilder, TempDir, client, client_as, token};

#[tokio::test]
async fn agents_and_conversations_survive_restarts_and_turns_stream() {
    let dir = TempDir::new("api-rules");
    let node = node_with_rules(&dir).start();
    let http = client();

    let created = create(&http, &node, &agent("clock", "rules")).await;
    assert_eq!(created["name"], "clock");
    assert_eq!(created["stored"], true);
    assert_eq!(created["busy"], false);
    let first_conversation = created["conversation"].as_str().unwrap().to_string();

    // Refusals name the field.
    assert_eq!(
        status_of(
            http.post(node.url("/api/v1/agents"))
                .json(&agent("clock", "rules"))
        )
        .await,
        409
    );
    for (spec, field) in [
        (agent("bad name!", "rules"), "name"),
        (agent("x", "nowhere"), "provider"),
        (json!({"name": "x", "max_steps": 0}), "max_steps"),
        (json!({"name": "x", "colour": "red"}), ""),
        (
            json!({"name": "x", "budget": {"max_tokens": "lots"}}),
            "budget.max_tokens",
        ),
    ] {
        let response = http
            .post(node.url("/api/v1/agents"))
            .json(&spec)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{spec}");
        let body: Value = response.json().await.unwrap();
        assert_error(&body, "invalid");
        if !field.is_empty() {
            assert_eq!(body["error"]["field"], field, "{body}");
        } else {
            assert!(
                body["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("colour"),
                "{body}"
            );
        }
    }

    // A turn with a tool call, answered as JSON once it is stored.
    let (status, answer) = say(
        &http,
        &node,
        "clock",
        json!({"message": "what time is it?"}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert!(
        answer["text"].as_str().unwrap().starts_with("The time is "),
        "{answer}"
    );
    assert_eq!(answer["conversation"], first_conversation.as_str());
    assert_eq!(answer["steps"], 2);

    // The same conversation, streamed.
    let response = http
        .post(node.url("/api/v1/agents/clock/messages"))
        .header("accept", "text/event-stream")
        .json(&json!({"message": "hello"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let text = tokio::time::timeout(Duration::from_secs(10), response.text())
        .await
        .unwrap()
        .unwrap();
    let names: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("event:"))
        .map(str::trim)
        .collect();
    assert_eq!(names.first(), Some(&"turn"), "{text}");
    assert_eq!(names.last(), Some(&"final"), "{text}");
    assert!(names.contains(&"text_delta"), "{text}");
    let streamed: String = text
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
        .filter(|v| v["type"] == "text_delta")
        .map(|v| v["text"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(streamed, "Hello there, friend.");

    // A new conversation, then the stored history of the first, tool call included.
    let (_, fresh) = say(
        &http,
        &node,
        "clock",
        json!({"message": "hello", "conversation": "new"}),
    )
    .await;
    let second_conversation = fresh["conversation"].as_str().unwrap().to_string();
    assert_ne!(second_conversation, first_conversation);
    let listed: Value = node
        .get_json(&http, "/api/v1/agents/clock/conversations?limit=1")
        .await;
    assert_eq!(
        listed["items"][0]["id"],
        second_conversation.as_str(),
        "{listed}"
    );
    let cursor = listed["next_cursor"].as_str().unwrap().to_string();
    let next: Value = node
        .get_json(
            &http,
            &format!("/api/v1/agents/clock/conversations?limit=1&cursor={cursor}"),
        )
        .await;
    assert_eq!(
        next["items"][0]["id"],
        first_conversation.as_str(),
        "{next}"
    );
    assert_eq!(next["items"][0]["messages"], 6, "{next}");
    assert_eq!(next["next_cursor"], Value::Null);
    let history: Value = node
        .get_json(
            &http,
            &format!("/api/v1/conversations/{first_conversation}"),
        )
        .await;
    let messages = history["messages"].as_array().unwrap();
    let roles: Vec<&str> = messages
        .iter()
        .map(|m| m["message"]["role"].as_str().unwrap())
        .collect();
    assert_eq!(
        roles,
        [
            "user",
            "assistant",
            "tool",
            "assistant",
            "user",
            "assistant"
        ]
    );
    assert_eq!(messages[1]["message"]["tool_calls"][0]["name"], "time.now");
    assert!(messages[1]["usage"]["input_tokens"].as_u64().unwrap() > 0);

    // A restart brings the agent back in its latest conversation.
    let node = node.restart(Signal::SIGTERM);
    let back: Value = node.get_json(&http, "/api/v1/agents/clock").await;
    assert_eq!(back["conversation"], second_conversation.as_str(), "{back}");
    let (status, _) = say(
        &http,
        &node,
        "clock",
        json!({"message": "hello", "conversation": first_conversation}),
    )
    .await;
    assert_eq!(status, 200);
    let history: Value = node
        .get_json(
            &http,
            &format!("/api/v1/conversations/{first_conversation}"),
        )
        .await;
    assert_eq!(history["messages"].as_array().unwrap().len(), 8);
    // An id the agent has not used starts a conversation of that id; another agent's is
    // refused.
    let (status, body) = say(
        &http,
        &node,
        "clock",
        json!({"message": "hi", "conversation": "mine-1"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["conversation"], "mine-1");
    create(&http, &node, &agent("other", "rules")).await;
    let (status, body) = say(
        &http,
        &node,
        "other",
        json!({"message": "hi", "conversation": "mine-1"}),
    )
    .await;
    assert_eq!(status, 409, "{body}");

    // Update keeps the conversation; delete forgets it all, also across a restart.
    let mut spec = agent("clock", "rules");
    spec["system_prompt"] = json!("Be terse.");
    let updated: Value = http
        .put(node.url("/api/v1/agents/clock"))
        .json(&spec)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(updated["spec"]["system_prompt"], "Be terse.");
    assert_eq!(updated["conversation"], "mine-1");
    assert_eq!(
        status_of(http.delete(node.url("/api/v1/agents/clock"))).await,
        204
    );
    assert_eq!(
        status_of(http.delete(node.url("/api/v1/agents/clock"))).await,
        404
    );
    let node = node.restart(Signal::SIGTERM);
    let list: Value = node.get_json(&http, "/api/v1/agents").await;
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["other"], "{list}");
    assert_eq!(
        status_of(http.get(node.url(&format!("/api/v1/conversations/{first_conversation}")))).await,
        404
    );
}

#[tokio::test]
async fn a_running_turn_can_be_watched_live_and_cancelled() {
    let dir = TempDir::new("api-cancel");
    let node = node_with_rules(&dir).start();
    let http = client();
    create(&http, &node, &agent("slowpoke", "slow")).await;
    create(&http, &node, &agent("other", "rules")).await;

    let url = format!(
        "ws://{}/api/v1/events?agent=slowpoke&access_token={}",
        node.addr(),
        token("viewer", Role::Viewer)
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    // Without a token the upgrade is refused.
    let refused =
        tokio_tungstenite::connect_async(format!("ws://{}/api/v1/events", node.addr())).await;
    assert!(refused.is_err());

    let (status, _) = say(&http, &node, "other", json!({"message": "hello"})).await;
    assert_eq!(status, 200);
    let turn = {
        let http = http.clone();
        let url = node.url("/api/v1/agents/slowpoke/messages");
        tokio::spawn(async move {
            let response = http
                .post(url)
                .json(&json!({"message": "answer slowly"}))
                .send()
                .await
                .unwrap();
            (response.status(), response.json::<Value>().await.unwrap())
        })
    };
    // The first event seen is slowpoke's: the filter kept the other agent's turn out.
    let frame = tokio::time::timeout(Duration::from_secs(10), socket.next())
        .await
        .expect("an event within 10 s")
        .unwrap()
        .unwrap();
    let event: Value = serde_json::from_str(frame.to_text().unwrap()).unwrap();
    assert_eq!(event["agent"], "slowpoke", "{event}");
    assert_eq!(event["event"]["type"], "text_delta", "{event}");
    let busy: Value = node.get_json(&http, "/api/v1/agents/slowpoke").await;
    assert_eq!(busy["busy"], true);

    let cancelled: Value = http
        .post(node.url("/api/v1/agents/slowpoke/cancel"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(cancelled["cancelled"], true);
    let (status, body) = tokio::time::timeout(Duration::from_secs(10), turn)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status, 422, "{body}");
    assert_error(&body, "turn_failed");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("cancelled"),
        "{body}"
    );
    // The socket saw the turn end with its error.
    let mut last = Value::Null;
    for _ in 0..100 {
        let frame = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("events until the error")
            .unwrap()
            .unwrap();
        last = serde_json::from_str(frame.to_text().unwrap()).unwrap();
        if last["event"]["type"] != "text_delta" {
            break;
        }
    }
    assert_eq!(last["event"]["type"], "error", "{last}");
}

#[tokio::test]
async fn acknowledged_agents_survive_kill_9_under_load() {
    let node = NodeBuilder::serve().start();
    let http = client();
    let mut creating = tokio::task::JoinSet::new();
    for i in 0..400 {
        let (http, url) = (http.clone(), node.url("/api/v1/agents"));
        creating.spawn(async move {
            let response = http
                .post(url)
                .json(&json!({"name": format!("a{i:03}")}))
                .send()
                .await
                .ok()?;
            (response.status() == StatusCode::CREATED).then_some(format!("a{i:03}"))
        });
    }
    // Kill in the middle of the load, acknowledging what was acknowledged by then.
    let mut acknowledged = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while acknowledged.len() < 100 && tokio::time::Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(10), creating.join_next()).await {
            Ok(Some(Ok(Some(name)))) => acknowledged.push(name),
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
    let node = node.restart(Signal::SIGKILL);
    creating.abort_all();
    assert!(
        acknowledged.len() >= 100,
        "only {} acknowledged",
        acknowledged.len()
    );
    let mut present = std::collections::BTreeSet::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let path = match &cursor {
            Some(c) => format!("/api/v1/agents?limit=200&cursor={c}"),
            None => "/api/v1/agents?limit=200".to_string(),
        };
        let page: Value = node.get_json(&http, &path).await;
        for item in page["items"].as_array().unwrap() {
            present.insert(item["name"].as_str().unwrap().to_string());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    let lost: Vec<&String> = acknowledged
        .iter()
        .filter(|a| !present.contains(*a))
        .collect();
    assert!(
        lost.is_empty(),
        "acknowledged but lost after kill -9: {lost:?}"
    );
}

#[tokio::test]
async fn bodies_are_bounded_and_typed() {
    let node = NodeBuilder::serve()
        .config("[api]\nmax_body_bytes = 4096\n")
        .start();
    let http = client();
    let big = json!({"name": "big", "system_prompt": "x".repeat(8000)});
    let response = http
        .post(node.url("/api/v1/agents"))
        .json(&big)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    assert_error(&response.json().await.unwrap(), "payload_too_large");
    assert_eq!(
        status_of(
            http.post(node.url("/api/v1/agents"))
                .header("content-type", "application/json")
                .body("{not json")
        )
        .await,
        400
    );
    let response = http
        .get(node.url("/api/v1/agents?limit=0"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["field"], "limit", "{body}");
    assert_eq!(
        status_of(http.get(node.url("/api/v1/tools?colour=red"))).await,
        400
    );

    let tools: Value = node.get_json(&http, "/api/v1/tools?limit=200").await;
    let names: Vec<&str> = tools["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"time.now"), "{names:?}");
    assert!(tools["items"][0]["parameters"].is_object());
    let info: Value = node.get_json(&http, "/api/v1/node/info").await;
    assert!(
        info["providers"]
            .as_array()
            .unwrap()
            .contains(&json!("scripted"))
    );
    let summary: Value = node.get_json(&http, "/api/v1/node/summary").await;
    assert!(
        summary["totals"]["http_requests"].as_u64().unwrap() >= 5,
        "{summary}"
    );
    let openapi: Value = node.get_json(&http, "/api/v1/openapi.json").await;
    assert!(openapi["openapi"].as_str().unwrap().starts_with("3.1"));
}

#[tokio::test]
async fn operators_run_commands_in_sandboxes() {
    let node = NodeBuilder::serve().start();
    let body =
        json!({"command": "sh", "args": ["-c", "read x; echo got $x; exit 3"], "stdin": "it\n"});
    let viewer = client_as(Some(Role::Viewer));
    assert_eq!(
        status_of(viewer.post(node.url("/api/v1/sandboxes/exec")).json(&body)).await,
        403
    );
    let http = client_as(Some(Role::Operator));
    let response = http
        .post(node.url("/api/v1/sandboxes/exec"))
        .json(&json!({"command": "true", "profile": "nope"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let refused: Value = response.json().await.unwrap();
    assert_eq!(refused["error"]["field"], "profile");

    let response = http
        .post(node.url("/api/v1/sandboxes/exec"))
        .json(&body)
        .send()
        .await
        .unwrap();
    if response.status() == 503 && !common::require_isolation() {
        let body: Value = response.json().await.unwrap();
        eprintln!("skipping the sandbox run: {}", body["error"]["message"]);
        return;
    }
    assert_eq!(response.status(), 200);
    let outcome: Value = response.json().await.unwrap();
    assert_eq!(outcome["end"], "exited", "{outcome}");
    assert_eq!(outcome["exit_code"], 3, "{outcome}");
    assert_eq!(outcome["stdout"], "got it\n", "{outcome}");
    let listed: Value = node.get_json(&client(), "/api/v1/sandboxes").await;
    assert!(
        listed["profiles"]
            .as_array()
            .unwrap()
            .contains(&json!("standard")),
        "{listed}"
    );
}

#[tokio::test]
async fn json_log_lines_carry_the_request_trace() {
    let node = NodeBuilder::serve()
        .config("[log]\nformat = \"json\"\n")
        .start();
    let trace_id = "0af7651916cd43dd8448eb211c80319c";
    assert_eq!(
        status_of(
            client()
                .post(node.url("/api/v1/agents"))
                .header("traceparent", format!("00-{trace_id}-b7ad6b7169203331-01"))
                .json(&json!({"name": "logged"}))
        )
        .await,
        201
    );
    let line = common::eventually(Duration::from_secs(5), "the log line", || async {
        node.process
            .stderr()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|l| l["fields"]["message"] == "agent created")
    })
    .await;
    assert_eq!(line["trace_id"], trace_id, "{line}");
    assert_eq!(line["level"], "INFO", "{line}");
    assert_eq!(line["fields"]["agent"], "logged", "{line}");
    assert!(
        line["span_id"].as_str().is_some_and(|s| s.len() == 16),
        "{line}"
    );
}
