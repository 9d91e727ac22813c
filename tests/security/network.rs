//! Network: with no allowlist the sandbox reaches nothing but its own loopback, whatever
//! the address family or notation. Targets are listeners this test creates on the host.

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::{report, require_isolation};

/// Asserts nothing connected to `listener`.
fn untouched(listener: &TcpListener) {
    listener.set_nonblocking(true).unwrap();
    match listener.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("the host listener saw a connection: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_listeners_are_unreachable_by_any_address_form() {
    require_isolation!();
    let v4 = TcpListener::bind("127.0.0.1:0").unwrap();
    let v6 = TcpListener::bind("[::1]:0").ok();
    let p4 = v4.local_addr().unwrap().port();
    let p6 = v6.as_ref().map_or(0, |l| l.local_addr().unwrap().port());
    let r = report(&format!(
        r#"
def connect(family, addr):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(2)
    s.connect(addr)
attempt("v4", lambda: connect(socket.AF_INET, ("127.0.0.1", {p4})))
attempt("v4_mapped", lambda: connect(socket.AF_INET6, ("::ffff:127.0.0.1", {p4})))
attempt("v6", lambda: connect(socket.AF_INET6, ("::1", {p6} or 1)))
attempt("outside_v4", lambda: connect(socket.AF_INET, ("192.0.2.1", 80)))
attempt("outside_v6", lambda: connect(socket.AF_INET6, ("2001:db8::1", 80)))
attempt("dns", lambda: socket.getaddrinfo("localhost.invalid", 80))
"#
    ))
    .await;
    r.refused("v4", &["ECONNREFUSED"]);
    r.refused("v4_mapped", &["ECONNREFUSED"]);
    r.refused("v6", &["ECONNREFUSED", "EADDRNOTAVAIL"]);
    // No route: the namespace has only `lo` (192.0.2.0/24 and 2001:db8::/32 are reserved
    // for documentation; nothing is sent anywhere).
    r.refused("outside_v4", &["ENETUNREACH"]);
    r.refused("outside_v6", &["ENETUNREACH"]);
    assert_ne!(r.get("dns"), "OK", "name resolution has nowhere to go");
    untouched(&v4);
    if let Some(v6) = &v6 {
        untouched(v6);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandbox_has_only_a_loopback_interface() {
    require_isolation!();
    let r = report(
        r#"
lines = open("/proc/net/dev").read().splitlines()[2:]
print("ifaces=" + ",".join(sorted(l.split(":")[0].strip() for l in lines)))
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1)
c = socket.create_connection(s.getsockname(), timeout=2)
print("loopback=OK")
"#,
    )
    .await;
    assert_eq!(r.get("ifaces"), "lo");
    assert_eq!(r.get("loopback"), "OK");
}

/// A loopback server on a thread: echoes what it reads, or answers one HTTP request with
/// `hello`. Runs until stopped (at most 30 s); `stop` returns how many connections it took.
struct Server {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<usize>,
}

impl Server {
    fn stop(self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

fn serve(listener: TcpListener, http: bool) -> Server {
    use std::io::{Read, Write};
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    listener.set_nonblocking(true).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    let thread = std::thread::spawn(move || {
        let mut accepted = 0;
        while std::time::Instant::now() < deadline && !stopped.load(Ordering::Relaxed) {
            let Ok((mut conn, _)) = listener.accept() else {
                std::thread::sleep(std::time::Duration::from_millis(5));
                continue;
            };
            accepted += 1;
            conn.set_nonblocking(false).unwrap();
            conn.set_read_timeout(Some(std::time::Duration::from_secs(5)))
                .unwrap();
            let mut buf = [0u8; 4096];
            let n = conn.read(&mut buf).unwrap_or(0);
            if http {
                let _ = conn.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
                );
            } else {
                let _ = conn.write_all(&buf[..n]);
            }
        }
        accepted
    });
    Server { stop, thread }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allowlist_lets_through_exactly_what_it_names() {
    require_isolation!();
    let allowed = TcpListener::bind("127.0.0.1:0").unwrap();
    let denied = TcpListener::bind("127.0.0.1:0").unwrap();
    let by_name = TcpListener::bind("127.0.0.1:0").unwrap();
    let web = TcpListener::bind("127.0.0.1:0").unwrap();
    let v6 = TcpListener::bind("[::1]:0").ok();
    let port = |l: &TcpListener| l.local_addr().unwrap().port();
    let (pa, pd, pn, pw) = (port(&allowed), port(&denied), port(&by_name), port(&web));
    let p6 = v6.as_ref().map_or(0, port);
    let mut allow = vec![
        format!("127.0.0.1:{pa}"),
        format!("localhost:{pn}"),
        format!("127.0.0.0/8:{pw}"),
    ];
    if v6.is_some() {
        allow.push(format!("[::1]:{p6}"));
    }
    let mut builder = crate::builder("standard");
    for entry in &allow {
        builder = builder.allow_net(entry.clone());
    }
    let sandbox = builder.build().unwrap();
    let denied_seen = serve(denied, false);
    let threads = [
        serve(allowed, false),
        serve(by_name, false),
        serve(web, true),
    ];
    let v6_thread = v6.map(|l| serve(l, false));
    let r = crate::Report::of(
        crate::attack_in(
            &sandbox,
            &format!(
                r#"
def read_head(s):
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(1024)
        if not chunk:
            break
        head += chunk
    return head
def connect(dest):
    s = socket.create_connection(("127.0.0.1", 3128), timeout=5)
    s.sendall(f"CONNECT {{dest}} HTTP/1.1\r\nHost: {{dest}}\r\n\r\n".encode())
    head = read_head(s)
    status = head.split(b" ")[1].decode() if head.count(b" ") else "EOF"
    if status != "200":
        return status
    s.sendall(b"ping")
    return "200:" + s.recv(16).decode()
def socks(host, port):
    s = socket.create_connection(("127.0.0.1", 3128), timeout=5)
    s.sendall(b"\x05\x01\x00")
    s.recv(2)
    name = host.encode()
    s.sendall(b"\x05\x01\x00\x03" + bytes([len(name)]) + name + port.to_bytes(2, "big"))
    reply = s.recv(10)
    if reply[1] != 0:
        return "refused:" + str(reply[1])
    s.sendall(b"ping")
    return "ok:" + s.recv(16).decode()
print("allowed=" + connect("127.0.0.1:{pa}"))
print("denied=" + connect("127.0.0.1:{pd}"))
print("mapped=" + connect("[::ffff:127.0.0.1]:{pa}"))
print("mapped_denied=" + connect("[::ffff:127.0.0.1]:{pd}"))
print("name=" + connect("localhost:{pn}"))
print("v6=" + (connect("[::1]:{p6}") if {p6} else "200:ping"))
print("socks=" + socks("127.0.0.1", {pa}))
print("socks_denied=" + socks("127.0.0.1", {pd}))
attempt("direct", lambda: socket.create_connection(("127.0.0.1", {pa}), timeout=2))
"#
            ),
        )
        .await,
    );
    assert_eq!(r.get("allowed"), "200:ping");
    assert_eq!(r.get("denied"), "403");
    assert_eq!(r.get("mapped"), "200:ping");
    assert_eq!(r.get("mapped_denied"), "403");
    assert_eq!(r.get("name"), "200:ping");
    assert_eq!(r.get("v6"), "200:ping");
    assert_eq!(r.get("socks"), "ok:ping");
    assert_eq!(r.get("socks_denied"), "refused:2");
    // Allowed destinations are reached only through the proxy.
    r.refused("direct", &["ECONNREFUSED"]);

    // An ordinary client honours the proxy variables the sandbox sets.
    let outcome = crate::shell_in(
        &sandbox,
        &format!("curl -s --max-time 5 http://127.0.0.1:{pw}/x; echo; curl -s --max-time 5 -o /dev/null -w '%{{http_code}}' http://127.0.0.1:{pd}/x"),
    )
    .await;
    let stdout = String::from_utf8_lossy(&outcome.stdout);
    assert_eq!(stdout, "hello\n403", "{outcome:?}");

    for server in threads.into_iter().chain(v6_thread) {
        server.stop();
    }
    assert_eq!(denied_seen.stop(), 0, "a denied destination was reached");
}
