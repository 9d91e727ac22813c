//! [`McpFace`]: the SDK's server handler over a [`Catalog`].

// Logging and subscriptions are deprecated by the SDK for the 2026-07-28 revision
// (SEP-2577); they are current in the revisions this face speaks.
#![allow(deprecated)]

use std::borrow::Cow;
use std::sync::Arc;

use rmcp::model::{
    CallToolRequestMethod, CallToolRequestParams, CallToolResponse, CompleteRequestMethod,
    CompleteRequestParams, CompleteResult, GetPromptRequestMethod, GetPromptRequestParams,
    GetPromptResponse, ListPromptsRequestMethod, ListPromptsResult,
    ListResourceTemplatesRequestMethod, ListResourceTemplatesResult, ListResourcesRequestMethod,
    ListResourcesResult, ListToolsRequestMethod, ListToolsResult, PaginatedRequestParams,
    ProtocolVersion, ReadResourceRequestMethod, ReadResourceRequestParams, ReadResourceResponse,
    ServerConfig, SetLevelRequestMethod, SetLevelRequestParams, SubscribeRequestMethod,
    SubscribeRequestParams, UnsubscribeRequestMethod, UnsubscribeRequestParams,
};
use rmcp::{ErrorData, ServerHandler};

use super::catalog::{Catalog, Context, Offers};

/// The newest protocol revision the face speaks. Capped below the SDK's newest
/// (2026-07-28, without `initialize`): that revision's stateless requests, listen
/// subscriptions and input-required results are not what the catalogs implement, nor what
/// the pinned conformance suite checks.
pub const PROTOCOL_VERSION: ProtocolVersion = ProtocolVersion::V_2025_11_25;

/// An MCP server over a [`Catalog`]: declares what the catalog offers, answers "method
/// not found" for the rest, and hands each request (with the SDK's request context) to
/// the catalog. Cheap to clone: the HTTP face makes one per session.
#[derive(Clone)]
pub struct McpFace {
    catalog: Arc<dyn Catalog>,
}

impl McpFace {
    pub fn new(catalog: impl Catalog) -> Self {
        Self::shared(Arc::new(catalog))
    }

    pub fn shared(catalog: Arc<dyn Catalog>) -> Self {
        Self { catalog }
    }

    pub fn catalog(&self) -> &Arc<dyn Catalog> {
        &self.catalog
    }

    fn offers(&self) -> Offers {
        self.catalog.offers()
    }
}

/// "Method not found" for `M` unless `offered`.
fn offered<M: rmcp::model::ConstString>(offered: bool) -> Result<(), ErrorData> {
    if offered {
        Ok(())
    } else {
        Err(ErrorData::method_not_found::<M>())
    }
}

impl ServerHandler for McpFace {
    fn get_info(&self) -> ServerConfig {
        let mut config = ServerConfig::new(self.offers().capabilities())
            .with_server_info(self.catalog.implementation())
            .with_protocol_version(PROTOCOL_VERSION);
        config.instructions = self.catalog.instructions();
        config
    }

    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        Cow::Borrowed(ProtocolVersion::known_up_to(&PROTOCOL_VERSION))
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: Context,
    ) -> Result<ListToolsResult, ErrorData> {
        offered::<ListToolsRequestMethod>(self.offers().tools)?;
        let tools = self.catalog.list_tools(context).await?;
        Ok(ListToolsResult::with_all_items(tools))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: Context,
    ) -> Result<CallToolResponse, ErrorData> {
        offered::<CallToolRequestMethod>(self.offers().tools)?;
        self.catalog
            .call_tool(request, context)
            .await
            .map(CallToolResponse::from)
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: Context,
    ) -> Result<ListResourcesResult, ErrorData> {
        offered::<ListResourcesRequestMethod>(self.offers().resources)?;
        let resources = self.catalog.list_resources(context).await?;
        Ok(ListResourcesResult::with_all_items(resources))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: Context,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        offered::<ListResourceTemplatesRequestMethod>(self.offers().resources)?;
        let templates = self.catalog.list_resource_templates(context).await?;
        Ok(ListResourceTemplatesResult::with_all_items(templates))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: Context,
    ) -> Result<ReadResourceResponse, ErrorData> {
        offered::<ReadResourceRequestMethod>(self.offers().resources)?;
        self.catalog
            .read_resource(request, context)
            .await
            .map(ReadResourceResponse::from)
    }

    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: Context,
    ) -> Result<(), ErrorData> {
        let offers = self.offers();
        offered::<SubscribeRequestMethod>(offers.resources && offers.resources_subscribe)?;
        self.catalog.subscribe(request, context).await
    }

    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        context: Context,
    ) -> Result<(), ErrorData> {
        let offers = self.offers();
        offered::<UnsubscribeRequestMethod>(offers.resources && offers.resources_subscribe)?;
        self.catalog.unsubscribe(request, context).await
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: Context,
    ) -> Result<ListPromptsResult, ErrorData> {
        offered::<ListPromptsRequestMethod>(self.offers().prompts)?;
        let prompts = self.catalog.list_prompts(context).await?;
        Ok(ListPromptsResult::with_all_items(prompts))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: Context,
    ) -> Result<GetPromptResponse, ErrorData> {
        offered::<GetPromptRequestMethod>(self.offers().prompts)?;
        self.catalog
            .get_prompt(request, context)
            .await
            .map(GetPromptResponse::from)
    }

    async fn complete(
        &self,
        request: CompleteRequestParams,
        context: Context,
    ) -> Result<CompleteResult, ErrorData> {
        offered::<CompleteRequestMethod>(self.offers().completions)?;
        self.catalog.complete(request, context).await
    }

    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        context: Context,
    ) -> Result<(), ErrorData> {
        offered::<SetLevelRequestMethod>(self.offers().logging)?;
        self.catalog.set_level(request, context).await
    }
}
