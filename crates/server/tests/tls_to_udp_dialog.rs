//! The proxy core on virtual time: a caller over TLS, a callee registered over UDP
//! (`downgrade` = flag). Every response of the dialog, the BYE's 200 included, must go back
//! to the caller's TLS connection (the regression of the proxy bench's `call_tls`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use sotto_server::config::DowngradePolicy;
use sotto_server::{Packet, Proxy, ServerConfig};
use sotto_sip::transport::{ConnectionId, TransportKind};
use sotto_store::MemoryStore;

const UDP: &str = "127.0.0.1:5060";
const TLS: &str = "127.0.0.1:5061";
const CALLEE: &str = "127.0.0.1:7000";
const CALLER: &str = "127.0.0.1:40113";

struct Net {
    proxy: Proxy,
    now: Instant,
    wall: SystemTime,
}

impl Net {
    fn new() -> Self {
        let mut config = ServerConfig::for_domain("127.0.0.1");
        config.authentication.enabled = false;
        config.anti_flood.enabled = false;
        config.forward.downgrade = DowngradePolicy::Flag;
        let store = Arc::new(MemoryStore::new());
        let now = Instant::now();
        let proxy = Proxy::new(
            &config,
            vec![
                (TransportKind::Udp, UDP.parse().unwrap()),
                (TransportKind::Tls, TLS.parse().unwrap()),
            ],
            store.clone(),
            store,
            sotto_crypto_rust::provider(),
            now,
        )
        .unwrap();
        Net {
            proxy,
            now,
            wall: SystemTime::now(),
        }
    }

    /// Feeds `text`; returns what the proxy sends: (transport, remote, connection, text).
    fn feed(
        &mut self,
        text: &str,
        source: &str,
        transport: TransportKind,
        connection: Option<ConnectionId>,
    ) -> Vec<(TransportKind, SocketAddr, Option<ConnectionId>, String)> {
        self.proxy.handle_packet(
            Packet {
                data: Bytes::from(text.to_owned()),
                source: source.parse().unwrap(),
                transport,
                connection,
                client_identities: Vec::new(),
                client_domains: Vec::new(),
                local: std::net::SocketAddr::from(([127, 0, 0, 1], 5060)),
            },
            self.now,
            self.wall,
        );
        let mut out = Vec::new();
        while let Some(t) = self.proxy.poll_transmit() {
            out.push((
                t.destination.transport,
                t.destination.remote,
                t.destination.connection,
                String::from_utf8_lossy(&t.data).into_owned(),
            ));
        }
        out
    }
}

/// The callee's answer to `request` (its Via, From, To + tag, Call-ID and CSeq copied).
fn answer(request: &str, status: &str, record_route: bool) -> String {
    let mut out = format!("SIP/2.0 {status}\r\n");
    for line in request.split("\r\n").skip(1) {
        let name = line
            .split(':')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match name.as_str() {
            "via" | "from" | "call-id" | "cseq" => out.push_str(&format!("{line}\r\n")),
            "record-route" if record_route => out.push_str(&format!("{line}\r\n")),
            "to" if line.contains("tag=") => out.push_str(&format!("{line}\r\n")),
            "to" => out.push_str(&format!("{line};tag=callee1\r\n")),
            _ => {}
        }
    }
    out.push_str("Contact: <sip:bob@127.0.0.1:7000>\r\nContent-Length: 0\r\n\r\n");
    out
}

fn status_of(msg: &str) -> &str {
    msg.get(8..11).unwrap_or("")
}

fn record_routes(msg: &str) -> Vec<String> {
    msg.split("\r\n")
        .filter_map(|l| l.split_once(':'))
        .filter(|(n, _)| n.trim().eq_ignore_ascii_case("record-route"))
        .flat_map(|(_, v)| {
            v.split(',')
                .map(|s| s.trim().to_owned())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn every_response_of_a_tls_to_udp_dialog_reaches_the_tls_caller() {
    let mut net = Net::new();
    let conn = Some(ConnectionId(7));
    let reg = "REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:7000;branch=z9hG4bKreg1\r\n\
               Max-Forwards: 70\r\nTo: <sip:bob@127.0.0.1>\r\nFrom: <sip:bob@127.0.0.1>;tag=r1\r\n\
               Call-ID: reg1\r\nCSeq: 1 REGISTER\r\nContact: <sip:bob@127.0.0.1:7000>\r\nExpires: 600\r\n\
               Content-Length: 0\r\n\r\n";
    let out = net.feed(reg, CALLEE, TransportKind::Udp, None);
    assert_eq!(out.len(), 1);
    assert_eq!(status_of(&out[0].3), "200", "{}", out[0].3);

    // INVITE from the TLS caller (SIPp behind stunnel says TCP in its Via).
    let invite = "INVITE sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:40113;branch=z9hG4bK-inv1\r\n\
                  Max-Forwards: 70\r\nTo: <sip:bob@127.0.0.1>\r\nFrom: <sip:alice@127.0.0.1>;tag=c1\r\n\
                  Call-ID: call1\r\nCSeq: 2 INVITE\r\nContact: <sip:alice@127.0.0.1:40113;transport=TCP>\r\n\
                  Content-Length: 0\r\n\r\n";
    let out = net.feed(invite, CALLER, TransportKind::Tls, conn);
    let fwd = out
        .iter()
        .find(|o| o.0 == TransportKind::Udp)
        .expect("INVITE forwarded over UDP");
    assert_eq!(fwd.1, CALLEE.parse::<SocketAddr>().unwrap());
    let ok = answer(&fwd.3, "200 OK", true);
    let out = net.feed(&ok, CALLEE, TransportKind::Udp, None);
    let up: Vec<_> = out.iter().filter(|o| status_of(&o.3) == "200").collect();
    assert_eq!(up.len(), 1, "INVITE 200 not sent back: {out:?}");
    assert_eq!((up[0].0, up[0].2), (TransportKind::Tls, conn));
    let rr = record_routes(&up[0].3);
    assert!(!rr.is_empty(), "no Record-Route in {}", up[0].3);

    // The caller's route set is the Record-Route reversed (RFC 3261 §12.1.2).
    let route: Vec<String> = rr.iter().rev().cloned().collect();
    let route = route.join(", ");
    let ack = format!(
        "ACK sip:bob@127.0.0.1:7000 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:40113;branch=z9hG4bK-ack1\r\n\
         Route: {route}\r\nMax-Forwards: 70\r\nTo: <sip:bob@127.0.0.1>;tag=callee1\r\n\
         From: <sip:alice@127.0.0.1>;tag=c1\r\nCall-ID: call1\r\nCSeq: 2 ACK\r\nContent-Length: 0\r\n\r\n"
    );
    let out = net.feed(&ack, CALLER, TransportKind::Tls, conn);
    assert!(
        out.iter()
            .any(|o| o.3.starts_with("ACK ") && o.0 == TransportKind::Udp),
        "{out:?}"
    );

    let bye = format!(
        "BYE sip:bob@127.0.0.1:7000 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:40113;branch=z9hG4bK-bye1\r\n\
         Route: {route}\r\nMax-Forwards: 70\r\nTo: <sip:bob@127.0.0.1>;tag=callee1\r\n\
         From: <sip:alice@127.0.0.1>;tag=c1\r\nCall-ID: call1\r\nCSeq: 3 BYE\r\nContent-Length: 0\r\n\r\n"
    );
    let out = net.feed(&bye, CALLER, TransportKind::Tls, conn);
    let fwd = out
        .iter()
        .find(|o| o.3.starts_with("BYE ") && o.0 == TransportKind::Udp)
        .unwrap_or_else(|| panic!("BYE not forwarded over UDP: {out:?}"));
    assert_eq!(fwd.1, CALLEE.parse::<SocketAddr>().unwrap());
    let ok = answer(&fwd.3, "200 OK", false);
    let out = net.feed(&ok, CALLEE, TransportKind::Udp, None);
    let up: Vec<_> = out.iter().filter(|o| status_of(&o.3) == "200").collect();
    assert_eq!(up.len(), 1, "BYE 200 not sent back: {out:?}");
    assert_eq!(
        (up[0].0, up[0].2),
        (TransportKind::Tls, conn),
        "{:?}",
        up[0]
    );
    assert!(up[0].3.contains("CSeq: 3 BYE"));
}
