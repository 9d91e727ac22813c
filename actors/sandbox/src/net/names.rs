//! Normal forms of what names a destination, shared by the allowlist's entries and the
//! clients' requests so that both sides are compared alike.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::allowlist::AllowlistErrorKind;

/// `::ffff:a.b.c.d` becomes `a.b.c.d`; everything else is left as it is.
pub(crate) fn normalize_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// An address literal as it appears in a host position: `1.2.3.4` or `[2001:db8::1]`.
pub(crate) fn parse_ip_literal(host: &str) -> Option<IpAddr> {
    match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => v6.parse::<Ipv6Addr>().ok().map(IpAddr::V6),
        None => host.parse::<Ipv4Addr>().ok().map(IpAddr::V4),
    }
}

/// Lowercases a DNS name and drops one trailing dot, refusing what is not a plausible name.
///
/// A last label starting with a digit is refused: no top-level domain does, and such
/// strings (`127.1`, `0x7f000001`) are numeric addresses to the system resolver, which a
/// name entry must never turn out to mean.
pub(crate) fn normalize_name(name: &str) -> Result<String, AllowlistErrorKind> {
    use AllowlistErrorKind::{Name, NonAscii};
    if !name.is_ascii() {
        return Err(NonAscii);
    }
    let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    if name.is_empty() || name.len() > 253 {
        return Err(Name("empty or longer than 253 characters"));
    }
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(Name("each label must be 1 to 63 characters"));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(Name(
                "only letters, digits, '-' and '_' are allowed (and a leading *.)",
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(Name("a label may not start or end with '-'"));
        }
    }
    if name
        .rsplit('.')
        .next()
        .is_some_and(|l| l.as_bytes()[0].is_ascii_digit())
    {
        return Err(Name(
            "the last label starts with a digit (a malformed address?)",
        ));
    }
    Ok(name)
}
