//! The `{placeholder}` templates of scripted rules.
//!
//! `{input}` is the user's message; `{1}` or `{name}` a capture group of the rule's
//! regex; `{tool_result}` the results of the latest step's tool calls (one per line);
//! `{tool:NAME}` the result of the latest call of tool NAME. `{{` and `}}` are literal
//! braces. Templates are checked when the rules load, so a typo is an error then and
//! not a strange reply later.

use regex::Captures;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Lit(String),
    Input,
    Group(String),
    Index(usize),
    ToolResult,
    Tool(String),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Template(Vec<Piece>);

/// What a template may refer to, for checking it.
pub(crate) struct Scope<'a> {
    /// The regex's group names and count (none for a substring rule).
    pub groups: Option<&'a regex::Regex>,
    /// Tools whose results exist where the template is used.
    pub tools: &'a [&'a str],
}

/// What a template is filled with.
pub(crate) struct Values<'a> {
    pub input: &'a str,
    pub captures: Option<&'a Captures<'a>>,
    /// The results of each completed step: (tool name, content) in call order.
    pub steps: &'a [Vec<(String, String)>],
}

impl Template {
    pub fn parse(text: &str, scope: &Scope) -> Result<Self, String> {
        let mut pieces = Vec::new();
        let mut lit = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    lit.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    lit.push('}');
                }
                '}' => return Err("a lone `}` (write `}}` for a brace)".into()),
                '{' => {
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some(c) => name.push(c),
                            None => return Err(format!("`{{{name}` is never closed")),
                        }
                    }
                    if !lit.is_empty() {
                        pieces.push(Piece::Lit(std::mem::take(&mut lit)));
                    }
                    pieces.push(placeholder(&name, scope)?);
                }
                c => lit.push(c),
            }
        }
        if !lit.is_empty() {
            pieces.push(Piece::Lit(lit));
        }
        Ok(Self(pieces))
    }

    /// A template that is all literal text.
    pub fn literal(text: &str) -> Self {
        Self(vec![Piece::Lit(text.to_string())])
    }

    pub fn render(&self, v: &Values) -> String {
        let mut out = String::new();
        for piece in &self.0 {
            match piece {
                Piece::Lit(s) => out.push_str(s),
                Piece::Input => out.push_str(v.input),
                Piece::Group(name) => {
                    let m = v.captures.and_then(|c| c.name(name));
                    out.push_str(m.map_or("", |m| m.as_str()));
                }
                Piece::Index(i) => {
                    let m = v.captures.and_then(|c| c.get(*i));
                    out.push_str(m.map_or("", |m| m.as_str()));
                }
                Piece::ToolResult => {
                    let last = v.steps.last().map(Vec::as_slice).unwrap_or_default();
                    let texts: Vec<&str> = last.iter().map(|(_, c)| c.as_str()).collect();
                    out.push_str(&texts.join("\n"));
                }
                Piece::Tool(name) => {
                    let found = v.steps.iter().flatten().rev().find(|(n, _)| n == name);
                    out.push_str(found.map_or("", |(_, c)| c.as_str()));
                }
            }
        }
        out
    }
}

/// A JSON value whose strings are templates (tool-call arguments).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ValueTemplate {
    Text(Template),
    Array(Vec<ValueTemplate>),
    Object(Vec<(String, ValueTemplate)>),
    Other(Value),
}

impl ValueTemplate {
    pub fn parse(value: &Value, scope: &Scope) -> Result<Self, String> {
        Ok(match value {
            Value::String(s) => Self::Text(Template::parse(s, scope)?),
            Value::Array(items) => Self::Array(
                items
                    .iter()
                    .map(|v| Self::parse(v, scope))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(map) => Self::Object(
                map.iter()
                    .map(|(k, v)| Ok((k.clone(), Self::parse(v, scope)?)))
                    .collect::<Result<_, String>>()?,
            ),
            other => Self::Other(other.clone()),
        })
    }

    pub fn render(&self, v: &Values) -> Value {
        match self {
            Self::Text(t) => Value::String(t.render(v)),
            Self::Array(items) => items.iter().map(|i| i.render(v)).collect(),
            Self::Object(fields) => Value::Object(
                fields
                    .iter()
                    .map(|(k, t)| (k.clone(), t.render(v)))
                    .collect(),
            ),
            Self::Other(value) => value.clone(),
        }
    }
}

fn placeholder(name: &str, scope: &Scope) -> Result<Piece, String> {
    let name = name.trim();
    if name == "input" {
        return Ok(Piece::Input);
    }
    if name == "tool_result" {
        if scope.tools.is_empty() {
            return Err("{tool_result} where no tool has run yet".into());
        }
        return Ok(Piece::ToolResult);
    }
    if let Some(tool) = name.strip_prefix("tool:") {
        let tool = tool.trim();
        if !scope.tools.contains(&tool) {
            return Err(format!(
                "{{tool:{tool}}} but no earlier step calls {tool:?}"
            ));
        }
        return Ok(Piece::Tool(tool.to_string()));
    }
    let Some(re) = scope.groups else {
        return Err(format!(
            "unknown placeholder {{{name}}} (capture groups need a `regex` rule)"
        ));
    };
    if let Ok(i) = name.parse::<usize>() {
        if i >= re.captures_len() {
            return Err(format!(
                "{{{i}}} but the regex has {} group(s)",
                re.captures_len() - 1
            ));
        }
        return Ok(Piece::Index(i));
    }
    if re.capture_names().flatten().any(|n| n == name) {
        return Ok(Piece::Group(name.to_string()));
    }
    Err(format!("unknown placeholder {{{name}}}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_kind_of_placeholder() {
        let re = regex::Regex::new(r"echo (?P<text>.+)").unwrap();
        let scope = Scope {
            groups: Some(&re),
            tools: &["time.now", "fs.read"],
        };
        let t = Template::parse(
            "{{{input}}} {text}/{1} {tool:time.now} [{tool_result}]",
            &scope,
        )
        .unwrap();
        let caps = re.captures("echo hi").unwrap();
        let steps = vec![
            vec![("time.now".to_string(), "noon".to_string())],
            vec![
                ("fs.read".to_string(), "a".to_string()),
                ("fs.read".to_string(), "b".to_string()),
            ],
        ];
        let out = t.render(&Values {
            input: "echo hi",
            captures: Some(&caps),
            steps: &steps,
        });
        assert_eq!(out, "{echo hi} hi/hi noon [a\nb]");
    }

    #[test]
    fn bad_placeholders_are_refused_with_a_reason() {
        let re = regex::Regex::new(r"(a)").unwrap();
        let with = Scope {
            groups: Some(&re),
            tools: &[],
        };
        let without = Scope {
            groups: None,
            tools: &["x"],
        };
        assert!(
            Template::parse("{2}", &with)
                .unwrap_err()
                .contains("1 group")
        );
        assert!(
            Template::parse("{nope}", &with)
                .unwrap_err()
                .contains("nope")
        );
        assert!(Template::parse("{tool_result}", &with).is_err());
        assert!(
            Template::parse("{tool:y}", &without)
                .unwrap_err()
                .contains("\"y\"")
        );
        assert!(
            Template::parse("{1}", &without)
                .unwrap_err()
                .contains("regex")
        );
        assert!(Template::parse("a } b", &without).is_err());
        assert!(
            Template::parse("{input", &without)
                .unwrap_err()
                .contains("closed")
        );
        assert!(Template::parse("{tool:x} {tool_result}", &without).is_ok());
    }
}
