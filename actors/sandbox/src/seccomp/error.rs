//! Errors of reading a policy file and compiling one of its profiles.
//!
//! The policy file is user input: every mistake is a value of this type that names the
//! place (`rule \`x\``, `set \`y\``, `profile \`z\``) and the offending item.

use thiserror::Error;

/// The policy file version this crate reads.
pub const POLICY_VERSION: i64 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// Not TOML, or a field of the wrong type or name (the message carries the line).
    #[error("seccomp policy is not valid: {message}")]
    Syntax { message: String },

    #[error("seccomp policy has no `version`; this reader understands version {POLICY_VERSION}")]
    MissingVersion,

    #[error(
        "seccomp policy version {found} is not supported; this reader understands version {POLICY_VERSION}"
    )]
    UnsupportedVersion { found: String },

    /// A name libseccomp does not know, and which is not listed in `optional`.
    #[error("unknown system call `{name}` in {place}")]
    UnknownSyscall { name: String, place: String },

    #[error("bad action `{text}` in {place}: {reason}")]
    BadAction {
        text: String,
        place: String,
        reason: String,
    },

    #[error("profile `{profile}` uses set `{name}`, which the policy does not define")]
    UnknownSet { name: String, profile: String },

    #[error("profile `{profile}` uses rule `{name}`, which the policy does not define")]
    UnknownRule { name: String, profile: String },

    #[error("unknown constant `{name}` in rule `{rule}`")]
    UnknownConstant { name: String, rule: String },

    #[error("bad argument comparison in rule `{rule}`: {reason}")]
    BadArgument { rule: String, reason: String },

    #[error("rule `{rule}` expands to {count} filter rules, more than the limit of {limit}")]
    TooComplex {
        rule: String,
        count: usize,
        limit: usize,
    },

    /// A profile allows a system call of the `never` list.
    #[error(
        "profile `{profile}` allows `{syscall}` (through {by}), which the policy lists under `never`"
    )]
    NeverAllowed {
        profile: String,
        syscall: String,
        by: String,
    },

    /// Two rules of one profile disagree on a system call.
    #[error("profile `{profile}` has conflicting rules for `{syscall}`: {reason}")]
    Conflict {
        profile: String,
        syscall: String,
        reason: String,
    },

    #[error("the policy has no profile `{name}` (it has: {known})")]
    UnknownProfile { name: String, known: String },

    /// libseccomp refused a rule or the export.
    #[error("libseccomp could not compile profile `{profile}`: {message}")]
    Compile { profile: String, message: String },

    #[error(
        "profile `{profile}` compiles to {instructions} BPF instructions; the kernel accepts at most {max}"
    )]
    ProgramTooLong {
        profile: String,
        instructions: usize,
        max: usize,
    },
}
