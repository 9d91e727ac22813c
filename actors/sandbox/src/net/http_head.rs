//! Parsing one HTTP proxy request head: the request line and a filter over the header
//! lines. Hand-written: the proxy needs only these, which no small crate does exactly,
//! and every byte comes from untrusted code, so it is kept short enough to check by
//! reading. Nothing here can panic on any input: no indexing past checked bounds.

use super::upstream::Destination;

/// What the request asks of the proxy.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Request {
    /// Tunnel to the destination after a 200.
    Connect(Destination),
    /// Send this head (origin-form) to the destination, then splice.
    Forward(Destination, Vec<u8>),
}

/// Parses one request head (ending with its blank line).
pub(crate) fn parse_head(head: &[u8]) -> Result<Request, &'static str> {
    let mut lines = head
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let line = lines.next().ok_or("empty request")?;
    if !line.iter().all(|&b| b.is_ascii_graphic() || b == b' ') {
        return Err("request line is not printable ASCII");
    }
    let line = std::str::from_utf8(line).map_err(|_| "request line is not ASCII")?;
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("malformed request line");
    };
    if method.is_empty() || !method.bytes().all(is_token) {
        return Err("malformed method");
    }
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return Err("only HTTP/1.0 and HTTP/1.1 are spoken here");
    }
    if method == "CONNECT" {
        return Ok(Request::Connect(parse_authority(target, None)?));
    }
    let (authority, path) = split_absolute(target)?;
    let dest = parse_authority(authority, Some(80))?;
    let mut out = Vec::with_capacity(head.len() + 64);
    out.extend_from_slice(format!("{method} {path} {version}\r\nHost: {authority}\r\n").as_bytes());
    for header in lines.take_while(|l| !l.is_empty()) {
        if header[0] == b' ' || header[0] == b'\t' {
            return Err("folded header lines are not accepted");
        }
        let colon = header
            .iter()
            .position(|&b| b == b':')
            .ok_or("header without ':'")?;
        let name = &header[..colon];
        if name.is_empty() || !name.iter().copied().all(is_token) {
            return Err("malformed header name");
        }
        if header[colon + 1..]
            .iter()
            .any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f)
        {
            return Err("control character in a header value");
        }
        let lower = name.to_ascii_lowercase();
        // Proxy-* are for this hop; Host and Connection are written above and below.
        let drop = lower.starts_with(b"proxy-")
            || [&b"host"[..], b"connection", b"keep-alive"].contains(&lower.as_slice());
        if !drop {
            out.extend_from_slice(header);
            out.extend_from_slice(b"\r\n");
        }
    }
    out.extend_from_slice(b"Connection: close\r\n\r\n");
    Ok(Request::Forward(dest, out))
}

/// `http://authority/path?query` → (authority, origin-form path).
fn split_absolute(target: &str) -> Result<(&str, String), &'static str> {
    let scheme_end = target
        .find("://")
        .ok_or("the proxy needs an absolute http:// URL")?;
    if !target[..scheme_end].eq_ignore_ascii_case("http") {
        return Err("only http:// URLs are forwarded (use CONNECT for https)");
    }
    let rest = &target[scheme_end + 3..];
    let rest = rest.split_once('#').map_or(rest, |(r, _)| r);
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(split);
    if authority.contains('@') {
        return Err("user information in the URL is not accepted");
    }
    let path = match path.as_bytes().first() {
        None => "/".to_string(),
        Some(b'?') => format!("/{path}"),
        Some(_) => path.to_string(),
    };
    Ok((authority, path))
}

/// `host:port`, `[v6]:port` (or without the port when there is a default).
pub(crate) fn parse_authority(
    s: &str,
    default_port: Option<u16>,
) -> Result<Destination, &'static str> {
    let (host, port) = match s.strip_prefix('[') {
        Some(rest) => {
            let close = rest.find(']').ok_or("malformed IPv6 address")?;
            let (host, after) = s.split_at(close + 2);
            match after {
                "" => (host, None),
                _ => (
                    host,
                    Some(after.strip_prefix(':').ok_or("malformed authority")?),
                ),
            }
        }
        None => match s.rsplit_once(':') {
            Some((h, _)) if h.contains(':') => return Err("IPv6 addresses need brackets"),
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        },
    };
    let port = match port {
        Some(p) if !p.is_empty() => {
            if !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err("malformed port");
            }
            p.parse::<u16>().map_err(|_| "malformed port")?
        }
        _ => default_port.ok_or("a port is needed")?,
    };
    if host.is_empty() {
        return Err("empty host");
    }
    Destination::new(host, port)
}

fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forwarded(head: &str) -> String {
        match parse_head(head.as_bytes()).unwrap() {
            Request::Forward(_, out) => String::from_utf8(out).unwrap(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn absolute_targets_become_origin_form() {
        let out = forwarded("GET HTTP://example.com?x=1#frag HTTP/1.0\nHost: other\nA: b\n\n");
        assert_eq!(
            out,
            "GET /?x=1 HTTP/1.0\r\nHost: example.com\r\nA: b\r\nConnection: close\r\n\r\n"
        );
        let out = forwarded("POST http://[::1]:8080 HTTP/1.1\r\nConnection: keep-alive\r\n\r\n");
        assert!(
            out.starts_with("POST / HTTP/1.1\r\nHost: [::1]:8080\r\n"),
            "{out}"
        );
        assert_eq!(out.matches("Connection").count(), 1, "{out}");
    }

    #[test]
    fn authorities_need_a_port_only_without_a_default() {
        let d = parse_authority("example.com:8443", None).unwrap();
        assert_eq!(d.to_string(), "example.com:8443");
        assert_eq!(parse_authority("example.com", Some(80)).unwrap().port, 80);
        assert_eq!(
            parse_authority("[::1]", Some(80)).unwrap().to_string(),
            "[::1]:80"
        );
        for bad in [
            "example.com",
            "example.com:",
            "[::1]",
            "[::1]x:1",
            "h:-1",
            "h: 1",
            ":80",
        ] {
            assert!(parse_authority(bad, None).is_err(), "{bad}");
        }
    }
}
