//! [`ToolsCatalog`]: a node's tools (or a subset of them) as an MCP catalog.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use neuroflow_kit::protocol::router::{ToolCallRequest, ToolError, ToolOutput, ToolSpec};
use neuroflow_kit::sampling;
use neuroflow_kit::trace_context::TraceContext;
use rmcp::ErrorData;
use rmcp::model::{
    CallToolRequestParams, CallToolResult, ContentBlock, Implementation, JsonObject, Tool,
};
use serde_json::Value;

use super::catalog::{Catalog, Context, Offers, unknown_tool};
use crate::pattern::matches_any;
use crate::tools::Tools;

/// The caller a tool sees for calls made through an MCP face ([`ToolCallRequest::caller`]).
///
/// Fixed rather than taken from the client's `clientInfo.name`: tools act per caller (an
/// agent's workspace, its sandbox profile), and a name a client picks for itself must not
/// let it act as one of the node's agents.
pub const MCP_CALLER: &str = "mcp";

/// The tools of a router whose names match `patterns` (`*` wildcards; all when empty).
/// Tools outside the subset are neither listed nor callable.
#[derive(Clone)]
pub struct ToolsCatalog {
    tools: Tools,
    patterns: Arc<[String]>,
    caller: Arc<str>,
}

impl ToolsCatalog {
    pub fn new(tools: Tools, patterns: Vec<String>) -> Self {
        Self {
            tools,
            patterns: patterns.into(),
            caller: Arc::from(MCP_CALLER),
        }
    }

    /// The caller the tools see (default [`MCP_CALLER`]).
    pub fn with_caller(mut self, caller: &str) -> Self {
        self.caller = Arc::from(caller);
        self
    }

    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }

    async fn call(
        &self,
        params: CallToolRequestParams,
        context: Context,
    ) -> Result<CallToolResult, ErrorData> {
        let name = params.name.to_string();
        if !matches_any(&self.patterns, &name) {
            return Err(unknown_tool(&name));
        }
        let request = ToolCallRequest {
            name: name.clone(),
            arguments: Value::Object(params.arguments.unwrap_or_default()),
            timeout_ms: None,
            caller: Some(self.caller.to_string()),
        };
        let client = context
            .peer
            .peer_info()
            .map(|info| info.client_info.name.clone())
            .unwrap_or_default();
        // OpenTelemetry MCP semantic conventions for the server side of a tool call.
        let traced = sampling::open(caller_trace(&context), || {
            tracing::info_span!(
                "mcp.server",
                otel.name = %format_args!("tools/call {name}"),
                otel.kind = "server",
                mcp.method.name = "tools/call",
                gen_ai.tool.name = %name,
                mcp.client.name = %client,
            )
        });
        let call = traced.run(self.tools.call(request));
        // A client's `notifications/cancelled` drops the call, which cancels the tool.
        let outcome = tokio::select! {
            outcome = call => outcome,
            () = context.ct.cancelled() => {
                return Err(ErrorData::internal_error("the call was cancelled by the client", None));
            }
        };
        result(outcome)
    }
}

/// The `traceparent` (and `tracestate`) of the request's `_meta`, if it parses. A bad one
/// is dropped: the call still runs, in a trace of its own.
fn caller_trace(context: &Context) -> Option<TraceContext> {
    let traceparent = context.meta.get_traceparent()?;
    match TraceContext::parse(traceparent, context.meta.get_tracestate()) {
        Ok(trace) => Some(trace),
        Err(err) => {
            tracing::debug!(%traceparent, error = %err, "MCP request with an invalid traceparent");
            None
        }
    }
}

/// A router answer as MCP: output is text (`isError` kept); an unknown tool is a protocol
/// error (invalid params); a call the router refused or could not finish is an `isError`
/// result saying why, which the client's model can read and act on.
pub fn result(outcome: Result<ToolOutput, ToolError>) -> Result<CallToolResult, ErrorData> {
    match outcome {
        Ok(ToolOutput { content, is_error }) => {
            let content = vec![ContentBlock::text(content)];
            Ok(if is_error {
                CallToolResult::error(content)
            } else {
                CallToolResult::success(content)
            })
        }
        Err(ToolError::UnknownTool(name)) => Err(unknown_tool(&name)),
        Err(err) => Ok(CallToolResult::error(vec![ContentBlock::text(
            err.to_string(),
        )])),
    }
}

/// A router tool as MCP lists it. The description is never empty (clients and the
/// conformance suite require one), and a schema that is not an object (the router admits
/// none) becomes the empty object schema rather than a broken listing.
pub fn mcp_tool(spec: ToolSpec) -> Tool {
    let description = if spec.description.trim().is_empty() {
        format!("{} (from {})", spec.name, spec.provider)
    } else {
        spec.description
    };
    let schema = match spec.parameters {
        Value::Object(schema) => schema,
        _ => {
            let mut schema = JsonObject::new();
            schema.insert("type".into(), Value::String("object".into()));
            schema
        }
    };
    Tool::new(spec.name, description, Arc::new(schema))
}

impl Catalog for ToolsCatalog {
    fn offers(&self) -> Offers {
        Offers::tools()
    }

    fn implementation(&self) -> Implementation {
        let mut implementation = Implementation::new("neuroflow", env!("CARGO_PKG_VERSION"));
        implementation.title = Some("NeuroFlow node".into());
        implementation
    }

    fn list_tools(&self, _context: Context) -> BoxFuture<'_, Result<Vec<Tool>, ErrorData>> {
        let tools = self
            .tools
            .list(&self.patterns)
            .into_iter()
            .map(mcp_tool)
            .collect();
        Box::pin(std::future::ready(Ok(tools)))
    }

    fn call_tool(
        &self,
        params: CallToolRequestParams,
        context: Context,
    ) -> BoxFuture<'_, Result<CallToolResult, ErrorData>> {
        Box::pin(self.call(params, context))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmcp::model::ErrorCode;
    use serde_json::json;

    fn text(result: &CallToolResult) -> &str {
        match result.content.first() {
            Some(ContentBlock::Text(text)) => &text.text,
            other => panic!("not text: {other:?}"),
        }
    }

    #[test]
    fn outputs_and_errors_map_to_results_or_protocol_errors() {
        let ok = result(Ok(ToolOutput::ok("fine"))).unwrap();
        assert_eq!((text(&ok), ok.is_error), ("fine", Some(false)));
        let failed = result(Ok(ToolOutput::error("broke"))).unwrap();
        assert_eq!((text(&failed), failed.is_error), ("broke", Some(true)));

        let unknown = result(Err(ToolError::UnknownTool("nope".into()))).unwrap_err();
        assert_eq!(unknown.code, ErrorCode::INVALID_PARAMS);
        assert!(unknown.message.contains("nope"), "{}", unknown.message);

        let timeout = result(Err(ToolError::Timeout {
            tool: "slow".into(),
            timeout_ms: 5,
        }))
        .unwrap();
        assert_eq!(timeout.is_error, Some(true));
        assert_eq!(text(&timeout), "tool slow did not finish within 5 ms");
    }

    #[test]
    fn listed_tools_always_have_a_description_and_an_object_schema() {
        let spec = ToolSpec {
            name: "x.y".into(),
            description: " ".into(),
            parameters: json!(true),
            provider: "mcp:x".into(),
        };
        let tool = mcp_tool(spec);
        assert_eq!(tool.description.as_deref(), Some("x.y (from mcp:x)"));
        assert_eq!(
            Value::Object((*tool.input_schema).clone()),
            json!({"type": "object"})
        );
    }
}
