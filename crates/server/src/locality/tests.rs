use super::*;

fn uri(s: &str) -> Uri {
    Uri::parse(s).unwrap()
}

/// `example.test` on TLS 0.0.0.0:5061 (the config `sotto init` writes) and UDP 0.0.0.0:5060,
/// on a machine with one LAN address.
fn wildcard() -> Locality {
    let l = Locality::new(
        vec!["Example.Test".into()],
        vec![
            (TransportKind::Tls, "0.0.0.0:5061".parse().unwrap()),
            (TransportKind::Udp, "0.0.0.0:5060".parse().unwrap()),
        ],
    );
    l.set_interfaces(vec![
        "127.0.0.1".parse().unwrap(),
        "192.0.2.10".parse().unwrap(),
    ]);
    l
}

#[test]
fn a_wildcard_listener_stands_for_every_interface_address() {
    let l = wildcard();
    // Linphone's usual route: the server's address, which a 0.0.0.0 listener must own.
    assert!(l.is_self(&uri("sip:127.0.0.1:5061;transport=tls;lr")));
    assert!(l.is_self(&uri("sip:192.0.2.10:5061;transport=tls;lr")));
    assert!(
        l.is_self(&uri("sips:127.0.0.2:5061;lr")),
        "all of 127/8 is loopback"
    );
    assert!(l.is_self(&uri("sip:example.test;lr")));
    assert!(l.is_self(&uri("sip:EXAMPLE.test:5060")));
    // The URI's default port: 5061 for TLS, 5060 otherwise.
    assert!(l.is_self(&uri("sips:192.0.2.10;lr")));
    assert!(l.is_self(&uri("sip:192.0.2.10;lr")));
    // Other ports, other addresses: not us.
    assert!(!l.is_self(&uri("sip:127.0.0.1:5071;transport=tls")));
    assert!(!l.is_self(&uri("sip:192.0.2.11:5061;transport=tls")));
    assert!(!l.is_self(&uri("sip:other.test;lr")));
    assert!(!l.is_self(&uri("sip:example.test:5070")));
    assert!(l.is_local_host("192.0.2.10"));
    assert!(!l.is_local_host("[::1]"), "no IPv6 listener");
    // Sending to ourselves is recognised, per transport.
    assert!(l.is_own_address(TransportKind::Tls, "127.0.0.1:5061".parse().unwrap()));
    assert!(!l.is_own_address(TransportKind::Tls, "127.0.0.1:5060".parse().unwrap()));
    assert!(!l.is_own_address(TransportKind::Tcp, "127.0.0.1:5061".parse().unwrap()));
    // Interfaces change.
    l.set_interfaces(vec!["198.51.100.7".parse().unwrap()]);
    assert!(!l.is_self(&uri("sip:192.0.2.10:5061;transport=tls")));
    assert!(l.is_self(&uri("sip:198.51.100.7:5061;transport=tls")));
}

#[test]
fn an_explicit_listener_is_only_its_own_address() {
    let l = Locality::new(
        vec!["example.test".into()],
        vec![(TransportKind::Tls, "127.0.0.1:5061".parse().unwrap())],
    );
    l.set_interfaces(vec!["192.0.2.10".parse().unwrap()]);
    assert!(l.is_self(&uri("sip:127.0.0.1:5061;transport=tls")));
    assert!(!l.is_self(&uri("sip:127.0.0.2:5061;transport=tls")));
    assert!(!l.is_self(&uri("sip:192.0.2.10:5061;transport=tls")));
}

#[test]
fn ipv6_wildcard_takes_both_families() {
    let l = Locality::new(
        vec!["example.test".into()],
        vec![(TransportKind::Tls, "[::]:5061".parse().unwrap())],
    );
    l.set_interfaces(vec!["2001:db8::5".parse().unwrap()]);
    assert!(l.is_self(&uri("sips:[2001:db8::5]")));
    assert!(l.is_self(&uri("sips:[::1]:5061")));
    assert!(l.is_self(&uri("sips:127.0.0.1:5061")));
}

#[test]
fn aliases_add_names_and_addresses() {
    let mut l = wildcard();
    l.aliases = [
        "sip.example.test",
        "203.0.113.5:5061",
        "[2001:db8::1]",
        "proxy:7000",
    ]
    .iter()
    .map(|a| Alias::parse(a).unwrap())
    .collect();
    assert!(l.is_self(&uri("sip:sip.example.test;lr")));
    assert!(l.is_self(&uri("sip:sip.example.test:5061;transport=tls")));
    assert!(!l.is_self(&uri("sip:sip.example.test:5099")));
    assert!(l.is_self(&uri("sips:203.0.113.5")));
    assert!(!l.is_self(&uri("sip:203.0.113.5:5062")));
    assert!(l.is_self(&uri("sip:[2001:db8::1]:5060")));
    assert!(l.is_self(&uri("sip:proxy:7000")));
    assert!(
        !l.is_self(&uri("sip:proxy")),
        "an alias with a port is that port only"
    );
    assert!(l.is_local_host("SIP.example.test"));
    assert_eq!(Alias::parse(""), None);
    assert_eq!(Alias::parse("bad host"), None);
    assert_eq!(Alias::parse("host:notaport"), None);
}

#[test]
fn what_we_advertise() {
    let l = wildcard();
    let lo: Option<IpAddr> = Some("127.0.0.1".parse().unwrap());
    let lan: Option<IpAddr> = Some("192.0.2.10".parse().unwrap());
    // The address the peer's messages arrive on.
    assert_eq!(
        l.advertised(TransportKind::Tls, lo, lo).as_deref(),
        Some("127.0.0.1:5061")
    );
    let far: Option<IpAddr> = Some("192.0.2.99".parse().unwrap());
    assert_eq!(
        l.advertised(TransportKind::Udp, far, lan).as_deref(),
        Some("192.0.2.10:5060")
    );
    // Unknown: loopback toward loopback, the LAN address toward others.
    assert_eq!(
        l.advertised(TransportKind::Tls, lo, None).as_deref(),
        Some("127.0.0.1:5061")
    );
    let internet: Option<IpAddr> = Some("198.51.100.1".parse().unwrap());
    assert_eq!(
        l.advertised(TransportKind::Tls, internet, None).as_deref(),
        Some("192.0.2.10:5061")
    );
    assert_eq!(
        l.advertised(TransportKind::Tcp, lo, lo),
        None,
        "no TCP listener"
    );
    assert_eq!(l.peer_host(), "example.test");
    // A configured public host wins.
    let mut l = wildcard();
    l.public_host = Some("sip.example.test".into());
    assert_eq!(
        l.advertised(TransportKind::Tls, lo, lo).as_deref(),
        Some("sip.example.test:5061")
    );
    assert_eq!(l.peer_host(), "sip.example.test");
}
