//! Transactions on a virtual clock (RFC 3261 §17, RFC 6026): timers, ACK, matching, CANCEL,
//! merged requests, and a client/server pair over a lossy link.

use bytes::Bytes;
use sotto_sip::message::{Message, Method, Request, Response, StatusCode};
use sotto_sip::parse::{Limits, parse_message};
use sotto_sip::transaction::{
    ClientEvent, ClientState, ClientTransaction, LayerConfig, LayerEvent, Received, ServerEvent,
    ServerState, ServerTransaction, TimerConfig, TransactionLayer, Transmit,
};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

const MS: Duration = Duration::from_millis(1);

fn parse(text: &str) -> Message {
    parse_message(Bytes::from(text.replace('\n', "\r\n")), &Limits::default())
        .expect("test message parses")
}

fn request(method: &str, branch: &str, call: &str, extra: &str) -> Request {
    let text = format!(
        "{method} sip:bob@127.0.0.1 SIP/2.0\n\
         Via: SIP/2.0/UDP 127.0.0.1:5070;branch={branch}\n\
         Max-Forwards: 70\n\
         From: <sip:alice@127.0.0.1>;tag=a1\n\
         To: <sip:bob@127.0.0.1>\n\
         Call-ID: {call}@127.0.0.1\n\
         CSeq: 1 {method}\n\
         Route: <sip:proxy@127.0.0.1;lr>\n\
         {extra}Content-Length: 0\n\n"
    );
    match parse(&text) {
        Message::Request(r) => r,
        Message::Response(_) => panic!("not a request"),
    }
}

fn invite(branch: &str) -> Request {
    request("INVITE", branch, "c1", "")
}

fn response(req: &Request, code: u16) -> Response {
    let mut r = Response::from_request(req, StatusCode(code));
    if code > 100 {
        r.set_to_tag("b2");
    }
    // Through the wire form, as a peer would send it.
    match parse_message(r.to_bytes(), &Limits::default()).expect("response parses") {
        Message::Response(r) => r,
        Message::Request(_) => panic!("not a response"),
    }
}

fn decode(t: &Transmit) -> Message {
    parse_message(t.bytes.clone(), &Limits::default()).expect("transmit parses")
}

/// Runs a client transaction's timers from `t0` until it terminates (bounded), returning the
/// offsets of every transmission after the first and the offsets of events.
fn run_client(tx: &mut ClientTransaction, t0: Instant) -> (Vec<Duration>, Vec<(Duration, String)>) {
    let mut sends = Vec::new();
    let mut events = Vec::new();
    for _ in 0..1000 {
        let Some(at) = tx.poll_timeout() else { break };
        tx.handle_timeout(at);
        while let Some(t) = tx.poll_transmit() {
            assert!(t.retransmission);
            sends.push(at - t0);
        }
        while let Some(e) = tx.poll_event() {
            events.push((at - t0, format!("{e:?}")));
        }
    }
    assert!(tx.is_terminated());
    (sends, events)
}

fn secs(v: &[f64]) -> Vec<Duration> {
    v.iter().map(|s| Duration::from_secs_f64(*s)).collect()
}

#[test]
fn timer_a_doubles_until_timer_b() {
    let t0 = Instant::now();
    let mut tx =
        ClientTransaction::new(invite("z9hG4bKa"), false, &TimerConfig::default(), t0).unwrap();
    let first = tx.poll_transmit().expect("INVITE sent");
    assert!(!first.retransmission);
    assert_eq!(tx.state(), ClientState::Calling);
    let (sends, events) = run_client(&mut tx, t0);
    // A = 500 ms, 1 s, 2 s, 4 s, 8 s, 16 s (no cap for INVITE); B = 64·T1 = 32 s.
    assert_eq!(sends, secs(&[0.5, 1.5, 3.5, 7.5, 15.5, 31.5]));
    let kinds: Vec<&str> = events.iter().map(|(_, e)| e.as_str()).collect();
    assert_eq!(kinds, ["Timeout", "Terminated"]);
    assert_eq!(events[0].0, Duration::from_secs(32));
}

#[test]
fn timer_e_capped_at_t2_then_timer_f() {
    let t0 = Instant::now();
    let req = request("OPTIONS", "z9hG4bKe", "c2", "");
    let mut tx = ClientTransaction::new(req, false, &TimerConfig::default(), t0).unwrap();
    let _ = tx.poll_transmit();
    let (sends, events) = run_client(&mut tx, t0);
    assert_eq!(
        sends,
        secs(&[0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5])
    );
    assert_eq!(events[0], (Duration::from_secs(32), "Timeout".to_owned()));
}

#[test]
fn timer_e_is_t2_in_proceeding_and_timer_k_is_t4() {
    let t0 = Instant::now();
    let req = request("REGISTER", "z9hG4bKk", "c3", "");
    let mut tx = ClientTransaction::new(req.clone(), false, &TimerConfig::default(), t0).unwrap();
    let _ = tx.poll_transmit();
    tx.handle_timeout(t0 + 500 * MS); // E fires at 0.5 s, next at 1.5 s
    assert_eq!(tx.poll_timeout(), Some(t0 + 1500 * MS));
    tx.handle_response(response(&req, 100), t0 + 600 * MS)
        .unwrap();
    assert_eq!(tx.state(), ClientState::Proceeding);
    tx.handle_timeout(t0 + 1500 * MS);
    // In Proceeding the next interval is T2 = 4 s.
    assert_eq!(tx.poll_timeout(), Some(t0 + 5500 * MS));
    tx.handle_response(response(&req, 200), t0 + 2 * Duration::from_secs(1))
        .unwrap();
    assert_eq!(tx.state(), ClientState::Completed);
    // Timer K = T4 = 5 s after the final response; retransmissions absorbed meanwhile.
    assert_eq!(tx.poll_timeout(), Some(t0 + Duration::from_secs(7)));
    tx.handle_response(response(&req, 200), t0 + Duration::from_secs(3))
        .unwrap();
    let mut finals = 0;
    while let Some(e) = tx.poll_event() {
        if let ClientEvent::Response(r) = e {
            finals += usize::from(r.status().is_final());
        }
    }
    assert_eq!(finals, 1);
    tx.handle_timeout(t0 + Duration::from_secs(7));
    assert!(tx.is_terminated());
}

#[test]
fn reliable_transport_has_no_retransmissions_and_zero_d_k() {
    let t0 = Instant::now();
    let inv = invite("z9hG4bKr");
    let mut tx = ClientTransaction::new(inv.clone(), true, &TimerConfig::default(), t0).unwrap();
    assert!(tx.poll_transmit().is_some());
    // Only Timer B is armed.
    assert_eq!(tx.poll_timeout(), Some(t0 + Duration::from_secs(32)));
    tx.handle_response(response(&inv, 486), t0 + Duration::from_secs(1))
        .unwrap();
    let ack = tx.poll_transmit().expect("ACK");
    assert!(matches!(decode(&ack), Message::Request(r) if *r.method() == Method::Ack));
    assert!(
        tx.is_terminated(),
        "Timer D is zero on a reliable transport"
    );

    let opt = request("OPTIONS", "z9hG4bKr2", "c4", "");
    let mut tx = ClientTransaction::new(opt.clone(), true, &TimerConfig::default(), t0).unwrap();
    let _ = tx.poll_transmit();
    tx.handle_timeout(t0 + Duration::from_secs(10));
    assert!(tx.poll_transmit().is_none());
    tx.handle_response(response(&opt, 200), t0 + Duration::from_secs(11))
        .unwrap();
    assert!(
        tx.is_terminated(),
        "Timer K is zero on a reliable transport"
    );

    // Server side: no G, and I and J are zero.
    let mut st = ServerTransaction::new(inv.clone(), true, &TimerConfig::default(), t0).unwrap();
    st.send_response(response(&inv, 486), t0).unwrap();
    assert_eq!(
        st.poll_timeout(),
        Some(t0 + Duration::from_secs(32)),
        "only H"
    );
    let ack = match decode(&ack) {
        Message::Request(r) => r,
        Message::Response(_) => unreachable!(),
    };
    st.handle_request(ack, t0).unwrap();
    assert!(
        st.is_terminated(),
        "Timer I is zero on a reliable transport"
    );
    let mut st = ServerTransaction::new(opt.clone(), true, &TimerConfig::default(), t0).unwrap();
    st.send_response(response(&opt, 200), t0).unwrap();
    assert!(
        st.is_terminated(),
        "Timer J is zero on a reliable transport"
    );
}

#[test]
fn ack_for_487_is_built_in_the_transaction() {
    let t0 = Instant::now();
    let inv = invite("z9hG4bKack");
    let mut tx = ClientTransaction::new(inv.clone(), false, &TimerConfig::default(), t0).unwrap();
    let _ = tx.poll_transmit();
    tx.handle_response(response(&inv, 180), t0 + 100 * MS)
        .unwrap();
    assert_eq!(tx.poll_timeout(), None, "A and B stop in Proceeding");
    let r487 = response(&inv, 487);
    tx.handle_response(r487.clone(), t0 + Duration::from_secs(2))
        .unwrap();
    assert_eq!(tx.state(), ClientState::Completed);
    let ack = match decode(&tx.poll_transmit().expect("ACK sent")) {
        Message::Request(r) => r,
        Message::Response(_) => panic!("ACK expected"),
    };
    assert_eq!(*ack.method(), Method::Ack);
    assert_eq!(ack.uri(), inv.uri());
    assert_eq!(
        ack.via_top().unwrap(),
        inv.via_top().unwrap(),
        "same branch"
    );
    assert_eq!(ack.vias().unwrap().len(), 1);
    assert_eq!(ack.cseq().unwrap().seq, 1);
    assert_eq!(ack.cseq().unwrap().method, Method::Ack);
    assert_eq!(ack.to_tag().unwrap(), Some("b2"));
    assert_eq!(ack.from_tag().unwrap(), Some("a1"));
    assert_eq!(ack.call_id().unwrap(), inv.call_id().unwrap());
    assert_eq!(ack.routes().unwrap(), inv.routes().unwrap());
    let ups: Vec<u16> = std::iter::from_fn(|| tx.poll_event())
        .filter_map(|e| match e {
            ClientEvent::Response(r) => Some(r.status().as_u16()),
            _ => None,
        })
        .collect();
    assert_eq!(ups, [180, 487]);
    // The 487 retransmitted: ACK again, nothing passed up.
    tx.handle_response(r487, t0 + Duration::from_secs(3))
        .unwrap();
    let again = tx.poll_transmit().expect("ACK resent");
    assert!(again.retransmission);
    assert!(tx.poll_event().is_none());
    // Timer D = 32 s.
    assert_eq!(tx.poll_timeout(), Some(t0 + Duration::from_secs(34)));
    tx.handle_timeout(t0 + Duration::from_secs(34));
    assert!(tx.is_terminated());
}

#[test]
fn invite_2xx_is_passed_up_not_acked() {
    let t0 = Instant::now();
    let inv = invite("z9hG4bK2xx");
    let mut tx = ClientTransaction::new(inv.clone(), false, &TimerConfig::default(), t0).unwrap();
    let _ = tx.poll_transmit();
    let ok = response(&inv, 200);
    tx.handle_response(ok.clone(), t0 + 300 * MS).unwrap();
    assert_eq!(tx.state(), ClientState::Accepted);
    assert!(
        tx.poll_transmit().is_none(),
        "the TU sends the ACK of a 2xx"
    );
    tx.handle_response(ok, t0 + Duration::from_secs(1)).unwrap();
    let oks = std::iter::from_fn(|| tx.poll_event())
        .filter(|e| matches!(e, ClientEvent::Response(r) if r.status() == StatusCode::OK))
        .count();
    assert_eq!(oks, 2, "every 2xx goes to the TU (RFC 6026)");
    assert!(tx.poll_transmit().is_none());
    // Timer M = 64·T1.
    assert_eq!(
        tx.poll_timeout(),
        Some(t0 + 300 * MS + Duration::from_secs(32))
    );
    tx.handle_timeout(t0 + 300 * MS + Duration::from_secs(32));
    assert!(tx.is_terminated());
}

#[test]
fn invite_server_trying_g_h_and_i() {
    let t0 = Instant::now();
    let inv = invite("z9hG4bKsrv");
    let mut st = ServerTransaction::new(inv.clone(), false, &TimerConfig::default(), t0).unwrap();
    assert_eq!(st.state(), ServerState::Proceeding);
    // TU silent for 200 ms: 100 Trying.
    assert_eq!(st.poll_timeout(), Some(t0 + 200 * MS));
    st.handle_timeout(t0 + 200 * MS);
    let trying = st.poll_transmit().expect("100 Trying");
    assert!(
        matches!(decode(&trying), Message::Response(r) if r.status() == StatusCode::TRYING && r.to_tag().unwrap().is_none())
    );
    // A retransmitted INVITE gets the 100 again.
    st.handle_request(inv.clone(), t0 + 300 * MS).unwrap();
    assert_eq!(st.poll_transmit().map(|t| t.bytes), Some(trying.bytes));
    // Final 486 at 1 s: G = 0.5, 1, 2, 4, 4, ... until H = 32 s.
    let t1 = t0 + Duration::from_secs(1);
    st.send_response(response(&inv, 486), t1).unwrap();
    let first = st.poll_transmit().expect("486");
    let mut sends = Vec::new();
    let mut events = Vec::new();
    for _ in 0..1000 {
        let Some(at) = st.poll_timeout() else { break };
        st.handle_timeout(at);
        while let Some(t) = st.poll_transmit() {
            assert_eq!(t.bytes, first.bytes);
            sends.push(at - t1);
        }
        while let Some(e) = st.poll_event() {
            events.push((at - t1, format!("{e:?}")));
        }
    }
    assert_eq!(
        sends,
        secs(&[0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5])
    );
    assert_eq!(events[0], (Duration::from_secs(32), "Timeout".to_owned()));

    // With an ACK: Confirmed, then Timer I = T4.
    let mut st = ServerTransaction::new(inv.clone(), false, &TimerConfig::default(), t0).unwrap();
    st.send_response(response(&inv, 180), t0).unwrap();
    assert_eq!(st.poll_timeout(), None, "no 100 Trying once the TU spoke");
    st.send_response(response(&inv, 603), t0).unwrap();
    let ack = request("ACK", "z9hG4bKsrv", "c1", "");
    st.handle_request(ack.clone(), t0 + 100 * MS).unwrap();
    assert_eq!(st.state(), ServerState::Confirmed);
    st.handle_request(ack, t0 + 200 * MS).unwrap(); // absorbed
    assert_eq!(
        st.poll_timeout(),
        Some(t0 + 100 * MS + Duration::from_secs(5))
    );
    st.handle_timeout(t0 + 100 * MS + Duration::from_secs(5));
    assert!(st.is_terminated());
    assert!(st.send_response(response(&inv, 200), t0).is_err());
}

#[test]
fn non_invite_server_absorbs_retransmissions_and_timer_j() {
    let t0 = Instant::now();
    let req = request("MESSAGE", "z9hG4bKmsg", "c5", "");
    let mut st = ServerTransaction::new(req.clone(), false, &TimerConfig::default(), t0).unwrap();
    assert_eq!(st.state(), ServerState::Trying);
    assert_eq!(st.poll_timeout(), None, "no 100 Trying for non-INVITE");
    st.handle_request(req.clone(), t0 + 10 * MS).unwrap();
    assert!(st.poll_transmit().is_none(), "absorbed in Trying");
    st.send_response(response(&req, 200), t0 + 20 * MS).unwrap();
    let sent = st.poll_transmit().expect("200");
    st.handle_request(req.clone(), t0 + 600 * MS).unwrap();
    let again = st.poll_transmit().expect("200 resent");
    assert!(again.retransmission);
    assert_eq!(again.bytes, sent.bytes);
    assert!(
        st.poll_event().is_none(),
        "the TU does not see retransmissions"
    );
    assert_eq!(
        st.poll_timeout(),
        Some(t0 + 20 * MS + Duration::from_secs(32))
    );
    st.handle_timeout(t0 + 20 * MS + Duration::from_secs(32));
    assert!(st.is_terminated());
}

#[test]
fn configurable_timers() {
    let timers = TimerConfig {
        t1: Duration::from_millis(100),
        t2: Duration::from_millis(300),
        t4: Duration::from_secs(1),
        ..TimerConfig::default()
    };
    let t0 = Instant::now();
    let mut tx =
        ClientTransaction::new(request("BYE", "z9hG4bKcfg", "c6", ""), false, &timers, t0).unwrap();
    let _ = tx.poll_transmit();
    let (sends, events) = run_client(&mut tx, t0);
    assert_eq!(sends.first(), Some(&(100 * MS)));
    assert_eq!(sends.get(1), Some(&(300 * MS)));
    assert_eq!(sends.get(2), Some(&(600 * MS)), "capped at T2 = 300 ms");
    assert_eq!(events[0], (6400 * MS, "Timeout".to_owned()), "F = 64·T1");
}

fn layer() -> TransactionLayer {
    TransactionLayer::new(LayerConfig::default(), sotto_crypto_rust::provider())
}

fn drain(l: &mut TransactionLayer) -> (Vec<Message>, Vec<LayerEvent>) {
    let sent = std::iter::from_fn(|| l.poll_transmit())
        .map(|(_, t)| decode(&t))
        .collect();
    let events = std::iter::from_fn(|| l.poll_event()).collect();
    (sent, events)
}

fn status_of(m: &Message) -> Option<u16> {
    m.as_response().map(|r| r.status().as_u16())
}

#[test]
fn layer_cancel_matching() {
    let t0 = Instant::now();
    let mut l = layer();
    let inv = invite("z9hG4bKinv1");
    let Received::Request(inc) = l.handle_request(inv.clone(), false, t0) else {
        panic!("new INVITE")
    };
    let invite_id = l.accept(inc, t0).unwrap();
    l.send_response(invite_id, response(&inv, 180), t0).unwrap();
    let _ = drain(&mut l);
    // CANCEL: same branch, own transaction, answered 200; the TU then sends 487.
    let cancel = request("CANCEL", "z9hG4bKinv1", "c1", "");
    let got = l.handle_request(cancel.clone(), false, t0 + 1000 * MS);
    let Received::Cancel {
        cancel: cancel_id,
        invite,
    } = got
    else {
        panic!("CANCEL expected, got {got:?}")
    };
    assert_eq!(invite, Some(invite_id));
    assert_ne!(cancel_id, invite_id);
    let (sent, _) = drain(&mut l);
    let r = sent
        .first()
        .and_then(Message::as_response)
        .expect("200 to CANCEL");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.cseq().unwrap().method, Method::Cancel);
    assert!(r.to_tag().unwrap().is_some());
    // A retransmitted CANCEL is absorbed and answered again.
    assert!(matches!(
        l.handle_request(cancel, false, t0 + 1100 * MS),
        Received::Absorbed(id) if id == cancel_id
    ));
    assert_eq!(
        drain(&mut l).0.iter().map(status_of).collect::<Vec<_>>(),
        [Some(200)]
    );
    l.send_response(invite_id, response(&inv, 487), t0 + 1200 * MS)
        .unwrap();
    assert_eq!(
        drain(&mut l).0.iter().map(status_of).collect::<Vec<_>>(),
        [Some(487)]
    );
    let ack = request("ACK", "z9hG4bKinv1", "c1", "");
    assert!(
        matches!(l.handle_request(ack, false, t0 + 1300 * MS), Received::Absorbed(id) if id == invite_id)
    );
    assert_eq!(
        l.server(invite_id).map(|s| s.state()),
        Some(ServerState::Confirmed)
    );
    // A CANCEL for nothing: 481.
    let stray = request("CANCEL", "z9hG4bKnone", "c9", "");
    assert!(matches!(
        l.handle_request(stray, false, t0),
        Received::Cancel { invite: None, .. }
    ));
    assert_eq!(
        drain(&mut l).0.iter().map(status_of).collect::<Vec<_>>(),
        [Some(481)]
    );
}

#[test]
fn layer_merged_request_gets_482() {
    let t0 = Instant::now();
    let mut l = layer();
    let first = invite("z9hG4bKpath1");
    let Received::Request(inc) = l.handle_request(first.clone(), false, t0) else {
        panic!("new")
    };
    let id = l.accept(inc, t0).unwrap();
    // The same request arriving over another path: same From tag, Call-ID, CSeq; new branch.
    let forked = invite("z9hG4bKpath2");
    let got = l.handle_request(forked, false, t0 + 10 * MS);
    let Received::Merged(merged) = got else {
        panic!("merged expected, got {got:?}")
    };
    assert_ne!(merged, id);
    let (sent, _) = drain(&mut l);
    assert_eq!(sent.iter().map(status_of).collect::<Vec<_>>(), [Some(482)]);
    // A retransmission of the first is not a merged request.
    assert!(
        matches!(l.handle_request(first, false, t0 + 20 * MS), Received::Absorbed(i) if i == id)
    );
    // Once the first transaction is gone, the same CSeq is no longer "ongoing".
    l.send_response(id, response(&invite("z9hG4bKpath1"), 486), t0)
        .unwrap();
    let ack = request("ACK", "z9hG4bKpath1", "c1", "");
    let _ = l.handle_request(ack, false, t0);
    l.handle_timeout(t0 + Duration::from_secs(6)); // Timer I
    assert!(l.server(id).is_none());
    assert!(matches!(
        l.handle_request(invite("z9hG4bKpath3"), false, t0 + Duration::from_secs(6)),
        Received::Request(_)
    ));
}

#[test]
fn layer_routes_2xx_ack_to_tu_and_stray_responses() {
    let t0 = Instant::now();
    let mut l = layer();
    let ack = request("ACK", "z9hG4bKnew", "c1", "");
    assert!(matches!(l.handle_request(ack, false, t0), Received::Ack(_)));
    let resp = response(&invite("z9hG4bKunknown"), 200);
    assert!(matches!(
        l.handle_response(resp, t0),
        Received::StrayResponse(_)
    ));
    let mut bad = invite("z9hG4bKx");
    bad.headers_mut().remove("Via");
    assert!(matches!(
        l.handle_request(bad, false, t0),
        Received::Invalid(_)
    ));
}

#[test]
fn rfc2543_fallback_matching() {
    let t0 = Instant::now();
    let mut l = layer();
    let old = invite("1234"); // no magic cookie
    let Received::Request(inc) = l.handle_request(old.clone(), false, t0) else {
        panic!("new")
    };
    let id = l.accept(inc, t0).unwrap();
    assert!(matches!(l.handle_request(old.clone(), false, t0), Received::Absorbed(i) if i == id));
    l.send_response(id, response(&old, 404), t0).unwrap();
    let ack = request("ACK", "1234", "c1", "");
    assert!(matches!(l.handle_request(ack, false, t0), Received::Absorbed(i) if i == id));
    assert_eq!(
        l.server(id).map(|s| s.state()),
        Some(ServerState::Confirmed)
    );
    // Another Call-ID is another transaction.
    assert!(matches!(
        l.handle_request(request("INVITE", "1234", "other", ""), false, t0),
        Received::Request(_)
    ));
    // Client transactions require the cookie.
    assert!(ClientTransaction::new(old, false, &TimerConfig::default(), t0).is_err());
}

/// A link that drops the first `drop_first` packets in each direction and delays the rest.
struct Link {
    delay: Duration,
    drop_first: usize,
    sent: [usize; 2],
    queue: VecDeque<(Instant, usize, Bytes)>,
}

impl Link {
    fn send(&mut self, dir: usize, now: Instant, bytes: Bytes) {
        self.sent[dir] += 1;
        if self.sent[dir] > self.drop_first {
            self.queue.push_back((now + self.delay, dir, bytes));
        }
    }
}

/// Client layer sends `method`; the server TU answers `final_code` (after a 180 for INVITE).
/// Returns the final status the client TU saw and the number of packets sent.
fn pair(method: &str, final_code: u16, drop_first: usize) -> (Option<u16>, [usize; 2]) {
    let t0 = Instant::now();
    let mut now = t0;
    let mut client = layer();
    let mut server = layer();
    let mut link = Link {
        delay: 20 * MS,
        drop_first,
        sent: [0, 0],
        queue: VecDeque::new(),
    };
    let req = request(method, "z9hG4bKpair", "pair", "");
    let cid = client.send_request(req, false, now).unwrap();
    let mut final_seen = None;
    for _ in 0..10_000 {
        while let Some((_, t)) = client.poll_transmit() {
            link.send(0, now, t.bytes);
        }
        while let Some((_, t)) = server.poll_transmit() {
            link.send(1, now, t.bytes);
        }
        while let Some(ev) = client.poll_event() {
            if let LayerEvent::Client(id, ClientEvent::Response(r)) = ev {
                assert_eq!(id, cid);
                if r.status().is_final() {
                    assert!(final_seen.is_none() || method != "INVITE" || r.status().is_success());
                    final_seen = Some(r.status().as_u16());
                }
            }
        }
        while server.poll_event().is_some() {}
        let next_packet = link.queue.front().map(|p| p.0);
        let next = [next_packet, client.poll_timeout(), server.poll_timeout()]
            .into_iter()
            .flatten()
            .min();
        let Some(next) = next else { break };
        assert!(next >= now);
        now = next;
        client.handle_timeout(now);
        server.handle_timeout(now);
        while link.queue.front().is_some_and(|p| p.0 <= now) {
            let Some((_, dir, bytes)) = link.queue.pop_front() else {
                break;
            };
            let msg = parse_message(bytes, &Limits::default()).expect("link carries SIP");
            if dir == 0 {
                match server.handle_message(msg, false, now) {
                    Received::Request(inc) => {
                        let r = inc.request().clone();
                        let id = server.accept(inc, now).unwrap();
                        if method == "INVITE" {
                            server.send_response(id, response(&r, 180), now).unwrap();
                        }
                        server
                            .send_response(id, response(&r, final_code), now)
                            .unwrap();
                    }
                    Received::Absorbed(_) | Received::Ack(_) => {}
                    other => panic!("server got {other:?}"),
                }
            } else {
                match client.handle_message(msg, false, now) {
                    Received::Response(_) | Received::StrayResponse(_) => {}
                    other => panic!("client got {other:?}"),
                }
            }
        }
    }
    assert!(
        client.is_empty() && server.is_empty(),
        "both sides finished"
    );
    assert!(now - t0 < Duration::from_secs(40));
    (final_seen, link.sent)
}

#[test]
fn transaction_pair_survives_loss() {
    for drop_first in [0, 1, 3] {
        let (got, sent) = pair("MESSAGE", 200, drop_first);
        assert_eq!(got, Some(200), "MESSAGE, {drop_first} dropped");
        assert!(sent[0] > drop_first);
        let (got, sent) = pair("INVITE", 486, drop_first);
        assert_eq!(got, Some(486), "INVITE, {drop_first} dropped");
        // INVITE, then ACK; more with loss.
        assert!(sent[0] >= 2 + drop_first);
    }
    // Without loss nothing is retransmitted: MESSAGE and 200 once each.
    assert_eq!(pair("MESSAGE", 200, 0).1, [1, 1]);
}

#[test]
fn invite_server_accepted_state_and_transport_error() {
    let t0 = Instant::now();
    let inv = invite("z9hG4bKacc");
    let mut st = ServerTransaction::new(inv.clone(), false, &TimerConfig::default(), t0).unwrap();
    st.send_response(response(&inv, 200), t0).unwrap();
    assert_eq!(st.state(), ServerState::Accepted);
    let _ = st.poll_transmit();
    // Retransmitted INVITEs are absorbed: the TU core retransmits its 2xx itself.
    st.handle_request(inv.clone(), t0 + 100 * MS).unwrap();
    assert!(st.poll_transmit().is_none());
    st.send_response(response(&inv, 200), t0 + 500 * MS)
        .unwrap();
    assert!(
        st.poll_transmit().is_some(),
        "TU 2xx retransmission goes out"
    );
    assert!(st.send_response(response(&inv, 486), t0).is_err());
    // An ACK matching the transaction in Accepted goes to the TU (RFC 6026 §7.1).
    st.handle_request(request("ACK", "z9hG4bKacc", "c1", ""), t0 + 600 * MS)
        .unwrap();
    assert!(matches!(st.poll_event(), Some(ServerEvent::Ack(_))));
    // Timer L = 64·T1.
    assert_eq!(st.poll_timeout(), Some(t0 + Duration::from_secs(32)));

    let mut st = ServerTransaction::new(inv, false, &TimerConfig::default(), t0).unwrap();
    st.handle_transport_error(t0);
    assert!(matches!(st.poll_event(), Some(ServerEvent::TransportError)));
    assert!(matches!(st.poll_event(), Some(ServerEvent::Terminated)));
    assert_eq!(st.poll_timeout(), None);
}
