use std::time::{Duration, Instant};

use super::retransmit::Retransmit;
use super::*;
use crate::message::{Message, StatusCode};
use crate::parse::{Limits, parse_message};
use crate::transaction::TimerConfig;

fn request(text: &str) -> Request {
    match parse_message(
        bytes::Bytes::from(text.replace('\n', "\r\n")),
        &Limits::default(),
    ) {
        Ok(Message::Request(r)) => r,
        other => panic!("{other:?}"),
    }
}

const INVITE: &str = "INVITE sip:bob@example.test SIP/2.0
Via: SIP/2.0/TLS 10.0.0.1:5061;branch=z9hG4bKa
Max-Forwards: 70
From: \"Alice\" <sip:alice@example.test>;tag=al
To: <sip:bob@example.test>
Call-ID: c1
CSeq: 7 INVITE
Contact: <sip:alice@10.0.0.1:5061;transport=tls>
Record-Route: <sip:p2.example.test;lr>, <sip:p1.example.test;lr>
Content-Length: 0

";

#[test]
fn uas_and_uac_dialogs_mirror_each_other() {
    let invite = request(INVITE);
    // bob accepts: his dialog.
    let mut bob = Dialog::uas(&invite, "bb").unwrap();
    assert_eq!(bob.local_party, "<sip:bob@example.test>;tag=bb");
    assert_eq!(bob.remote(), "\"Alice\" <sip:alice@example.test>;tag=al");
    assert_eq!(
        bob.remote_target.as_str(),
        "sip:alice@10.0.0.1:5061;transport=tls"
    );
    assert_eq!(
        bob.route_set,
        ["<sip:p2.example.test;lr>", "<sip:p1.example.test;lr>"]
    );
    // alice's dialog from the 2xx: route set reversed.
    let mut alice = Dialog::uac(
        "c1",
        "\"Alice\" <sip:alice@example.test>;tag=al",
        "<sip:bob@example.test>",
        invite.uri().clone(),
        7,
    );
    let mut ok = Response::from_request(&invite, StatusCode::OK);
    ok.set_to_tag("bb");
    ok.headers_mut()
        .push("Contact", "<sip:bob@10.0.0.2:5061;transport=tls>");
    // The 2xx comes back with the Record-Route the proxies put in the INVITE (§12.1.1).
    ok.headers_mut().push(
        "Record-Route",
        "<sip:p2.example.test;lr>, <sip:p1.example.test;lr>",
    );
    alice.confirm(&ok);
    assert_eq!(alice.remote(), "<sip:bob@example.test>;tag=bb");
    assert_eq!(
        alice.route_set,
        ["<sip:p1.example.test;lr>", "<sip:p2.example.test;lr>"]
    );
    // Requests: CSeq one up, ACK with the INVITE's; To/From/Route as the dialog says.
    let bye = alice.request(Method::Bye, None);
    assert_eq!(bye.uri().as_str(), "sip:bob@10.0.0.2:5061;transport=tls");
    assert_eq!(bye.cseq().unwrap().seq, 8);
    assert_eq!(bye.to_tag().unwrap(), Some("bb"));
    assert_eq!(bye.from_tag().unwrap(), Some("al"));
    let routes: Vec<&str> = bye.headers().get_all("Route").collect();
    assert_eq!(
        routes,
        ["<sip:p1.example.test;lr>", "<sip:p2.example.test;lr>"]
    );
    let ack = alice.request(Method::Ack, Some(7));
    assert_eq!(ack.cseq().unwrap().seq, 7);
    assert_eq!(alice.local_cseq, 8, "ACK takes no new CSeq");
    // bob recognises alice's BYE, and his own request goes the other way.
    assert!(bob.matches(&bye));
    assert!(!alice.matches(&bye));
    let bob_bye = bob.request(Method::Bye, None);
    assert_eq!(bob_bye.to_tag().unwrap(), Some("al"));
    assert_eq!(bob_bye.cseq().unwrap().seq, 1);
}

#[test]
fn a_2xx_is_sent_again_until_the_ack_or_64_t1() {
    let t0 = Instant::now();
    let timers = TimerConfig::default();
    let mut r = Retransmit2xx::new(bytes::Bytes::from_static(b"2xx"), t0, &timers);
    let mut at = Vec::new();
    let gave_up_at = loop {
        let now = r.poll_timeout();
        match r.handle_timeout(now) {
            Retransmit::Send(_) => at.push(now.duration_since(t0)),
            Retransmit::GiveUp => break now,
            Retransmit::Wait => unreachable!("woken at its own timeout"),
        }
    };
    let ms: Vec<u128> = at.iter().take(5).map(Duration::as_millis).collect();
    assert_eq!(
        ms,
        [500, 1500, 3500, 7500, 11500],
        "T1, doubling, capped at T2 = 4 s"
    );
    assert_eq!(gave_up_at.duration_since(t0), timers.t1 * 64);
}
