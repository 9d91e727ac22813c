//! The egress allowlist: every entry form, the errors that name bad ones, and how names,
//! ports and IPv4-mapped addresses match. (The proxy that applies it: tests/egress.rs.)

use std::net::SocketAddr;

use neuroflow_sandbox::net::Allowlist;

// ---------------------------------------------------------------- allowlist parsing

fn list(entries: &[&str]) -> Allowlist {
    let entries: Vec<String> = entries.iter().map(|e| e.to_string()).collect();
    Allowlist::parse(&entries).unwrap_or_else(|e| panic!("{e}"))
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn every_entry_form_parses_and_displays_canonically() {
    let allow = list(&[
        "api.example.com:443",
        "*.Example.COM.:*",
        "1.2.3.4:443",
        "[2001:db8::1]:443",
        "10.0.0.0/8:443",
        "[fd00::/8]:443",
        "[::ffff:192.0.2.0/120]:80",
        " host:8000-8100 ",
    ]);
    assert!(!allow.is_empty());
    assert_eq!(
        allow.to_string(),
        "api.example.com:443, *.example.com:*, 1.2.3.4:443, [2001:db8::1]:443, \
         10.0.0.0/8:443, [fd00::/8]:443, 192.0.2.0/24:80, host:8000-8100"
    );
    let empty = list(&[]);
    assert!(empty.is_empty());
    assert_eq!(empty.to_string(), "(no egress)");
    assert!(!empty.permits_name("localhost", 80));
    assert!(!empty.permits_addr(sa("127.0.0.1:80")));
}

#[test]
fn bad_entries_are_named_with_the_reason() {
    let cases = [
        ("example.com", "expected host:port"),
        (":443", "expected host:port"),
        ("2001:db8::1:443", "expected host:port"),
        ("[2001:db8::1:443", "expected host:port"),
        ("example.com:0", "bad port \"0\""),
        ("example.com:70000", "bad port \"70000\""),
        ("example.com:90-80", "bad port \"90-80\""),
        ("example.com:+80", "bad port \"+80\""),
        ("example.com:", "bad port \"\""),
        ("[1.2.3.4]:443", "bad address \"1.2.3.4\""),
        ("[example.com]:443", "bad address"),
        ("300.1.2.3/8:443", "bad address"),
        ("10.0.0.1/8:443", "did you mean 10.0.0.0/8?"),
        ("[fd00::1/8]:443", "did you mean [fd00::/8]?"),
        ("10.0.0.0/33:443", "bad prefix length \"33\""),
        ("[fd00::/129]:443", "bad prefix length \"129\""),
        ("bücher.example:443", "non-ASCII"),
        ("exa mple.com:443", "bad host name"),
        ("-bad.example.com:443", "start or end with '-'"),
        ("a..example.com:443", "1 to 63 characters"),
        ("*:443", "bad host name"),
        ("*.*.example.com:443", "bad host name"),
        ("127.1:80", "last label starts with a digit"),
        ("0x7f000001:80", "last label starts with a digit"),
    ];
    for (entry, reason) in cases {
        let entries = vec!["ok.example.com:443".to_string(), entry.to_string()];
        let err = Allowlist::parse(&entries).expect_err(entry);
        assert_eq!(err.entry, entry);
        let text = err.to_string();
        assert!(text.contains(&format!("{entry:?}")), "{text}");
        assert!(text.contains(reason), "{entry}: {text} lacks {reason:?}");
    }
}

#[test]
fn names_match_case_insensitively_and_wildcards_only_subdomains() {
    let allow = list(&["Api.Example.com.:443", "*.svc.example.org:*"]);
    assert!(allow.permits_name("api.example.com", 443));
    assert!(allow.permits_name("API.EXAMPLE.COM.", 443));
    assert!(!allow.permits_name("api.example.com", 80));
    assert!(!allow.permits_name("x.api.example.com", 443));
    assert!(!allow.permits_name("bücher.example.com", 443));
    assert!(!allow.permits_name("", 443));

    assert!(allow.permits_name("a.svc.example.org", 1));
    assert!(allow.permits_name("a.b.SVC.example.org.", 65535));
    assert!(
        !allow.permits_name("svc.example.org", 443),
        "the apex is not a subdomain"
    );
    assert!(!allow.permits_name("evilsvc.example.org", 443));
    assert!(!allow.permits_name("svc.example.org.evil.net", 443));
    // A name entry never admits an address, whatever the name resolves to.
    assert!(!allow.permits_addr(sa("127.0.0.1:443")));
}

#[test]
fn port_ranges_are_inclusive() {
    let allow = list(&["example.com:8000-8100", "10.0.0.0/8:*"]);
    for (port, ok) in [
        (7999, false),
        (8000, true),
        (8050, true),
        (8100, true),
        (8101, false),
    ] {
        assert_eq!(allow.permits_name("example.com", port), ok, "port {port}");
    }
    assert!(allow.permits_addr(sa("10.9.8.7:1")));
    assert!(allow.permits_addr(sa("10.9.8.7:65535")));
    assert!(!allow.permits_addr(sa("11.0.0.1:80")));
}

#[test]
fn ipv4_mapped_addresses_are_their_ipv4_selves() {
    let v4 = list(&["127.0.0.1:80", "10.0.0.0/8:*"]);
    assert!(v4.permits_addr(sa("[::ffff:127.0.0.1]:80")));
    assert!(!v4.permits_addr(sa("[::ffff:127.0.0.1]:81")));
    assert!(v4.permits_addr(sa("[::ffff:10.1.2.3]:5")));
    assert!(!v4.permits_addr(sa("[::ffff:11.1.2.3]:5")));
    assert!(
        v4.permits_name("[::ffff:127.0.0.1]", 80),
        "literal names are addresses"
    );

    let mapped = list(&["[::ffff:10.0.0.1]:443", "[::ffff:192.168.0.0/112]:*"]);
    assert_eq!(mapped.to_string(), "10.0.0.1:443, 192.168.0.0/16:*");
    assert!(mapped.permits_addr(sa("10.0.0.1:443")));
    assert!(mapped.permits_addr(sa("[::ffff:10.0.0.1]:443")));
    assert!(mapped.permits_addr(sa("192.168.3.4:22")));
    assert!(!mapped.permits_addr(sa("10.0.0.2:443")));

    // An IPv6 network is about IPv6: the mapped range is IPv4 space.
    let v6 = list(&["[::/0]:*"]);
    assert!(v6.permits_addr(sa("[2001:db8::1]:443")));
    assert!(!v6.permits_addr(sa("[::ffff:1.2.3.4]:443")));
    assert!(!v6.permits_addr(sa("1.2.3.4:443")));

    // The unspecified addresses reach the node's own loopback: never a destination.
    let all = list(&["0.0.0.0/0:*", "[::/0]:*"]);
    assert!(all.permits_addr(sa("192.0.2.1:80")));
    assert!(!all.permits_addr(sa("0.0.0.0:80")));
    assert!(!all.permits_addr(sa("[::]:80")));
    assert!(!all.permits_addr(sa("[::ffff:0.0.0.0]:80")));
}
