//! The table under load: compaction of finished transactions and eviction when full.

use super::*;
use crate::message::{Message, Request, Response, StatusCode};
use crate::parse::{Limits, parse_message};
use std::time::{Duration, Instant};

fn request(method: &str, n: u32) -> Request {
    let text = format!(
        "{method} sip:bob@127.0.0.1 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK{method}{n}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:alice@127.0.0.1>;tag=a{n}\r\nTo: <sip:bob@127.0.0.1>\r\n\
         Call-ID: {n}@127.0.0.1\r\nCSeq: 1 {method}\r\nContent-Length: 0\r\n\r\n"
    );
    match parse_message(Bytes::from(text), &Limits::default()) {
        Ok(Message::Request(r)) => r,
        other => panic!("not a request: {other:?}"),
    }
}

fn answered(code: u16, req: &Request) -> Response {
    let mut r = Response::from_request(req, StatusCode(code));
    r.set_to_tag("t");
    r
}

fn layer(max: usize) -> TransactionLayer {
    TransactionLayer::new(
        LayerConfig {
            max_transactions: max,
            ..LayerConfig::default()
        },
        sotto_crypto_rust::provider(),
    )
}

fn drain(l: &mut TransactionLayer) -> (Vec<Transmit>, Vec<LayerEvent>) {
    let mut t = Vec::new();
    let mut e = Vec::new();
    while let Some((_, x)) = l.poll_transmit() {
        t.push(x);
    }
    while let Some(x) = l.poll_event() {
        e.push(x);
    }
    (t, e)
}

/// Accepts request `n` of `method` over UDP; `Ok(id)` or the layer's refusal.
fn accept(
    l: &mut TransactionLayer,
    method: &str,
    n: u32,
    now: Instant,
) -> Result<TransactionId, TransactionError> {
    match l.handle_request(request(method, n), false, now) {
        Received::Request(inc) => l.accept(inc, now),
        other => panic!("not new: {other:?}"),
    }
}

#[test]
fn completed_transactions_drop_their_request() {
    let now = Instant::now();
    let mut l = layer(16);
    let id = accept(&mut l, "OPTIONS", 1, now).unwrap();
    assert!(l.server(id).unwrap().request().is_some());
    l.send_response(id, answered(200, &request("OPTIONS", 1)), now)
        .unwrap();
    let (sent, _) = drain(&mut l);
    assert_eq!(sent.len(), 1);
    let tx = l.server(id).unwrap();
    assert_eq!(tx.state(), ServerState::Completed);
    assert!(tx.request().is_none());
    assert!(tx.is_absorbing());
    // Still absorbs a retransmission with the same bytes.
    assert!(matches!(
        l.handle_request(request("OPTIONS", 1), false, now),
        Received::Absorbed(i) if i == id
    ));
    let (again, _) = drain(&mut l);
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].bytes, sent[0].bytes);
    assert!(again[0].retransmission);
}

#[test]
fn a_full_table_evicts_the_oldest_absorbing_transaction() {
    let t0 = Instant::now();
    let mut l = layer(4);
    let mut done = Vec::new();
    for n in 0..4 {
        let now = t0 + Duration::from_millis(u64::from(n));
        let id = accept(&mut l, "OPTIONS", n, now).unwrap();
        l.send_response(id, answered(200, &request("OPTIONS", n)), now)
            .unwrap();
        done.push(id);
    }
    drain(&mut l);
    assert_eq!(l.len(), 4);
    // A fifth request: the oldest completed one makes room, and ends (its Terminated event).
    let now = t0 + Duration::from_secs(1);
    let live = accept(&mut l, "OPTIONS", 10, now).unwrap();
    assert_eq!(l.len(), 4);
    assert_eq!(l.evicted(), 1);
    assert!(l.server(done[0]).is_none());
    let (_, events) = drain(&mut l);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, LayerEvent::Server(i, ServerEvent::Terminated) if *i == done[0]))
    );
    // Its retransmission is new again; the others are still absorbed.
    assert!(matches!(
        l.handle_request(request("OPTIONS", 0), false, now),
        Received::Request(_)
    ));
    assert!(matches!(
        l.handle_request(request("OPTIONS", 1), false, now),
        Received::Absorbed(_)
    ));
    // Fill with live ones (no response yet): the completed ones go, oldest first, then the
    // table refuses.
    for n in 11..14 {
        accept(&mut l, "OPTIONS", n, now).unwrap();
    }
    assert_eq!(l.evicted(), 4);
    assert!(l.server(live).is_some());
    assert_eq!(
        accept(&mut l, "OPTIONS", 20, now),
        Err(TransactionError::TooManyTransactions)
    );
    // Client transactions are refused as well, and evict completed ones the same way.
    let mut c = layer(1);
    let mut req = request("OPTIONS", 30);
    let id = c.send_request(req.clone(), false, now).unwrap();
    req.headers_mut()
        .set_first("Via", "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKother");
    assert_eq!(
        c.send_request(req.clone(), false, now),
        Err(TransactionError::TooManyTransactions)
    );
    let resp = answered(200, &request("OPTIONS", 30));
    assert!(matches!(
        c.handle_response(resp, now),
        Received::Response(_)
    ));
    assert!(
        c.client(id)
            .is_some_and(|t| t.is_absorbing() && t.request().is_none())
    );
    drain(&mut c);
    assert!(c.send_request(req, false, now).is_ok());
    assert_eq!(c.evicted(), 1);
}

#[test]
fn eviction_follows_the_timers_order_not_stale_entries() {
    // Transactions that ended on their own leave the eviction order: a later eviction takes a
    // live absorbing one, never counts a stale entry.
    let t0 = Instant::now();
    let mut l = layer(2);
    for n in 0..2 {
        let id = accept(&mut l, "OPTIONS", n, t0).unwrap();
        l.send_response(id, answered(200, &request("OPTIONS", n)), t0)
            .unwrap();
    }
    drain(&mut l);
    // Timer J (32 s) ends both.
    let later = t0 + Duration::from_secs(33);
    l.handle_timeout(later);
    drain(&mut l);
    assert!(l.is_empty());
    accept(&mut l, "OPTIONS", 5, later).unwrap();
    accept(&mut l, "OPTIONS", 6, later).unwrap();
    assert_eq!(
        accept(&mut l, "OPTIONS", 7, later),
        Err(TransactionError::TooManyTransactions)
    );
    assert_eq!(l.evicted(), 0);
}
