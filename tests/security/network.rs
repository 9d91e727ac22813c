//! Network: with no allowlist the sandbox reaches nothing but its own loopback, whatever
//! the address family or notation. Targets are listeners this test creates on the host.

use std::net::TcpListener;

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
