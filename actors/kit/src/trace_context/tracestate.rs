//! `tracestate`: the vendor list that travels with a `traceparent`.

use std::fmt;
use std::str::FromStr;

use super::{OWS, TraceContextError};

fn is_keychar(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'*' | b'/')
}

/// Level 1 key grammar: `simple-key` or `tenant-id@system-id`.
fn valid_key(key: &str) -> bool {
    fn part(s: &[u8], max: usize, first: fn(u8) -> bool) -> bool {
        matches!(s.split_first(), Some((&f, rest))
            if s.len() <= max && first(f) && rest.iter().all(|&b| is_keychar(b)))
    }
    let k = key.as_bytes();
    match k.iter().position(|&b| b == b'@') {
        None => part(k, 256, |b| b.is_ascii_lowercase()),
        Some(at) => {
            part(&k[..at], 241, |b| {
                b.is_ascii_lowercase() || b.is_ascii_digit()
            }) && part(&k[at + 1..], 14, |b| b.is_ascii_lowercase())
        }
    }
}

/// `value = 0*255(chr) nblk-chr`.
fn valid_value(value: &str) -> bool {
    let nblk = |b: u8| matches!(b, 0x21..=0x2b | 0x2d..=0x3c | 0x3e..=0x7e);
    let v = value.as_bytes();
    v.len() <= 256 && v.last().is_some_and(|&b| nblk(b)) && v.iter().all(|&b| b == b' ' || nblk(b))
}

fn check_member(key: &str, value: &str) -> Result<(), TraceContextError> {
    if !valid_key(key) {
        return Err(TraceContextError::InvalidKey(key.to_owned()));
    }
    if !valid_value(value) {
        return Err(TraceContextError::InvalidValue {
            key: key.to_owned(),
        });
    }
    Ok(())
}

/// A `tracestate`: an ordered list of vendor `(key, value)` members, leftmost
/// being the most recently updated. Every member is valid and keys are unique.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct TraceState {
    members: Vec<(String, String)>,
}

impl TraceState {
    /// The spec's limit on list-members.
    pub const MAX_MEMBERS: usize = 32;

    /// An empty tracestate.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses a `tracestate` value. Several header lines must be joined with
    /// `,` first (RFC 7230 field combination); the resulting empty members are
    /// skipped and do not count towards [`Self::MAX_MEMBERS`].
    pub fn parse(header: &str) -> Result<Self, TraceContextError> {
        Self::collect(
            header
                .split(',')
                .map(|m| m.trim_matches(OWS))
                .filter(|m| !m.is_empty())
                .map(|m| {
                    m.split_once('=')
                        .ok_or_else(|| TraceContextError::MissingEquals(m.to_owned()))
                }),
        )
    }

    /// Builds a tracestate from ordered pairs with the same checks as [`Self::parse`].
    pub fn from_pairs<K: AsRef<str>, V: AsRef<str>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Self, TraceContextError> {
        Self::collect(pairs.into_iter().map(Ok))
    }

    fn collect<K: AsRef<str>, V: AsRef<str>>(
        members: impl Iterator<Item = Result<(K, V), TraceContextError>>,
    ) -> Result<Self, TraceContextError> {
        let mut state = Self::new();
        let mut count = 0;
        for member in members {
            count += 1;
            // Past the limit only count, so huge inputs cost O(n) and report their size.
            if count > Self::MAX_MEMBERS {
                continue;
            }
            let (key, value) = member?;
            let (key, value) = (key.as_ref(), value.as_ref());
            check_member(key, value)?;
            if state.get(key).is_some() {
                return Err(TraceContextError::DuplicateKey(key.to_owned()));
            }
            state.members.push((key.to_owned(), value.to_owned()));
        }
        if count > Self::MAX_MEMBERS {
            return Err(TraceContextError::TooManyMembers(count));
        }
        Ok(state)
    }

    /// Formats as `k1=v1,k2=v2` (empty string when there are no members).
    pub fn header(&self) -> String {
        self.to_string()
    }

    /// The value for `key`, if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.members
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Adds or updates `key`, moving it to the front as the spec requires for
    /// modified entries. If that exceeds 32 members the rightmost one is dropped.
    /// On error the tracestate is unchanged.
    pub fn insert(
        &mut self,
        key: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<(), TraceContextError> {
        let (key, value) = (key.into(), value.into());
        check_member(&key, &value)?;
        self.remove(&key);
        self.members.insert(0, (key, value));
        self.members.truncate(Self::MAX_MEMBERS);
        Ok(())
    }

    /// Removes `key`, returning its value; the order of the others is kept.
    pub fn remove(&mut self, key: &str) -> Option<String> {
        let at = self.members.iter().position(|(k, _)| k == key)?;
        Some(self.members.remove(at).1)
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether there are no members.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Members from left (most recent) to right.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&str, &str)> + ExactSizeIterator {
        self.members.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

impl FromStr for TraceState {
    type Err = TraceContextError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for TraceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (k, v)) in self.members.iter().enumerate() {
            write!(f, "{}{k}={v}", if i == 0 { "" } else { "," })?;
        }
        Ok(())
    }
}
