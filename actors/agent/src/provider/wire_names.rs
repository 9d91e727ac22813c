//! Tool names as the model APIs accept them.
//!
//! NeuroFlow names tools with dots (`time.now`, `fs.read`), but both OpenAI and
//! Anthropic accept only `[A-Za-z0-9_-]{1,64}`. Each request therefore maps every tool
//! name onto an accepted one (`time.now` → `time_now`), keeping the map one-to-one by
//! suffixing a number on a clash, and maps the model's calls back. The map depends only
//! on the request's tool list, so the tool calls in the conversation's history map the
//! same way in every later request.

use std::collections::{HashMap, HashSet};

use neuroflow_kit::protocol::router::ToolSpec;

const MAX_LEN: usize = 64;

#[derive(Debug, Default)]
pub(crate) struct WireNames {
    to_wire: HashMap<String, String>,
    to_local: HashMap<String, String>,
}

impl WireNames {
    pub fn new(tools: &[ToolSpec]) -> Self {
        let mut names = Self::default();
        let mut taken = HashSet::new();
        // Names that are already acceptable keep themselves, whatever their order.
        for t in tools.iter().filter(|t| sanitize(&t.name) == t.name) {
            if taken.insert(t.name.clone()) {
                names.insert(&t.name, t.name.clone());
            }
        }
        for t in tools {
            if names.to_wire.contains_key(&t.name) {
                continue;
            }
            let base = sanitize(&t.name);
            let mut wire = base.clone();
            let mut n = 2u32;
            while taken.contains(&wire) {
                let suffix = format!("_{n}");
                let keep = base.len().min(MAX_LEN - suffix.len());
                wire = format!("{}{suffix}", &base[..keep]);
                n += 1;
            }
            taken.insert(wire.clone());
            names.insert(&t.name, wire);
        }
        names
    }

    fn insert(&mut self, local: &str, wire: String) {
        self.to_local.insert(wire.clone(), local.to_string());
        self.to_wire.insert(local.to_string(), wire);
    }

    /// The name to send for tool `local` (sanitized even when it is not in the list,
    /// e.g. a call in the history to a tool the agent no longer has).
    pub fn wire(&self, local: &str) -> String {
        self.to_wire
            .get(local)
            .cloned()
            .unwrap_or_else(|| sanitize(local))
    }

    /// The tool a name from the model means (itself when it is unknown: the router
    /// then answers "no such tool", which the model sees).
    pub fn local(&self, wire: &str) -> String {
        self.to_local
            .get(wire)
            .cloned()
            .unwrap_or_else(|| wire.to_string())
    }
}

fn sanitize(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(MAX_LEN)
        .collect();
    if s.is_empty() {
        s.push('_');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(name: &str) -> ToolSpec {
        ToolSpec {
            provider: "local".into(),
            name: name.into(),
            description: String::new(),
            parameters: json!({"type": "object"}),
        }
    }

    #[test]
    fn dotted_names_map_both_ways_without_clashes() {
        let names = WireNames::new(&[spec("time.now"), spec("time_now"), spec("fs.read")]);
        assert_eq!(names.wire("time_now"), "time_now");
        assert_eq!(names.wire("time.now"), "time_now_2");
        assert_eq!(names.local("time_now_2"), "time.now");
        assert_eq!(names.local("time_now"), "time_now");
        assert_eq!(names.wire("fs.read"), "fs_read");
        assert_eq!(names.local("fs_read"), "fs.read");
        assert_eq!(names.local("unknown"), "unknown");
        assert_eq!(names.wire("gone.tool"), "gone_tool");
    }

    #[test]
    fn long_and_odd_names_stay_within_limits() {
        let long = "ä".repeat(100);
        let names = WireNames::new(&[spec(&long), spec(&"_".repeat(80)), spec("")]);
        let wire = names.wire(&long);
        assert!(wire.len() <= MAX_LEN && wire.chars().all(|c| c == '_' || c.is_ascii_digit()));
        assert_eq!(names.local(&wire), long);
        assert_ne!(names.wire(&long), names.wire(&"_".repeat(80)));
        assert_eq!(names.wire(""), "_");
    }
}
