//! The `args` of a rule: argument comparisons, expanded to masked equalities.
//!
//! Every comparison is a masked equality on the low 32 bits of an argument. The arguments
//! worth filtering are C `int`s and `unsigned int`s, which the kernel truncates: comparing
//! all 64 bits would let `socket(AF_VSOCK | 1 << 32, ...)` past a rule meant to stop it.

use std::collections::BTreeSet;

use serde::Deserialize;

use super::consts;
use super::cubes::{self, Masked};
use super::error::PolicyError;

/// Upper bound on the libseccomp rules one policy rule may expand to (`in` lists of
/// several arguments multiply). Keeps a careless file from producing a filter the kernel
/// would refuse anyway, with an error that points at the rule.
const MAX_EXPANSION: usize = 1024;

/// Highest syscall argument index (syscalls take at most six arguments).
const MAX_ARG_INDEX: u32 = 5;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawArg {
    index: u32,
    mask: Option<toml::Value>,
    eq: Option<toml::Value>,
    #[serde(rename = "in")]
    any_of: Option<Vec<toml::Value>>,
    not_in: Option<Vec<toml::Value>>,
}

/// One argument comparison, always a masked equality on the low 32 bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cmp {
    pub(crate) index: u32,
    pub(crate) masked: Masked,
}

/// The `args` of a rule as alternatives: any alternative may hold, all its comparisons must.
pub(crate) fn conditions(rule: &str, args: &[RawArg]) -> Result<Vec<Vec<Cmp>>, PolicyError> {
    let bad = |reason: String| PolicyError::BadArgument {
        rule: rule.to_owned(),
        reason,
    };
    if args.is_empty() {
        return Err(bad(
            "`args` is empty; leave it out for a rule without conditions".into(),
        ));
    }
    let mut seen = BTreeSet::new();
    let mut alternatives: Vec<Vec<Cmp>> = vec![Vec::new()];
    for arg in args {
        if arg.index > MAX_ARG_INDEX {
            return Err(bad(format!(
                "argument index {} is out of range 0-{MAX_ARG_INDEX}",
                arg.index
            )));
        }
        // libseccomp takes one comparison per argument and rule.
        if !seen.insert(arg.index) {
            return Err(bad(format!("argument {} is compared twice", arg.index)));
        }
        let choices = arg_choices(rule, arg)?;
        let count = alternatives.len().saturating_mul(choices.len());
        if count > MAX_EXPANSION {
            return Err(PolicyError::TooComplex {
                rule: rule.to_owned(),
                count,
                limit: MAX_EXPANSION,
            });
        }
        alternatives = alternatives
            .iter()
            .flat_map(|prefix| {
                choices.iter().map(move |&masked| {
                    let mut alt = prefix.clone();
                    alt.push(Cmp {
                        index: arg.index,
                        masked,
                    });
                    alt
                })
            })
            .collect();
    }
    Ok(alternatives)
}

/// The masked equalities one argument entry stands for (any of them may hold).
fn arg_choices(rule: &str, arg: &RawArg) -> Result<Vec<Masked>, PolicyError> {
    let bad = |reason: String| PolicyError::BadArgument {
        rule: rule.to_owned(),
        reason,
    };
    let mask = match &arg.mask {
        None => u32::MAX,
        Some(v) => value(rule, v)?,
    };
    if mask == 0 {
        return Err(bad(format!(
            "argument {}: mask 0 compares nothing",
            arg.index
        )));
    }
    let values = |list: &[toml::Value]| -> Result<BTreeSet<u32>, PolicyError> {
        if list.is_empty() {
            return Err(bad(format!("argument {}: empty value list", arg.index)));
        }
        let mut set = BTreeSet::new();
        for v in list {
            let v = value(rule, v)?;
            if v & !mask != 0 {
                return Err(bad(format!(
                    "argument {}: value {v:#x} has bits outside mask {mask:#x}, so it could never match",
                    arg.index
                )));
            }
            set.insert(v);
        }
        Ok(set)
    };
    let masked = |value: u32| Masked { mask, value };
    match (&arg.eq, &arg.any_of, &arg.not_in) {
        (Some(eq), None, None) => Ok(values(std::slice::from_ref(eq))?
            .into_iter()
            .map(masked)
            .collect()),
        (None, Some(list), None) => Ok(values(list)?.into_iter().map(masked).collect()),
        (None, None, Some(list)) => {
            let pieces = cubes::complement(mask, &values(list)?);
            if pieces.is_empty() {
                return Err(bad(format!(
                    "argument {}: `not_in` excludes every value",
                    arg.index
                )));
            }
            Ok(pieces)
        }
        _ => Err(bad(format!(
            "argument {}: give exactly one of `eq`, `in`, `not_in`",
            arg.index
        ))),
    }
}

/// An argument value: a 32-bit integer, or `"NAME|NAME|0x10"`.
fn value(rule: &str, v: &toml::Value) -> Result<u32, PolicyError> {
    let bad = |reason: String| PolicyError::BadArgument {
        rule: rule.to_owned(),
        reason,
    };
    match v {
        toml::Value::Integer(i) => u32::try_from(*i)
            .map_err(|_| bad(format!("value {i} does not fit in 32 unsigned bits"))),
        toml::Value::String(text) => {
            let mut out = 0u32;
            for part in text.split('|').map(str::trim) {
                if part.is_empty() {
                    return Err(bad(format!("empty term in `{text}`")));
                }
                out |= match number(part) {
                    Some(n) => n,
                    None if part.starts_with(|c: char| c.is_ascii_digit()) => {
                        return Err(bad(format!("`{part}` is not a 32-bit number")));
                    }
                    None => consts::constant(part).ok_or_else(|| PolicyError::UnknownConstant {
                        name: part.to_owned(),
                        rule: rule.to_owned(),
                    })?,
                };
            }
            Ok(out)
        }
        other => Err(bad(format!(
            "a value must be an integer or a string of constant names, not {}",
            other.type_str()
        ))),
    }
}

fn number(text: &str) -> Option<u32> {
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}
