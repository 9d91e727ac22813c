//! What an MCP tool result becomes for the model: [`ToolOutput`] is text, so text parts
//! pass as they are and other parts are named with their size rather than dumped.

use neuroflow_kit::protocol::router::ToolOutput;
use rmcp::model::{CallToolResult, ContentBlock, ResourceContents};

/// A `tools/call` result as the model sees it; `isError` results stay errors.
pub fn tool_output(result: CallToolResult) -> ToolOutput {
    let mut parts: Vec<String> = result.content.iter().map(describe).collect();
    if parts.is_empty()
        && let Some(structured) = &result.structured_content
    {
        parts.push(structured.to_string());
    }
    let text = parts.join("\n");
    if result.is_error.unwrap_or(false) {
        ToolOutput::error(text)
    } else {
        ToolOutput::ok(text)
    }
}

fn describe(block: &ContentBlock) -> String {
    match block {
        ContentBlock::Text(text) => text.text.clone(),
        ContentBlock::Image(image) => {
            format!(
                "[image {}, {} bytes]",
                image.mime_type,
                decoded_len(&image.data)
            )
        }
        ContentBlock::Audio(audio) => {
            format!(
                "[audio {}, {} bytes]",
                audio.mime_type,
                decoded_len(&audio.data)
            )
        }
        ContentBlock::Resource(embedded) => resource_text(&embedded.resource),
        ContentBlock::ResourceLink(link) => format!("[resource {} ({})]", link.uri, link.name),
        // A newer content kind this build does not know.
        #[allow(unreachable_patterns)]
        _ => "[content of an unknown kind]".to_string(),
    }
}

/// A resource's text, or a line naming a binary one.
pub fn resource_text(contents: &ResourceContents) -> String {
    match contents {
        ResourceContents::TextResourceContents { text, .. } => text.clone(),
        ResourceContents::BlobResourceContents {
            uri,
            mime_type,
            blob,
            ..
        } => format!(
            "[resource {uri}, {}, {} bytes]",
            mime_type.as_deref().unwrap_or("binary"),
            decoded_len(blob)
        ),
        #[allow(unreachable_patterns)]
        _ => "[resource contents of an unknown kind]".to_string(),
    }
}

/// Bytes a base64 text decodes to (padding aside), without decoding it.
fn decoded_len(base64: &str) -> usize {
    let len = base64.trim_end_matches('=').len();
    len / 4 * 3 + (len % 4).saturating_sub(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_lengths() {
        assert_eq!(decoded_len("aGVsbG8="), 5);
        assert_eq!(decoded_len("aGVsbG8h"), 6);
        assert_eq!(decoded_len("aA=="), 1);
        assert_eq!(decoded_len(""), 0);
    }

    #[test]
    fn error_results_stay_errors_and_parts_are_joined() {
        let result = CallToolResult::error(vec![
            ContentBlock::text("first"),
            ContentBlock::image("aGVsbG8=", "image/png"),
        ]);
        let out = tool_output(result);
        assert!(out.is_error);
        assert_eq!(out.content, "first\n[image image/png, 5 bytes]");
    }

    #[test]
    fn structured_content_speaks_when_nothing_else_does() {
        let mut result = CallToolResult::success(Vec::new());
        result.structured_content = Some(serde_json::json!({"sum": 3}));
        assert_eq!(tool_output(result).content, r#"{"sum":3}"#);
    }
}
