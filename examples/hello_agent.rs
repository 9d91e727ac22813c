//! The smallest NeuroFlow program: one agent on the built-in scripted provider (offline,
//! no API key), asked the time, its answer streamed as it comes.
//!
//! ```sh
//! cargo run --example hello_agent
//! ```

use neuroflow::kit::protocol::agent::AgentEvent;
use neuroflow::{Runtime, agent_spec};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let data = std::env::temp_dir().join(format!("neuroflow-hello-{}", std::process::id()));
    let runtime = Runtime::builder().data_dir(&data).build().await?;
    let agent = runtime
        .spawn_agent(agent_spec("hello").tools(["time.*"]))
        .await?;

    for question in ["Hello!", "What time is it?"] {
        println!("> {question}");
        let mut chat = agent.chat(question);
        while let Some(event) = chat.next_event().await {
            match event {
                AgentEvent::TextDelta { text } => print!("{text}"),
                AgentEvent::ToolCallStart { name, .. } => println!("[calling {name}]"),
                AgentEvent::ToolCallEnd { content, .. } => println!("[result: {content}]"),
                _ => {}
            }
        }
        println!();
        let answer = chat.answer().await?;
        assert!(!answer.is_empty());
    }
    println!("tokens used: {}", agent.spent().total_tokens());
    runtime.shutdown().await;
    let _ = std::fs::remove_dir_all(&data);
    Ok(())
}
