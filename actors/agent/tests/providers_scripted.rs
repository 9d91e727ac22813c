//! The scripted provider: rules parsing, matching, tool-call steps, streaming.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use neuroflow_agent::provider::{
    CancellationToken, DEFAULT_RULES, LlmChunk, LlmProvider, LlmRequest, LlmResponse,
    ProviderError, Rules, RulesError, ScriptedProvider, StopReason, build_provider,
    estimate_tokens,
};
use neuroflow_kit::protocol::agent::ChatMessage;
use neuroflow_kit::protocol::router::ToolSpec;
use serde_json::json;

fn tool(name: &str) -> ToolSpec {
    ToolSpec {
        provider: "local".into(),
        name: name.into(),
        description: String::new(),
        parameters: json!({"type": "object"}),
    }
}

fn scripted(rules: &str) -> ScriptedProvider {
    ScriptedProvider::new(Rules::parse(rules, "test").unwrap(), Arc::default())
}

async fn run(p: &ScriptedProvider, req: &LlmRequest) -> (LlmResponse, Vec<LlmChunk>) {
    let mut chunks = Vec::new();
    let r = p
        .complete(req, &mut |c| chunks.push(c), &CancellationToken::new())
        .await
        .unwrap();
    (r, chunks)
}

fn ask(text: &str, tools: &[&str]) -> LlmRequest {
    let mut req = LlmRequest::new(
        "scripted",
        vec![ChatMessage::system("sys"), ChatMessage::user(text)],
    );
    req.tools = tools.iter().map(|t| tool(t)).collect();
    req
}

/// Appends the response and a result for each of its calls (`result(name, args)`).
fn answer_calls(
    req: &mut LlmRequest,
    r: &LlmResponse,
    result: impl Fn(&str, &serde_json::Value) -> String,
) {
    req.messages.push(r.to_message());
    for c in &r.tool_calls {
        let content = result(&c.name, &c.arguments);
        req.messages
            .push(ChatMessage::tool_result(&c.id, content, false));
    }
}

fn invalid(rules: &str) -> String {
    match Rules::parse(rules, "t.toml") {
        Err(e @ RulesError::Invalid { .. }) => e.to_string(),
        other => panic!("expected Invalid for {rules:?}, got {other:?}"),
    }
}

#[test]
fn rules_errors_are_typed_and_name_the_rule() {
    let syntax = Rules::parse("[[rule]\nreply = 1", "t.toml").unwrap_err();
    assert!(matches!(syntax, RulesError::Syntax { .. }), "{syntax}");
    assert!(syntax.to_string().contains("line 1"), "{syntax}");
    let unknown = Rules::parse("[[rule]]\ncontains = \"a\"\nreplay = \"x\"", "t.toml").unwrap_err();
    assert!(matches!(unknown, RulesError::Syntax { .. }) && unknown.to_string().contains("replay"));

    let both = invalid("[[rule]]\nname = \"r\"\ncontains = \"a\"\nregex = \"a\"\nreply = \"x\"");
    assert!(
        both.contains("rule 1 (r)") && both.contains("both"),
        "{both}"
    );
    assert!(invalid("[[rule]]\nreply = \"x\"").contains("needs `contains` or `regex`"));
    assert!(invalid("[[rule]]\nregex = \"(\"\nreply = \"x\"").contains("bad regex"));
    assert!(invalid("[[rule]]\ncontains = \"a\"").contains("needs a `reply`"));
    assert!(invalid("[[rule]]\ncontains = \"a\"\nreply = \"{nope}\"").contains("{nope}"));
    assert!(invalid("[[rule]]\nregex = \"a\"\nreply = \"{1}\"").contains("0 group"));
    let tool_ref =
        invalid("[[rule]]\ncontains = \"a\"\ncalls = [{ tool = \"x\" }]\nreply = \"{tool:y}\"");
    assert!(tool_ref.contains("\"y\""), "{tool_ref}");
    let own_step = invalid(
        "[[rule]]\ncontains = \"a\"\ncalls = [{ tool = \"x\", args = { v = \"{tool:x}\" } }]\nreply = \"ok\"",
    );
    assert!(own_step.contains("step 1, x"), "{own_step}");
    assert!(invalid("[settings]\nfallback = \"{oops\"").contains("fallback"));

    let missing = Rules::load(Path::new("/nonexistent/rules.toml")).unwrap_err();
    assert!(matches!(missing, RulesError::Io { .. }), "{missing}");
}

#[tokio::test]
async fn the_first_matching_rule_answers_and_text_streams_in_pieces() {
    let p = scripted(
        r#"
        [[rule]]
        contains = ["WEATHER", "rain"]
        reply = "No weather here, you said: {input}"
        [[rule]]
        regex = '(?i)^echo (?P<text>.+)$'
        reply = "{text} / {1}"
        [[rule]]
        contains = "echo"
        reply = "never reached for 'echo x'"
        "#,
    );
    let (r, chunks) = run(&p, &ask("Any Weather today?", &[])).await;
    assert_eq!(r.text, "No weather here, you said: Any Weather today?");
    assert_eq!(r.stop_reason, StopReason::EndTurn);
    let deltas: Vec<String> = chunks
        .iter()
        .filter_map(|c| match c {
            LlmChunk::TextDelta(t) => Some(t.clone()),
            _ => None,
        })
        .collect();
    assert!(deltas.len() > 1 && deltas.len() <= 4, "{deltas:?}");
    assert_eq!(deltas.concat(), r.text);
    assert!(r.usage_estimated);
    assert_eq!(r.usage.output_tokens, estimate_tokens(&r.text));
    assert_eq!(
        r.usage.input_tokens,
        estimate_tokens("sys") + estimate_tokens("Any Weather today?")
    );
    assert_eq!(chunks.last(), Some(&LlmChunk::Usage(r.usage)));

    let (r, _) = run(&p, &ask("echo two words", &[])).await;
    assert_eq!(r.text, "two words / two words");
}

#[tokio::test]
async fn a_tool_rule_calls_then_answers_with_the_result() {
    let p = ScriptedProvider::default_rules(Arc::default());
    let mut req = ask("What time is it?", &["time.now"]);
    let (first, chunks) = run(&p, &req).await;
    assert_eq!(first.stop_reason, StopReason::ToolUse);
    assert_eq!(first.text, "");
    assert_eq!(first.tool_calls.len(), 1);
    assert_eq!(first.tool_calls[0].name, "time.now");
    assert_eq!(first.tool_calls[0].arguments, json!({}));
    assert!(
        chunks
            .iter()
            .any(|c| matches!(c, LlmChunk::ToolCallStart { index: 0, .. }))
    );
    answer_calls(&mut req, &first, |_, _| "2030-01-01T12:00:00Z".into());
    let (second, _) = run(&p, &req).await;
    assert_eq!(second.text, "The time is 2030-01-01T12:00:00Z.");
    assert_eq!(second.stop_reason, StopReason::EndTurn);

    // Without the tool on offer, the rule that needs it does not apply.
    let (r, _) = run(&p, &ask("What time is it?", &[])).await;
    assert!(r.tool_calls.is_empty());
    assert!(r.text.contains("does not have it"), "{}", r.text);
}

#[tokio::test]
async fn multi_step_rules_run_parallel_calls_and_chain_results() {
    let p = scripted(
        r#"
        [[rule]]
        regex = '^report on (?P<city>\w+)$'
        reply = "{tool:weather.get}; {tool_result}"
        [[rule.steps]]
        calls = [
            { tool = "weather.get", args = { city = "{city}" } },
            { tool = "time.now" },
        ]
        [[rule.steps]]
        calls = [{ tool = "note.write", args = { text = "{tool:weather.get} at {tool:time.now}", n = 1 } }]
        "#,
    );
    let mut req = ask("report on Oslo", &["weather.get", "time.now", "note.write"]);
    let (step1, _) = run(&p, &req).await;
    let names: Vec<&str> = step1.tool_calls.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["weather.get", "time.now"]);
    assert_eq!(step1.tool_calls[0].arguments, json!({"city": "Oslo"}));
    assert_ne!(step1.tool_calls[0].id, step1.tool_calls[1].id);
    answer_calls(&mut req, &step1, |name, args| match name {
        "weather.get" => format!("rain in {}", args["city"].as_str().unwrap()),
        _ => "noon".into(),
    });
    let (step2, _) = run(&p, &req).await;
    assert_eq!(step2.tool_calls.len(), 1);
    assert_eq!(
        step2.tool_calls[0].arguments,
        json!({"text": "rain in Oslo at noon", "n": 1})
    );
    answer_calls(&mut req, &step2, |_, _| "saved".into());
    let (last, _) = run(&p, &req).await;
    assert_eq!(last.text, "rain in Oslo; saved");
    assert!(last.tool_calls.is_empty());

    // The same conversation always gets the same answer.
    let (again, _) = run(&p, &req).await;
    assert_eq!(again, last);
}

#[tokio::test]
async fn no_match_gets_the_fallback_which_says_what_it_is() {
    let p = scripted("[[rule]]\ncontains = \"x-only\"\nreply = \"x\"");
    let (r, _) = run(&p, &ask("something else", &[])).await;
    assert!(r.text.contains("scripted provider"), "{}", r.text);
    assert!(r.text.contains("something else"), "{}", r.text);

    let p = ScriptedProvider::default_rules(Arc::default());
    let (r, _) = run(&p, &ask("hello there", &[])).await;
    assert!(r.text.starts_with("Hello!"), "{}", r.text);
    let (r, _) = run(&p, &ask("echo  ping pong", &[])).await;
    assert_eq!(r.text, "ping pong");
    let (r, _) = run(&p, &ask("tell me a story", &[])).await;
    assert!(r.text.contains("scripted provider") && r.text.contains("tell me a story"));
}

#[test]
fn the_default_rules_file_loads_and_announces_itself() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripted/default.toml");
    let rules = Rules::load(&path).unwrap();
    assert!(rules.len() >= 4);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), DEFAULT_RULES);
    let first_line = DEFAULT_RULES.lines().next().unwrap();
    assert!(first_line.contains("scripted provider") && first_line.contains("default"));

    let p = build_provider(None, Arc::default()).unwrap();
    assert_eq!(p.name(), "scripted");
    assert!(
        p.description()
            .contains("default when no LLM provider is configured")
    );
}

#[tokio::test]
async fn cancelling_between_pieces_returns_cancelled() {
    let p = scripted(
        "[settings]\ndelta_delay_ms = 2000\n[[rule]]\ncontains = \"a\"\nreply = \"one two three four five\"",
    );
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    let mut sink = |_: LlmChunk| trigger.cancel();
    let started = std::time::Instant::now();
    let r = p.complete(&ask("a", &[]), &mut sink, &cancel).await;
    assert!(matches!(r, Err(ProviderError::Cancelled)), "{r:?}");
    assert!(started.elapsed() < Duration::from_millis(1000));
}
