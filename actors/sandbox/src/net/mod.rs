//! Sandbox egress: the node-side proxy that lets a sandbox reach allowlisted destinations.
//!
//! A sandbox's network namespace has only `lo`. A bridge inside it listens on
//! 127.0.0.1:3128 and [::1]:3128 and forwards every connection to a Unix socket bind-mounted
//! from the sandbox's private state directory; the command's `HTTP_PROXY`, `HTTPS_PROXY` and
//! `ALL_PROXY` point at the bridge. The socket is served by an [`EgressProxy`] running in the
//! node, outside the sandbox, so code inside cannot change the policy it enforces.
//!
//! The proxy speaks HTTP `CONNECT`, HTTP absolute-form requests and SOCKS5 (CONNECT, with
//! names resolved on the node), checks each destination against the sandbox's
//! [`Allowlist`] and splices allowed connections. Everything a client can make it spend is
//! bounded: request size and time, connection time, connections at once.

mod allowlist;
mod http;
mod http_head;
mod names;
mod proxy;
mod socks;
mod upstream;

pub use allowlist::{Allowlist, AllowlistError, AllowlistErrorKind};
pub use proxy::{EgressProxy, ProxyLimits, ProxyStats};
