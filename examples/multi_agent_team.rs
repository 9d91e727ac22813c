//! A team: a lead agent delegates to two others, each exposed as a tool (`agent.NAME`),
//! and both are asked at once.
//!
//! ```sh
//! cargo run --example multi_agent_team
//! ```

use neuroflow::kit::protocol::agent::AgentEvent;
use neuroflow::{Runtime, agent_spec};
use neuroflow_agent::provider::{ProviderConfig, ScriptedConfig};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let data = std::env::temp_dir().join(format!("neuroflow-team-{}", std::process::id()));
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
    for name in ["researcher", "writer"] {
        runtime
            .spawn_agent(agent_spec(name).description("A team member; repeats what it is told."))
            .await?;
    }
    let lead = runtime
        .spawn_agent(agent_spec("lead").provider("demo").tools(["agent.*"]))
        .await?;

    let mut chat = lead.chat("Please research NeuroFlow");
    while let Some(event) = chat.next_event().await {
        if let AgentEvent::ToolCallStart {
            name, arguments, ..
        } = event
        {
            println!("lead → {name}: {}", arguments["message"]);
        }
    }
    let answer = chat.answer().await?;
    println!("{answer}");
    assert!(answer.contains("supervised actors") && answer.contains("Linux sandbox"));
    runtime.shutdown().await;
    let _ = std::fs::remove_dir_all(&data);
    Ok(())
}
