//! Reading and checking a policy file (see `policy/seccomp.toml` for the format).
//!
//! Everything that can be wrong with a policy is found here, when it is loaded: names are
//! resolved against libseccomp's table, constants against ours, profiles are assembled and
//! checked against `never` and against rule mixtures libseccomp would silently rewrite. A
//! `Policy` value is therefore always compilable, short of libseccomp itself failing.

use std::collections::{BTreeMap, BTreeSet};

use libseccomp::ScmpSyscall;
use serde::Deserialize;

use super::args::{self, Cmp, RawArg};
use super::consts;
use super::error::{POLICY_VERSION, PolicyError};

#[derive(Deserialize)]
struct Header {
    version: Option<toml::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    // Checked through `Header` first, for a clearer error than a type mismatch here.
    #[serde(rename = "version")]
    _version: toml::Value,
    default_action: String,
    bad_arch_action: String,
    #[serde(default)]
    never: Vec<String>,
    #[serde(default)]
    optional: Vec<String>,
    #[serde(default)]
    sets: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    rules: BTreeMap<String, RawRule>,
    profiles: BTreeMap<String, RawProfile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    syscalls: Vec<String>,
    action: String,
    args: Option<Vec<RawArg>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    #[serde(default)]
    sets: Vec<String>,
    #[serde(default)]
    rules: Vec<String>,
}

/// What the filter does with a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    Allow,
    Errno(i32),
    KillProcess,
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Action::Allow => f.write_str("allow"),
            Action::Errno(n) => write!(f, "errno:{n}"),
            Action::KillProcess => f.write_str("kill"),
        }
    }
}

/// How one system call is treated by a profile.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) name: String,
    pub(crate) action: Action,
    /// `None`: always. `Some(alternatives)`: when every comparison of any alternative holds.
    pub(crate) when: Option<Vec<Vec<Cmp>>>,
    /// The sets and rules this entry came from, for messages.
    from: Vec<String>,
}

/// A profile, resolved: syscall number to treatment.
#[derive(Debug, Clone)]
pub(crate) struct Profile {
    pub(crate) entries: BTreeMap<i32, Entry>,
}

/// The whole file, resolved and checked.
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    pub(crate) default_action: Action,
    pub(crate) bad_arch_action: Action,
    pub(crate) profiles: BTreeMap<String, Profile>,
}

struct Syscall {
    name: String,
    nr: i32,
}

struct Rule {
    syscalls: Vec<Syscall>,
    action: Action,
    when: Option<Vec<Vec<Cmp>>>,
}

pub(crate) fn parse(text: &str) -> Result<Resolved, PolicyError> {
    let syntax = |e: toml::de::Error| PolicyError::Syntax {
        message: e.to_string(),
    };
    let header: Header = toml::from_str(text).map_err(syntax)?;
    match header.version {
        None => return Err(PolicyError::MissingVersion),
        Some(toml::Value::Integer(POLICY_VERSION)) => {}
        Some(other) => {
            return Err(PolicyError::UnsupportedVersion {
                found: other.to_string(),
            });
        }
    }
    let raw: RawPolicy = toml::from_str(text).map_err(syntax)?;

    let default_action = refusing_action(&raw.default_action, "default_action")?;
    let bad_arch_action = refusing_action(&raw.bad_arch_action, "bad_arch_action")?;

    let optional: BTreeSet<&str> = raw.optional.iter().map(String::as_str).collect();
    let resolve = |names: &[String], place: &str| -> Result<Vec<Syscall>, PolicyError> {
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            match ScmpSyscall::from_name(name) {
                Ok(nr) => out.push(Syscall {
                    name: name.clone(),
                    nr: nr.into(),
                }),
                // Older libseccomp: the call falls to the default action.
                Err(_) if optional.contains(name.as_str()) => {}
                Err(_) => {
                    return Err(PolicyError::UnknownSyscall {
                        name: name.clone(),
                        place: place.to_owned(),
                    });
                }
            }
        }
        Ok(out)
    };

    let never: BTreeMap<i32, String> = resolve(&raw.never, "the `never` list")?
        .into_iter()
        .map(|s| (s.nr, s.name))
        .collect();

    let mut sets = BTreeMap::new();
    for (name, names) in &raw.sets {
        sets.insert(name.as_str(), resolve(names, &format!("set `{name}`"))?);
    }

    let mut rules = BTreeMap::new();
    for (name, raw_rule) in &raw.rules {
        let place = format!("rule `{name}`");
        if raw_rule.syscalls.is_empty() {
            return Err(PolicyError::BadArgument {
                rule: name.clone(),
                reason: "`syscalls` is empty".into(),
            });
        }
        let rule = Rule {
            syscalls: resolve(&raw_rule.syscalls, &place)?,
            action: action(&raw_rule.action, &place)?,
            when: match &raw_rule.args {
                None => None,
                Some(raw_args) => Some(args::conditions(name, raw_args)?),
            },
        };
        rules.insert(name.as_str(), rule);
    }

    let mut profiles = BTreeMap::new();
    for (name, raw_profile) in &raw.profiles {
        let profile = assemble(name, raw_profile, &sets, &rules)?;
        for (nr, entry) in &profile.entries {
            if entry.action == Action::Allow
                && let Some(never_name) = never.get(nr)
            {
                return Err(PolicyError::NeverAllowed {
                    profile: name.clone(),
                    syscall: never_name.clone(),
                    by: entry.from.join(", "),
                });
            }
        }
        profiles.insert(name.clone(), profile);
    }

    Ok(Resolved {
        default_action,
        bad_arch_action,
        profiles,
    })
}

/// `allow`, `kill`, `errno:NAME` or `errno:NUMBER`.
fn action(text: &str, place: &str) -> Result<Action, PolicyError> {
    let bad = |reason: &str| PolicyError::BadAction {
        text: text.to_owned(),
        place: place.to_owned(),
        reason: reason.to_owned(),
    };
    match text {
        "allow" => Ok(Action::Allow),
        "kill" => Ok(Action::KillProcess),
        _ => {
            let Some(errno) = text.strip_prefix("errno:") else {
                return Err(bad("expected `allow`, `kill` or `errno:NAME`"));
            };
            let number = match consts::errno(errno) {
                Some(n) => n,
                None => errno
                    .parse::<i32>()
                    .map_err(|_| bad("unknown errno name"))?,
            };
            // The kernel carries the errno in 12 bits of SECCOMP_RET_DATA (MAX_ERRNO).
            if !(1..=4095).contains(&number) {
                return Err(bad("errno must be between 1 and 4095"));
            }
            Ok(Action::Errno(number))
        }
    }
}

/// Default and bad-arch actions must refuse: an allowlist that allows by default is none.
fn refusing_action(text: &str, place: &str) -> Result<Action, PolicyError> {
    match action(text, place)? {
        Action::Allow => Err(PolicyError::BadAction {
            text: text.to_owned(),
            place: place.to_owned(),
            reason: "must refuse the call (`errno:NAME` or `kill`)".into(),
        }),
        refusing => Ok(refusing),
    }
}

/// Gather a profile's sets and rules into one entry per system call.
fn assemble(
    name: &str,
    raw: &RawProfile,
    sets: &BTreeMap<&str, Vec<Syscall>>,
    rules: &BTreeMap<&str, Rule>,
) -> Result<Profile, PolicyError> {
    let mut entries: BTreeMap<i32, Entry> = BTreeMap::new();
    let conflict = |syscall: &str, reason: String| PolicyError::Conflict {
        profile: name.to_owned(),
        syscall: syscall.to_owned(),
        reason,
    };
    let mut add = |sys: &Syscall,
                   action: Action,
                   when: Option<&Vec<Vec<Cmp>>>,
                   from: String|
     -> Result<(), PolicyError> {
        let Some(entry) = entries.get_mut(&sys.nr) else {
            entries.insert(
                sys.nr,
                Entry {
                    name: sys.name.clone(),
                    action,
                    when: when.cloned(),
                    from: vec![from],
                },
            );
            return Ok(());
        };
        let before = entry.from.join(", ");
        if entry.action != action {
            return Err(conflict(
                &sys.name,
                format!("{before} says {}, {from} says {action}", entry.action),
            ));
        }
        match (&mut entry.when, when) {
            (None, None) => {}
            (Some(existing), Some(more)) => existing.extend(more.iter().cloned()),
            _ => {
                return Err(conflict(
                    &sys.name,
                    format!(
                        "{before} and {from} mix an unconditional rule with argument \
                         conditions; libseccomp would keep only the unconditional one \
                         (use `not_in` to exclude values)"
                    ),
                ));
            }
        }
        entry.from.push(from);
        Ok(())
    };

    for set_name in &raw.sets {
        let set = sets
            .get(set_name.as_str())
            .ok_or_else(|| PolicyError::UnknownSet {
                name: set_name.clone(),
                profile: name.to_owned(),
            })?;
        for sys in set {
            add(sys, Action::Allow, None, format!("set `{set_name}`"))?;
        }
    }
    for rule_name in &raw.rules {
        let rule = rules
            .get(rule_name.as_str())
            .ok_or_else(|| PolicyError::UnknownRule {
                name: rule_name.clone(),
                profile: name.to_owned(),
            })?;
        for sys in &rule.syscalls {
            add(
                sys,
                rule.action,
                rule.when.as_ref(),
                format!("rule `{rule_name}`"),
            )?;
        }
    }
    Ok(Profile { entries })
}
