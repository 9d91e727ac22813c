//! The hosts `http.fetch` may reach.

use std::net::{IpAddr, Ipv6Addr};

use reqwest::Url;

/// Allowed hosts: `host` (any port) or `host:port`, IPv6 literals as `[::1]` or
/// `[::1]:8080`. Names compare case-insensitively, IP literals in canonical form; nothing
/// is resolved, so a name allows exactly that name (not what it resolves to).
#[derive(Debug, Clone, Default)]
pub struct Allowlist {
    rules: Vec<(String, Option<u16>)>,
}

impl Allowlist {
    pub fn parse<S: AsRef<str>>(entries: impl IntoIterator<Item = S>) -> Result<Self, String> {
        let rules = entries
            .into_iter()
            .map(|e| rule(e.as_ref().trim()))
            .collect::<Result<_, _>>()?;
        Ok(Self { rules })
    }

    /// Whether `url` is an `http(s)` URL to an allowed host and port.
    pub fn permits(&self, url: &Url) -> bool {
        if !matches!(url.scheme(), "http" | "https") {
            return false;
        }
        let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else {
            return false;
        };
        let host = canonical(host.trim_start_matches('[').trim_end_matches(']'));
        self.rules
            .iter()
            .any(|(h, p)| *h == host && p.is_none_or(|p| p == port))
    }
}

fn rule(entry: &str) -> Result<(String, Option<u16>), String> {
    let bad = |why: &str| format!("allowlist entry {entry:?}: {why}");
    let port = |p: &str| p.parse::<u16>().map_err(|_| bad("invalid port"));
    let (host, port) = if let Some(rest) = entry.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(|| bad("unclosed '['"))?;
        host.parse::<Ipv6Addr>()
            .map_err(|_| bad("invalid IPv6 address"))?;
        match after {
            "" => (host, None),
            _ => (
                host,
                Some(port(
                    after
                        .strip_prefix(':')
                        .ok_or_else(|| bad("junk after ']'"))?,
                )?),
            ),
        }
    } else if entry.matches(':').count() > 1 {
        entry
            .parse::<Ipv6Addr>()
            .map_err(|_| bad("invalid IPv6 address"))?;
        (entry, None)
    } else if let Some((host, p)) = entry.split_once(':') {
        (host, Some(port(p)?))
    } else {
        (entry, None)
    };
    if host.is_empty() || host.contains(['/', '@', '?', '#', ' ']) {
        return Err(bad("not a host name"));
    }
    Ok((canonical(host), port))
}

fn canonical(host: &str) -> String {
    match host.parse::<IpAddr>() {
        Ok(ip) => ip.to_string(),
        Err(_) => host.trim_end_matches('.').to_ascii_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allows(list: &[&str], url: &str) -> bool {
        Allowlist::parse(list)
            .unwrap()
            .permits(&Url::parse(url).unwrap())
    }

    #[test]
    fn hosts_and_ports_match_exactly() {
        assert!(allows(&["example.com"], "https://Example.COM/x"));
        assert!(allows(&["example.com"], "http://example.com:8080/"));
        assert!(!allows(&["example.com"], "https://api.example.com/"));
        assert!(!allows(&["example.com"], "https://example.com.evil.test/"));
        assert!(allows(&["example.com:443"], "https://example.com/"));
        assert!(!allows(&["example.com:443"], "http://example.com/"));
        assert!(allows(&["127.0.0.1:8080"], "http://127.0.0.1:8080/a"));
        assert!(!allows(&["127.0.0.1:8080"], "http://127.0.0.1:8081/a"));
        assert!(allows(&["[::1]:9000"], "http://[::1]:9000/"));
        assert!(allows(&["::1"], "http://[0:0:0:0:0:0:0:1]:1/"));
        assert!(!allows(&["example.com"], "ftp://example.com/"));
        assert!(!allows(&["example.com"], "http://user@evil.test/"));
        assert!(!allows(&[], "http://example.com/"));
    }

    #[test]
    fn malformed_entries_are_refused() {
        for bad in ["", "a:b", "[::1", "[::1]x", "a/b", "x:99999", "1:2:3"] {
            assert!(Allowlist::parse([bad]).is_err(), "{bad:?} accepted");
        }
    }
}
