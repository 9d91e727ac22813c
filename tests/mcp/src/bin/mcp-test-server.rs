//! A stdio MCP server for the MCP suites, built on the SDK's server side.
//!
//! Tools: `echo {text}`, `add {a, b}`, `fail` (an `isError` result), `refuse` (a JSON-RPC
//! error), `slow {ms}` (answers
//! after `ms`, or records its cancellation), `trace` (the `traceparent` its request
//! carried), `pid` (its process id), `env {name}` (an environment variable, or `unset`),
//! `grow` (adds tool `extra_N` and announces
//! `notifications/tools/list_changed`). One resource, `test://greeting`, and one prompt,
//! `greet {name}`.
//!
//! Options:
//! - `--crash-after N`: the process exits (status 3) when the (N+1)-th tool call arrives,
//!   without answering it: a server dying mid-conversation.
//! - `--page-size N`: `tools/list` in pages of N.
//! - `--events FILE`: appends one line per notable event (`cancelled slow`) to FILE.

use std::borrow::Cow;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, GetPromptRequestParams,
    GetPromptResponse, GetPromptResult, JsonObject, ListPromptsResult, ListResourcesResult,
    ListToolsResult, PaginatedRequestParams, Prompt, PromptArgument, PromptMessage,
    ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult, Resource,
    ResourceContents, Role, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, ServiceExt};
use serde_json::{Value, json};

#[derive(Clone)]
struct TestServer {
    crash_after: Option<usize>,
    page_size: Option<usize>,
    events: Option<String>,
    calls: Arc<AtomicUsize>,
    extra: Arc<AtomicUsize>,
}

fn schema(value: Value) -> Arc<JsonObject> {
    match value {
        Value::Object(map) => Arc::new(map),
        _ => Arc::new(JsonObject::new()),
    }
}

fn text(s: impl Into<String>) -> CallToolResult {
    CallToolResult::success(vec![ContentBlock::text(s)])
}

impl TestServer {
    fn tools(&self) -> Vec<Tool> {
        let none = json!({"type": "object", "properties": {}});
        let mut tools = vec![
            Tool::new(
                "echo",
                "Echoes its text.",
                schema(
                    json!({"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}),
                ),
            ),
            Tool::new(
                "add",
                "Adds two numbers.",
                schema(
                    json!({"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}, "required": ["a", "b"]}),
                ),
            ),
            Tool::new("fail", "Always fails.", schema(none.clone())),
            Tool::new(
                "refuse",
                "Always answers with a protocol error.",
                schema(none.clone()),
            ),
            Tool::new(
                "slow",
                "Answers after `ms` milliseconds.",
                schema(
                    json!({"type": "object", "properties": {"ms": {"type": "integer", "minimum": 0}}, "required": ["ms"]}),
                ),
            ),
            Tool::new(
                "trace",
                "The traceparent of the request.",
                schema(none.clone()),
            ),
            Tool::new("pid", "The server's process id.", schema(none.clone())),
            Tool::new(
                "env",
                "An environment variable of the server.",
                schema(
                    json!({"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}),
                ),
            ),
            Tool::new(
                "grow",
                "Adds a tool and announces the change.",
                schema(none.clone()),
            ),
        ];
        for n in 1..=self.extra.load(Ordering::SeqCst) {
            tools.push(Tool::new(
                Cow::Owned(format!("extra_{n}")),
                "A tool added by grow.",
                schema(none.clone()),
            ));
        }
        tools
    }

    fn event(&self, line: &str) {
        if let Some(path) = &self.events
            && let Ok(mut file) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
        {
            let _ = writeln!(file, "{line}");
        }
    }

    async fn run_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let args = request.arguments.clone().unwrap_or_default();
        match request.name.as_ref() {
            "echo" => Ok(text(
                args.get("text").and_then(Value::as_str).unwrap_or_default(),
            )),
            "add" => {
                let num = |k: &str| args.get(k).and_then(Value::as_f64).unwrap_or(0.0);
                Ok(text((num("a") + num("b")).to_string()))
            }
            "fail" => Ok(CallToolResult::error(vec![ContentBlock::text(
                "it failed, as asked",
            )])),
            "slow" => {
                let ms = args.get("ms").and_then(Value::as_u64).unwrap_or(0);
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(ms)) => Ok(text(format!("slept {ms} ms"))),
                    () = context.ct.cancelled() => {
                        self.event("cancelled slow");
                        Err(ErrorData::internal_error("cancelled", None))
                    }
                }
            }
            "trace" => {
                // The SDK hands the request's `_meta` over in the context.
                let traceparent = context
                    .meta
                    .0
                    .get("traceparent")
                    .and_then(Value::as_str)
                    .unwrap_or("none");
                Ok(text(traceparent))
            }
            "pid" => Ok(text(std::process::id().to_string())),
            "env" => {
                let name = args.get("name").and_then(Value::as_str).unwrap_or_default();
                Ok(text(std::env::var(name).unwrap_or_else(|_| "unset".into())))
            }
            "grow" => {
                let n = self.extra.fetch_add(1, Ordering::SeqCst) + 1;
                let _ = context.peer.notify_tool_list_changed().await;
                Ok(text(format!("added extra_{n}")))
            }
            name if name.starts_with("extra_") => Ok(text(format!("{name} ran"))),
            other => Err(ErrorData::invalid_params(format!("no tool {other}"), None)),
        }
    }
}

impl ServerHandler for TestServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_tool_list_changed()
                .enable_resources()
                .enable_prompts()
                .build(),
        )
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let tools = self.tools();
        let Some(size) = self.page_size else {
            return Ok(ListToolsResult::with_all_items(tools));
        };
        let start: usize = request
            .and_then(|r| r.cursor)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let end = (start + size).min(tools.len());
        let mut page = ListToolsResult::with_all_items(tools[start.min(end)..end].to_vec());
        if end < tools.len() {
            page.next_cursor = Some(end.to_string());
        }
        Ok(page)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let seen = self.calls.fetch_add(1, Ordering::SeqCst);
        if self.crash_after.is_some_and(|n| seen >= n) {
            std::process::exit(3);
        }
        self.run_tool(request, context).await.map(Into::into)
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        Ok(ListResourcesResult::with_all_items(vec![Resource::new(
            "test://greeting",
            "greeting",
        )]))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        if request.uri != "test://greeting" {
            return Err(ErrorData::resource_not_found(
                format!("no resource {}", request.uri),
                None,
            ));
        }
        let contents = ResourceContents::text("Hello from the test server.", "test://greeting");
        Ok(ReadResourceResult::new(vec![contents]).into())
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        let mut name = PromptArgument::new("name");
        name.required = Some(true);
        Ok(ListPromptsResult::with_all_items(vec![Prompt::new(
            "greet",
            Some("Greets someone."),
            Some(vec![name]),
        )]))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        if request.name != "greet" {
            return Err(ErrorData::invalid_params(
                format!("no prompt {}", request.name),
                None,
            ));
        }
        let args = request.arguments.unwrap_or_default();
        let who = args
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("stranger");
        let message = PromptMessage::new_text(Role::User, format!("Please greet {who}."));
        Ok(GetPromptResult::new(vec![message]).into())
    }
}

fn option(args: &[String], name: &str) -> Option<String> {
    let at = args.iter().position(|a| a == name)?;
    args.get(at + 1).cloned()
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let server = TestServer {
        crash_after: option(&args, "--crash-after").and_then(|n| n.parse().ok()),
        page_size: option(&args, "--page-size").and_then(|n| n.parse().ok()),
        events: option(&args, "--events"),
        calls: Arc::new(AtomicUsize::new(0)),
        extra: Arc::new(AtomicUsize::new(0)),
    };
    match server.serve(rmcp::transport::stdio()).await {
        Ok(running) => {
            let _ = running.waiting().await;
        }
        Err(e) => {
            eprintln!("mcp-test-server: {e}");
            std::process::exit(1);
        }
    }
}
