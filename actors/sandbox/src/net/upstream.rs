//! Where a client asked to go, whether it may, and the connection there.
//!
//! The decision rule: a literal address is allowed if an address entry permits it (after
//! IPv4-mapped normalization). A name is allowed if a name entry matches it — then the
//! proxy connects to what it resolves to — or else if every address it resolves to is
//! permitted by address entries. Names are resolved here, on the node, never by the client.

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::timeout;

use super::allowlist::Allowlist;
use super::names::{normalize_ip, normalize_name, parse_ip_literal};

/// A requested destination, as the client named it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Destination {
    pub host: Host,
    pub port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Host {
    /// A DNS name, lowercase, without a trailing dot.
    Name(String),
    /// A literal address, IPv4-mapped ones already turned into IPv4.
    Addr(IpAddr),
}

impl Destination {
    /// From a host as a client wrote it (a name, `1.2.3.4` or `[v6]`) and a port.
    pub fn new(host: &str, port: u16) -> Result<Destination, &'static str> {
        if port == 0 {
            return Err("port 0 is not a destination");
        }
        let host = match parse_ip_literal(host) {
            Some(ip) => Host::Addr(normalize_ip(ip)),
            // A bare IPv6 address, as a SOCKS domain name may carry one.
            None if host.contains(':') => match host.parse::<IpAddr>() {
                Ok(ip) => Host::Addr(normalize_ip(ip)),
                Err(_) => return Err("malformed host"),
            },
            None => Host::Name(normalize_name(host).map_err(|_| "malformed host name")?),
        };
        Ok(Destination { host, port })
    }

    pub fn from_addr(addr: SocketAddr) -> Result<Destination, &'static str> {
        match addr.port() {
            0 => Err("port 0 is not a destination"),
            port => Ok(Destination {
                host: Host::Addr(normalize_ip(addr.ip())),
                port,
            }),
        }
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            Host::Name(n) => write!(f, "{n}:{}", self.port),
            Host::Addr(ip) => write!(f, "{}", SocketAddr::new(*ip, self.port)),
        }
    }
}

/// Why no upstream connection was made.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DialError {
    #[error("{0} is not in this sandbox's egress allowlist")]
    Denied(String),
    #[error("cannot resolve {0}: {1}")]
    Resolve(String, io::Error),
    #[error("cannot resolve {0}: timed out")]
    ResolveTimeout(String),
    #[error("{0} resolves to no usable address")]
    NoAddress(String),
    #[error("cannot connect to {0}: {1}")]
    Connect(String, io::Error),
    #[error("cannot connect to {0}: timed out")]
    ConnectTimeout(String),
}

/// Checks `dest` against `allow`, resolves it if it is a name and connects, each step
/// within `limit`. Logs the verdict at debug.
pub(crate) async fn dial(
    dest: &Destination,
    allow: &Allowlist,
    limit: Duration,
) -> Result<TcpStream, DialError> {
    let result = async {
        let addrs = decide(dest, allow, limit).await?;
        connect(dest, &addrs, limit).await
    }
    .await;
    match &result {
        Ok(_) => tracing::debug!(destination = %dest, verdict = "allowed", "sandbox egress"),
        Err(DialError::Denied(_)) => {
            tracing::debug!(destination = %dest, verdict = "denied", "sandbox egress")
        }
        Err(e) => {
            tracing::debug!(destination = %dest, verdict = "failed", error = %e, "sandbox egress")
        }
    }
    result
}

/// The addresses `dest` may be reached at, or why none.
async fn decide(
    dest: &Destination,
    allow: &Allowlist,
    limit: Duration,
) -> Result<Vec<SocketAddr>, DialError> {
    let denied = || DialError::Denied(dest.to_string());
    let name = match &dest.host {
        Host::Addr(ip) => {
            let addr = SocketAddr::new(*ip, dest.port);
            return if allow.permits_addr(addr) {
                Ok(vec![addr])
            } else {
                Err(denied())
            };
        }
        Host::Name(name) => name,
    };
    let by_name = allow.permits_name(name, dest.port);
    // Without a name entry only address entries can allow the name; when none covers the
    // port the answer is no, and DNS is not asked about a name that cannot pass.
    if !by_name && !allow.has_addr_rule_for(dest.port) {
        return Err(denied());
    }
    let resolved = match timeout(limit, tokio::net::lookup_host((name.as_str(), dest.port))).await {
        Err(_) => return Err(DialError::ResolveTimeout(dest.to_string())),
        Ok(Err(e)) => return Err(DialError::Resolve(dest.to_string(), e)),
        Ok(Ok(addrs)) => addrs,
    };
    screen(dest, resolved, by_name, allow)
}

/// The resolved addresses of a name that may be connected to: all of them (less the
/// unspecified ones) when a name entry matched, else only if address entries permit every
/// one — a name with one forbidden address is refused rather than quietly narrowed, so the
/// verdict does not depend on which address the proxy happens to pick.
fn screen(
    dest: &Destination,
    resolved: impl IntoIterator<Item = SocketAddr>,
    by_name: bool,
    allow: &Allowlist,
) -> Result<Vec<SocketAddr>, DialError> {
    let mut addrs: Vec<SocketAddr> = Vec::new();
    let mut refused_internal = false;
    for a in resolved {
        let a = SocketAddr::new(normalize_ip(a.ip()), a.port());
        // A resolver's 0.0.0.0 (a common "blocked" answer) would reach the node's loopback.
        if a.ip().is_unspecified() || addrs.contains(&a) {
            continue;
        }
        if by_name && internal(a.ip()) && !names_loopback(dest) && !allow.permits_addr(a) {
            refused_internal = true;
            continue;
        }
        addrs.push(a);
    }
    if addrs.is_empty() {
        return Err(if refused_internal {
            DialError::Denied(dest.to_string())
        } else {
            DialError::NoAddress(dest.to_string())
        });
    }
    if !by_name && !addrs.iter().all(|a| allow.permits_addr(*a)) {
        return Err(DialError::Denied(dest.to_string()));
    }
    Ok(addrs)
}

/// Addresses a name entry may not lead to unless an address entry names them: the node's
/// own loopback and the link-local range (cloud metadata services answer at
/// 169.254.169.254). They are what DNS rebinding of an allowlisted domain would aim at.
fn internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_link_local(),
        IpAddr::V6(v6) => v6.is_loopback() || (v6.segments()[0] & 0xffc0) == 0xfe80,
    }
}

/// `localhost` (and its subdomains) means the loopback by definition, not by DNS.
fn names_loopback(dest: &Destination) -> bool {
    match &dest.host {
        Host::Name(name) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            name == "localhost" || name.ends_with(".localhost")
        }
        Host::Addr(_) => false,
    }
}

/// Tries `addrs` in order until one answers, all within `limit`.
async fn connect(
    dest: &Destination,
    addrs: &[SocketAddr],
    limit: Duration,
) -> Result<TcpStream, DialError> {
    let attempt = async {
        let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
        for addr in addrs {
            match TcpStream::connect(addr).await {
                Ok(stream) => return Ok(stream),
                Err(e) => last = e,
            }
        }
        Err(last)
    };
    match timeout(limit, attempt).await {
        Err(_) => Err(DialError::ConnectTimeout(dest.to_string())),
        Ok(Err(e)) => Err(DialError::Connect(dest.to_string(), e)),
        Ok(Ok(stream)) => {
            // A relay should not add Nagle's delay on top of the client's own.
            let _ = stream.set_nodelay(true);
            Ok(stream)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allow(entries: &[&str]) -> Allowlist {
        let entries: Vec<String> = entries.iter().map(|e| e.to_string()).collect();
        Allowlist::parse(&entries).unwrap()
    }

    fn addrs(list: &[&str]) -> Vec<SocketAddr> {
        list.iter().map(|a| a.parse().unwrap()).collect()
    }

    #[test]
    fn without_a_name_entry_every_address_must_pass() {
        let dest = Destination::new("svc.example.com", 443).unwrap();
        let rules = allow(&["10.0.0.0/8:443"]);
        let both = addrs(&["10.1.1.1:443", "[::ffff:10.2.2.2]:443"]);
        assert_eq!(
            screen(&dest, both, false, &rules).unwrap(),
            addrs(&["10.1.1.1:443", "10.2.2.2:443"])
        );
        let mixed = addrs(&["10.1.1.1:443", "192.0.2.1:443"]);
        assert!(matches!(
            screen(&dest, mixed.clone(), false, &rules),
            Err(DialError::Denied(_))
        ));
        // A matching name entry takes whatever the name resolves to.
        assert_eq!(screen(&dest, mixed.clone(), true, &rules).unwrap(), mixed);
    }

    #[test]
    fn unspecified_and_duplicate_answers_are_dropped() {
        let dest = Destination::new("svc.example.com", 80).unwrap();
        let rules = allow(&["svc.example.com:80"]);
        let answers = addrs(&["0.0.0.0:80", "[::]:80", "[::ffff:0.0.0.0]:80"]);
        assert!(matches!(
            screen(&dest, answers, true, &rules),
            Err(DialError::NoAddress(_))
        ));
        let answers = addrs(&["192.0.2.1:80", "[::ffff:192.0.2.1]:80", "0.0.0.0:80"]);
        assert_eq!(
            screen(&dest, answers, true, &rules).unwrap(),
            addrs(&["192.0.2.1:80"])
        );
    }

    #[test]
    fn a_name_entry_does_not_lead_to_loopback_or_link_local_answers() {
        let dest = Destination::new("svc.example.com", 80).unwrap();
        let rules = allow(&["svc.example.com:80"]);
        for answers in [
            addrs(&["127.0.0.1:80"]),
            addrs(&["169.254.169.254:80"]),
            addrs(&["[::1]:80", "[fe80::1]:80"]),
        ] {
            assert!(matches!(
                screen(&dest, answers, true, &rules),
                Err(DialError::Denied(_))
            ));
        }
        // Mixed answers keep only the outside ones.
        let mixed = addrs(&["127.0.0.1:80", "192.0.2.7:80"]);
        assert_eq!(
            screen(&dest, mixed, true, &rules).unwrap(),
            addrs(&["192.0.2.7:80"])
        );
        // An address entry that names the loopback, or the name `localhost`, is intent.
        let explicit = allow(&["svc.example.com:80", "127.0.0.1:80"]);
        assert!(screen(&dest, addrs(&["127.0.0.1:80"]), true, &explicit).is_ok());
        let local = Destination::new("localhost", 80).unwrap();
        let rules = allow(&["localhost:80"]);
        assert!(screen(&local, addrs(&["127.0.0.1:80", "[::1]:80"]), true, &rules).is_ok());
    }

    #[test]
    fn destinations_parse_from_what_clients_write() {
        let d = Destination::new("[::ffff:127.0.0.1]", 80).unwrap();
        assert_eq!(d.host, Host::Addr("127.0.0.1".parse().unwrap()));
        assert_eq!(Destination::new("::1", 80).unwrap().to_string(), "[::1]:80");
        assert_eq!(
            Destination::new("Example.COM.", 80).unwrap().to_string(),
            "example.com:80"
        );
        assert!(Destination::new("example.com", 0).is_err());
        assert!(Destination::new("exa mple.com", 80).is_err());
        assert!(Destination::new("127.1", 80).is_err());
    }
}
