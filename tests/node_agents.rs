//! Agents on a node: the scripted provider, built-in tools through the router, agents as
//! tools, code in the sandbox, and a thousand agents at once.

mod common;

use std::time::Duration;

use common::{TempDir, ask, require_isolation};
use neuroflow::kit::protocol::agent::{AgentEvent, AgentMsg, AgentReply, AgentSpec};
use neuroflow::{Config, Node};
use serde_json::json;

const T: Duration = Duration::from_secs(30);

/// Rules of a scripted provider `team`: the boss asks the helper, the coder runs code.
const TEAM_RULES: &str = r#"
[[rule]]
name = "delegate"
contains = ["delegate"]
calls = [{ tool = "agent.helper", args = { message = "echo handled by the helper" } }]
reply = "The helper says: {tool_result}"

[[rule]]
name = "code"
contains = ["run code"]
calls = [{ tool = "sandbox.exec", args = { code = "echo from-the-sandbox; id -u" } }]
reply = "{tool_result}"
"#;

async fn node(dir: &TempDir) -> Node {
    let rules = dir.file("team.toml", TEAM_RULES);
    let text = format!(
        "[node]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{data}\"\n\
         [sandbox]\ninit_program = \"{bin}\"\n\
         [providers.team]\nkind = \"scripted\"\nrules = \"{rules}\"\n",
        data = dir.path().join("data").display(),
        bin = env!("CARGO_BIN_EXE_neuroflow-node"),
        rules = rules.display(),
    );
    let path = dir.file("node.toml", &text);
    let config = Config::load(Some(&path), &|_| None, &Default::default()).unwrap();
    Node::start(&config).await.unwrap()
}

fn spec(value: serde_json::Value) -> AgentSpec {
    serde_json::from_value(value).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scripted_agent_uses_a_built_in_tool_through_the_router() {
    let dir = TempDir::new("agents-time");
    let node = node(&dir).await;
    let agent = node
        .agents()
        .spawn(spec(json!({"name": "clock", "tools": ["time.*"]})))
        .await
        .unwrap();
    let mut events = agent.state.subscribe();
    let AgentReply::Answer { text, steps, .. } = ask(&node, "clock", "what time is it?").await
    else {
        panic!("no answer");
    };
    assert!(text.starts_with("The time is "), "{text}");
    assert!(
        text.contains("unix"),
        "the tool's result is in the answer: {text}"
    );
    assert_eq!(steps, 2);
    let mut tool_calls = Vec::new();
    while let Ok(event) = events.try_recv() {
        if let AgentEvent::ToolCallEnd { name, is_error, .. } = event.event {
            tool_calls.push((name, is_error));
        }
    }
    assert_eq!(tool_calls, [("time.now".to_string(), false)]);
    // The agent is a supervised actor, and a tool for other agents.
    let tree = node.supervisor("agents").unwrap().tree(T).await.unwrap();
    assert_eq!(tree.children[0].path, "node/agents/clock");
    assert!(
        node.tools()
            .list(&["agent.*".into()])
            .iter()
            .any(|t| t.name == "agent.clock")
    );
    assert!(
        node.agents()
            .spawn(spec(json!({"name": "clock"})))
            .await
            .is_err()
    );
    assert!(node.agents().remove("clock").await);
    assert!(node.tools().list(&["agent.*".into()]).is_empty());
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_delegates_to_another_agent_as_a_tool() {
    let dir = TempDir::new("agents-team");
    let node = node(&dir).await;
    node.agents()
        .spawn(spec(
            json!({"name": "helper", "description": "Echoes things."}),
        ))
        .await
        .unwrap();
    node.agents()
        .spawn(spec(
            json!({"name": "boss", "provider": "team", "tools": ["agent.*"]}),
        ))
        .await
        .unwrap();
    let AgentReply::Answer { text, .. } = ask(&node, "boss", "delegate this").await else {
        panic!("no answer");
    };
    assert_eq!(text, "The helper says: handled by the helper");
    // The helper's own conversation holds the delegated turn.
    let helper = node.agents().get("helper").unwrap();
    assert_eq!(helper.state.conversation().len(), 2);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_runs_code_in_its_sandbox_profile() {
    let host = neuroflow_sandbox::HostSupport::detect();
    if !host.is_root
        || host
            .missing(&neuroflow_sandbox::Profile::builtin("strict").unwrap())
            .is_some()
    {
        assert!(!require_isolation(), "sandbox required but unavailable");
        eprintln!("skipping: no sandbox on this host");
        return;
    }
    let dir = TempDir::new("agents-code");
    let node = node(&dir).await;
    node.agents()
        .spawn(spec(json!({
            "name": "coder", "provider": "team", "tools": ["sandbox.exec"],
            "sandbox_profile": "strict"
        })))
        .await
        .unwrap();
    let AgentReply::Answer { text, .. } = ask(&node, "coder", "run code please").await else {
        panic!("no answer");
    };
    let result: serde_json::Value = serde_json::from_str(&text).unwrap_or(json!(text));
    let rendered = result.to_string();
    assert!(rendered.contains("from-the-sandbox"), "{rendered}");
    assert!(
        rendered.contains("65534"),
        "ran as the sandbox user: {rendered}"
    );
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_agents_each_complete_a_turn_with_a_tool_call() {
    let dir = TempDir::new("agents-many");
    let node = node(&dir).await;
    let mut turns = tokio::task::JoinSet::new();
    for i in 0..1000 {
        let agent = node
            .agents()
            .spawn(spec(
                json!({"name": format!("a{i}"), "tools": ["time.now"]}),
            ))
            .await
            .unwrap();
        turns.spawn(async move {
            agent
                .handle
                .call(
                    AgentMsg::Chat {
                        message: "what time is it?".into(),
                        turn_id: None,
                        conversation: None,
                    },
                    T,
                )
                .await
        });
    }
    let mut answered = 0;
    while let Some(turn) = turns.join_next().await {
        match turn.unwrap().unwrap() {
            AgentReply::Answer { text, .. } if text.starts_with("The time is ") => answered += 1,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(answered, 1000);
    assert_eq!(node.agents().names().len(), 1000);
    // Per node: the sum over every agent's calls (two model calls a turn).
    let per_agent = node.agents().get("a0").unwrap().state.spent();
    assert!(per_agent.total_tokens() > 0);
    assert_eq!(
        node.agents().spent().total_tokens(),
        1000 * per_agent.total_tokens(),
        "every agent asked the same thing"
    );
    node.stop().await;
}
