//! SOCKS5 (RFC 1928), the part of it a sandbox needs: no authentication, CONNECT only,
//! IPv4, IPv6 and domain-name destinations (names resolved here, as socks5h clients
//! expect). Hand-written like the HTTP side, for the same reasons: a handful of fixed
//! fields, every byte untrusted.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::time::{Instant, timeout_at};

use super::proxy::{Ctx, Verdict, linger_close, splice};
use super::upstream::{Destination, DialError, dial};

pub(crate) const VERSION: u8 = 0x05;

const NO_AUTH: u8 = 0x00;
const NO_ACCEPTABLE_METHOD: u8 = 0xff;
const CMD_CONNECT: u8 = 0x01;

const SUCCEEDED: u8 = 0x00;
const GENERAL_FAILURE: u8 = 0x01;
const NOT_ALLOWED: u8 = 0x02;
const NETWORK_UNREACHABLE: u8 = 0x03;
const HOST_UNREACHABLE: u8 = 0x04;
const CONNECTION_REFUSED: u8 = 0x05;
const COMMAND_NOT_SUPPORTED: u8 = 0x07;
const ADDRESS_TYPE_NOT_SUPPORTED: u8 = 0x08;

/// Why the negotiation ended before a destination was known.
#[derive(Debug)]
enum Refusal {
    /// The client offers no method we accept (we accept only "no authentication").
    NoMethod,
    /// A request we understood well enough to answer with this reply code.
    Reply(u8),
    /// The client went away or broke the stream.
    Io(io::Error),
}

impl From<io::Error> for Refusal {
    fn from(e: io::Error) -> Self {
        Refusal::Io(e)
    }
}

/// Serves one SOCKS5 client whose version byte has been read.
pub(crate) async fn serve(mut client: UnixStream, ctx: &Ctx, deadline: Instant) {
    let dest = match timeout_at(deadline, negotiate(&mut client)).await {
        Ok(Ok(dest)) => dest,
        Ok(Err(refusal)) => {
            ctx.record(Verdict::Failed);
            let answer = match refusal {
                Refusal::NoMethod => {
                    tracing::debug!("sandbox egress: SOCKS5 client offers no usable method");
                    client.write_all(&[VERSION, NO_ACCEPTABLE_METHOD]).await
                }
                Refusal::Reply(code) => {
                    tracing::debug!(code, "sandbox egress: SOCKS5 request refused");
                    client.write_all(&reply(code)).await
                }
                Refusal::Io(e) => {
                    tracing::debug!(error = %e, "sandbox egress: SOCKS5 client broke off");
                    return;
                }
            };
            if answer.is_ok() {
                linger_close(client).await;
            }
            return;
        }
        // Too slow: there is no reply code that fits every stage, so just close.
        Err(_) => return ctx.record(Verdict::Failed),
    };
    let upstream = match dial(&dest, &ctx.allowlist, ctx.limits.connect_timeout).await {
        Ok(s) => s,
        Err(e) => {
            let verdict = match e {
                DialError::Denied(_) => Verdict::Denied,
                _ => Verdict::Failed,
            };
            ctx.record(verdict);
            if client.write_all(&reply(code_of(&e))).await.is_ok() {
                linger_close(client).await;
            }
            return;
        }
    };
    ctx.record(Verdict::Allowed);
    if client.write_all(&reply(SUCCEEDED)).await.is_ok() {
        splice(client, upstream, &[], ctx.limits.connect_timeout).await;
    }
}

/// Method selection and the request, up to its destination.
async fn negotiate(client: &mut UnixStream) -> Result<Destination, Refusal> {
    let count = client.read_u8().await?;
    let mut methods = [0u8; 255];
    let methods = &mut methods[..usize::from(count)];
    client.read_exact(methods).await?;
    if !methods.contains(&NO_AUTH) {
        return Err(Refusal::NoMethod);
    }
    client.write_all(&[VERSION, NO_AUTH]).await?;

    let mut head = [0u8; 4]; // VER CMD RSV ATYP
    client.read_exact(&mut head).await?;
    if head[0] != VERSION {
        return Err(Refusal::Reply(GENERAL_FAILURE));
    }
    if head[1] != CMD_CONNECT {
        return Err(Refusal::Reply(COMMAND_NOT_SUPPORTED));
    }
    let bad = |_| Refusal::Reply(GENERAL_FAILURE);
    match head[3] {
        0x01 => {
            let mut ip = [0u8; 4];
            client.read_exact(&mut ip).await?;
            let port = client.read_u16().await?;
            Destination::from_addr(SocketAddr::new(Ipv4Addr::from(ip).into(), port)).map_err(bad)
        }
        0x04 => {
            let mut ip = [0u8; 16];
            client.read_exact(&mut ip).await?;
            let port = client.read_u16().await?;
            Destination::from_addr(SocketAddr::new(Ipv6Addr::from(ip).into(), port)).map_err(bad)
        }
        0x03 => {
            let len = client.read_u8().await?;
            let mut name = [0u8; 255];
            let name = &mut name[..usize::from(len)];
            client.read_exact(name).await?;
            let port = client.read_u16().await?;
            let name = std::str::from_utf8(name).map_err(|_| Refusal::Reply(GENERAL_FAILURE))?;
            Destination::new(name, port).map_err(bad)
        }
        _ => Err(Refusal::Reply(ADDRESS_TYPE_NOT_SUPPORTED)),
    }
}

/// A reply with the given code. The bound address is always 0.0.0.0:0: clients of a
/// CONNECT ignore it, and the node's own addresses are none of the sandbox's business.
fn reply(code: u8) -> [u8; 10] {
    [VERSION, code, 0x00, 0x01, 0, 0, 0, 0, 0, 0]
}

fn code_of(e: &DialError) -> u8 {
    match e {
        DialError::Denied(_) => NOT_ALLOWED,
        DialError::Resolve(..) | DialError::ResolveTimeout(_) | DialError::NoAddress(_) => {
            HOST_UNREACHABLE
        }
        DialError::ConnectTimeout(_) => HOST_UNREACHABLE,
        DialError::Connect(_, io) => match io.kind() {
            io::ErrorKind::ConnectionRefused => CONNECTION_REFUSED,
            io::ErrorKind::NetworkUnreachable => NETWORK_UNREACHABLE,
            io::ErrorKind::HostUnreachable => HOST_UNREACHABLE,
            _ => GENERAL_FAILURE,
        },
    }
}
