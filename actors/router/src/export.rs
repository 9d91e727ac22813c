//! Tool lists as the LLM APIs want them, and the tool-name mapping they need.
//!
//! NeuroFlow names tools with dots (`fs.read`, `mcp_server.tool`), but OpenAI and Anthropic
//! both require names matching `^[a-zA-Z0-9_-]{1,64}$`. Exported names therefore spell
//! each `.` as `__` ([`exported_name`]), and a model's tool call is mapped back by spelling
//! each `__` as `.` ([`name_from_export`]). The mapping is a bijection on the names the
//! router accepts, because registration ([`check_name`]) refuses any name it would not
//! round-trip (one containing `__`, or `_` next to `.`) or whose export exceeds 64 bytes.

use neuroflow_kit::protocol::router::ToolSpec;
use serde_json::{Value, json};

/// Longest exported name both APIs accept.
pub const MAX_EXPORTED_NAME: usize = 64;

/// The name a tool is exported under (`fs.read` → `fs__read`).
pub fn exported_name(name: &str) -> String {
    name.replace('.', "__")
}

/// The tool name behind an exported one (`fs__read` → `fs.read`).
pub fn name_from_export(exported: &str) -> String {
    exported.replace("__", ".")
}

/// Why `name` cannot be a tool name, if it cannot.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("a tool name must not be empty".into());
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
    {
        return Err(format!(
            "{bad:?} is not allowed in a tool name (letters, digits, '_', '-', '.')"
        ));
    }
    if name.split('.').any(str::is_empty) {
        return Err("a tool name must not start or end with '.' nor contain '..'".into());
    }
    let exported = exported_name(name);
    if exported.len() > MAX_EXPORTED_NAME {
        return Err(format!(
            "exported as {exported:?} it is {} bytes long; the limit is {MAX_EXPORTED_NAME}",
            exported.len()
        ));
    }
    if name_from_export(&exported) != name {
        return Err("a tool name must not contain \"__\" nor '_' next to '.' \
                    (the export mapping '.' <-> \"__\" would not be reversible)"
            .into());
    }
    Ok(())
}

/// OpenAI Chat Completions `tools`: `[{"type":"function","function":{name,description,parameters}}]`.
pub fn openai(specs: &[ToolSpec]) -> Value {
    Value::Array(
        specs
            .iter()
            .map(|s| {
                json!({
                    "type": "function",
                    "function": {
                        "name": exported_name(&s.name),
                        "description": s.description,
                        "parameters": s.parameters,
                    }
                })
            })
            .collect(),
    )
}

/// Anthropic Messages `tools`: `[{name, description, input_schema}]`.
pub fn anthropic(specs: &[ToolSpec]) -> Value {
    Value::Array(
        specs
            .iter()
            .map(|s| {
                json!({
                    "name": exported_name(&s.name),
                    "description": s.description,
                    "input_schema": s.parameters,
                })
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_names_round_trip_and_fit_the_apis() {
        for name in ["fs.read", "time.now", "get_weather", "a-b.c_d.e", "x"] {
            check_name(name).unwrap();
            let exported = exported_name(name);
            assert!(exported.len() <= MAX_EXPORTED_NAME);
            assert!(
                exported
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            );
            assert_eq!(name_from_export(&exported), name);
        }
    }

    #[test]
    fn ambiguous_or_unexportable_names_are_refused() {
        for name in ["", "a__b", "a_.b", ".a", "a.", "a..b", "a b", "ü", "a/b"] {
            assert!(check_name(name).is_err(), "{name:?} was accepted");
        }
        assert!(check_name(&"a".repeat(64)).is_ok());
        assert!(check_name(&"a".repeat(65)).is_err());
        // The limit counts the exported form, where each dot takes two bytes.
        assert!(check_name(&vec!["a"; 22].join(".")).is_ok()); // 64 bytes exported
        assert!(check_name(&vec!["a"; 23].join(".")).is_err()); // 67
        // Reversible even with '_' after a dot: "a___b" reads back as "a._b".
        assert!(check_name("a._b").is_ok());
    }
}
