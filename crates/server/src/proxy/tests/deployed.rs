//! The proxy as people deploy it: a wildcard listener (the config `sotto init` writes), a
//! named domain, clients' usual routes, next hops found by DNS, failures answered clearly,
//! and calls between domains.

use super::*;
use sotto_sip::resolve::{Candidate, ResolveError};

const TLS_ANY: &str = "0.0.0.0:5061";
const UDP_ANY: &str = "0.0.0.0:5060";

/// `example.test` on TLS 0.0.0.0:5061 and UDP 0.0.0.0:5060, the machine's interfaces being
/// loopback and 192.0.2.10; digest off unless `auth` (tests of routing).
fn deployed(auth: bool, federation: bool) -> Harness {
    let mut config = ServerConfig::for_domain("example.test");
    config.authentication.enabled = auth;
    config.federation.enabled = federation;
    let h = Harness::with_listeners(
        config,
        vec![
            (TransportKind::Tls, TLS_ANY.parse().unwrap()),
            (TransportKind::Udp, UDP_ANY.parse().unwrap()),
        ],
    );
    h.proxy.locality().set_interfaces(vec![
        "127.0.0.1".parse().unwrap(),
        "192.0.2.10".parse().unwrap(),
    ]);
    h
}

/// A message received on our address `local`, over TLS connection `conn` (or UDP when
/// `conn` is `None`), from a peer whose certificate is valid for `domains`.
struct From<'a> {
    source: &'a str,
    local: &'a str,
    conn: Option<u64>,
    identities: &'a [&'a str],
    domains: &'a [&'a str],
}

impl Harness {
    fn feed(&mut self, text: &str, from: &From<'_>) -> Vec<Transmit> {
        let packet = Packet {
            data: Bytes::from(text.to_owned()),
            source: from.source.parse().unwrap(),
            local: from.local.parse().unwrap(),
            transport: if from.conn.is_some() {
                TransportKind::Tls
            } else {
                TransportKind::Udp
            },
            connection: from.conn.map(ConnectionId),
            client_identities: from.identities.iter().map(|s| (*s).to_owned()).collect(),
            client_domains: from.domains.iter().map(|s| (*s).to_owned()).collect(),
        };
        self.proxy.handle_packet(packet, self.now, self.wall);
        self.transmits()
    }

    fn transmits(&mut self) -> Vec<Transmit> {
        let mut v = Vec::new();
        while let Some(t) = self.proxy.poll_transmit() {
            v.push(t);
        }
        v
    }

    fn events(&mut self) -> Vec<ProxyEvent> {
        let mut v = Vec::new();
        while let Some(e) = self.proxy.poll_event() {
            v.push(e);
        }
        v
    }
}

const ALICE_TLS: From<'static> = From {
    source: "127.0.0.1:40001",
    local: "127.0.0.1:5061",
    conn: Some(1),
    identities: &[],
    domains: &[],
};

const BOB_TLS: From<'static> = From {
    source: "127.0.0.1:40002",
    local: "127.0.0.1:5061",
    conn: Some(2),
    identities: &[],
    domains: &[],
};

fn register_tls(h: &mut Harness, user: &str, from: &From<'_>) {
    let port = from.source.rsplit_once(':').unwrap().1;
    let reg = format!(
        "REGISTER sip:example.test SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:{port};branch=z9hG4bKreg{port};rport\r\n\
         Max-Forwards: 70\r\nTo: <sip:{user}@example.test>\r\nFrom: <sip:{user}@example.test>;tag=r{port}\r\n\
         Call-ID: reg-{port}\r\nCSeq: 1 REGISTER\r\n\
         Contact: <sip:{user}@127.0.0.1:{port};transport=tls>;+sip.instance=\"<urn:uuid:{port}>\";reg-id=1\r\n\
         Supported: outbound, gruu\r\nExpires: 600\r\nContent-Length: 0\r\n\r\n"
    );
    let out = h.feed(&reg, from);
    assert_eq!(status(&text(&out[0])), 200, "{}", text(&out[0]));
}

/// An INVITE from alice to `ruri` with Linphone's usual route, over `from`.
fn invite(ruri: &str, route: Option<&str>, call_id: &str) -> String {
    let route = route.map(|r| format!("Route: {r}\r\n")).unwrap_or_default();
    format!(
        "INVITE {ruri} SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:40001;branch=z9hG4bK{call_id};rport\r\n\
         Max-Forwards: 70\r\n{route}To: <{ruri}>\r\nFrom: <sip:alice@example.test>;tag=al\r\n\
         Call-ID: {call_id}\r\nCSeq: 20 INVITE\r\nContact: <sip:alice@127.0.0.1:40001;transport=tls>\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

fn record_routes(msg: &str) -> Vec<String> {
    header(msg, "Record-Route")
        .iter()
        .flat_map(|v| v.split(','))
        .map(|v| v.trim().to_owned())
        .collect()
}

#[test]
fn linphone_route_to_the_servers_address_reaches_the_callee() {
    let mut h = deployed(false, false);
    register_tls(&mut h, "bob", &BOB_TLS);
    // Linphone's account: reg_route=<sip:127.0.0.1:5061;transport=tls;lr>, with the server
    // listening on 0.0.0.0:5061. That address is ours: the route is popped, not followed.
    let out = h.feed(
        &invite(
            "sip:bob@example.test",
            Some("<sip:127.0.0.1:5061;transport=tls;lr>"),
            "c1",
        ),
        &ALICE_TLS,
    );
    assert_eq!(out.len(), 2, "{out:#?}");
    assert_eq!(status(&text(&out[0])), 100);
    let fwd = text(&out[1]);
    assert!(fwd.starts_with("INVITE sip:bob@127.0.0.1:40002"), "{fwd}");
    assert_eq!(out[1].destination.connection, Some(ConnectionId(2)));
    assert!(header(&fwd, "Route").is_empty(), "{fwd}");
    // What both clients can follow: sip: with transport=tls, at the address they reached
    // us at; never sips: for a sip: request, never the domain name.
    let rr = record_routes(&fwd);
    assert_eq!(rr.len(), 2, "{rr:?}");
    for v in &rr {
        assert!(
            v.starts_with("<sip:") && v.ends_with("@127.0.0.1:5061;transport=tls;lr;ob>"),
            "{v}"
        );
    }
    let via = header(&fwd, "Via")[0];
    assert!(via.starts_with("SIP/2.0/TLS 127.0.0.1:5061;"), "{via}");
    assert!(!fwd.contains("example.test:5061"), "{fwd}");
    let ev = h.events();
    assert!(
        ev.iter()
            .any(|e| e.method == "INVITE" && e.outcome == Outcome::Forwarded(1)),
        "{ev:?}"
    );

    // A sips: request gets sips: Record-Routes.
    let out = h.feed(&invite("sips:bob@example.test", None, "c2"), &ALICE_TLS);
    let rr = record_routes(&text(&out[1]));
    assert!(rr.iter().all(|v| v.starts_with("<sips:")), "{rr:?}");
}

#[test]
fn a_next_hop_that_is_this_server_is_refused_as_a_loop() {
    let mut h = deployed(false, false);
    // bob's contact names the server itself (a misconfigured phone, or an attacker).
    let reg = "REGISTER sip:example.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:40009;branch=z9hG4bKr9;rport\r\n\
         Max-Forwards: 70\r\nTo: <sip:bob@example.test>\r\nFrom: <sip:bob@example.test>;tag=r9\r\n\
         Call-ID: reg-9\r\nCSeq: 1 REGISTER\r\nContact: <sip:bob@127.0.0.1:5060>\r\nExpires: 600\r\n\
         Content-Length: 0\r\n\r\n";
    let udp = From {
        source: "127.0.0.1:40009",
        local: "127.0.0.1:5060",
        conn: None,
        identities: &[],
        domains: &[],
    };
    assert_eq!(status(&text(&h.feed(reg, &udp)[0])), 200);
    h.events();
    let inv = "INVITE sip:bob@example.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:40010;branch=z9hG4bKl1;rport\r\n\
         Max-Forwards: 70\r\nTo: <sip:bob@example.test>\r\nFrom: <sip:alice@example.test>;tag=al\r\n\
         Call-ID: loop-1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
    let out = h.feed(
        inv,
        &From {
            source: "127.0.0.1:40010",
            ..udp
        },
    );
    // Nothing goes to 5060 (ourselves): 100 Trying, then 482 with what happened.
    assert!(
        out.iter()
            .all(|t| t.destination.remote == "127.0.0.1:40010".parse().unwrap()),
        "{out:#?}"
    );
    let last = text(out.last().unwrap());
    assert_eq!(status(&last), 482, "{last}");
    assert!(last.contains("tag="), "a To tag: {last}");
    assert!(
        header(&last, "Via")[0].contains("rport=40010"),
        "rport filled in: {last}"
    );
    assert!(
        header(&last, "Warning")[0].contains("this server itself"),
        "{last}"
    );
    let ev = h.events();
    assert!(
        ev.iter().any(|e| matches!(
            &e.outcome,
            Outcome::Failed { status: 482, reason } if reason.contains("loop")
        )),
        "{ev:?}"
    );
}

#[test]
fn a_branch_that_cannot_be_sent_is_a_failure_not_a_forward() {
    let mut h = deployed(false, false);
    register_tls(&mut h, "bob", &BOB_TLS);
    h.events();
    h.feed(&invite("sip:bob@example.test", None, "f1"), &ALICE_TLS);
    // The driver could not send the branch (bob's connection is gone): it says so before
    // the request's event is read.
    let branch = h
        .proxy
        .client
        .keys()
        .copied()
        .next()
        .expect("a client transaction");
    h.proxy
        .handle_send_error(branch, "connection 2 is closed", h.now);
    let out = h.transmits();
    let last = text(out.last().expect("a response"));
    assert_eq!(status(&last), 503, "{last}");
    assert!(last.contains(";tag="), "{last}");
    assert!(header(&last, "Via")[0].contains("rport=40001"), "{last}");
    assert!(
        header(&last, "Warning")[0].contains("connection 2 is closed"),
        "{last}"
    );
    assert_eq!(header(&last, "Retry-After"), ["30"]);
    let ev = h.events();
    let invites: Vec<&ProxyEvent> = ev.iter().filter(|e| e.method == "INVITE").collect();
    assert_eq!(invites.len(), 1, "one line per request: {ev:?}");
    assert!(
        matches!(&invites[0].outcome, Outcome::Failed { status: 503, .. }),
        "{ev:?}"
    );
}

fn candidate(addr: &str, name: &str) -> Candidate {
    Candidate {
        transport: TransportKind::Tls,
        addr: addr.parse().unwrap(),
        server_name: Some(name.to_owned()),
    }
}

#[test]
fn a_host_name_is_looked_up_and_the_next_server_tried() {
    let mut h = deployed(false, false);
    let out = h.feed(
        &invite(
            "sip:carol@example.test",
            Some("<sip:proxy.far.test;transport=tls;lr>"),
            "d1",
        ),
        &ALICE_TLS,
    );
    // 100 Trying only: the lookup is under way, nothing else waits for it.
    assert_eq!(out.len(), 1, "{out:#?}");
    assert!(
        h.events().is_empty(),
        "no event before the outcome is known"
    );
    let l = h.proxy.poll_lookup().expect("a lookup");
    assert_eq!(l.uri.host(), "proxy.far.test");
    assert!(l.policy.tls_only, "a TLS request stays on TLS");
    h.proxy.handle_lookup(
        l.id,
        Ok(vec![
            candidate("127.0.0.1:5061", "proxy.far.test"), // ourselves: skipped
            candidate("192.0.2.20:5061", "proxy.far.test"),
            candidate("192.0.2.21:5061", "proxy.far.test"),
        ]),
        h.now,
    );
    let out = h.transmits();
    assert_eq!(out.len(), 1, "{out:#?}");
    assert_eq!(
        out[0].destination.remote,
        "192.0.2.20:5061".parse().unwrap()
    );
    assert_eq!(
        out[0].destination.server_name.as_deref(),
        Some("proxy.far.test")
    );
    let first = out[0].transaction.unwrap();
    assert!(
        h.events()
            .iter()
            .any(|e| e.outcome == Outcome::Forwarded(1))
    );
    // The first server cannot be reached: the second gets the request.
    h.proxy
        .handle_send_error(first, "connection refused", h.now);
    let out = h.transmits();
    assert_eq!(out.len(), 1, "{out:#?}");
    assert_eq!(
        out[0].destination.remote,
        "192.0.2.21:5061".parse().unwrap()
    );
    assert!(text(&out[0]).starts_with("INVITE sip:carol@example.test"));
    // And when it fails too: 503 with what failed.
    h.proxy
        .handle_send_error(out[0].transaction.unwrap(), "connection refused", h.now);
    let last = text(h.transmits().last().unwrap());
    assert_eq!(status(&last), 503, "{last}");
    assert!(header(&last, "Warning")[0].contains("192.0.2.21"), "{last}");
}

#[test]
fn dns_failures_get_the_status_rfc_3261_names() {
    for (err, code) in [
        (ResolveError::NoSuchDomain("far.test".into()), 604),
        (ResolveError::NoServer("far.test".into()), 404),
        (
            ResolveError::Unavailable {
                domain: "far.test".into(),
                reason: "time-out".into(),
            },
            503,
        ),
    ] {
        let mut h = deployed(false, false);
        h.feed(
            &invite(
                "sip:carol@example.test",
                Some("<sip:far.test;transport=tls;lr>"),
                "e1",
            ),
            &ALICE_TLS,
        );
        let l = h.proxy.poll_lookup().unwrap();
        h.proxy.handle_lookup(l.id, Err(err.clone()), h.now);
        let last = text(h.transmits().last().unwrap());
        assert_eq!(status(&last), code, "{err:?}: {last}");
        assert!(last.contains(";tag="), "{last}");
        assert!(header(&last, "Warning")[0].contains("DNS"), "{last}");
        let ev = h.events();
        assert!(
            ev.iter()
                .any(|e| matches!(e.outcome, Outcome::Failed { status, .. } if status == code)),
            "{ev:?}"
        );
    }
}

#[test]
fn a_cancel_while_dns_is_asked_ends_the_call_here() {
    let mut h = deployed(false, false);
    h.feed(
        &invite(
            "sip:carol@example.test",
            Some("<sip:far.test;transport=tls;lr>"),
            "x1",
        ),
        &ALICE_TLS,
    );
    let l = h.proxy.poll_lookup().unwrap();
    let cancel = "CANCEL sip:carol@example.test SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:40001;branch=z9hG4bKx1;rport\r\n\
         Max-Forwards: 70\r\nRoute: <sip:far.test;transport=tls;lr>\r\nTo: <sip:carol@example.test>\r\n\
         From: <sip:alice@example.test>;tag=al\r\nCall-ID: x1\r\nCSeq: 20 CANCEL\r\nContent-Length: 0\r\n\r\n";
    let out = h.feed(cancel, &ALICE_TLS);
    let codes: Vec<u16> = out.iter().map(|t| status(&text(t))).collect();
    assert!(codes.contains(&200) && codes.contains(&487), "{codes:?}");
    // The late answer sends nothing.
    h.proxy.handle_lookup(
        l.id,
        Ok(vec![candidate("192.0.2.20:5061", "far.test")]),
        h.now,
    );
    assert!(h.transmits().is_empty());
}

#[test]
fn federation_sends_to_the_other_domains_server_and_checks_who_sends_to_us() {
    let mut h = deployed(true, true);
    // alice logs in with her certificate (no digest round trip in this test).
    let alice = From {
        identities: &["sip:alice@example.test"],
        ..ALICE_TLS
    };
    let out = h.feed(&invite("sip:bob@b.example", None, "g1"), &alice);
    assert_eq!(out.len(), 1, "100 Trying: {out:#?}");
    let l = h.proxy.poll_lookup().expect("b.example is looked up");
    assert_eq!(l.uri.host(), "b.example");
    assert!(l.policy.tls_only, "server to server is TLS only");
    h.proxy.handle_lookup(
        l.id,
        Ok(vec![candidate("127.0.0.1:25061", "b.example")]),
        h.now,
    );
    let out = h.transmits();
    assert_eq!(out.len(), 1, "{out:#?}");
    assert_eq!(out[0].destination.server_name.as_deref(), Some("b.example"));
    let rr = record_routes(&text(&out[0]));
    // Toward b.example's server: our domain, which it resolves and our certificate names.
    assert_eq!(rr[0], "<sip:example.test;transport=tls;lr>");
    assert!(
        rr[1].ends_with("@127.0.0.1:5061;transport=tls;lr;ob>"),
        "{rr:?}"
    );

    // Someone else's user, relayed by nobody's account: refused (no open relay).
    let mut h2 = deployed(true, true);
    let out = h2.feed(&invite("sip:bob@b.example", None, "g2"), &ALICE_TLS);
    let codes: Vec<u16> = out.iter().map(|t| status(&text(t))).collect();
    assert!(codes.contains(&407), "challenged first: {codes:?}");

    // a.example's server sends to our bob: accepted on its certificate.
    let bob = From {
        identities: &["sip:bob@example.test"],
        ..BOB_TLS
    };
    register_tls(&mut h, "bob", &bob);
    let from_a = |cert: &'static [&'static str]| From {
        source: "127.0.0.1:41000",
        local: "127.0.0.1:5061",
        conn: Some(9),
        identities: &[],
        domains: cert,
    };
    let inv = "INVITE sip:bob@example.test SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:15061;branch=z9hG4bKa1;rport\r\n\
         Max-Forwards: 69\r\nRecord-Route: <sip:a.example;transport=tls;lr>\r\nTo: <sip:bob@example.test>\r\n\
         From: <sip:alice@a.example>;tag=aa\r\nCall-ID: fed-1\r\nCSeq: 1 INVITE\r\n\
         Contact: <sip:alice@127.0.0.1:40100;transport=tls>\r\nContent-Length: 0\r\n\r\n";
    let out = h.feed(inv, &from_a(&["a.example"]));
    let fwd = out
        .iter()
        .find(|t| text(t).starts_with("INVITE"))
        .expect("forwarded to bob");
    assert_eq!(fwd.destination.connection, Some(ConnectionId(2)));
    let rr = record_routes(&text(fwd));
    assert!(
        rr.contains(&"<sip:example.test;transport=tls;lr>".to_owned()),
        "{rr:?}"
    );
    // c.example's server sending as a.example: 403, and why.
    let inv2 = inv
        .replace("fed-1", "fed-2")
        .replace("z9hG4bKa1", "z9hG4bKa2");
    let out = h.feed(&inv2, &from_a(&["c.example"]));
    let last = text(out.last().unwrap());
    assert_eq!(status(&last), 403, "{last}");
    assert!(header(&last, "Warning")[0].contains("c.example"), "{last}");
}

#[test]
fn federation_off_refuses_other_domains() {
    let mut h = deployed(true, false);
    let bob = From {
        identities: &["sip:bob@example.test"],
        ..BOB_TLS
    };
    register_tls(&mut h, "bob", &bob);
    let inv = "INVITE sip:bob@example.test SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:15061;branch=z9hG4bKo1;rport\r\n\
         Max-Forwards: 69\r\nTo: <sip:bob@example.test>\r\nFrom: <sip:mallory@evil.example>;tag=m\r\n\
         Call-ID: off-1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
    let out = h.feed(
        inv,
        &From {
            domains: &["evil.example"],
            ..ALICE_TLS
        },
    );
    let last = text(out.last().unwrap());
    assert_eq!(status(&last), 403, "{last}");
    assert!(
        header(&last, "Warning")[0].contains("federation is off"),
        "{last}"
    );
    // And our users' calls to other domains are not relayed.
    let alice = From {
        identities: &["sip:alice@example.test"],
        ..ALICE_TLS
    };
    let out = h.feed(&invite("sip:bob@b.example", None, "off-2"), &alice);
    assert_eq!(status(&text(out.last().unwrap())), 403);
    assert!(h.proxy.poll_lookup().is_none());
}

#[test]
fn a_server_that_failed_is_tried_last_for_a_while() {
    let mut h = deployed(false, false);
    let candidates = || {
        vec![
            candidate("192.0.2.20:5061", "far.test"),
            candidate("192.0.2.21:5061", "far.test"),
        ]
    };
    let route = Some("<sip:far.test;transport=tls;lr>");
    h.feed(&invite("sip:carol@example.test", route, "u1"), &ALICE_TLS);
    let l = h.proxy.poll_lookup().unwrap();
    h.proxy.handle_lookup(l.id, Ok(candidates()), h.now);
    let first = h.transmits().pop().unwrap();
    assert_eq!(first.destination.remote, "192.0.2.20:5061".parse().unwrap());
    h.proxy
        .handle_send_error(first.transaction.unwrap(), "connection refused", h.now);
    h.transmits();
    // The next request for the domain (an ACK has no failover) goes to the live one first.
    h.feed(&invite("sip:carol@example.test", route, "u2"), &ALICE_TLS);
    let l = h.proxy.poll_lookup().unwrap();
    h.proxy.handle_lookup(l.id, Ok(candidates()), h.now);
    let next = h.transmits().pop().unwrap();
    assert_eq!(next.destination.remote, "192.0.2.21:5061".parse().unwrap());
    // A minute later it is tried in its DNS order again.
    h.now += Duration::from_secs(61);
    h.feed(&invite("sip:carol@example.test", route, "u3"), &ALICE_TLS);
    let l = h.proxy.poll_lookup().unwrap();
    h.proxy.handle_lookup(l.id, Ok(candidates()), h.now);
    let again = h.transmits().pop().unwrap();
    assert_eq!(again.destination.remote, "192.0.2.20:5061".parse().unwrap());
}
