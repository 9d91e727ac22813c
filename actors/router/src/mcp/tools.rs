//! A server's tools in the router: registered as `SERVER.TOOL`, kept in step with what the
//! server lists, and called through the server's open session.

use std::collections::BTreeMap;
use std::sync::Arc;

use neuroflow_kit::protocol::router::{ToolOutput, ToolSpec};
use neuroflow_kit::recipient::BoxFuture;
use neuroflow_kit::sampling;
use rmcp::ServiceError;
use rmcp::model::{CallToolRequestParams, RequestMetaObject, Tool as McpTool};
use serde_json::Value;

use super::config::McpServerConfig;
use super::content;
use super::link::Link;
use crate::export::check_name;
use crate::pattern::matches_any;
use crate::tool::{Tool, ToolCtx, ToolExec};
use crate::tools::Tools;

/// The tools of one server now registered, by router name.
pub(crate) type Registered = BTreeMap<String, ToolSpec>;

/// Brings the router in step with `listed`: registers new tools, replaces changed ones,
/// unregisters those the server no longer lists. A tool that cannot be registered (a name
/// or schema the router refuses) is skipped, logged and counted.
pub(crate) fn sync(
    tools: &Tools,
    link: &Arc<Link>,
    config: &McpServerConfig,
    listed: Vec<McpTool>,
    registered: &mut Registered,
) {
    let server = link.name();
    let mut wanted = BTreeMap::new();
    for tool in listed {
        if !matches_any(&config.tools, &tool.name) {
            continue;
        }
        let Some(name) = router_name(server, &tool.name) else {
            tracing::warn!(mcp.server = server, tool = %tool.name, "MCP tool skipped: its name cannot be made a tool name");
            link.metrics().skipped(server);
            continue;
        };
        let spec = ToolSpec {
            name: name.clone(),
            description: tool
                .description
                .as_deref()
                .or(tool.title.as_deref())
                .unwrap_or_default()
                .to_string(),
            parameters: Value::Object((*tool.input_schema).clone()),
            provider: format!("mcp:{server}"),
        };
        wanted.insert(name, (spec, tool.name.to_string()));
    }
    registered.retain(|name, _| {
        let keep = wanted.contains_key(name);
        if !keep {
            tools.unregister(name);
        }
        keep
    });
    for (name, (spec, remote)) in wanted {
        if registered.get(&name) == Some(&spec) {
            continue;
        }
        if registered.remove(&name).is_some() {
            tools.unregister(&name);
        }
        let exec = McpToolExec {
            link: link.clone(),
            remote,
        };
        match tools.register(Tool::new(spec.clone(), exec)) {
            Ok(()) => {
                registered.insert(name, spec);
            }
            Err(err) => {
                tracing::warn!(mcp.server = server, error = %err, "MCP tool skipped");
                link.metrics().skipped(server);
            }
        }
    }
    link.set_tools(registered.len());
}

/// Unregisters every tool of the server.
pub(crate) fn clear(tools: &Tools, link: &Link, registered: &mut Registered) {
    for name in registered.keys() {
        tools.unregister(name);
    }
    registered.clear();
    link.set_tools(0);
}

/// `SERVER.TOOL`, with characters tool names cannot hold made `_`; `None` if even that is
/// not a valid name.
pub fn router_name(server: &str, tool: &str) -> Option<String> {
    let mut cleaned: String = tool
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    while cleaned.contains("__") {
        cleaned = cleaned.replace("__", "_");
    }
    let cleaned = cleaned
        .split('.')
        .map(|part| part.trim_matches('_'))
        .collect::<Vec<_>>()
        .join(".");
    let name = format!("{server}.{cleaned}");
    check_name(&name).is_ok().then_some(name)
}

/// Runs one tool of a server.
struct McpToolExec {
    link: Arc<Link>,
    /// The tool's own name at the server.
    remote: String,
}

impl ToolExec for McpToolExec {
    fn call(&self, args: Value, ctx: ToolCtx) -> BoxFuture<'_, ToolOutput> {
        Box::pin(self.call_remote(args, ctx))
    }
}

impl McpToolExec {
    async fn call_remote(&self, args: Value, ctx: ToolCtx) -> ToolOutput {
        let traced = sampling::open(None, || {
            tracing::info_span!(
                "mcp.call",
                otel.name = %format_args!("tools/call {}", self.remote),
                otel.kind = "client",
                mcp.method.name = "tools/call",
                gen_ai.tool.name = %self.remote,
                neuroflow.mcp.server = %self.link.name(),
            )
        });
        traced.run(self.call_remote_in(args, ctx)).await
    }

    async fn call_remote_in(&self, args: Value, ctx: ToolCtx) -> ToolOutput {
        let (server, tool) = (self.link.name(), &self.remote);
        let (peer, generation) = match self.link.peer() {
            Ok(open) => open,
            Err(why) => return ToolOutput::error(why),
        };
        let mut params = CallToolRequestParams::new(tool.clone());
        params.arguments = match args {
            Value::Object(map) => Some(map),
            _ => None,
        };
        // The client span's context when spans are recorded, else the caller's.
        let trace = neuroflow_kit::propagation::current_trace().or(ctx.trace);
        if let Some(trace) = &trace {
            let mut meta = RequestMetaObject::new();
            meta.0
                .insert("traceparent".into(), trace.traceparent_header().into());
            if let Some(state) = trace.tracestate_header() {
                meta.0.insert("tracestate".into(), state.into());
            }
            params.meta = Some(meta);
        }
        // Past the deadline the router drops this future; the request's guard then sends
        // `notifications/cancelled`, so the server stops working on it too.
        match peer.call_tool(params).await {
            Ok(result) => content::tool_output(result),
            Err(ServiceError::McpError(error)) => ToolOutput::error(format!(
                "MCP server {server} refused {tool}: {} (code {})",
                error.message, error.code.0
            )),
            Err(err @ (ServiceError::TransportClosed | ServiceError::TransportSend(_))) => {
                // The session is gone: have the server's actor open a new one now.
                self.link.lost(generation, &err.to_string());
                ToolOutput::error(format!(
                    "MCP server {server} is unavailable: the connection was lost during the call ({err}); restarting"
                ))
            }
            Err(err) => ToolOutput::error(format!("MCP server {server}: {tool} failed: {err}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::router_name;

    #[test]
    fn names_are_namespaced_and_cleaned() {
        assert_eq!(router_name("gh", "search").as_deref(), Some("gh.search"));
        assert_eq!(
            router_name("gh", "get-issue").as_deref(),
            Some("gh.get-issue")
        );
        assert_eq!(router_name("gh", "a/b c").as_deref(), Some("gh.a_b_c"));
        assert_eq!(router_name("gh", "a__b").as_deref(), Some("gh.a_b"));
        assert_eq!(router_name("gh", "_x_.y").as_deref(), Some("gh.x.y"));
        assert_eq!(router_name("gh", "???"), None);
        assert_eq!(router_name("gh", ""), None);
    }
}
