//! The scripted provider's rules file (TOML), parsed and checked.
//!
//! ```toml
//! [settings]
//! delta_delay_ms = 0                 # pause between streamed text pieces
//! fallback = "No rule matched: {input}"
//!
//! [[rule]]
//! name = "time"
//! regex = '(?i)\btime\b'             # or: contains = ["time", "clock"] (any, ignoring case)
//! calls = [{ tool = "time.now", args = {} }]   # one step of calls, run in parallel
//! reply = "The time is {tool_result}."
//! ```
//!
//! A rule answers with `reply` alone, or first calls tools: `calls` is one step, and
//! `steps = [{ calls = [...] }, ...]` several, each seeing the results of the ones
//! before. Placeholders are described in the template module.

use std::path::Path;

use regex::{Regex, RegexBuilder};
use serde::Deserialize;
use serde_json::Value;

use super::template::{Scope, Template, ValueTemplate};

/// The most a rules file may hold; it is config, and a bigger one is a mistake.
const MAX_FILE_BYTES: u64 = 1 << 20;
/// The most a rule's compiled regex may take.
const MAX_REGEX_BYTES: usize = 1 << 20;

/// Why a rules file was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RulesError {
    #[error("rules file {path}: {message}")]
    Io { path: String, message: String },
    /// Not TOML, or not of the rules file's shape (the message names line and column).
    #[error("rules from {source_name}: {message}")]
    Syntax {
        source_name: String,
        message: String,
    },
    /// A rule that cannot work: `rule` names it by position and name.
    #[error("rules from {source_name}, {rule}: {what}")]
    Invalid {
        source_name: String,
        rule: String,
        what: String,
    },
}

/// How a rule recognises the user's message.
#[derive(Debug, Clone)]
pub(crate) enum Matcher {
    /// Any of these, ignoring case (kept lowercased).
    Contains(Vec<String>),
    Regex(Regex),
}

/// One tool call of a step; string arguments are templates.
#[derive(Debug, Clone)]
pub(crate) struct CallRule {
    pub tool: String,
    pub args: ValueTemplate,
}

#[derive(Debug, Clone)]
pub(crate) struct Rule {
    pub name: String,
    pub matcher: Matcher,
    pub steps: Vec<Vec<CallRule>>,
    pub reply: Template,
    /// Every tool named in `steps`: the rule applies only when the request offers them.
    pub tools: Vec<String>,
}

/// A parsed rules file.
#[derive(Debug, Clone)]
pub struct Rules {
    pub(crate) source: String,
    pub(crate) rules: Vec<Rule>,
    pub(crate) fallback: Option<Template>,
    pub(crate) delta_delay_ms: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    settings: RawSettings,
    #[serde(default)]
    rule: Vec<RawRule>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    #[serde(default)]
    delta_delay_ms: u64,
    fallback: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: Option<String>,
    contains: Option<OneOrMany>,
    regex: Option<String>,
    calls: Option<Vec<RawCall>>,
    steps: Option<Vec<RawStep>>,
    reply: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    calls: Vec<RawCall>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCall {
    tool: String,
    #[serde(default)]
    args: Option<Value>,
}

impl Rules {
    /// Reads and checks a rules file.
    pub fn load(path: &Path) -> Result<Self, RulesError> {
        let io = |message: String| RulesError::Io {
            path: path.display().to_string(),
            message,
        };
        let len = std::fs::metadata(path)
            .map_err(|e| io(e.to_string()))?
            .len();
        if len > MAX_FILE_BYTES {
            return Err(io(format!("{len} bytes, more than {MAX_FILE_BYTES}")));
        }
        let text = std::fs::read_to_string(path).map_err(|e| io(e.to_string()))?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses rules from TOML text; `source_name` names it in errors.
    pub fn parse(text: &str, source_name: &str) -> Result<Self, RulesError> {
        let raw: RawFile = toml::from_str(text).map_err(|e| RulesError::Syntax {
            source_name: source_name.to_string(),
            message: e.to_string(),
        })?;
        let invalid = |rule: String, what: String| RulesError::Invalid {
            source_name: source_name.to_string(),
            rule,
            what,
        };
        let fallback = match &raw.settings.fallback {
            Some(text) => {
                let scope = Scope {
                    groups: None,
                    tools: &[],
                };
                Some(Template::parse(text, &scope).map_err(|w| invalid("fallback".into(), w))?)
            }
            None => None,
        };
        let mut rules = Vec::with_capacity(raw.rule.len());
        for (i, r) in raw.rule.into_iter().enumerate() {
            let label = match &r.name {
                Some(n) => format!("rule {} ({n})", i + 1),
                None => format!("rule {}", i + 1),
            };
            rules.push(rule(r, i).map_err(|what| invalid(label, what))?);
        }
        Ok(Self {
            source: source_name.to_string(),
            rules,
            fallback,
            delta_delay_ms: raw.settings.delta_delay_ms,
        })
    }

    /// No rules: every message gets the fallback reply.
    pub fn empty(source_name: &str) -> Self {
        Self {
            source: source_name.to_string(),
            rules: Vec::new(),
            fallback: None,
            delta_delay_ms: 0,
        }
    }

    /// How many rules there are.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Where the rules came from (a path, or "built-in default").
    pub fn source(&self) -> &str {
        &self.source
    }
}

fn rule(r: RawRule, i: usize) -> Result<Rule, String> {
    let matcher = match (r.contains, r.regex) {
        (Some(_), Some(_)) => return Err("has both `contains` and `regex`".into()),
        (None, None) => return Err("needs `contains` or `regex`".into()),
        (Some(c), None) => {
            let words = match c {
                OneOrMany::One(w) => vec![w],
                OneOrMany::Many(ws) => ws,
            };
            if words.is_empty() || words.iter().any(|w| w.trim().is_empty()) {
                return Err("`contains` needs non-empty strings".into());
            }
            Matcher::Contains(words.iter().map(|w| w.to_lowercase()).collect())
        }
        (None, Some(re)) => Matcher::Regex(
            RegexBuilder::new(&re)
                .size_limit(MAX_REGEX_BYTES)
                .build()
                .map_err(|e| format!("bad regex: {e}"))?,
        ),
    };
    let raw_steps = match (r.calls, r.steps) {
        (Some(_), Some(_)) => return Err("has both `calls` and `steps`".into()),
        (Some(calls), None) => vec![RawStep { calls }],
        (None, Some(steps)) => steps,
        (None, None) => Vec::new(),
    };
    let groups = match &matcher {
        Matcher::Regex(re) => Some(re),
        Matcher::Contains(_) => None,
    };
    let mut seen: Vec<String> = Vec::new();
    let mut steps = Vec::with_capacity(raw_steps.len());
    for (s, step) in raw_steps.into_iter().enumerate() {
        if step.calls.is_empty() {
            return Err(format!("step {} calls no tool", s + 1));
        }
        let names: Vec<&str> = seen.iter().map(String::as_str).collect();
        let scope = Scope {
            groups,
            tools: &names,
        };
        let mut calls = Vec::with_capacity(step.calls.len());
        for c in &step.calls {
            if c.tool.trim().is_empty() {
                return Err(format!("step {}: a call with an empty tool name", s + 1));
            }
            let args = c
                .args
                .clone()
                .unwrap_or_else(|| Value::Object(Default::default()));
            let args = ValueTemplate::parse(&args, &scope)
                .map_err(|w| format!("step {}, {}: {w}", s + 1, c.tool))?;
            calls.push(CallRule {
                tool: c.tool.clone(),
                args,
            });
        }
        seen.extend(step.calls.into_iter().map(|c| c.tool));
        steps.push(calls);
    }
    let names: Vec<&str> = seen.iter().map(String::as_str).collect();
    let scope = Scope {
        groups,
        tools: &names,
    };
    let reply = match r.reply {
        Some(text) => Template::parse(&text, &scope).map_err(|w| format!("reply: {w}"))?,
        None if steps.is_empty() => {
            return Err("needs a `reply` (or tool calls and a reply)".into());
        }
        None => Template::parse("{tool_result}", &scope)?,
    };
    seen.sort();
    seen.dedup();
    Ok(Rule {
        name: r.name.unwrap_or_else(|| format!("rule {}", i + 1)),
        matcher,
        steps,
        reply,
        tools: seen,
    })
}
