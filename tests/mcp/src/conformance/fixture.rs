//! The conformance suite's server fixture as a [`Catalog`]: every tool, resource,
//! template, prompt, completion and logging behaviour the `conformance server` scenarios
//! check, with the reference fixture's exact names and strings (the TypeScript
//! `everything-server` of modelcontextprotocol/conformance v0.1.16).

// Logging, sampling and subscriptions are deprecated by the SDK for the 2026-07-28
// revision (SEP-2577); the suite tests them in the revisions the face speaks.
#![allow(deprecated)]

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use neuroflow_router::mcp::serve::{
    Catalog, Context, Offers, unknown_prompt, unknown_resource, unknown_tool,
};
use rmcp::ErrorData;
use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientResult, CompleteRequestParams, CompleteResult,
    CompletionInfo, ContentBlock, CreateMessageRequestParams, ElicitRequest, ElicitRequestParams,
    GetPromptRequestParams, GetPromptResult, Implementation, JsonObject, LoggingLevel,
    LoggingMessageNotificationParam, NumberOrString, ProgressNotificationParam, ProgressToken,
    Prompt, PromptArgument, PromptMessage, ReadResourceRequestParams, ReadResourceResult, Resource,
    ResourceContents, ResourceTemplate, Role, SamplingMessage, ServerRequest,
    SetLevelRequestParams, SubscribeRequestParams, Tool, UnsubscribeRequestParams,
};
use serde_json::{Value, json};

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A 1×1 red PNG.
pub const TEST_IMAGE_BASE64: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";
/// A minimal WAV file.
pub const TEST_AUDIO_BASE64: &str = "UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAAB9AAACABAAZGF0YQIAAAA=";
/// The logger name of the fixture's log messages.
const LOGGER: &str = "conformance-test-server";
/// Gap between the notifications of the logging and progress tools.
const STEP: Duration = Duration::from_millis(50);

/// The fixture. Subscriptions are kept per process, as in the reference fixture.
#[derive(Default)]
pub struct Fixture {
    subscriptions: Mutex<HashSet<String>>,
}

fn schema(value: Value) -> Arc<JsonObject> {
    match value {
        Value::Object(map) => Arc::new(map),
        _ => Arc::new(JsonObject::new()),
    }
}

fn no_arguments() -> Arc<JsonObject> {
    schema(json!({"type": "object", "properties": {}}))
}

fn text(text: impl Into<String>) -> CallToolResult {
    CallToolResult::success(vec![ContentBlock::text(text)])
}

fn tools() -> Vec<Tool> {
    let plain = [
        ("test_simple_text", "Tests simple text content response"),
        ("test_image_content", "Tests image content response"),
        ("test_audio_content", "Tests audio content response"),
        (
            "test_embedded_resource",
            "Tests embedded resource content response",
        ),
        (
            "test_multiple_content_types",
            "Tests response with multiple content types (text, image, resource)",
        ),
        (
            "test_tool_with_logging",
            "Tests tool that emits log messages during execution",
        ),
        (
            "test_tool_with_progress",
            "Tests tool that reports progress notifications",
        ),
        ("test_error_handling", "Tests error response handling"),
        (
            "test_reconnection",
            "Tests SSE stream disconnection and client reconnection (SEP-1699). Server will close the stream mid-call and send the result after client reconnects.",
        ),
        (
            "test_elicitation_sep1034_defaults",
            "Tests elicitation with default values per SEP-1034",
        ),
        (
            "test_elicitation_sep1330_enums",
            "Tests elicitation with enum schema improvements per SEP-1330",
        ),
    ];
    let mut tools: Vec<Tool> = plain
        .into_iter()
        .map(|(name, description)| Tool::new(name, description, no_arguments()))
        .collect();
    tools.push(Tool::new(
        "test_sampling",
        "Tests server-initiated sampling (LLM completion request)",
        schema(json!({
            "type": "object",
            "properties": {"prompt": {"type": "string", "description": "The prompt to send to the LLM"}},
            "required": ["prompt"]
        })),
    ));
    tools.push(Tool::new(
        "test_elicitation",
        "Tests server-initiated elicitation (user input request)",
        schema(json!({
            "type": "object",
            "properties": {"message": {"type": "string", "description": "The message to show the user"}},
            "required": ["message"]
        })),
    ));
    tools.push(Tool::new(
        "json_schema_2020_12_tool",
        "Tool with JSON Schema 2020-12 features for conformance testing (SEP-1613)",
        schema(json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "$defs": {
                "address": {
                    "type": "object",
                    "properties": {"street": {"type": "string"}, "city": {"type": "string"}}
                }
            },
            "properties": {"name": {"type": "string"}, "address": {"$ref": "#/$defs/address"}},
            "additionalProperties": false
        })),
    ));
    tools
}

/// A log message to the client, as the reference fixture sends them; a client gone is not
/// the tool's failure.
async fn log(context: &Context, data: &str, logger: Option<&str>) {
    let mut message = LoggingMessageNotificationParam::new(LoggingLevel::Info, json!(data));
    message.logger = logger.map(str::to_string);
    if let Err(err) = context.peer.notify_logging_message(message).await {
        tracing::debug!(error = %err, "log message not sent");
    }
}

/// Asks the client to fill `schema`, and says what it answered.
async fn elicit(context: &Context, message: &str, schema: Value) -> CallToolResult {
    let requested_schema = match serde_json::from_value(schema) {
        Ok(schema) => schema,
        Err(err) => {
            return CallToolResult::error(vec![ContentBlock::text(format!("bad schema: {err}"))]);
        }
    };
    let params = ElicitRequestParams::FormElicitationParams {
        meta: None,
        message: message.to_string(),
        requested_schema,
    };
    let request = ServerRequest::ElicitRequest(ElicitRequest::new(params));
    match context.peer.send_request(request).await {
        Ok(ClientResult::ElicitResult(answer)) => {
            let action = serde_json::to_value(&answer.action).unwrap_or(Value::Null);
            let action = action.as_str().unwrap_or("unknown");
            let content = answer.content.unwrap_or_else(|| json!({}));
            text(format!(
                "Elicitation completed: action={action}, content={content}"
            ))
        }
        Ok(other) => text(format!(
            "Elicitation not supported or error: unexpected answer {other:?}"
        )),
        Err(err) => text(format!("Elicitation not supported or error: {err}")),
    }
}

fn sep1034_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "name": {"type": "string", "description": "User name", "default": "John Doe"},
            "age": {"type": "integer", "description": "User age", "default": 30},
            "score": {"type": "number", "description": "User score", "default": 95.5},
            "status": {
                "type": "string",
                "description": "User status",
                "enum": ["active", "inactive", "pending"],
                "default": "active"
            },
            "verified": {"type": "boolean", "description": "Verification status", "default": true}
        },
        "required": []
    })
}

fn sep1330_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "untitledSingle": {
                "type": "string",
                "description": "Select one option",
                "enum": ["option1", "option2", "option3"]
            },
            "titledSingle": {
                "type": "string",
                "description": "Select one option with titles",
                "oneOf": [
                    {"const": "value1", "title": "First Option"},
                    {"const": "value2", "title": "Second Option"},
                    {"const": "value3", "title": "Third Option"}
                ]
            },
            "legacyEnum": {
                "type": "string",
                "description": "Select one option (legacy)",
                "enum": ["opt1", "opt2", "opt3"],
                "enumNames": ["Option One", "Option Two", "Option Three"]
            },
            "untitledMulti": {
                "type": "array",
                "description": "Select multiple options",
                "minItems": 1,
                "maxItems": 3,
                "items": {"type": "string", "enum": ["option1", "option2", "option3"]}
            },
            "titledMulti": {
                "type": "array",
                "description": "Select multiple options with titles",
                "minItems": 1,
                "maxItems": 3,
                "items": {
                    "anyOf": [
                        {"const": "value1", "title": "First Choice"},
                        {"const": "value2", "title": "Second Choice"},
                        {"const": "value3", "title": "Third Choice"}
                    ]
                }
            }
        },
        "required": []
    })
}

impl Fixture {
    async fn call(
        &self,
        params: CallToolRequestParams,
        context: Context,
    ) -> Result<CallToolResult, ErrorData> {
        let args = params.arguments.unwrap_or_default();
        let arg = |name: &str| args.get(name).and_then(Value::as_str).map(str::to_string);
        let result = match params.name.as_ref() {
            "test_simple_text" => text("This is a simple text response for testing."),
            "test_image_content" => {
                CallToolResult::success(vec![ContentBlock::image(TEST_IMAGE_BASE64, "image/png")])
            }
            "test_audio_content" => {
                CallToolResult::success(vec![ContentBlock::audio(TEST_AUDIO_BASE64, "audio/wav")])
            }
            "test_embedded_resource" => CallToolResult::success(vec![ContentBlock::resource(
                ResourceContents::text(
                    "This is an embedded resource content.",
                    "test://embedded-resource",
                )
                .with_mime_type("text/plain"),
            )]),
            "test_multiple_content_types" => CallToolResult::success(vec![
                ContentBlock::text("Multiple content types test:"),
                ContentBlock::image(TEST_IMAGE_BASE64, "image/png"),
                ContentBlock::resource(
                    ResourceContents::text(
                        json!({"test": "data", "value": 123}).to_string(),
                        "test://mixed-content-resource",
                    )
                    .with_mime_type("application/json"),
                ),
            ]),
            "test_tool_with_logging" => {
                log(&context, "Tool execution started", None).await;
                tokio::time::sleep(STEP).await;
                log(&context, "Tool processing data", None).await;
                tokio::time::sleep(STEP).await;
                log(&context, "Tool execution completed", None).await;
                text("Tool with logging executed successfully")
            }
            "test_tool_with_progress" => {
                let token = context
                    .meta
                    .get_progress_token()
                    .unwrap_or(ProgressToken(NumberOrString::Number(0)));
                for (step, progress) in [0.0, 50.0, 100.0].into_iter().enumerate() {
                    if step > 0 {
                        tokio::time::sleep(STEP).await;
                    }
                    let mut note = ProgressNotificationParam::new(token.clone(), progress);
                    note.total = Some(100.0);
                    note.message = Some(format!("Completed step {progress} of 100"));
                    if let Err(err) = context.peer.notify_progress(note).await {
                        tracing::debug!(error = %err, "progress not sent");
                    }
                }
                text(match &token.0 {
                    NumberOrString::Number(n) => n.to_string(),
                    NumberOrString::String(s) => s.to_string(),
                })
            }
            "test_error_handling" => CallToolResult::error(vec![ContentBlock::text(
                "This tool intentionally returns an error for testing",
            )]),
            "test_reconnection" => {
                // The reference closes the request's SSE stream here; the SDK gives a
                // handler no way to, so the result comes on the open stream.
                tokio::time::sleep(Duration::from_millis(100)).await;
                text(
                    "Reconnection test completed successfully. If you received this, the client properly reconnected after stream closure.",
                )
            }
            "test_sampling" => {
                let prompt = arg("prompt").unwrap_or_default();
                let request =
                    CreateMessageRequestParams::new(vec![SamplingMessage::user_text(prompt)], 100);
                match context.peer.create_message(request).await {
                    Ok(answer) => {
                        let answer = serde_json::to_value(&answer).unwrap_or(Value::Null);
                        let said = answer["content"]["text"].as_str().unwrap_or("No response");
                        text(format!("LLM response: {said}"))
                    }
                    Err(err) => text(format!("Sampling not supported or error: {err}")),
                }
            }
            "test_elicitation" => {
                let message = arg("message").unwrap_or_default();
                let schema = json!({
                    "type": "object",
                    "properties": {"response": {"type": "string", "description": "User's response"}},
                    "required": ["response"]
                });
                let mut result = elicit(&context, &message, schema).await;
                // The reference words this one differently.
                if let Some(ContentBlock::Text(said)) = result.content.first_mut() {
                    said.text = said
                        .text
                        .replacen("Elicitation completed:", "User response:", 1);
                }
                result
            }
            "test_elicitation_sep1034_defaults" => {
                elicit(
                    &context,
                    "Please review and update the form fields with defaults",
                    sep1034_schema(),
                )
                .await
            }
            "test_elicitation_sep1330_enums" => {
                elicit(
                    &context,
                    "Please select options from the enum fields",
                    sep1330_schema(),
                )
                .await
            }
            "json_schema_2020_12_tool" => text(format!(
                "JSON Schema 2020-12 tool called with: {}",
                Value::Object(args.clone())
            )),
            other => return Err(unknown_tool(other)),
        };
        Ok(result)
    }

    fn read(&self, uri: &str) -> Result<ReadResourceResult, ErrorData> {
        let contents = match uri {
            "test://static-text" => {
                ResourceContents::text("This is the content of the static text resource.", uri)
                    .with_mime_type("text/plain")
            }
            "test://static-binary" => {
                ResourceContents::blob(TEST_IMAGE_BASE64, uri).with_mime_type("image/png")
            }
            "test://watched-resource" => {
                ResourceContents::text("Watched resource content", uri).with_mime_type("text/plain")
            }
            _ => {
                let id = template_id(uri).ok_or_else(|| unknown_resource(uri))?;
                let data =
                    json!({"id": id, "templateTest": true, "data": format!("Data for ID: {id}")});
                ResourceContents::text(data.to_string(), uri).with_mime_type("application/json")
            }
        };
        Ok(ReadResourceResult::new(vec![contents]))
    }
}

/// The `{id}` of `test://template/{id}/data`: one non-empty path segment.
fn template_id(uri: &str) -> Option<&str> {
    let id = uri
        .strip_prefix("test://template/")?
        .strip_suffix("/data")?;
    (!id.is_empty() && !id.contains('/')).then_some(id)
}

fn required(name: &str, description: &str) -> PromptArgument {
    let mut argument = PromptArgument::new(name).with_description(description);
    argument.required = Some(true);
    argument
}

fn prompts() -> Vec<Prompt> {
    vec![
        Prompt::new(
            "test_simple_prompt",
            Some("A simple prompt without arguments"),
            None,
        )
        .with_title("Simple Test Prompt"),
        Prompt::new(
            "test_prompt_with_arguments",
            Some("A prompt with required arguments"),
            Some(vec![
                required("arg1", "First test argument"),
                required("arg2", "Second test argument"),
            ]),
        )
        .with_title("Prompt With Arguments"),
        Prompt::new(
            "test_prompt_with_embedded_resource",
            Some("A prompt that includes an embedded resource"),
            Some(vec![required(
                "resourceUri",
                "URI of the resource to embed",
            )]),
        )
        .with_title("Prompt With Embedded Resource"),
        Prompt::new(
            "test_prompt_with_image",
            Some("A prompt that includes image content"),
            None,
        )
        .with_title("Prompt With Image"),
    ]
}

fn get_prompt(params: GetPromptRequestParams) -> Result<GetPromptResult, ErrorData> {
    let args = params.arguments.unwrap_or_default();
    let arg = |name: &str| {
        args.get(name)
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| {
                ErrorData::invalid_params(format!("argument {name:?} is required"), None)
            })
    };
    let messages = match params.name.as_str() {
        "test_simple_prompt" => vec![PromptMessage::new_text(
            Role::User,
            "This is a simple prompt for testing.",
        )],
        "test_prompt_with_arguments" => {
            let (arg1, arg2) = (arg("arg1")?, arg("arg2")?);
            vec![PromptMessage::new_text(
                Role::User,
                format!("Prompt with arguments: arg1='{arg1}', arg2='{arg2}'"),
            )]
        }
        "test_prompt_with_embedded_resource" => {
            let uri = arg("resourceUri")?;
            vec![
                PromptMessage::new(
                    Role::User,
                    ContentBlock::resource(
                        ResourceContents::text("Embedded resource content for testing.", uri)
                            .with_mime_type("text/plain"),
                    ),
                ),
                PromptMessage::new_text(Role::User, "Please process the embedded resource above."),
            ]
        }
        "test_prompt_with_image" => vec![
            PromptMessage::new(
                Role::User,
                ContentBlock::image(TEST_IMAGE_BASE64, "image/png"),
            ),
            PromptMessage::new_text(Role::User, "Please analyze the image above."),
        ],
        other => return Err(unknown_prompt(other)),
    };
    Ok(GetPromptResult::new(messages))
}

impl Catalog for Fixture {
    fn offers(&self) -> Offers {
        Offers {
            tools: true,
            resources: true,
            resources_subscribe: true,
            prompts: true,
            completions: true,
            logging: true,
            ..Offers::default()
        }
    }

    fn implementation(&self) -> Implementation {
        Implementation::new("mcp-conformance-test-server", "1.0.0")
    }

    fn list_tools(&self, _context: Context) -> BoxFuture<'_, Result<Vec<Tool>, ErrorData>> {
        Box::pin(async { Ok(tools()) })
    }

    fn call_tool(
        &self,
        params: CallToolRequestParams,
        context: Context,
    ) -> BoxFuture<'_, Result<CallToolResult, ErrorData>> {
        Box::pin(self.call(params, context))
    }

    fn list_resources(&self, _context: Context) -> BoxFuture<'_, Result<Vec<Resource>, ErrorData>> {
        let resource = |uri: &str, name: &str, title: &str, description: &str, mime: &str| {
            Resource::new(uri, name)
                .with_title(title)
                .with_description(description)
                .with_mime_type(mime)
        };
        let resources = vec![
            resource(
                "test://static-text",
                "static-text",
                "Static Text Resource",
                "A static text resource for testing",
                "text/plain",
            ),
            resource(
                "test://static-binary",
                "static-binary",
                "Static Binary Resource",
                "A static binary resource (image) for testing",
                "image/png",
            ),
            resource(
                "test://watched-resource",
                "watched-resource",
                "Watched Resource",
                "A resource that auto-updates every 3 seconds",
                "text/plain",
            ),
        ];
        Box::pin(async { Ok(resources) })
    }

    fn list_resource_templates(
        &self,
        _context: Context,
    ) -> BoxFuture<'_, Result<Vec<ResourceTemplate>, ErrorData>> {
        let template = ResourceTemplate::new("test://template/{id}/data", "template")
            .with_title("Resource Template")
            .with_description("A resource template with parameter substitution")
            .with_mime_type("application/json");
        Box::pin(async { Ok(vec![template]) })
    }

    fn read_resource(
        &self,
        params: ReadResourceRequestParams,
        _context: Context,
    ) -> BoxFuture<'_, Result<ReadResourceResult, ErrorData>> {
        let read = self.read(&params.uri);
        Box::pin(async { read })
    }

    fn subscribe(
        &self,
        params: SubscribeRequestParams,
        context: Context,
    ) -> BoxFuture<'_, Result<(), ErrorData>> {
        Box::pin(async move {
            self.subscriptions
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(params.uri.clone());
            log(
                &context,
                &format!("Subscribed to resource: {}", params.uri),
                Some(LOGGER),
            )
            .await;
            Ok(())
        })
    }

    fn unsubscribe(
        &self,
        params: UnsubscribeRequestParams,
        context: Context,
    ) -> BoxFuture<'_, Result<(), ErrorData>> {
        Box::pin(async move {
            self.subscriptions
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&params.uri);
            log(
                &context,
                &format!("Unsubscribed from resource: {}", params.uri),
                Some(LOGGER),
            )
            .await;
            Ok(())
        })
    }

    fn list_prompts(&self, _context: Context) -> BoxFuture<'_, Result<Vec<Prompt>, ErrorData>> {
        Box::pin(async { Ok(prompts()) })
    }

    fn get_prompt(
        &self,
        params: GetPromptRequestParams,
        _context: Context,
    ) -> BoxFuture<'_, Result<GetPromptResult, ErrorData>> {
        Box::pin(async { get_prompt(params) })
    }

    fn complete(
        &self,
        _params: CompleteRequestParams,
        _context: Context,
    ) -> BoxFuture<'_, Result<CompleteResult, ErrorData>> {
        let mut completion = CompletionInfo::default();
        completion.total = Some(0);
        completion.has_more = Some(false);
        Box::pin(async { Ok(CompleteResult::new(completion)) })
    }

    fn set_level(
        &self,
        params: SetLevelRequestParams,
        context: Context,
    ) -> BoxFuture<'_, Result<(), ErrorData>> {
        Box::pin(async move {
            let level = serde_json::to_value(params.level).unwrap_or(Value::Null);
            let level = level.as_str().unwrap_or("unknown");
            log(
                &context,
                &format!("Log level set to: {level}"),
                Some(LOGGER),
            )
            .await;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_ids_are_one_segment() {
        assert_eq!(template_id("test://template/123/data"), Some("123"));
        assert_eq!(template_id("test://template//data"), None);
        assert_eq!(template_id("test://template/1/2/data"), None);
        assert_eq!(template_id("test://static-text"), None);
    }

    #[test]
    fn every_tool_has_a_description_and_the_2020_12_schema_is_kept() {
        let tools = tools();
        assert!(
            tools
                .iter()
                .all(|t| t.description.as_deref().is_some_and(|d| !d.is_empty()))
        );
        let tool = tools
            .iter()
            .find(|t| t.name == "json_schema_2020_12_tool")
            .unwrap();
        assert_eq!(tool.input_schema["additionalProperties"], json!(false));
        assert!(tool.input_schema["$defs"]["address"].is_object());
    }

    #[test]
    fn elicitation_schemas_parse_without_losing_enum_forms() {
        for schema in [sep1034_schema(), sep1330_schema()] {
            let parsed: rmcp::model::ElicitationSchema =
                serde_json::from_value(schema.clone()).unwrap();
            let back = serde_json::to_value(parsed).unwrap();
            assert_eq!(back["properties"], schema["properties"], "{back}");
        }
    }
}
