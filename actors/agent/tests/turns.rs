//! Agent turns under supervision: the tool loop, parallel calls, budgets, cancellation,
//! and a crash that keeps the conversation.
//!
//! The model and the tool router are test doubles at the agent's two boundaries (the
//! providers' HTTP code and the real router are tested in their own suites).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use neuroflow_agent::agent::{AgentActor, AgentDeps, AgentState};
use neuroflow_agent::provider::{
    CancellationToken, ChunkSink, LlmChunk, LlmProvider, LlmRequest, LlmResponse, ProviderError,
    StopReason,
};
use neuroflow_kit::actor::ActorHandle;
use neuroflow_kit::metrics::Metrics;
use neuroflow_kit::protocol::agent::{
    AgentEvent, AgentMsg, AgentReply, AgentSpec, Budget, ChatMessage, Role, ToolCall, Usage,
};
use neuroflow_kit::protocol::router::{RouterMsg, RouterReply, ToolOutput, ToolSpec};
use neuroflow_kit::recipient::{BoxFuture, Recipient};
use neuroflow_kit::supervisor::{
    ChildSpec, Strategy, Supervisor, SupervisorHandle, SupervisorSpec,
};
use serde_json::json;

const T: Duration = Duration::from_secs(10);

/// One reply of the scripted test model.
#[derive(Clone)]
enum Step {
    Say(&'static str),
    Call(Vec<(&'static str, serde_json::Value)>),
}

/// A model that replies with its steps in order, streaming text in two pieces.
struct Model {
    steps: Mutex<Vec<Step>>,
    seen: Mutex<Vec<LlmRequest>>,
}

impl Model {
    fn new(steps: Vec<Step>) -> Arc<Self> {
        let mut steps = steps;
        steps.reverse();
        Arc::new(Self {
            steps: Mutex::new(steps),
            seen: Mutex::new(Vec::new()),
        })
    }
}

impl LlmProvider for Model {
    fn name(&self) -> &str {
        "test"
    }

    fn description(&self) -> String {
        "test model".into()
    }

    fn complete<'a>(
        &'a self,
        req: &'a LlmRequest,
        on_chunk: &'a mut ChunkSink<'_>,
        _cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<LlmResponse, ProviderError>> {
        Box::pin(async move {
            self.seen.lock().unwrap().push(req.clone());
            let step = self
                .steps
                .lock()
                .unwrap()
                .pop()
                .unwrap_or(Step::Say("(no more steps)"));
            let usage = Usage {
                input_tokens: 10,
                output_tokens: 5,
                cost_usd: 0.001,
            };
            on_chunk(LlmChunk::Usage(usage));
            Ok(match step {
                Step::Say(text) => {
                    let (a, b) = text.split_at(text.len() / 2);
                    on_chunk(LlmChunk::TextDelta(a.into()));
                    on_chunk(LlmChunk::TextDelta(b.into()));
                    LlmResponse {
                        text: text.into(),
                        tool_calls: Vec::new(),
                        usage,
                        usage_estimated: false,
                        stop_reason: StopReason::EndTurn,
                    }
                }
                Step::Call(calls) => LlmResponse {
                    text: String::new(),
                    tool_calls: calls
                        .into_iter()
                        .enumerate()
                        .map(|(i, (name, arguments))| ToolCall {
                            id: format!("call_{i}"),
                            name: name.into(),
                            arguments,
                        })
                        .collect(),
                    usage,
                    usage_estimated: false,
                    stop_reason: StopReason::ToolUse,
                },
            })
        })
    }
}

/// Tools: `clock` answers at once, `slow` sleeps its `ms`, `broken` fails. Served by a
/// function, so that calls overlap as they do on the real router.
fn tools() -> Recipient<RouterMsg, RouterReply> {
    Recipient::from_fn("test/tools", |msg: RouterMsg| -> BoxFuture<'static, _> {
        Box::pin(async move {
            Ok(match msg {
                RouterMsg::List { .. } => RouterReply::Tools(
                    ["clock", "slow", "broken"]
                        .iter()
                        .map(|name| ToolSpec {
                            provider: "local".into(),
                            name: (*name).into(),
                            description: format!("the {name} tool"),
                            parameters: json!({"type": "object"}),
                        })
                        .collect(),
                ),
                RouterMsg::Call(call) => RouterReply::Result(Ok(match call.name.as_str() {
                    "clock" => ToolOutput::ok("12:00"),
                    "slow" => {
                        let ms = call.arguments["ms"].as_u64().unwrap_or(0);
                        tokio::time::sleep(Duration::from_millis(ms)).await;
                        ToolOutput::ok(format!("slept {ms}"))
                    }
                    _ => ToolOutput::error("broken on purpose"),
                })),
            })
        })
    })
}

struct Fixture {
    root: SupervisorHandle,
    agent: ActorHandle<AgentActor>,
    state: AgentState,
    model: Arc<Model>,
}

async fn fixture(spec: AgentSpec, steps: Vec<Step>) -> Fixture {
    let model = Model::new(steps);
    let providers: HashMap<String, Arc<dyn LlmProvider>> =
        HashMap::from([("test".to_string(), model.clone() as Arc<dyn LlmProvider>)]);
    let deps = AgentDeps {
        providers: Arc::new(providers),
        tools: tools(),
        tool_timeout: T,
        node_spent: Arc::default(),
        journal: None,
        events: None,
        metrics: None,
    };
    let state = AgentState::new(spec);
    let factory_state = state.clone();
    let (agent_spec, agent) = ChildSpec::actor("agent", move || {
        (AgentActor::new(factory_state.clone(), deps.clone()), ())
    });
    let (root, _) = Supervisor::start_root(
        SupervisorSpec::new("test", Strategy::OneForOne).child(agent_spec),
        Metrics::new().unwrap(),
    )
    .await
    .unwrap();
    Fixture {
        root,
        agent,
        state,
        model,
    }
}

fn spec(tools: &[&str]) -> AgentSpec {
    serde_json::from_value(json!({
        "name": "helper",
        "system_prompt": "Be brief.",
        "provider": "test",
        "model": "m1",
        "tools": tools,
    }))
    .unwrap()
}

async fn chat(f: &Fixture, text: &str) -> AgentReply {
    f.agent
        .call(
            AgentMsg::Chat {
                message: text.into(),
                turn_id: None,
                conversation: None,
            },
            T,
        )
        .await
        .unwrap()
}

#[tokio::test]
async fn a_tool_loop_streams_its_events_and_builds_the_conversation() {
    let f = fixture(
        spec(&["*"]),
        vec![
            Step::Call(vec![("clock", json!({}))]),
            Step::Say("It is 12:00."),
        ],
    )
    .await;
    let mut events = f.state.subscribe();
    let reply = chat(&f, "What time is it?").await;
    assert_eq!(
        reply,
        AgentReply::Answer {
            text: "It is 12:00.".into(),
            usage: Usage {
                input_tokens: 20,
                output_tokens: 10,
                cost_usd: 0.002
            },
            steps: 2,
        }
    );
    let mut seen = Vec::new();
    while let Ok(event) = events.try_recv() {
        seen.push(event.event);
    }
    let kinds: Vec<&str> = seen
        .iter()
        .map(|e| match e {
            AgentEvent::TextDelta { .. } => "text",
            AgentEvent::ToolCallStart { .. } => "start",
            AgentEvent::ToolCallEnd { .. } => "end",
            AgentEvent::Usage { .. } => "usage",
            AgentEvent::Final { .. } => "final",
            AgentEvent::Error { .. } => "error",
        })
        .collect();
    assert_eq!(
        kinds,
        ["usage", "start", "end", "text", "text", "usage", "final"]
    );
    assert!(
        matches!(&seen[2], AgentEvent::ToolCallEnd { content, is_error: false, .. } if content == "12:00")
    );
    // The model saw the system prompt, the tools and, on its second call, the result.
    let seen = f.model.seen.lock().unwrap().clone();
    assert_eq!(seen[0].messages[0], ChatMessage::system("Be brief."));
    assert_eq!(seen[0].tools.len(), 3);
    let last = seen[1].messages.last().unwrap();
    assert_eq!((last.role, last.content.as_str()), (Role::Tool, "12:00"));
    let history = f.state.conversation();
    let roles: Vec<Role> = history.iter().map(|m| m.role).collect();
    assert_eq!(
        roles,
        [Role::User, Role::Assistant, Role::Tool, Role::Assistant]
    );
    f.root.stop(T).await;
}

#[tokio::test]
async fn parallel_tool_calls_run_at_once_and_failures_are_results() {
    let calls = vec![
        ("slow", json!({"ms": 300})),
        ("slow", json!({"ms": 300})),
        ("slow", json!({"ms": 300})),
        ("broken", json!({})),
        ("forbidden", json!({})),
    ];
    let f = fixture(
        spec(&["slow", "broken"]),
        vec![Step::Call(calls), Step::Say("done")],
    )
    .await;
    let began = Instant::now();
    let reply = chat(&f, "go").await;
    assert!(
        matches!(reply, AgentReply::Answer { ref text, .. } if text == "done"),
        "{reply:?}"
    );
    assert!(
        began.elapsed() < Duration::from_millis(800),
        "{:?}",
        began.elapsed()
    );
    let results: Vec<(String, bool)> = f
        .state
        .conversation()
        .into_iter()
        .filter(|m| m.role == Role::Tool)
        .map(|m| (m.content, m.is_error))
        .collect();
    assert_eq!(results[0], ("slept 300".into(), false));
    assert_eq!(results[3], ("broken on purpose".into(), true));
    assert!(
        results[4].1 && results[4].0.contains("not available"),
        "{:?}",
        results[4]
    );
    f.root.stop(T).await;
}

#[tokio::test]
async fn an_exhausted_budget_refuses_the_next_call() {
    let mut spec = spec(&[]);
    spec.budget = Budget {
        max_tokens: Some(15),
        max_cost_usd: None,
    };
    let f = fixture(spec, vec![Step::Say("one"), Step::Say("two")]).await;
    assert!(matches!(chat(&f, "a").await, AgentReply::Answer { .. }));
    let AgentReply::TurnFailed { message } = chat(&f, "b").await else {
        panic!("the budget must stop the second turn");
    };
    assert!(
        message.contains("token budget exhausted: 15 of 15"),
        "{message}"
    );
    assert_eq!(
        f.model.seen.lock().unwrap().len(),
        1,
        "no call past the budget"
    );
    f.root.stop(T).await;
}

#[tokio::test]
async fn a_turn_can_be_cancelled_while_a_tool_runs() {
    let f = fixture(
        spec(&["slow"]),
        vec![
            Step::Call(vec![("slow", json!({"ms": 5000}))]),
            Step::Say("never"),
        ],
    )
    .await;
    let state = f.state.clone();
    let canceller = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        state.cancel()
    });
    let began = Instant::now();
    let reply = chat(&f, "wait").await;
    assert!(canceller.await.unwrap(), "a turn was running");
    assert_eq!(
        reply,
        AgentReply::TurnFailed {
            message: "the turn was cancelled".into()
        }
    );
    assert!(
        began.elapsed() < Duration::from_secs(2),
        "{:?}",
        began.elapsed()
    );
    assert!(!f.state.cancel(), "nothing runs any more");
    f.root.stop(T).await;
}

#[tokio::test]
async fn a_crashed_agent_comes_back_with_its_conversation() {
    let f = fixture(spec(&[]), vec![Step::Say("first"), Step::Say("second")]).await;
    assert!(matches!(chat(&f, "one").await, AgentReply::Answer { .. }));
    f.agent.inject_failure("boom").unwrap();
    let deadline = Instant::now() + T;
    loop {
        if let Ok(AgentReply::History(history)) = f.agent.call(AgentMsg::History, T).await {
            assert_eq!(history.len(), 2, "{history:?}");
            break;
        }
        assert!(Instant::now() < deadline, "the agent never came back");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let AgentReply::Answer { text, .. } = chat(&f, "two").await else {
        panic!("no answer after the restart");
    };
    assert_eq!(text, "second");
    // The model saw the whole conversation, from before the crash too.
    let second_call = f.model.seen.lock().unwrap()[1].messages.len();
    assert_eq!(second_call, 1 + 3, "system + user, assistant, user");
    assert_eq!(f.state.spent().total_tokens(), 30);
    f.root.stop(T).await;
}

#[tokio::test]
async fn a_turn_stops_at_its_step_limit() {
    let mut spec = spec(&["clock"]);
    spec.max_steps = 2;
    let loops = (0..5)
        .map(|_| Step::Call(vec![("clock", json!({}))]))
        .collect();
    let f = fixture(spec, loops).await;
    let AgentReply::TurnFailed { message } = chat(&f, "loop").await else {
        panic!("the step limit must end the turn");
    };
    assert!(message.contains("2 steps"), "{message}");
    f.root.stop(T).await;
}
