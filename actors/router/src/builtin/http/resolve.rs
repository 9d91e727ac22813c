//! Name resolution for `http.fetch`: allowlisted names must not lead inside the node.
//!
//! A host on the allowlist is trusted by name, but its DNS answers are not: a rebound or
//! hostile record pointing at 127.0.0.1 or 169.254.169.254 (cloud metadata) would let a
//! model reach the node's own services. Such answers are dropped unless the name is
//! `localhost`, which means the loopback by definition.

use std::net::{IpAddr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

pub(super) struct Screening;

impl Resolve for Screening {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().trim_end_matches('.').to_ascii_lowercase();
        Box::pin(async move {
            let resolved = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let loopback_by_name = host == "localhost" || host.ends_with(".localhost");
            let addrs: Vec<SocketAddr> = resolved
                .filter(|a| loopback_by_name || !internal(a.ip()))
                .collect();
            if addrs.is_empty() {
                return Err(format!("{host} resolves only to addresses inside the node").into());
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// Loopback, link-local and unspecified addresses, IPv4-mapped forms included.
fn internal(ip: IpAddr) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    match ip {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_link_local() || v4.is_unspecified(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.is_unspecified() || (v6.segments()[0] & 0xffc0) == 0xfe80
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inside_addresses_are_recognised_in_every_form() {
        for inside in [
            "127.0.0.1",
            "127.9.9.9",
            "169.254.169.254",
            "::1",
            "fe80::1",
            "0.0.0.0",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
        ] {
            assert!(internal(inside.parse().unwrap()), "{inside}");
        }
        for outside in ["192.0.2.1", "10.0.0.1", "2001:db8::1", "::ffff:192.0.2.1"] {
            assert!(!internal(outside.parse().unwrap()), "{outside}");
        }
    }

    #[tokio::test]
    async fn localhost_resolves_and_other_names_to_loopback_do_not() {
        let addrs: Vec<SocketAddr> = Screening
            .resolve("localhost".parse().unwrap())
            .await
            .unwrap()
            .collect();
        assert!(addrs.iter().all(|a| a.ip().is_loopback()) && !addrs.is_empty());
        // `ip6-localhost` / `ip6-loopback` are /etc/hosts names for ::1 on Debian; a name
        // that only resolves inside the node is refused. Skipped where the name is absent.
        if let Ok(mut found) = tokio::net::lookup_host(("ip6-localhost", 0)).await
            && found.next().is_some()
        {
            assert!(
                Screening
                    .resolve("ip6-localhost".parse().unwrap())
                    .await
                    .is_err()
            );
        }
    }
}
