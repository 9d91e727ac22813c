//! The egress allowlist: which destinations a sandbox may open TCP connections to.
//!
//! Entries are `host:port`: a DNS name (`api.example.com`), a wildcard (`*.example.com`: any
//! subdomain, not the apex), an address (`1.2.3.4`, `[2001:db8::1]`) or a network
//! (`10.0.0.0/8`, `[fd00::/8]`); the port is a number, a range (`8000-8100`) or `*`.
//!
//! An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) is the IPv4 address `a.b.c.d`: the kernel
//! connects to it over IPv4, so entries and requests are both normalized to IPv4 before
//! matching. A mapped address can thus neither slip past an IPv4 rule nor be refused where
//! its IPv4 form is allowed. (An IPv6 network shorter than /96 that happens to contain the
//! mapped range, such as `[::/0]`, matches genuine IPv6 addresses only.)

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::names::{normalize_ip, normalize_name, parse_ip_literal};

/// The parsed allowlist of one sandbox. Empty means no egress at all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Allowlist {
    rules: Vec<Rule>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    target: Target,
    ports: Ports,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    /// Lowercase, without a trailing dot.
    Name(String),
    /// `*.example.com`, stored as `.example.com` so that a suffix test matches subdomains
    /// of any depth and never the apex.
    Wildcard(String),
    /// A network (an address is a network of full length); normalized, host bits zero.
    Net { addr: IpAddr, prefix: u8 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ports {
    low: u16,
    high: u16,
}

/// A bad allowlist entry: which one, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad egress allowlist entry {entry:?}: {kind}")]
pub struct AllowlistError {
    pub entry: String,
    pub kind: AllowlistErrorKind,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllowlistErrorKind {
    #[error("expected host:port (IPv6 in brackets: [addr]:port)")]
    Syntax,
    #[error("bad port {0:?}: expected 1-65535, a range low-high or *")]
    Port(String),
    #[error("bad host name: {0}")]
    Name(&'static str),
    #[error("non-ASCII host names are not supported; write the name in its xn-- form")]
    NonAscii,
    #[error("bad address {0:?}")]
    Address(String),
    #[error("bad prefix length {0:?}")]
    Prefix(String),
    #[error("the network has bits set past its prefix; did you mean {0}?")]
    HostBits(String),
}

impl Allowlist {
    /// Parses the profile's entries; the first bad one is the error.
    pub fn parse(entries: &[String]) -> Result<Allowlist, AllowlistError> {
        let rules = entries
            .iter()
            .map(|e| {
                parse_rule(e.trim()).map_err(|kind| AllowlistError {
                    entry: e.clone(),
                    kind,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Allowlist { rules })
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether a name entry permits `name:port`. A literal address given as a name is
    /// checked as an address ([`Allowlist::permits_addr`]).
    pub fn permits_name(&self, name: &str, port: u16) -> bool {
        if let Some(ip) = parse_ip_literal(name) {
            return self.permits_addr(SocketAddr::new(ip, port));
        }
        let Ok(name) = normalize_name(name) else {
            return false;
        };
        self.rules.iter().any(|r| {
            r.ports.contains(port)
                && match &r.target {
                    Target::Name(n) => *n == name,
                    Target::Wildcard(suffix) => name.ends_with(suffix.as_str()),
                    Target::Net { .. } => false,
                }
        })
    }

    /// Whether an address entry permits `addr` (after IPv4-mapped normalization). The
    /// unspecified addresses (`0.0.0.0`, `::`) are never permitted: connecting to them
    /// reaches the node's own loopback.
    pub fn permits_addr(&self, addr: SocketAddr) -> bool {
        let ip = normalize_ip(addr.ip());
        if ip.is_unspecified() {
            return false;
        }
        self.rules.iter().any(|r| {
            r.ports.contains(addr.port())
                && matches!(r.target, Target::Net { addr: net, prefix } if in_net(ip, net, prefix))
        })
    }

    /// Whether any address entry covers `port`: if none does, a name without a matching
    /// name entry can be refused without asking DNS about it.
    pub fn has_addr_rule_for(&self, port: u16) -> bool {
        self.rules
            .iter()
            .any(|r| r.ports.contains(port) && matches!(r.target, Target::Net { .. }))
    }
}

impl fmt::Display for Allowlist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.rules.is_empty() {
            return f.write_str("(no egress)");
        }
        for (i, r) in self.rules.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            match &r.target {
                Target::Name(n) => f.write_str(n)?,
                Target::Wildcard(s) => write!(f, "*{s}")?,
                Target::Net {
                    addr: IpAddr::V4(a),
                    prefix: 32,
                } => write!(f, "{a}")?,
                Target::Net {
                    addr: IpAddr::V4(a),
                    prefix,
                } => write!(f, "{a}/{prefix}")?,
                Target::Net {
                    addr: IpAddr::V6(a),
                    prefix: 128,
                } => write!(f, "[{a}]")?,
                Target::Net {
                    addr: IpAddr::V6(a),
                    prefix,
                } => write!(f, "[{a}/{prefix}]")?,
            }
            match r.ports {
                Ports {
                    low: 1,
                    high: u16::MAX,
                } => f.write_str(":*")?,
                Ports { low, high } if low == high => write!(f, ":{low}")?,
                Ports { low, high } => write!(f, ":{low}-{high}")?,
            }
        }
        Ok(())
    }
}

impl Ports {
    fn contains(self, port: u16) -> bool {
        (self.low..=self.high).contains(&port)
    }
}

fn parse_rule(entry: &str) -> Result<Rule, AllowlistErrorKind> {
    use AllowlistErrorKind::*;
    // Brackets mark IPv6 (`[v6]:port`, `[v6/len]:port`); anything else splits at its
    // last colon, and a host that still has one is an unbracketed IPv6 address.
    let (host, port, v6) = match entry.strip_prefix('[') {
        Some(rest) => {
            let (host, port) = rest.split_once("]:").ok_or(Syntax)?;
            (host, port, true)
        }
        None => {
            let (host, port) = entry.rsplit_once(':').ok_or(Syntax)?;
            if host.contains(':') {
                return Err(Syntax);
            }
            (host, port, false)
        }
    };
    if host.is_empty() {
        return Err(Syntax);
    }
    let ports = parse_ports(port).ok_or_else(|| Port(port.to_string()))?;
    let target = match host.split_once('/') {
        Some((addr, prefix)) => parse_net(addr, prefix, v6)?,
        None if v6 => parse_net(host, "128", true)?,
        None if host.parse::<Ipv4Addr>().is_ok() => parse_net(host, "32", false)?,
        None => match host.strip_prefix("*.") {
            Some(domain) => Target::Wildcard(format!(".{}", normalize_name(domain)?)),
            None => Target::Name(normalize_name(host)?),
        },
    };
    Ok(Rule { target, ports })
}

fn parse_ports(s: &str) -> Option<Ports> {
    let num = |s: &str| match s.parse::<u16>() {
        Ok(p) if p > 0 && s.bytes().all(|b| b.is_ascii_digit()) => Some(p),
        _ => None,
    };
    match s {
        "*" => Some(Ports {
            low: 1,
            high: u16::MAX,
        }),
        _ => match s.split_once('-') {
            Some((l, h)) => {
                let (low, high) = (num(l)?, num(h)?);
                (low <= high).then_some(Ports { low, high })
            }
            None => num(s).map(|p| Ports { low: p, high: p }),
        },
    }
}

fn parse_net(addr: &str, prefix: &str, v6: bool) -> Result<Target, AllowlistErrorKind> {
    use AllowlistErrorKind::*;
    let bad = || Address(addr.to_string());
    let ip = match v6 {
        true => IpAddr::V6(addr.parse().map_err(|_| bad())?),
        false => IpAddr::V4(addr.parse().map_err(|_| bad())?),
    };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let mut len: u8 = match prefix.parse() {
        Ok(n) if n <= max && prefix.bytes().all(|b| b.is_ascii_digit()) => n,
        _ => return Err(Prefix(prefix.to_string())),
    };
    let mut ip = ip;
    // A mapped network of /96 or longer is an IPv4 network.
    if let IpAddr::V6(v6) = ip
        && let Some(v4) = v6.to_ipv4_mapped()
        && len >= 96
    {
        ip = IpAddr::V4(v4);
        len -= 96;
    }
    let masked = mask(ip, len);
    if masked != ip {
        let shown = match masked {
            IpAddr::V4(a) => format!("{a}/{len}"),
            IpAddr::V6(a) => format!("[{a}/{len}]"),
        };
        return Err(HostBits(shown));
    }
    Ok(Target::Net {
        addr: ip,
        prefix: len,
    })
}

fn mask(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(a) => {
            let m = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4((u32::from(a) & m).into())
        }
        IpAddr::V6(a) => {
            let m = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6((u128::from(a) & m).into())
        }
    }
}

fn in_net(ip: IpAddr, net: IpAddr, prefix: u8) -> bool {
    ip.is_ipv4() == net.is_ipv4() && mask(ip, prefix) == net
}
