//! Sizes and durations as people write them in configs and on command lines (`256M`, `10s`).
//!
//! Hand-written because the usual crates read `M` as 10^6 (bytesize) where container tools
//! (`docker run --memory 256m`, cgroup docs) mean 2^20; a sandbox limit off by 5% is a
//! surprise nobody wants.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A size in bytes: `1048576`, `512K`, `256M`, `1G` (binary multiples; `KiB`, `MiB`, `GiB`,
/// `KB`, ... and lowercase accepted alike).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ByteSize(pub u64);

impl ByteSize {
    pub const fn kib(n: u64) -> Self {
        Self(n << 10)
    }

    pub const fn mib(n: u64) -> Self {
        Self(n << 20)
    }

    pub const fn gib(n: u64) -> Self {
        Self(n << 30)
    }
}

/// A size or duration that does not parse; names the text and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} {text:?}: expected {expected}")]
pub struct UnitError {
    what: &'static str,
    text: String,
    expected: &'static str,
}

impl FromStr for ByteSize {
    type Err = UnitError;

    fn from_str(text: &str) -> Result<Self, UnitError> {
        let err = || UnitError {
            what: "size",
            text: text.to_string(),
            expected: "a number of bytes with an optional K, M or G suffix, e.g. 256M",
        };
        let (number, unit) = split_number(text.trim()).ok_or_else(err)?;
        let shift = match unit.to_ascii_lowercase().as_str() {
            "" | "b" => 0,
            "k" | "kb" | "kib" => 10,
            "m" | "mb" | "mib" => 20,
            "g" | "gb" | "gib" => 30,
            "t" | "tb" | "tib" => 40,
            _ => return Err(err()),
        };
        number.checked_mul(1 << shift).map(ByteSize).ok_or_else(err)
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        for (shift, unit) in [(30, "G"), (20, "M"), (10, "K")] {
            if n != 0 && n.is_multiple_of(1 << shift) {
                return write!(f, "{}{unit}", n >> shift);
            }
        }
        write!(f, "{n}")
    }
}

/// A duration: `250ms`, `10s`, `2m`, `1h`, or a bare number of seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Span(pub Duration);

impl FromStr for Span {
    type Err = UnitError;

    fn from_str(text: &str) -> Result<Self, UnitError> {
        let err = || UnitError {
            what: "duration",
            text: text.to_string(),
            expected: "a number with a unit ms, s, m or h, e.g. 10s",
        };
        let (number, unit) = split_number(text.trim()).ok_or_else(err)?;
        let millis = match unit {
            "ms" => Some(number),
            "" | "s" => number.checked_mul(1000),
            "m" => number.checked_mul(60_000),
            "h" => number.checked_mul(3_600_000),
            _ => None,
        };
        millis
            .map(|ms| Span(Duration::from_millis(ms)))
            .ok_or_else(err)
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if ms.is_multiple_of(1000) {
            write!(f, "{}s", ms / 1000)
        } else {
            write!(f, "{ms}ms")
        }
    }
}

fn split_number(text: &str) -> Option<(u64, &str)> {
    let end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let number = text[..end].parse().ok()?;
    Some((number, text[end..].trim()))
}

macro_rules! string_serde {
    ($ty:ty) => {
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                // Accept bare integers too (`memory = 1048576`).
                #[derive(Deserialize)]
                #[serde(untagged)]
                enum Raw {
                    Int(u64),
                    Text(String),
                }
                match Raw::deserialize(d)? {
                    Raw::Int(n) => n.to_string().parse(),
                    Raw::Text(t) => t.parse(),
                }
                .map_err(serde::de::Error::custom)
            }
        }
    };
}

string_serde!(ByteSize);
string_serde!(Span);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_use_binary_multiples() {
        assert_eq!("256M".parse(), Ok(ByteSize(256 << 20)));
        assert_eq!("512kib".parse(), Ok(ByteSize(512 << 10)));
        assert_eq!(" 1G ".parse(), Ok(ByteSize(1 << 30)));
        assert_eq!("4096".parse(), Ok(ByteSize(4096)));
        assert_eq!(ByteSize::mib(64).to_string(), "64M");
        assert_eq!(ByteSize(1000).to_string(), "1000");
    }

    #[test]
    fn bad_sizes_are_named() {
        for bad in ["", "M", "12X", "-1M", "99999999999999T"] {
            let err = bad.parse::<ByteSize>().unwrap_err().to_string();
            assert!(err.contains("invalid size"), "{bad}: {err}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!("250ms".parse(), Ok(Span(Duration::from_millis(250))));
        assert_eq!("10s".parse(), Ok(Span(Duration::from_secs(10))));
        assert_eq!("10".parse(), Ok(Span(Duration::from_secs(10))));
        assert_eq!("2m".parse(), Ok(Span(Duration::from_secs(120))));
        assert!("10x".parse::<Span>().is_err());
        assert_eq!(Span(Duration::from_millis(1500)).to_string(), "1500ms");
    }
}
