//! An agent that runs Python in the sandbox: the `sandbox.exec` tool, in the agent's
//! sandbox profile (`strict` here: no network, read-only system, tight limits).
//!
//! Needs root (or a delegated cgroup) and the `neuroflow-node` binary, which runs the
//! sandbox's init:
//!
//! ```sh
//! cargo build --bin neuroflow-node && cargo run --example sandboxed_code
//! ```

use neuroflow::{Runtime, agent_spec};
use neuroflow_agent::provider::{ProviderConfig, ScriptedConfig};
use neuroflow_sandbox::{HostSupport, Profile};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // target/<profile>/examples/sandboxed_code → target/<profile>/neuroflow-node
    let init = std::env::current_exe()?
        .parent()
        .and_then(|examples| examples.parent())
        .map(|dir| dir.join("neuroflow-node"))
        .filter(|path| path.exists());
    let host = HostSupport::detect();
    let missing = host.missing(&Profile::builtin("strict").expect("built-in"));
    let (Some(init), None) = (init, missing) else {
        let why = "needs the neuroflow-node binary beside the examples and a host with every sandbox layer";
        if std::env::var("NEUROFLOW_REQUIRE_ISOLATION").is_ok_and(|v| v == "1") {
            return Err(why.into());
        }
        println!("skipped: {why} (see `neuroflow-node sandbox check`)");
        return Ok(());
    };

    let data = std::env::temp_dir().join(format!("neuroflow-code-{}", std::process::id()));
    let rules = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/rules/team.toml");
    let runtime = Runtime::builder()
        .data_dir(&data)
        .sandbox_init(init)
        .provider(
            "demo",
            ProviderConfig::Scripted(ScriptedConfig {
                rules: Some(rules.into()),
            }),
        )
        .build()
        .await?;
    let agent = runtime
        .spawn_agent(
            agent_spec("coder")
                .provider("demo")
                .tools(["sandbox.exec"])
                .sandbox_profile("strict"),
        )
        .await?;
    let answer = agent.chat("Please compute something").answer().await?;
    println!("{answer}");
    // 0! + 1! + ... + 9!
    assert!(answer.contains("409114"), "{answer}");
    runtime.shutdown().await;
    let _ = std::fs::remove_dir_all(&data);
    Ok(())
}
