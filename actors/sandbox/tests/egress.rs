//! The egress allowlist and the node-side proxy, end to end over its Unix socket.
//!
//! Every upstream here is a listener this test binds on loopback; no test resolves or
//! connects to anything else (denials of other destinations are decided without DNS or
//! a connection). Every wait is bounded.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use neuroflow_sandbox::net::{Allowlist, EgressProxy, ProxyLimits, ProxyStats};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UnixStream};
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------- test fixtures

fn list(entries: &[&str]) -> Allowlist {
    let entries: Vec<String> = entries.iter().map(|e| e.to_string()).collect();
    Allowlist::parse(&entries).unwrap_or_else(|e| panic!("{e}"))
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// A private directory for one proxy's socket, removed on drop.
struct Dir(PathBuf);

impl Dir {
    fn new() -> Dir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("nf-egress-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Dir(dir)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Proxy {
    proxy: EgressProxy,
    _dir: Dir,
}

impl Proxy {
    fn start(entries: &[&str]) -> Proxy {
        Self::with_limits(entries, ProxyLimits::default())
    }

    fn with_limits(entries: &[&str], limits: ProxyLimits) -> Proxy {
        let dir = Dir::new();
        let path = dir.0.join("egress.sock");
        let proxy = EgressProxy::start_with(&path, Arc::new(list(entries)), limits).unwrap();
        Proxy { proxy, _dir: dir }
    }

    async fn connect(&self) -> UnixStream {
        within(UnixStream::connect(self.proxy.socket_path()))
            .await
            .unwrap()
    }

    fn stats(&self) -> ProxyStats {
        self.proxy.stats()
    }
}

async fn within<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(WAIT, f).await.expect("timed out")
}

/// A loopback echo server that counts the connections it accepts.
struct Echo {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
}

async fn echo(ip: IpAddr) -> Option<Echo> {
    let listener = TcpListener::bind((ip, 0)).await.ok()?;
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        for _ in 0..64 {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::time::timeout(WAIT, tokio::io::copy(&mut r, &mut w)).await;
            });
        }
    });
    Some(Echo { addr, accepted })
}

async fn echo4() -> Echo {
    echo(Ipv4Addr::LOCALHOST.into())
        .await
        .expect("bind 127.0.0.1")
}

/// Sends a line through `s` and expects it back.
async fn assert_echoes(s: &mut UnixStream) {
    s.write_all(b"ping through the proxy\n").await.unwrap();
    let mut back = [0u8; 23];
    within(s.read_exact(&mut back)).await.unwrap();
    assert_eq!(&back, b"ping through the proxy\n");
}

/// Reads a response head (through its blank line), at most 4 KiB.
async fn read_head(s: &mut UnixStream) -> String {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") && head.len() < 4096 {
        let mut b = [0u8; 1];
        match within(s.read(&mut b)).await {
            Ok(1) => head.push(b[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// Reads until the proxy closes (EOF or reset), at most 64 KiB.
async fn read_all(s: &mut UnixStream) -> Vec<u8> {
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    while all.len() < 65536 {
        match within(s.read(&mut buf)).await {
            Ok(0) | Err(_) => return all,
            Ok(n) => all.extend_from_slice(&buf[..n]),
        }
    }
    panic!("the proxy did not close the connection");
}

async fn read_to_close(s: &mut UnixStream) -> String {
    String::from_utf8_lossy(&read_all(s).await).into_owned()
}

async fn http_connect(proxy: &Proxy, target: &str) -> (UnixStream, String) {
    let mut s = proxy.connect().await;
    let req = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let head = read_head(&mut s).await;
    (s, head)
}

const OK_200: &str = "HTTP/1.1 200 Connection established\r\n\r\n";

enum Socks<'a> {
    Addr(SocketAddr),
    Name(&'a str, u16),
}

/// A no-auth SOCKS5 CONNECT; returns the stream and the reply code.
async fn socks(proxy: &Proxy, to: Socks<'_>) -> (UnixStream, u8) {
    let mut s = proxy.connect().await;
    s.write_all(&[5, 1, 0]).await.unwrap();
    let mut choice = [0u8; 2];
    within(s.read_exact(&mut choice)).await.unwrap();
    assert_eq!(choice, [5, 0]);
    let mut req = vec![5, 1, 0];
    let port = match to {
        Socks::Addr(SocketAddr::V4(a)) => {
            req.push(1);
            req.extend_from_slice(&a.ip().octets());
            a.port()
        }
        Socks::Addr(SocketAddr::V6(a)) => {
            req.push(4);
            req.extend_from_slice(&a.ip().octets());
            a.port()
        }
        Socks::Name(name, port) => {
            req.push(3);
            req.push(name.len() as u8);
            req.extend_from_slice(name.as_bytes());
            port
        }
    };
    req.extend_from_slice(&port.to_be_bytes());
    s.write_all(&req).await.unwrap();
    let mut reply = [0u8; 10];
    within(s.read_exact(&mut reply)).await.unwrap();
    assert_eq!(reply[0], 5);
    (s, reply[1])
}

fn stats(allowed: u64, denied: u64, failed: u64, refused_busy: u64) -> ProxyStats {
    ProxyStats {
        allowed,
        denied,
        failed,
        refused_busy,
    }
}

// ---------------------------------------------------------------- HTTP CONNECT

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_reaches_the_allowed_port_and_nothing_else() {
    let (open, closed) = (echo4().await, echo4().await);
    let p = Proxy::start(&[&format!("127.0.0.1:{}", open.addr.port())]);
    let mode = std::fs::metadata(p.proxy.socket_path())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o666);

    let (mut s, head) = http_connect(&p, &open.addr.to_string()).await;
    assert_eq!(head, OK_200);
    assert_echoes(&mut s).await;

    // Bytes sent right behind the request (before the 200) reach the upstream too.
    let mut s = p.connect().await;
    let req = format!("CONNECT {} HTTP/1.1\r\n\r\nearly bytes", open.addr);
    s.write_all(req.as_bytes()).await.unwrap();
    assert_eq!(read_head(&mut s).await, OK_200);
    let mut back = [0u8; 11];
    within(s.read_exact(&mut back)).await.unwrap();
    assert_eq!(&back, b"early bytes");

    let (mut s, head) = http_connect(&p, &closed.addr.to_string()).await;
    assert!(head.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{head}");
    let body = read_to_close(&mut s).await;
    assert!(body.contains(&closed.addr.to_string()), "{body}");
    assert!(
        body.contains("not in this sandbox's egress allowlist"),
        "{body}"
    );
    assert_eq!(
        closed.accepted.load(Ordering::SeqCst),
        0,
        "a denied upstream saw a connection"
    );
    assert_eq!(open.accepted.load(Ordering::SeqCst), 2);
    assert_eq!(p.stats(), stats(2, 1, 0, 0));
}

#[tokio::test]
async fn an_allowed_port_with_nothing_listening_is_a_bad_gateway() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let p = Proxy::start(&[&format!("127.0.0.1:{port}")]);
    let (mut s, head) = http_connect(&p, &format!("127.0.0.1:{port}")).await;
    assert!(head.starts_with("HTTP/1.1 502 Bad Gateway\r\n"), "{head}");
    assert!(
        read_to_close(&mut s)
            .await
            .contains("cannot connect to 127.0.0.1:")
    );
    let (_s, code) = socks(&p, Socks::Addr(sa(&format!("127.0.0.1:{port}")))).await;
    assert_eq!(code, 0x05, "connection refused");
    assert_eq!(p.stats(), stats(0, 0, 2, 0));
}

// ---------------------------------------------------------------- SOCKS5

#[tokio::test]
async fn socks5_connects_by_ipv4_ipv6_and_name_and_refuses_the_rest() {
    let (e4, other) = (echo4().await, echo4().await);
    let e6 = echo(Ipv6Addr::LOCALHOST.into()).await;
    let p4 = e4.addr.port();
    let mut entries = vec![format!("127.0.0.1:{p4}"), format!("localhost:{p4}")];
    if let Some(e6) = &e6 {
        entries.push(format!("[::1]:{}", e6.addr.port()));
    }
    let p = Proxy::start(&entries.iter().map(String::as_str).collect::<Vec<_>>());
    let mut expected = stats(0, 0, 0, 0);

    let (mut s, code) = socks(&p, Socks::Addr(e4.addr)).await;
    assert_eq!(code, 0x00);
    assert_echoes(&mut s).await;
    expected.allowed += 1;

    match &e6 {
        Some(e6) => {
            let (mut s, code) = socks(&p, Socks::Addr(e6.addr)).await;
            assert_eq!(code, 0x00);
            assert_echoes(&mut s).await;
            expected.allowed += 1;
        }
        None => println!("skipping the IPv6 part: cannot bind [::1] on this host"),
    }

    let (mut s, code) = socks(&p, Socks::Name("localhost", p4)).await;
    assert_eq!(code, 0x00);
    assert_echoes(&mut s).await;
    expected.allowed += 1;

    for to in [
        Socks::Addr(other.addr),
        Socks::Name("localhost", other.addr.port()),
    ] {
        let (_s, code) = socks(&p, to).await;
        assert_eq!(code, 0x02, "connection not allowed by ruleset");
        expected.denied += 1;
    }
    assert_eq!(other.accepted.load(Ordering::SeqCst), 0);

    // BIND is not offered.
    let mut s = p.connect().await;
    s.write_all(&[5, 1, 0, 5, 2, 0, 1, 127, 0, 0, 1, 0, 80])
        .await
        .unwrap();
    let mut reply = [0u8; 12];
    within(s.read_exact(&mut reply)).await.unwrap();
    assert_eq!(&reply[..4], &[5, 0, 5, 0x07]);
    expected.failed += 1;

    // Only "no authentication" is accepted.
    let mut s = p.connect().await;
    s.write_all(&[5, 1, 2]).await.unwrap();
    assert_eq!(read_all(&mut s).await, [5, 0xff]);
    expected.failed += 1;

    assert_eq!(p.stats(), expected);
}

#[tokio::test]
async fn a_name_without_a_name_entry_needs_every_address_permitted() {
    let e4 = echo4().await;
    let port = e4.addr.port();
    let resolved: Vec<SocketAddr> = tokio::net::lookup_host(("localhost", port))
        .await
        .unwrap()
        .collect();
    let only_v4 = resolved
        .iter()
        .all(|a| a.ip() == IpAddr::from(Ipv4Addr::LOCALHOST));
    println!("localhost resolves to {resolved:?}");

    let p = Proxy::start(&[&format!("127.0.0.1:{port}")]);
    let (mut s, code) = socks(&p, Socks::Name("localhost", port)).await;
    if only_v4 {
        assert_eq!(code, 0x00);
        assert_echoes(&mut s).await;
    } else {
        assert_eq!(code, 0x02, "an address of localhost is not permitted");
    }

    // With the IPv6 loopback permitted too, every address passes.
    let p = Proxy::start(&[&format!("127.0.0.0/8:{port}"), &format!("[::1]:{port}")]);
    let (mut s, code) = socks(&p, Socks::Name("localhost", port)).await;
    assert_eq!(code, 0x00);
    assert_echoes(&mut s).await;
}

// ---------------------------------------------------------------- absolute form

/// A loopback HTTP responder: sends each request head it receives to the returned channel
/// and answers `hello`.
async fn responder() -> (SocketAddr, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::channel(8);
    tokio::spawn(async move {
        for _ in 0..8 {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16384 {
                match tokio::time::timeout(WAIT, s.read(&mut buf)).await {
                    Ok(Ok(n)) if n > 0 => head.extend_from_slice(&buf[..n]),
                    _ => break,
                }
            }
            let _ = tx.send(String::from_utf8_lossy(&head).into_owned()).await;
            let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello";
            let _ = s.write_all(answer).await;
        }
    });
    (addr, rx)
}

#[tokio::test]
async fn absolute_form_is_forwarded_in_origin_form_without_proxy_headers() {
    let (addr, mut heads) = responder().await;
    let p = Proxy::start(&[&format!("127.0.0.1:{}", addr.port())]);
    let mut s = p.connect().await;
    let req = format!(
        "GET http://{addr}/path?q=1 HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: egress-test\r\n\
         Proxy-Authorization: Basic dXNlcjpzZWNyZXQ=\r\nProxy-Connection: Keep-Alive\r\n\
         Accept: */*\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let response = read_to_close(&mut s).await;
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    assert!(response.ends_with("hello"), "{response}");

    let head = within(heads.recv()).await.unwrap();
    assert!(head.starts_with("GET /path?q=1 HTTP/1.1\r\n"), "{head}");
    assert!(head.contains(&format!("\r\nHost: {addr}\r\n")), "{head}");
    assert!(head.contains("\r\nUser-Agent: egress-test\r\n"), "{head}");
    assert!(head.contains("\r\nAccept: */*\r\n"), "{head}");
    assert!(!head.to_ascii_lowercase().contains("proxy-"), "{head}");
    assert!(head.ends_with("\r\n\r\n"));

    // No port means 80, which is not allowed here: denied without connecting anywhere.
    let mut s = p.connect().await;
    s.write_all(b"GET http://127.0.0.1/ HTTP/1.1\r\n\r\n")
        .await
        .unwrap();
    let response = read_to_close(&mut s).await;
    assert!(response.starts_with("HTTP/1.1 403 "), "{response}");
    assert!(response.contains("127.0.0.1:80 is not in"), "{response}");
    assert_eq!(p.stats(), stats(1, 1, 0, 0));
}

// ---------------------------------------------------------------- address forms

#[tokio::test]
async fn ipv4_mapped_requests_follow_the_ipv4_entries() {
    let e4 = echo4().await;
    let port = e4.addr.port();
    let mapped = format!("[::ffff:127.0.0.1]:{port}");

    let p = Proxy::start(&[&format!("127.0.0.1:{port}")]);
    let (mut s, head) = http_connect(&p, &mapped).await;
    assert_eq!(head, OK_200);
    assert_echoes(&mut s).await;
    let (mut s, code) = socks(&p, Socks::Addr(sa(&mapped))).await;
    assert_eq!(code, 0x00);
    assert_echoes(&mut s).await;

    let p = Proxy::start(&[&format!("127.0.0.1:{}", port.wrapping_add(1).max(1))]);
    let (_s, head) = http_connect(&p, &mapped).await;
    assert!(head.starts_with("HTTP/1.1 403 "), "{head}");
    let (_s, code) = socks(&p, Socks::Addr(sa(&mapped))).await;
    assert_eq!(code, 0x02);
    assert_eq!(p.stats(), stats(0, 2, 0, 0));
}

#[tokio::test]
async fn a_cidr_entry_with_any_port_admits_its_network_only() {
    let e4 = echo4().await;
    let p = Proxy::start(&["127.0.0.0/8:*"]);
    let (mut s, head) = http_connect(&p, &e4.addr.to_string()).await;
    assert_eq!(head, OK_200);
    assert_echoes(&mut s).await;
    let (mut s, code) = socks(&p, Socks::Addr(e4.addr)).await;
    assert_eq!(code, 0x00);
    assert_echoes(&mut s).await;
    let (_s, head) = http_connect(&p, "[::1]:80").await;
    assert!(head.starts_with("HTTP/1.1 403 "), "{head}");
    assert_eq!(p.stats(), stats(2, 1, 0, 0));
}

#[tokio::test]
async fn a_name_entry_admits_the_name_not_its_address() {
    let e4 = echo4().await;
    let port = e4.addr.port();
    let p = Proxy::start(&[&format!("localhost:{port}")]);
    for name in ["localhost", "LocalHost."] {
        let (mut s, head) = http_connect(&p, &format!("{name}:{port}")).await;
        assert_eq!(head, OK_200, "{name}");
        assert_echoes(&mut s).await;
    }
    for target in [
        e4.addr.to_string(),
        format!("localhost:{}", port.wrapping_add(1).max(1)),
    ] {
        let (_s, head) = http_connect(&p, &target).await;
        assert!(head.starts_with("HTTP/1.1 403 "), "{target}: {head}");
    }
    assert_eq!(p.stats(), stats(2, 2, 0, 0));
}

// ---------------------------------------------------------------- hostile clients

#[tokio::test]
async fn an_oversized_head_is_refused_and_closed() {
    let p = Proxy::start(&["localhost:80"]);
    let mut s = p.connect().await;
    let mut req = b"GET http://localhost/ HTTP/1.1\r\n".to_vec();
    req.extend(std::iter::repeat_n(b'a', 20 * 1024));
    s.write_all(&req).await.unwrap();
    let response = read_to_close(&mut s).await;
    assert!(response.starts_with("HTTP/1.1 431 "), "{response}");
    assert_eq!(p.stats(), stats(0, 0, 1, 0));
}

#[tokio::test]
async fn garbage_gets_a_bad_request_and_never_a_panic() {
    let e4 = echo4().await;
    let port = e4.addr.port();
    // A name entry only: a random request can be decided without DNS or a connection.
    let p = Proxy::start(&[&format!("localhost:{port}")]);
    let mut bad_http: Vec<Vec<u8>> = [
        &b"\x00\x01\x02\xff\r\n\r\n"[..],
        b"hello\r\n\r\n",
        b"",
        b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
        b"GET https://localhost/ HTTP/1.1\r\n\r\n",
        b"GET http://user@localhost/ HTTP/1.1\r\n\r\n",
        b"GET http://localhost:99999/ HTTP/1.1\r\n\r\n",
        b"GET http://[::1/ HTTP/1.1\r\n\r\n",
        b"GET http://::1/ HTTP/1.1\r\n\r\n",
        b"GET http://bu\xcc\x88cher/ HTTP/1.1\r\n\r\n",
        b"GET http://localhost/\rX: y HTTP/1.1\r\n\r\n",
        b"GET http://localhost/ HTTP/2\r\n\r\n",
        b"GET http://localhost/ HTTP/1.1\r\nno colon\r\n\r\n",
        b"GET http://localhost/ HTTP/1.1\r\nA: b\r\n folded\r\n\r\n",
        b"GET http://localhost/ HTTP/1.1\r\nA: b\x00c\r\n\r\n",
        b"CONNECT localhost HTTP/1.1\r\n\r\n",
        b"CONNECT localhost:0 HTTP/1.1\r\n\r\n",
        b"CONNECT a:b:c HTTP/1.1\r\n\r\n",
        b"CONNECT  localhost:80 HTTP/1.1\r\n\r\n",
        b"GET http://localhost/ HTTP/1.1", // cut short
    ]
    .iter()
    .map(|b| b.to_vec())
    .collect();
    // Deterministic pseudo-random bytes, steered away from SOCKS (0x05).
    let mut x: u32 = 0x2545_f491;
    for len in [1usize, 7, 64, 300, 2000] {
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                (x >> 24) as u8
            })
            .collect();
        let mut bytes = bytes;
        if bytes[0] == 5 {
            bytes[0] = b'G';
        }
        bad_http.push(bytes);
    }
    let mut expected = stats(0, 0, 0, 0);
    for bytes in &bad_http {
        let mut s = p.connect().await;
        s.write_all(bytes).await.unwrap();
        s.shutdown().await.unwrap();
        let response = read_to_close(&mut s).await;
        expected.failed += 1;
        if !bytes.is_empty() {
            assert!(
                response.starts_with("HTTP/1.1 400 Bad Request\r\n"),
                "{:?} → {response:?}",
                String::from_utf8_lossy(bytes)
            );
        }
    }
    assert_eq!(p.stats(), expected);

    // Broken SOCKS: cut short anywhere, odd fields. The proxy answers or closes.
    let socks_garbage: [&[u8]; 7] = [
        &[5],
        &[5, 0],
        &[5, 1, 0, 4, 1, 0],
        &[5, 1, 0, 5, 1, 0, 9, 1, 2, 3, 4],
        &[5, 1, 0, 5, 1, 0, 3, 0, 0, 80],
        &[5, 1, 0, 5, 1, 0, 3, 3, 0xff, 0xfe, 0xfd, 0, 80],
        &[5, 255],
    ];
    for bytes in socks_garbage {
        let mut s = p.connect().await;
        s.write_all(bytes).await.unwrap();
        s.shutdown().await.unwrap();
        let _ = read_all(&mut s).await;
        expected.failed += 1;
    }
    assert_eq!(p.stats(), expected);

    // And it still serves well-formed clients.
    let (mut s, head) = http_connect(&p, &format!("localhost:{port}")).await;
    assert_eq!(head, OK_200);
    assert_echoes(&mut s).await;
}

#[tokio::test]
async fn slow_clients_time_out() {
    let limits = ProxyLimits {
        head_timeout: Duration::from_millis(200),
        ..ProxyLimits::default()
    };
    let p = Proxy::with_limits(&["localhost:80"], limits);
    let mut s = p.connect().await;
    s.write_all(b"GET http://local").await.unwrap();
    let response = read_to_close(&mut s).await;
    assert!(response.starts_with("HTTP/1.1 408 "), "{response}");
    let mut s = p.connect().await;
    s.write_all(&[5, 1, 0]).await.unwrap();
    assert_eq!(read_all(&mut s).await, [5, 0]);
    let mut s = p.connect().await; // silent
    assert_eq!(read_to_close(&mut s).await, "");
    assert_eq!(p.stats(), stats(0, 0, 3, 0));
}

#[tokio::test]
async fn connections_past_the_limit_are_refused_and_counted() {
    let e4 = echo4().await;
    let limits = ProxyLimits {
        max_connections: 1,
        ..ProxyLimits::default()
    };
    let p = Proxy::with_limits(&[&format!("127.0.0.1:{}", e4.addr.port())], limits);
    let (mut first, head) = http_connect(&p, &e4.addr.to_string()).await;
    assert_eq!(head, OK_200);
    let mut second = p.connect().await;
    assert_eq!(read_to_close(&mut second).await, "", "closed on arrival");
    assert_echoes(&mut first).await;
    assert_eq!(p.stats(), stats(1, 0, 0, 1));
}

// ---------------------------------------------------------------- lifecycle

#[tokio::test]
async fn dropping_the_proxy_closes_everything_and_removes_the_socket() {
    let e4 = echo4().await;
    let p = Proxy::start(&[&format!("127.0.0.1:{}", e4.addr.port())]);
    let path: PathBuf = p.proxy.socket_path().to_path_buf();
    let (mut tunnel, head) = http_connect(&p, &e4.addr.to_string()).await;
    assert_eq!(head, OK_200);
    let Proxy { proxy, _dir: dir } = p;
    drop(proxy);
    assert!(!path.exists(), "socket file removed");
    assert!(UnixStream::connect(&path).await.is_err());
    assert_eq!(read_to_close(&mut tunnel).await, "", "open tunnels end");
    drop(dir);
}

#[test]
fn starting_outside_a_runtime_is_an_error_not_a_panic() {
    let dir = Dir::new();
    let err = EgressProxy::start(&dir.0.join("s"), Arc::new(list(&[])))
        .err()
        .unwrap();
    assert!(err.to_string().contains("tokio runtime"), "{err}");
    assert!(!Path::new(&dir.0.join("s")).exists());
}
