//! An agent with a tool written in Rust: an async closure registered on the runtime's
//! router, its arguments checked against the JSON Schema it declares.
//!
//! ```sh
//! cargo run --example tool_agent
//! ```

use neuroflow::kit::protocol::router::ToolOutput;
use neuroflow::{Runtime, agent_spec};
use neuroflow_agent::provider::{ProviderConfig, ScriptedConfig};
use neuroflow_router::{spec, tool_fn};
use serde_json::json;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let data = std::env::temp_dir().join(format!("neuroflow-tool-{}", std::process::id()));
    let rules = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/rules/team.toml");
    let runtime = Runtime::builder()
        .data_dir(&data)
        .provider(
            "demo",
            ProviderConfig::Scripted(ScriptedConfig {
                rules: Some(rules.into()),
            }),
        )
        .build()
        .await?;

    runtime.register_tool(tool_fn(
        spec(
            "weather.lookup",
            "Current weather in a city.",
            json!({
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"]
            }),
        ),
        |args, _ctx| async move {
            let city = args["city"].as_str().unwrap_or_default();
            // A real tool would call a weather service; this one is deterministic.
            ToolOutput::ok(format!("18°C and clear over {city}"))
        },
    ))?;

    let agent = runtime
        .spawn_agent(
            agent_spec("forecaster")
                .provider("demo")
                .tools(["weather.*"]),
        )
        .await?;
    let answer = agent.chat("What's the weather like?").answer().await?;
    println!("{answer}");
    assert_eq!(answer, "In Paris: 18°C and clear over Paris");
    runtime.shutdown().await;
    let _ = std::fs::remove_dir_all(&data);
    Ok(())
}
