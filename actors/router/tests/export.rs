//! Tool lists exported for the OpenAI and Anthropic APIs.

mod common;

use common::*;
use neuroflow_router::export::{self, exported_name, name_from_export};
use neuroflow_router::{spec, tool_fn};
use serde_json::json;

fn openai_name_ok(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_have_each_api_shape_and_names_map_back() {
    let r = start(2).await;
    let params = json!({
        "type": "object",
        "properties": {"path": {"type": "string"}},
        "required": ["path"]
    });
    r.tools
        .register(tool_fn(
            spec("fs.read", "Read a file.", params.clone()),
            |_, _| async { "" },
        ))
        .unwrap();
    r.tools.register(echo("get_weather")).unwrap();

    let openai = r.tools.export_openai(&[]);
    assert_eq!(
        openai,
        json!([
            {"type": "function", "function": {
                "name": "fs__read", "description": "Read a file.", "parameters": params}},
            {"type": "function", "function": {
                "name": "get_weather", "description": "Echoes its arguments.",
                "parameters": {"type": "object"}}},
        ])
    );
    let anthropic = r.tools.export_anthropic(&["fs.*".into()]);
    assert_eq!(
        anthropic,
        json!([{"name": "fs__read", "description": "Read a file.", "input_schema": params}])
    );

    // A model's call comes back under the exported name: it maps to the tool and runs.
    let called = name_from_export("fs__read");
    assert_eq!(called, "fs.read");
    assert!(
        r.tools
            .call(request(&called, json!({"path": "x"})))
            .await
            .is_ok()
    );
    r.stop().await;
}

#[test]
fn every_registrable_name_exports_validly_and_round_trips() {
    let samples = [
        "a",
        "fs.read",
        "mcp_github.create_issue",
        "x-y.z_w",
        "a._b",
        "A1.B2.C3",
        "agent.research-assistant",
    ];
    for name in samples {
        export::check_name(name).unwrap();
        let wire = exported_name(name);
        assert!(openai_name_ok(&wire), "{name} → {wire}");
        assert_eq!(name_from_export(&wire), name);
    }
    // Distinct names never share an exported name (the map is one-to-one).
    let wires: std::collections::HashSet<String> =
        samples.iter().map(|n| exported_name(n)).collect();
    assert_eq!(wires.len(), samples.len());
    // Names the mapping could not tell apart are refused at registration instead.
    assert!(export::check_name("a__b").is_err());
    assert!(export::check_name("a_.b").is_err());
}
