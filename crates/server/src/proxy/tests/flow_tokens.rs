//! RFC 5626 flow tokens: in-dialog requests over the connections of both parties.

use super::*;

const ALICE: &str = "127.0.0.1:40001";
const BOB: &str = "127.0.0.1:40002";

impl Harness {
    /// Feeds `text` as received over TLS on connection `conn` from `source`; returns what
    /// the proxy sends, with full destinations.
    fn send_tls(&mut self, text: &str, source: &str, conn: u64) -> Vec<Transmit> {
        let packet = Packet {
            data: Bytes::from(text.to_owned()),
            source: source.parse().unwrap(),
            transport: TransportKind::Tls,
            connection: Some(ConnectionId(conn)),
            client_identities: Vec::new(),
            client_domains: Vec::new(),
            local: std::net::SocketAddr::from(([127, 0, 0, 1], 5060)),
        };
        self.proxy.handle_packet(packet, self.now, self.wall);
        let mut v = Vec::new();
        while let Some(t) = self.proxy.poll_transmit() {
            v.push(t);
        }
        v
    }
}

fn on_flow(t: &Transmit, source: &str, conn: u64) -> bool {
    t.destination.transport == TransportKind::Tls
        && t.destination.remote == source.parse().unwrap()
        && t.destination.connection == Some(ConnectionId(conn))
}

/// No digest here (the flow logic is under test); bob registers over TLS connection 2 with a
/// Contact nobody could reach, alice calls from connection 1 and bob answers. Returns the
/// harness and the Record-Route values bob saw.
fn call_over_flows() -> (Harness, Vec<String>) {
    let mut config = ServerConfig::for_domain("example.test");
    config.authentication.enabled = false;
    let mut h = Harness::new(config);
    let reg = "REGISTER sips:example.test SIP/2.0\r\nVia: SIP/2.0/TLS 10.9.9.9:5061;branch=z9hG4bKreg\r\n\
         Max-Forwards: 70\r\nTo: <sip:bob@example.test>\r\nFrom: <sip:bob@example.test>;tag=r\r\n\
         Call-ID: reg-b\r\nCSeq: 1 REGISTER\r\nContact: <sips:bob@10.9.9.9:5061>\r\nExpires: 600\r\n\
         Content-Length: 0\r\n\r\n";
    let out = h.send_tls(reg, BOB, 2);
    assert_eq!(status(&text(&out[0])), 200, "{}", text(&out[0]));
    let invite = "INVITE sip:bob@example.test SIP/2.0\r\nVia: SIP/2.0/TLS 10.8.8.8:5061;branch=z9hG4bKinv\r\n\
         Max-Forwards: 70\r\nTo: <sip:bob@example.test>\r\nFrom: <sip:alice@example.test>;tag=al\r\n\
         Call-ID: call-f\r\nCSeq: 1 INVITE\r\nContact: <sips:alice@10.8.8.8:5061>\r\nContent-Length: 0\r\n\r\n";
    let out = h.send_tls(invite, ALICE, 1);
    assert_eq!(out.len(), 2, "{out:#?}");
    assert!(on_flow(&out[0], ALICE, 1) && status(&text(&out[0])) == 100);
    assert!(on_flow(&out[1], BOB, 2), "the INVITE goes over bob's flow");
    let fwd = text(&out[1]);
    let rr: Vec<String> = header(&fwd, "Record-Route")
        .iter()
        .flat_map(|v| v.split(','))
        .map(|v| v.trim().to_owned())
        .collect();
    // Both sides are flows: two values, each with its side's token.
    assert_eq!(rr.len(), 2, "{rr:?}");
    for v in &rr {
        assert!(
            // `sip:` with transport=tls, as the request was `sip:` (a `sips:` hop would be
            // refused by clients that cannot route to one).
            v.starts_with("<sip:") && v.ends_with("@127.0.0.1:5061;transport=tls;lr;ob>"),
            "{v}"
        );
    }
    assert_ne!(rr[0], rr[1]);
    let vias = header(&fwd, "Via");
    let ok = format!(
        "SIP/2.0 200 OK\r\nVia: {}\r\nVia: {}\r\nRecord-Route: {}, {}\r\n\
         To: <sip:bob@example.test>;tag=bb\r\nFrom: <sip:alice@example.test>;tag=al\r\nCall-ID: call-f\r\n\
         CSeq: 1 INVITE\r\nContact: <sips:bob@10.9.9.9:5061>\r\nContent-Length: 0\r\n\r\n",
        vias[0], vias[1], rr[0], rr[1]
    );
    let out = h.send_tls(&ok, BOB, 2);
    assert_eq!(out.len(), 1, "{out:#?}");
    assert!(on_flow(&out[0], ALICE, 1) && status(&text(&out[0])) == 200);
    (h, rr)
}

/// An in-dialog request: `from` → `to` (tags al/bb), Request-URI `ruri`, with `routes`.
fn in_dialog(method: &str, cseq: u32, ruri: &str, routes: &[&str], from_alice: bool) -> String {
    let (from, to) = if from_alice {
        (
            "<sip:alice@example.test>;tag=al",
            "<sip:bob@example.test>;tag=bb",
        )
    } else {
        (
            "<sip:bob@example.test>;tag=bb",
            "<sip:alice@example.test>;tag=al",
        )
    };
    let via = if from_alice { "10.8.8.8" } else { "10.9.9.9" };
    let route: String = routes.iter().map(|r| format!("Route: {r}\r\n")).collect();
    format!(
        "{method} {ruri} SIP/2.0\r\nVia: SIP/2.0/TLS {via}:5061;branch=z9hG4bK{method}{cseq}\r\n\
         {route}Max-Forwards: 70\r\nFrom: {from}\r\nTo: {to}\r\nCall-ID: call-f\r\n\
         CSeq: {cseq} {method}\r\nContent-Length: 0\r\n\r\n"
    )
}

#[test]
fn in_dialog_requests_follow_the_flow_tokens_both_ways() {
    let (mut h, rr) = call_over_flows();
    // alice's route set is the reverse of the Record-Route; bob's Contact is unreachable.
    let alice_routes = [rr[1].as_str(), rr[0].as_str()];
    for (method, cseq) in [("ACK", 1), ("BYE", 2)] {
        let req = in_dialog(method, cseq, "sips:bob@10.9.9.9:5061", &alice_routes, true);
        let out = h.send_tls(&req, ALICE, 1);
        assert_eq!(out.len(), 1, "{method}: {out:#?}");
        assert!(
            on_flow(&out[0], BOB, 2),
            "{method} over bob's flow: {out:#?}"
        );
        let m = text(&out[0]);
        assert!(
            m.starts_with(&format!("{method} sips:bob@10.9.9.9:5061 ")),
            "{m}"
        );
        assert!(
            header(&m, "Route").is_empty(),
            "our Route values are consumed: {m}"
        );
    }
    // bob → alice over alice's flow (her Contact is as unreachable).
    let bob_routes = [rr[0].as_str(), rr[1].as_str()];
    let req = in_dialog("BYE", 1, "sips:alice@10.8.8.8:5061", &bob_routes, false);
    let out = h.send_tls(&req, BOB, 2);
    assert_eq!(out.len(), 1, "{out:#?}");
    assert!(
        on_flow(&out[0], ALICE, 1),
        "bob's BYE over alice's flow: {out:#?}"
    );
    // alice's answer goes back to bob on his connection.
    let bye = text(&out[0]);
    let vias = header(&bye, "Via");
    let ok = format!(
        "SIP/2.0 200 OK\r\nVia: {}\r\nVia: {}\r\nTo: <sip:alice@example.test>;tag=al\r\n\
         From: <sip:bob@example.test>;tag=bb\r\nCall-ID: call-f\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n",
        vias[0], vias[1]
    );
    let out = h.send_tls(&ok, ALICE, 1);
    assert_eq!(out.len(), 1, "{out:#?}");
    assert!(on_flow(&out[0], BOB, 2) && status(&text(&out[0])) == 200);
}

#[test]
fn a_reconnected_caller_still_reaches_the_callee_flow() {
    let (mut h, rr) = call_over_flows();
    let req = in_dialog("BYE", 2, "sips:bob@10.9.9.9:5061", &[&rr[1], &rr[0]], true);
    // alice's new connection (id 7, another port): neither token names it.
    let out = h.send_tls(&req, "127.0.0.1:40077", 7);
    assert_eq!(out.len(), 1, "{out:#?}");
    assert!(on_flow(&out[0], BOB, 2), "{out:#?}");
}

#[test]
fn a_tampered_flow_token_is_refused_with_403() {
    let (mut h, rr) = call_over_flows();
    // Flip one hex digit of bob's token (the connection id).
    let tampered = rr[0].replacen("<sip:01020000000000000002", "<sip:01020000000000000003", 1);
    assert_ne!(tampered, rr[0], "token layout: {}", rr[0]);
    let req = in_dialog(
        "BYE",
        2,
        "sips:bob@10.9.9.9:5061",
        &[&rr[1], &tampered],
        true,
    );
    let out = h.send_tls(&req, ALICE, 1);
    assert_eq!(out.len(), 1, "{out:#?}");
    assert!(on_flow(&out[0], ALICE, 1));
    assert_eq!(status(&text(&out[0])), 403, "{}", text(&out[0]));
    // A token built by hand (bob's flow in clear, a made-up tag) is refused too.
    let forged = format!(
        "<sips:0102{:016x}04{}{:04x}{}@127.0.0.1:5061;lr;ob>",
        2,
        "7f000001",
        40002,
        "00".repeat(16)
    );
    let req = in_dialog("BYE", 3, "sips:bob@10.9.9.9:5061", &[&forged], true);
    let out = h.send_tls(&req, ALICE, 1);
    assert_eq!(status(&text(&out[0])), 403, "{}", text(&out[0]));
}

#[test]
fn a_closed_flow_gives_430() {
    let (mut h, rr) = call_over_flows();
    let req = in_dialog("BYE", 2, "sips:bob@10.9.9.9:5061", &[&rr[1], &rr[0]], true);
    let out = h.send_tls(&req, ALICE, 1);
    assert_eq!(out.len(), 1, "{out:#?}");
    assert!(on_flow(&out[0], BOB, 2));
    // The driver could not send it: bob's connection is gone.
    let id = out[0].transaction.expect("a client transaction");
    h.proxy.handle_send_error(id, "connection refused", h.now);
    let out: Vec<Transmit> = std::iter::from_fn(|| h.proxy.poll_transmit()).collect();
    let to_alice: Vec<_> = out.iter().filter(|t| on_flow(t, ALICE, 1)).collect();
    assert_eq!(to_alice.len(), 1, "{out:#?}");
    assert_eq!(status(&text(to_alice[0])), 430, "{}", text(to_alice[0]));
}

#[test]
fn with_one_flow_side_the_sides_are_told_apart_by_position() {
    let mut config = ServerConfig::for_domain("example.test");
    config.authentication.enabled = false;
    let mut h = Harness::new(config);
    // bob registers through an edge proxy (Path): reached over no flow of ours.
    let reg = "REGISTER sips:example.test SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:5999;branch=z9hG4bKe\r\n\
         Via: SIP/2.0/TLS 10.9.9.9:5061;branch=z9hG4bKreg\r\nMax-Forwards: 69\r\n\
         To: <sip:bob@example.test>\r\nFrom: <sip:bob@example.test>;tag=r\r\nCall-ID: reg-p\r\n\
         CSeq: 1 REGISTER\r\nSupported: path\r\nPath: <sip:127.0.0.1:5999;transport=tls;lr>\r\n\
         Contact: <sips:bob@10.9.9.9:5061>\r\nExpires: 600\r\nContent-Length: 0\r\n\r\n";
    let out = h.send_tls(reg, "127.0.0.1:5999", 3);
    assert_eq!(status(&text(&out[0])), 200, "{}", text(&out[0]));
    let invite = "INVITE sip:bob@example.test SIP/2.0\r\nVia: SIP/2.0/TLS 10.8.8.8:5061;branch=z9hG4bKinv\r\n\
         Max-Forwards: 70\r\nTo: <sip:bob@example.test>\r\nFrom: <sip:alice@example.test>;tag=al\r\n\
         Call-ID: call-f\r\nCSeq: 1 INVITE\r\nContact: <sips:alice@10.8.8.8:5061>\r\nContent-Length: 0\r\n\r\n";
    let out = h.send_tls(invite, ALICE, 1);
    let fwd = out
        .iter()
        .find(|t| text(t).starts_with("INVITE"))
        .expect("forwarded");
    assert_eq!(fwd.destination.remote, "127.0.0.1:5999".parse().unwrap());
    let rr: Vec<String> = header(&text(fwd), "Record-Route")
        .iter()
        .flat_map(|v| v.split(','))
        .map(|v| v.trim().to_owned())
        .collect();
    // The callee's side (on top) is plain, the caller's carries her token.
    assert_eq!(rr.len(), 2, "{rr:?}");
    assert_eq!(rr[0], "<sip:127.0.0.1:5061;transport=tls;lr>");
    assert!(
        rr[1].ends_with("@127.0.0.1:5061;transport=tls;lr;ob>"),
        "{}",
        rr[1]
    );
    // bob's BYE, through the edge proxy: over alice's flow.
    let req = in_dialog(
        "BYE",
        1,
        "sips:alice@10.8.8.8:5061",
        &[&rr[0], &rr[1]],
        false,
    );
    let out = h.send_tls(&req, "127.0.0.1:5999", 3);
    assert_eq!(out.len(), 1, "{out:#?}");
    assert!(on_flow(&out[0], ALICE, 1), "{out:#?}");
    // alice, reconnected: her BYE goes toward bob, not back over her old flow.
    let req = in_dialog("BYE", 2, "sips:bob@10.9.9.9:5061", &[&rr[1], &rr[0]], true);
    let out = h.send_tls(&req, "127.0.0.1:40077", 7);
    assert_eq!(out.len(), 1, "{out:#?}");
    assert_eq!(out[0].destination.remote, "10.9.9.9:5061".parse().unwrap());
    assert_eq!(out[0].destination.connection, None);
}
