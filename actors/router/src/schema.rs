//! Tool argument schemas: checked once at registration, applied at every call.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, Weak};

use jsonschema::Validator;
use neuroflow_kit::protocol::router::ToolError;
use serde_json::Value;

/// Longest validation message passed on to the model. Messages quote schema values
/// (enums, patterns) that a tool author may have made long.
const MAX_MESSAGE: usize = 512;

/// A tool's compiled argument schema, shared by every tool with the same one.
pub(crate) struct Schema(Arc<Validator>);

/// Compiled schemas by their JSON text. Many tools share a schema (every agent exposed as
/// a tool has the same one), and a compiled validator is several kilobytes: thousands of
/// agents would otherwise pay for thousands of copies. Weak, so that a schema no tool uses
/// any more is freed.
static COMPILED: LazyLock<Mutex<HashMap<String, Weak<Validator>>>> =
    LazyLock::new(Default::default);

impl Schema {
    /// Compiles `parameters`, refusing what cannot describe a tool's arguments: anything
    /// but an object schema (both LLM APIs require one), a schema its meta-schema rejects,
    /// or one with a `$ref` that cannot be resolved locally (the crate is built without
    /// resolvers, so a schema never makes the node fetch anything).
    pub(crate) fn compile(parameters: &Value) -> Result<Self, String> {
        if parameters.get("type") != Some(&Value::String("object".into())) {
            return Err("the parameters schema must have \"type\": \"object\"".into());
        }
        let key = parameters.to_string();
        let mut compiled = COMPILED.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(validator) = compiled.get(&key).and_then(Weak::upgrade) {
            return Ok(Self(validator));
        }
        let validator =
            Arc::new(jsonschema::validator_for(parameters).map_err(|e| capped(e.to_string()))?);
        compiled.retain(|_, v| v.strong_count() > 0);
        compiled.insert(key, Arc::downgrade(&validator));
        Ok(Self(validator))
    }

    /// Checks `args`; the error names the JSON pointer of the first offending value. The
    /// message masks the value itself: the model knows what it sent, and echoing an
    /// arbitrary document back would make the error unbounded.
    pub(crate) fn check(&self, tool: &str, args: &Value) -> Result<(), ToolError> {
        self.0
            .validate(args)
            .map_err(|e| ToolError::InvalidArguments {
                tool: tool.to_string(),
                path: e.instance_path().as_str().to_string(),
                message: capped(e.masked().to_string()),
            })
    }
}

fn capped(mut message: String) -> String {
    if message.len() > MAX_MESSAGE {
        let mut end = MAX_MESSAGE;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message.push('…');
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Schema {
        Schema::compile(&json!({
            "type": "object",
            "properties": {
                "user": {
                    "type": "object",
                    "properties": {"age": {"type": "integer", "minimum": 0}},
                    "required": ["age"]
                },
                "tags": {"type": "array", "items": {"type": "string"}}
            },
            "required": ["user"],
            "additionalProperties": false
        }))
        .unwrap()
    }

    fn invalid(args: Value) -> (String, String) {
        match schema().check("t", &args) {
            Err(ToolError::InvalidArguments { path, message, .. }) => (path, message),
            other => panic!("expected invalid arguments, got {other:?}"),
        }
    }

    #[test]
    fn errors_name_the_offending_path() {
        assert!(schema().check("t", &json!({"user": {"age": 3}})).is_ok());
        assert_eq!(invalid(json!({"user": {"age": -1}})).0, "/user/age");
        assert_eq!(
            invalid(json!({"user": {"age": 1}, "tags": ["a", 7]})).0,
            "/tags/1"
        );
        let (path, message) = invalid(json!({}));
        assert_eq!(path, "");
        assert!(message.contains("user"), "{message}");
        let (_, message) = invalid(json!({"user": {"age": "x".repeat(10_000)}}));
        assert!(message.len() <= MAX_MESSAGE + 3, "{message}");
    }

    #[test]
    fn bad_schemas_are_refused() {
        assert!(Schema::compile(&json!({"type": "string"})).is_err());
        assert!(Schema::compile(&json!({"properties": {}})).is_err());
        assert!(Schema::compile(&json!({"type": "object", "minProperties": "x"})).is_err());
        let remote = json!({"type": "object", "$ref": "https://example.invalid/s.json"});
        assert!(Schema::compile(&remote).is_err());
    }
}
