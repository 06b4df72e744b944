//! The transaction layer's timer index (one ordered set of deadlines, refiled on every change)
//! against a brute-force oracle: the earliest deadline of the live transactions, each asked on
//! its own. Thousands of client and server transactions, UDP and reliable, driven by a
//! deterministic pseudo-random schedule of requests, responses and timer firings.

use bytes::Bytes;
use sotto_sip::message::{Message, Request, Response, StatusCode};
use sotto_sip::parse::{Limits, parse_message};
use sotto_sip::transaction::{
    ClientState, LayerConfig, LayerEvent, Received, TransactionId, TransactionLayer,
};
use std::time::{Duration, Instant};

fn request(method: &str, branch: &str, call: u32) -> Request {
    let text = format!(
        "{method} sip:bob@127.0.0.1 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:5070;branch={branch}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:alice@127.0.0.1>;tag=a{call}\r\n\
         To: <sip:bob@127.0.0.1>\r\n\
         Call-ID: {call}@127.0.0.1\r\n\
         CSeq: 1 {method}\r\n\
         Content-Length: 0\r\n\r\n"
    );
    match parse_message(Bytes::from(text), &Limits::default()) {
        Ok(Message::Request(r)) => r,
        other => panic!("not a request: {other:?}"),
    }
}

fn response(req: &Request, code: u16) -> Response {
    let mut r = Response::from_request(req, StatusCode(code));
    r.set_to_tag("b2");
    match parse_message(r.to_bytes(), &Limits::default()) {
        Ok(Message::Response(r)) => r,
        other => panic!("not a response: {other:?}"),
    }
}

/// xorshift64*: a fixed schedule, the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The earliest deadline of the live transactions in `ids`, each asked on its own.
fn oracle(l: &TransactionLayer, ids: &[TransactionId]) -> Option<Instant> {
    ids.iter()
        .filter_map(|id| {
            l.client(*id)
                .and_then(|t| t.poll_timeout())
                .or_else(|| l.server(*id).and_then(|t| t.poll_timeout()))
        })
        .min()
}

fn live(l: &TransactionLayer, ids: &[TransactionId]) -> usize {
    ids.iter()
        .filter(|id| l.client(**id).is_some() || l.server(**id).is_some())
        .count()
}

#[test]
fn poll_timeout_is_the_earliest_deadline_of_any_transaction() {
    let t0 = Instant::now();
    let mut now = t0;
    let mut l = TransactionLayer::new(LayerConfig::default(), sotto_crypto_rust::provider());
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut ids: Vec<TransactionId> = Vec::new();
    // Requests sent (client side) and received (server side), to answer later.
    let mut sent: Vec<(TransactionId, Request)> = Vec::new();
    let mut received: Vec<(TransactionId, Request)> = Vec::new();
    let mut fired = 0usize;
    let mut terminated = 0usize;
    // Client transactions left waiting after a provisional response (no timer then).
    let mut provisional = 0usize;
    let mut last_was_time;
    for step in 0..3000u32 {
        last_was_time = false;
        match rng.below(10) {
            // A new client transaction (INVITE or not, UDP or reliable).
            0..=2 => {
                let method = if rng.below(3) == 0 {
                    "INVITE"
                } else {
                    "OPTIONS"
                };
                let req = request(method, &format!("z9hG4bKc{step}"), step);
                let reliable = rng.below(4) == 0;
                let id = l.send_request(req.clone(), reliable, now).expect("room");
                ids.push(id);
                sent.push((id, req));
            }
            // A new server transaction.
            3..=4 => {
                let method = if rng.below(3) == 0 {
                    "INVITE"
                } else {
                    "REGISTER"
                };
                let req = request(method, &format!("z9hG4bKs{step}"), step);
                let reliable = rng.below(4) == 0;
                match l.handle_request(req.clone(), reliable, now) {
                    Received::Request(inc) => {
                        let id = l.accept(inc, now).expect("room");
                        ids.push(id);
                        received.push((id, req));
                    }
                    other => panic!("a new request was {other:?}"),
                }
            }
            // A response to a pending client transaction.
            5 if !sent.is_empty() => {
                let i = rng.below(sent.len() as u64) as usize;
                let (_, req) = sent.swap_remove(i);
                let code = [180, 200, 404, 486][rng.below(4) as usize];
                provisional += usize::from(code == 180 && req.method().as_str() == "INVITE");
                l.handle_response(response(&req, code), now);
            }
            // The TU answers a server transaction.
            6 if !received.is_empty() => {
                let i = rng.below(received.len() as u64) as usize;
                let (id, req) = received.swap_remove(i);
                let code = [200, 403, 486][rng.below(3) as usize];
                l.send_response(id, response(&req, code), now)
                    .expect("answer");
            }
            // Time passes, by up to 3 s, and every due timer fires.
            _ => {
                last_was_time = true;
                now += Duration::from_millis(rng.below(3000));
                if l.poll_timeout().is_some_and(|at| at <= now) {
                    l.handle_timeout(now);
                }
            }
        }
        while let Some((_, t)) = l.poll_transmit() {
            fired += usize::from(t.retransmission);
        }
        while let Some(ev) = l.poll_event() {
            if matches!(
                ev,
                LayerEvent::Client(_, sotto_sip::transaction::ClientEvent::Terminated)
                    | LayerEvent::Server(_, sotto_sip::transaction::ServerEvent::Terminated)
            ) {
                terminated += 1;
            }
        }
        assert_eq!(l.poll_timeout(), oracle(&l, &ids), "step {step}");
        assert_eq!(l.len(), live(&l, &ids), "step {step}");
        // Nothing is left due: every due transaction fired.
        assert!(l.poll_timeout().is_none_or(|at| at > now || !last_was_time));
    }
    // The schedule exercised retransmissions and terminations, not just creation.
    assert!(fired > 50, "only {fired} retransmissions");
    assert!(terminated > 500, "only {terminated} terminations");
    // Run every remaining timer out: the layer empties and has no deadline left.
    for _ in 0..10_000 {
        match l.poll_timeout() {
            Some(at) => {
                now = now.max(at);
                l.handle_timeout(now);
                while l.poll_transmit().is_some() {}
                while l.poll_event().is_some() {}
                assert_eq!(l.poll_timeout(), oracle(&l, &ids));
            }
            None => break,
        }
    }
    // Only what waits without a timer remains: server transactions the TU never answered
    // and INVITE client transactions after a provisional response.
    for id in &ids {
        if let Some(t) = l.client(*id) {
            assert_eq!(t.state(), ClientState::Proceeding, "{id:?}");
            provisional -= 1;
        } else if l.server(*id).is_some() {
            assert!(received.iter().any(|(r, _)| r == id), "{id:?} was answered");
        }
    }
    assert!(l.len() >= received.len());
    // Provisional responses counted that found their transaction already over.
    assert!(provisional < 100, "{provisional}");
    assert_eq!(oracle(&l, &ids), None);
}
