//! The node's side of an MCP session: who it says it is, and what it does with what the
//! server sends unasked (changed tool lists, log messages).

use std::sync::Arc;

use rmcp::ClientHandler;
use rmcp::ErrorData;
use rmcp::RoleClient;
#[allow(deprecated)]
use rmcp::model::{
    ClientCapabilities, ClientConfig, Implementation, LoggingLevel,
    LoggingMessageNotificationParam, ProtocolVersion,
};
use rmcp::model::{ElicitRequestParams, ElicitResult, ElicitationAction, ElicitationCapability};
use rmcp::service::{NotificationContext, RequestContext};
use serde_json::Value;

use super::config::ElicitationPolicy;

/// Called when the server says its tool list changed.
pub(crate) type OnToolsChanged = Arc<dyn Fn() + Send + Sync>;

pub(crate) struct NodeClient {
    server: String,
    elicitation: ElicitationPolicy,
    on_tools_changed: OnToolsChanged,
}

impl NodeClient {
    pub fn new(
        server: &str,
        elicitation: ElicitationPolicy,
        on_tools_changed: OnToolsChanged,
    ) -> Self {
        Self {
            server: server.to_string(),
            elicitation,
            on_tools_changed,
        }
    }
}

/// How the node introduces itself to a server.
pub fn client_config(elicitation: ElicitationPolicy) -> ClientConfig {
    let mut capabilities = ClientCapabilities::default();
    if elicitation == ElicitationPolicy::Defaults {
        let mut form = ElicitationCapability::new();
        form.form = Some(Default::default());
        capabilities.elicitation = Some(form);
    }
    ClientConfig::new(
        capabilities,
        Implementation::new("neuroflow", env!("CARGO_PKG_VERSION")),
    )
    // The newest version with the `initialize` handshake, which every server speaks.
    .with_protocol_version(ProtocolVersion::V_2025_11_25)
}

/// The answer to a form request under `policy`: the schema's own defaults when every
/// required field has one, else a refusal.
pub fn answer_elicitation(
    policy: ElicitationPolicy,
    request: &ElicitRequestParams,
) -> ElicitResult {
    let decline = ElicitResult::new(ElicitationAction::Decline);
    let ElicitRequestParams::FormElicitationParams {
        requested_schema, ..
    } = request
    else {
        return decline;
    };
    if policy != ElicitationPolicy::Defaults {
        return decline;
    }
    let Ok(schema) = serde_json::to_value(requested_schema) else {
        return decline;
    };
    let mut content = serde_json::Map::new();
    if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
        for (name, property) in properties {
            if let Some(default) = property.get("default") {
                content.insert(name.clone(), default.clone());
            }
        }
    }
    let required = schema.get("required").and_then(Value::as_array);
    let all_known = required
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .all(|name| content.contains_key(name));
    if !all_known {
        return decline;
    }
    ElicitResult::new(ElicitationAction::Accept).with_content(Value::Object(content))
}

impl ClientHandler for NodeClient {
    fn get_info(&self) -> ClientConfig {
        client_config(self.elicitation)
    }

    async fn create_elicitation(
        &self,
        request: ElicitRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, ErrorData> {
        let answer = answer_elicitation(self.elicitation, &request);
        tracing::info!(mcp.server = %self.server, action = ?answer.action, "MCP server asked for input");
        Ok(answer)
    }

    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        (self.on_tools_changed)();
    }

    // Logging is deprecated from protocol 2026-07-28 on, but servers speaking 2025-11-25
    // (the version the node asks for) still send it, and it belongs in the node's log.
    #[allow(deprecated)]
    async fn on_logging_message(
        &self,
        params: LoggingMessageNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        let server = &self.server;
        let logger = params.logger.as_deref().unwrap_or("");
        let data = &params.data;
        match params.level {
            LoggingLevel::Debug => tracing::debug!(mcp.server = server, logger, %data),
            LoggingLevel::Info | LoggingLevel::Notice => {
                tracing::info!(mcp.server = server, logger, %data)
            }
            LoggingLevel::Warning => tracing::warn!(mcp.server = server, logger, %data),
            _ => tracing::error!(mcp.server = server, logger, %data),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(schema: Value) -> ElicitRequestParams {
        serde_json::from_value(serde_json::json!({
            "mode": "form",
            "message": "input please",
            "requestedSchema": schema,
        }))
        .unwrap()
    }

    #[test]
    fn defaults_are_taken_only_when_they_cover_every_required_field() {
        let covered = form(serde_json::json!({
            "type": "object",
            "properties": {
                "name": {"type": "string", "default": "Ada"},
                "age": {"type": "integer", "default": 36},
                "note": {"type": "string"}
            },
            "required": ["name"]
        }));
        let answer = answer_elicitation(ElicitationPolicy::Defaults, &covered);
        assert_eq!(answer.action, ElicitationAction::Accept);
        assert_eq!(
            answer.content,
            Some(serde_json::json!({"name": "Ada", "age": 36}))
        );
        // Declining is the default policy, whatever the schema.
        let answer = answer_elicitation(ElicitationPolicy::Decline, &covered);
        assert_eq!(answer.action, ElicitationAction::Decline);

        let uncovered = form(serde_json::json!({
            "type": "object",
            "properties": {"email": {"type": "string"}},
            "required": ["email"]
        }));
        let answer = answer_elicitation(ElicitationPolicy::Defaults, &uncovered);
        assert_eq!(answer.action, ElicitationAction::Decline);
        assert_eq!(answer.content, None);
    }
}
