//! W3C Trace Context: `traceparent` / `tracestate` parsing, formatting and
//! conversion to and from OpenTelemetry span contexts.
//!
//! Implements <https://www.w3.org/TR/trace-context/> Level 1. Flag bits other
//! than `sampled` (such as the Level 2 `random` bit, `0x02`) are carried through
//! unchanged. Parsing never panics: input is handled as bytes, non-ASCII is
//! rejected, and every failure is a [`TraceContextError`] naming the problem.
//!
//! ```
//! use neuroflow_kit::trace_context::{SpanId, TraceContext};
//!
//! let cx = TraceContext::parse(
//!     "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
//!     Some("rojo=00f067aa0ba902b7 , congo=t61rcWkgMzE"),
//! )?;
//! assert!(cx.parent.sampled());
//! assert_eq!(cx.state.get("congo"), Some("t61rcWkgMzE"));
//!
//! let child = cx.child(SpanId([0xb9, 0xc7, 0xc9, 0x89, 0xf9, 0x79, 0x18, 0xe1]));
//! assert_eq!(
//!     child.traceparent_header(),
//!     "00-4bf92f3577b34da6a3ce929d0e0e4736-b9c7c989f97918e1-01"
//! );
//! assert_eq!(
//!     child.tracestate_header().as_deref(),
//!     Some("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE")
//! );
//! # Ok::<(), neuroflow_kit::trace_context::TraceContextError>(())
//! ```

use std::fmt;
use std::str::FromStr;

use opentelemetry::trace as otel;
use serde::{Deserialize, Serialize};

/// Optional whitespace (RFC 7230 `OWS`) allowed around headers and list-members.
const OWS: [char; 2] = [' ', '\t'];
/// Length of a version-00 `traceparent`, and the minimum for later versions.
const TRACEPARENT_LEN: usize = 55;

/// What was wrong with a `traceparent`, `tracestate` or a `tracestate` edit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TraceContextError {
    /// Header bytes outside US-ASCII.
    #[error("traceparent contains non-ASCII characters")]
    NonAscii,
    /// Version is not two lowercase hex digits, or is the forbidden `ff`.
    #[error("traceparent version must be two lowercase hex digits other than `ff`")]
    InvalidVersion,
    /// Wrong total length (after trimming whitespace).
    #[error(
        "traceparent is {0} characters long; version 00 must be exactly 55, later versions at least 55"
    )]
    Length(usize),
    /// No `-` at the given byte offset.
    #[error("traceparent expected a `-` delimiter at offset {0}")]
    Delimiter(usize),
    /// trace-id is not 32 lowercase hex digits.
    #[error("traceparent trace-id must be 32 lowercase hex digits")]
    InvalidTraceId,
    /// parent-id is not 16 lowercase hex digits.
    #[error("traceparent parent-id must be 16 lowercase hex digits")]
    InvalidParentId,
    /// trace-flags is not 2 lowercase hex digits.
    #[error("traceparent trace-flags must be 2 lowercase hex digits")]
    InvalidFlags,
    /// trace-id is all zeros, which the spec forbids.
    #[error("traceparent trace-id is all zeros")]
    ZeroTraceId,
    /// parent-id is all zeros, which the spec forbids.
    #[error("traceparent parent-id is all zeros")]
    ZeroParentId,
    /// A non-empty list-member without `=`.
    #[error("tracestate list-member {0:?} has no `=`")]
    MissingEquals(String),
    /// A key outside the Level 1 key grammar.
    #[error("tracestate key {0:?} does not match the W3C key grammar")]
    InvalidKey(String),
    /// The value for `key` is outside the value grammar.
    #[error(
        "tracestate value for key {key:?} must be 1-256 printable ASCII characters without `,` or `=`, not ending in a space"
    )]
    InvalidValue {
        /// The member's key (the value is not echoed back).
        key: String,
    },
    /// A key appears twice.
    #[error("tracestate key {0:?} appears more than once")]
    DuplicateKey(String),
    /// More than 32 non-empty list-members (the count found).
    #[error("tracestate has {0} list-members; at most 32 are allowed")]
    TooManyMembers(usize),
}

fn write_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    bytes.iter().try_for_each(|b| write!(f, "{b:02x}"))
}

/// Decodes exactly `2 * N` lowercase hex digits; uppercase is invalid per the spec.
fn decode_hex<const N: usize>(s: &[u8]) -> Option<[u8; N]> {
    fn nibble(b: u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            _ => None,
        }
    }
    if s.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (o, pair) in out.iter_mut().zip(s.chunks_exact(2)) {
        *o = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(out)
}

macro_rules! hex_id {
    ($(#[$doc:meta])* $name:ident, $len:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub [u8; $len]);

        impl $name {
            /// The all-zero id, which the spec reserves as invalid.
            pub const INVALID: Self = Self([0; $len]);

            /// Whether this is the reserved all-zero id.
            pub fn is_zero(&self) -> bool {
                self.0 == [0; $len]
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write_hex(f, &self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self)
            }
        }
    };
}

hex_id!(
    /// 16-byte trace id; displays as 32 lowercase hex digits.
    TraceId,
    16
);
hex_id!(
    /// 8-byte span (parent) id; displays as 16 lowercase hex digits.
    SpanId,
    8
);

/// The 8-bit `trace-flags` field; all bits are preserved, only `sampled` is interpreted.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TraceFlags(pub u8);

impl TraceFlags {
    /// The caller may have recorded trace data.
    pub const SAMPLED: Self = Self(0x01);
    /// Level 2: the trace id's rightmost 7 bytes are random.
    pub const RANDOM: Self = Self(0x02);

    /// Whether the `sampled` bit is set (masked, as the spec requires).
    pub fn sampled(self) -> bool {
        self.0 & Self::SAMPLED.0 != 0
    }
}

impl fmt::Display for TraceFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02x}", self.0)
    }
}

impl fmt::Debug for TraceFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceFlags({self})")
    }
}

/// A parsed `traceparent`. Fields are public; [`TraceParent::new`] and the
/// parsers reject the all-zero ids that receivers would discard.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TraceParent {
    /// The whole trace's id.
    pub trace_id: TraceId,
    /// The caller's span id (`parent-id` in the spec).
    pub parent_id: SpanId,
    /// `trace-flags`, all bits preserved.
    pub flags: TraceFlags,
}

impl TraceParent {
    /// Builds a traceparent, rejecting all-zero ids.
    pub fn new(
        trace_id: TraceId,
        parent_id: SpanId,
        flags: TraceFlags,
    ) -> Result<Self, TraceContextError> {
        if trace_id.is_zero() {
            return Err(TraceContextError::ZeroTraceId);
        }
        if parent_id.is_zero() {
            return Err(TraceContextError::ZeroParentId);
        }
        Ok(Self {
            trace_id,
            parent_id,
            flags,
        })
    }

    /// Parses a `traceparent` header value. Versions above `00` are read as
    /// their version-00 prefix, as the spec's versioning rules require.
    pub fn parse(header: &str) -> Result<Self, TraceContextError> {
        use TraceContextError as E;
        let s = header.trim_matches(OWS).as_bytes();
        if !s.is_ascii() {
            return Err(E::NonAscii);
        }
        let version = s
            .get(..2)
            .and_then(decode_hex::<1>)
            .ok_or(E::InvalidVersion)?[0];
        if version == 0xff {
            return Err(E::InvalidVersion);
        }
        if s.get(2) != Some(&b'-') {
            return Err(E::Delimiter(2));
        }
        let len_ok = if version == 0 {
            s.len() == TRACEPARENT_LEN
        } else {
            s.len() >= TRACEPARENT_LEN
        };
        if !len_ok {
            return Err(E::Length(s.len()));
        }
        // Offset 55 only exists for future versions, whose extra fields must start with `-`.
        if let Some(&at) = [35, 52, 55]
            .iter()
            .find(|&&at| s.get(at).is_some_and(|&b| b != b'-'))
        {
            return Err(E::Delimiter(at));
        }
        let trace_id = decode_hex(&s[3..35]).ok_or(E::InvalidTraceId)?;
        let parent_id = decode_hex(&s[36..52]).ok_or(E::InvalidParentId)?;
        let [flags] = decode_hex(&s[53..55]).ok_or(E::InvalidFlags)?;
        Self::new(TraceId(trace_id), SpanId(parent_id), TraceFlags(flags))
    }

    /// Whether the `sampled` flag is set.
    pub fn sampled(&self) -> bool {
        self.flags.sampled()
    }

    /// Whether both ids are non-zero (always true for parsed values).
    pub fn is_valid(&self) -> bool {
        !self.trace_id.is_zero() && !self.parent_id.is_zero()
    }
}

impl FromStr for TraceParent {
    type Err = TraceContextError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Always formats as version `00`, the highest version this module knows.
impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "00-{}-{}-{}", self.trace_id, self.parent_id, self.flags)
    }
}

mod tracestate;
pub use tracestate::TraceState;

/// A remote parent's trace context. Serializes as the two header strings (`traceparent`,
/// `tracestate`) in human-readable formats and with a 25-byte binary traceparent in binary
/// ones; deserializing validates both strictly.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TraceContext {
    /// The `traceparent` header.
    pub parent: TraceParent,
    /// The `tracestate` header; empty when absent or invalid.
    pub state: TraceState,
}

impl TraceContext {
    /// Parses the two headers. An invalid `traceparent` is an error; an invalid
    /// `tracestate` is dropped (the spec forbids propagating it) without
    /// affecting the traceparent.
    pub fn parse(traceparent: &str, tracestate: Option<&str>) -> Result<Self, TraceContextError> {
        let parent = TraceParent::parse(traceparent)?;
        let state = tracestate
            .and_then(|s| TraceState::parse(s).ok())
            .unwrap_or_default();
        Ok(Self { parent, state })
    }

    /// The `traceparent` header value (version `00`).
    pub fn traceparent_header(&self) -> String {
        self.parent.to_string()
    }

    /// The `tracestate` header value, or `None` when empty (the spec says not to send empty ones).
    pub fn tracestate_header(&self) -> Option<String> {
        (!self.state.is_empty()).then(|| self.state.header())
    }

    /// The context to propagate downstream: same trace id, flags and state,
    /// with `new_span_id` (the caller's non-zero span id) as the parent id.
    pub fn child(&self, new_span_id: SpanId) -> TraceContext {
        let parent = TraceParent {
            parent_id: new_span_id,
            ..self.parent
        };
        Self {
            parent,
            state: self.state.clone(),
        }
    }

    /// Converts an OpenTelemetry span context; `None` if it is invalid. A
    /// tracestate that breaks the Level 1 grammar is dropped, as in [`Self::parse`].
    pub fn from_span_context(cx: &otel::SpanContext) -> Option<TraceContext> {
        let parent = TraceParent::new(
            TraceId(cx.trace_id().to_bytes()),
            SpanId(cx.span_id().to_bytes()),
            TraceFlags(cx.trace_flags().to_u8()),
        )
        .ok()?;
        let state = TraceState::from_pairs(cx.trace_state()).unwrap_or_default();
        Some(Self { parent, state })
    }
}

/// A remote span context (`is_remote = true`) with the same flags and tracestate.
impl From<&TraceContext> for otel::SpanContext {
    fn from(cx: &TraceContext) -> Self {
        // Our grammar is stricter than OpenTelemetry's, so this cannot fail in practice.
        let state = otel::TraceState::from_key_value(cx.state.iter()).unwrap_or_default();
        otel::SpanContext::new(
            otel::TraceId::from_bytes(cx.parent.trace_id.0),
            otel::SpanId::from_bytes(cx.parent.parent_id.0),
            otel::TraceFlags::new(cx.parent.flags.0),
            true,
            state,
        )
    }
}

/// Wire form in human-readable formats (JSON, TOML): the two W3C header strings.
#[derive(Serialize, Deserialize)]
struct TextWire {
    traceparent: String,
    #[serde(default)]
    tracestate: String,
}

/// Wire form in binary formats (MessagePack frames): the traceparent as 25 raw bytes
/// (trace-id, parent-id, flags), about a fifth of the cost of formatting and parsing hex on
/// every envelope that leaves the process.
#[derive(Serialize, Deserialize)]
struct BinaryWire {
    traceparent: serde_bytes::ByteArray<25>,
    #[serde(default)]
    tracestate: String,
}

impl Serialize for TraceContext {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            return TextWire {
                traceparent: self.parent.to_string(),
                tracestate: self.state.header(),
            }
            .serialize(serializer);
        }
        let mut bytes = [0u8; 25];
        bytes[..16].copy_from_slice(&self.parent.trace_id.0);
        bytes[16..24].copy_from_slice(&self.parent.parent_id.0);
        bytes[24] = self.parent.flags.0;
        BinaryWire {
            traceparent: serde_bytes::ByteArray::new(bytes),
            tracestate: self.state.header(),
        }
        .serialize(serializer)
    }
}

/// Strict: only valid contexts are ever serialized, so a zero id or a bad tracestate means
/// corrupt data and is an error rather than something to drop.
impl<'de> Deserialize<'de> for TraceContext {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let (parent, tracestate) = if deserializer.is_human_readable() {
            let wire = TextWire::deserialize(deserializer)?;
            (
                wire.traceparent.parse().map_err(D::Error::custom)?,
                wire.tracestate,
            )
        } else {
            let wire = BinaryWire::deserialize(deserializer)?;
            let b = wire.traceparent.into_array();
            let mut trace_id = [0u8; 16];
            let mut parent_id = [0u8; 8];
            trace_id.copy_from_slice(&b[..16]);
            parent_id.copy_from_slice(&b[16..24]);
            let parent = TraceParent::new(TraceId(trace_id), SpanId(parent_id), TraceFlags(b[24]))
                .map_err(D::Error::custom)?;
            (parent, wire.tracestate)
        };
        let state = tracestate.parse().map_err(D::Error::custom)?;
        Ok(Self { parent, state })
    }
}

#[cfg(test)]
mod tests;
