//! [`Catalog`]: what an MCP face offers, one method per protocol request, each with a
//! default, so that a catalog implements only what it has.

// Logging and subscriptions are deprecated by the SDK for the 2026-07-28 revision
// (SEP-2577); they are current in the revisions this face speaks.
#![allow(deprecated)]

use futures_util::future::{self, BoxFuture};
use rmcp::model::{
    CallToolRequestParams, CallToolResult, CompleteRequestParams, CompleteResult,
    GetPromptRequestParams, GetPromptResult, Implementation, Prompt, ReadResourceRequestParams,
    ReadResourceResult, Resource, ResourceTemplate, ServerCapabilities, SetLevelRequestParams,
    SubscribeRequestParams, Tool, UnsubscribeRequestParams,
};
use rmcp::model::{PromptsCapability, ResourcesCapability, ToolsCapability};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer};

/// The request context of the SDK: the request's `_meta`, its cancellation token, and
/// the peer, through which a catalog sends progress, log messages, sampling and
/// elicitation requests while it answers.
pub type Context = RequestContext<RoleServer>;

/// What a catalog answers, hence the capabilities the face declares. A request for
/// something not offered is "method not found" without reaching the catalog.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Offers {
    pub tools: bool,
    /// The catalog sends `notifications/tools/list_changed`.
    pub tools_list_changed: bool,
    pub resources: bool,
    /// `resources/subscribe` and `resources/unsubscribe`.
    pub resources_subscribe: bool,
    pub resources_list_changed: bool,
    pub prompts: bool,
    pub prompts_list_changed: bool,
    /// `completion/complete`.
    pub completions: bool,
    /// `logging/setLevel` (and log messages sent through the peer).
    pub logging: bool,
}

impl Offers {
    /// Tools only: what a node offers.
    pub fn tools() -> Self {
        Self {
            tools: true,
            ..Self::default()
        }
    }

    /// The `capabilities` of the `initialize` answer.
    pub fn capabilities(&self) -> ServerCapabilities {
        // Built field by field: the SDK's builder fixes the set of capabilities in types.
        let mut caps = ServerCapabilities::default();
        if self.tools {
            let mut tools = ToolsCapability::default();
            tools.list_changed = self.tools_list_changed.then_some(true);
            caps.tools = Some(tools);
        }
        if self.resources {
            let mut resources = ResourcesCapability::default();
            resources.subscribe = self.resources_subscribe.then_some(true);
            resources.list_changed = self.resources_list_changed.then_some(true);
            caps.resources = Some(resources);
        }
        if self.prompts {
            let mut prompts = PromptsCapability::default();
            prompts.list_changed = self.prompts_list_changed.then_some(true);
            caps.prompts = Some(prompts);
        }
        if self.completions {
            caps.completions = Some(Default::default());
        }
        if self.logging {
            caps.logging = Some(Default::default());
        }
        caps
    }
}

/// The content behind an MCP face ([`super::McpFace`]). Lists are answered whole (no
/// pagination): a catalog keeps them to a size one answer can carry.
///
/// Defaults: lists are empty, completion offers nothing, `logging/setLevel` is accepted;
/// a named tool, resource or prompt is not found; subscriptions are "method not found".
pub trait Catalog: Send + Sync + 'static {
    /// What the catalog answers.
    fn offers(&self) -> Offers;

    /// `serverInfo` of the `initialize` answer.
    fn implementation(&self) -> Implementation {
        Implementation::new("neuroflow", env!("CARGO_PKG_VERSION"))
    }

    /// `instructions` of the `initialize` answer.
    fn instructions(&self) -> Option<String> {
        None
    }

    fn list_tools(&self, context: Context) -> BoxFuture<'_, Result<Vec<Tool>, ErrorData>> {
        let _ = context;
        Box::pin(future::ready(Ok(Vec::new())))
    }

    /// A `tools/call`. A tool that fails answers `Ok` with `isError` (the model reads it);
    /// `Err` is for a call that cannot be made at all, such as an unknown tool.
    fn call_tool(
        &self,
        params: CallToolRequestParams,
        context: Context,
    ) -> BoxFuture<'_, Result<CallToolResult, ErrorData>> {
        let _ = context;
        Box::pin(future::ready(Err(unknown_tool(&params.name))))
    }

    fn list_resources(&self, context: Context) -> BoxFuture<'_, Result<Vec<Resource>, ErrorData>> {
        let _ = context;
        Box::pin(future::ready(Ok(Vec::new())))
    }

    fn list_resource_templates(
        &self,
        context: Context,
    ) -> BoxFuture<'_, Result<Vec<ResourceTemplate>, ErrorData>> {
        let _ = context;
        Box::pin(future::ready(Ok(Vec::new())))
    }

    fn read_resource(
        &self,
        params: ReadResourceRequestParams,
        context: Context,
    ) -> BoxFuture<'_, Result<ReadResourceResult, ErrorData>> {
        let _ = context;
        Box::pin(future::ready(Err(unknown_resource(&params.uri))))
    }

    fn subscribe(
        &self,
        params: SubscribeRequestParams,
        context: Context,
    ) -> BoxFuture<'_, Result<(), ErrorData>> {
        let _ = (params, context);
        Box::pin(future::ready(Err(ErrorData::method_not_found::<
            rmcp::model::SubscribeRequestMethod,
        >())))
    }

    fn unsubscribe(
        &self,
        params: UnsubscribeRequestParams,
        context: Context,
    ) -> BoxFuture<'_, Result<(), ErrorData>> {
        let _ = (params, context);
        Box::pin(future::ready(Err(ErrorData::method_not_found::<
            rmcp::model::UnsubscribeRequestMethod,
        >())))
    }

    fn list_prompts(&self, context: Context) -> BoxFuture<'_, Result<Vec<Prompt>, ErrorData>> {
        let _ = context;
        Box::pin(future::ready(Ok(Vec::new())))
    }

    fn get_prompt(
        &self,
        params: GetPromptRequestParams,
        context: Context,
    ) -> BoxFuture<'_, Result<GetPromptResult, ErrorData>> {
        let _ = context;
        Box::pin(future::ready(Err(unknown_prompt(&params.name))))
    }

    fn complete(
        &self,
        params: CompleteRequestParams,
        context: Context,
    ) -> BoxFuture<'_, Result<CompleteResult, ErrorData>> {
        let _ = (params, context);
        Box::pin(future::ready(Ok(CompleteResult::default())))
    }

    fn set_level(
        &self,
        params: SetLevelRequestParams,
        context: Context,
    ) -> BoxFuture<'_, Result<(), ErrorData>> {
        let _ = (params, context);
        Box::pin(future::ready(Ok(())))
    }
}

/// The error for a tool the catalog does not offer: invalid params (-32602), as the
/// protocol asks for an unknown tool.
pub fn unknown_tool(name: &str) -> ErrorData {
    ErrorData::invalid_params(format!("no tool named {name:?}"), None)
}

/// The error for a resource the catalog does not have (-32002).
pub fn unknown_resource(uri: &str) -> ErrorData {
    ErrorData::resource_not_found(format!("no resource {uri:?}"), None)
}

/// The error for a prompt the catalog does not offer: invalid params (-32602).
pub fn unknown_prompt(name: &str) -> ErrorData {
    ErrorData::invalid_params(format!("no prompt named {name:?}"), None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_follow_the_offers() {
        let caps = Offers::tools().capabilities();
        assert!(caps.tools.is_some());
        assert!(caps.resources.is_none() && caps.prompts.is_none());
        assert!(caps.logging.is_none() && caps.completions.is_none());
        let json = serde_json::to_value(&caps).unwrap();
        assert_eq!(json, serde_json::json!({"tools": {}}));

        let all = Offers {
            tools: true,
            tools_list_changed: true,
            resources: true,
            resources_subscribe: true,
            resources_list_changed: false,
            prompts: true,
            prompts_list_changed: false,
            completions: true,
            logging: true,
        };
        let json = serde_json::to_value(all.capabilities()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "tools": {"listChanged": true},
                "resources": {"subscribe": true},
                "prompts": {},
                "completions": {},
                "logging": {}
            })
        );
    }
}
