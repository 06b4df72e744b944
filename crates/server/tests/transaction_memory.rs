//! Heap bytes kept per finished transaction (issue 4, H1), counted in process.
//!
//! A non-INVITE server transaction that sent its final response over UDP waits out Timer J
//! (32 s) to absorb retransmissions; at thousands of requests per second most of the table is
//! such transactions. A counting global allocator gives the live heap bytes (allocated −
//! freed) before and after N of them: the growth over N is what one costs, table entries
//! included. `cargo test -p sotto-server --test transaction_memory -- --nocapture` prints the
//! figures.

use std::alloc::System;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use sotto_server::{Packet, Proxy, ServerConfig};
use sotto_sip::message::{Message, Request, Response, StatusCode};
use sotto_sip::parse::{Limits, parse_message};
use sotto_sip::transaction::{LayerConfig, Received, TransactionLayer};
use sotto_sip::transport::TransportKind;
use sotto_store::MemoryStore;
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Transactions per measurement.
const N: u32 = 3_000;
/// Bound per completed transaction: the 200's bytes (340 B here) plus key, deadline and the
/// table entries (~1,270 B measured). Before compaction a completed transaction kept its
/// request, timers and queues too: 4,834 B in the same test.
const BOUND: f64 = 1_400.0;

static SERIAL: Mutex<()> = Mutex::new(());

fn live() -> i128 {
    let s = GLOBAL.stats();
    s.bytes_allocated as i128 + s.bytes_reallocated as i128 - s.bytes_deallocated as i128
}

/// A REGISTER as SIPp's digest scenario sends it (with its Authorization header).
fn register_text(n: u32) -> String {
    let port = 10_000 + n % 50_000;
    format!(
        "REGISTER sip:127.0.0.1:5060 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-{n}-1-2;rport\r\n\
         From: <sip:user{n}@127.0.0.1>;tag={n}SIPpTag001\r\n\
         To: <sip:user{n}@127.0.0.1>\r\n\
         Call-ID: {n}-4242@127.0.0.1\r\n\
         CSeq: 2 REGISTER\r\n\
         Contact: <sip:user{n}@127.0.0.1:{port};transport=udp>\r\n\
         Authorization: Digest username=\"user{n}\",realm=\"127.0.0.1\",uri=\"sip:127.0.0.1:5060\",\
         nonce=\"AAAAAGYBAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f\",\
         response=\"0123456789abcdef0123456789abcdef\",algorithm=MD5\r\n\
         Max-Forwards: 70\r\n\
         Expires: 3600\r\n\
         User-Agent: SIPp\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

fn register(n: u32) -> Request {
    match parse_message(Bytes::from(register_text(n)), &Limits::default()) {
        Ok(Message::Request(r)) => r,
        other => panic!("not a request: {other:?}"),
    }
}

/// The registrar's 200 for it.
fn ok(req: &Request, n: u32) -> Response {
    let mut r = Response::from_request(req, StatusCode::OK);
    r.set_to_tag(&format!("{n:016x}"));
    let h = r.headers_mut();
    h.push(
        "Contact",
        format!(
            "<sip:user{n}@127.0.0.1:{};transport=udp>;expires=3600",
            10_000 + n
        ),
    );
    h.push("Server", "sotto/0.1.0");
    r
}

/// Live heap growth per completed non-INVITE server transaction in the layer, and the size of
/// its response.
fn layer_growth() -> (f64, usize) {
    let mut layer = TransactionLayer::new(
        LayerConfig {
            max_transactions: 1 << 20,
            detect_merged: false,
            ..LayerConfig::default()
        },
        sotto_crypto_rust::provider(),
    );
    let now = Instant::now();
    let mut sent = 0usize;
    let mut step = |layer: &mut TransactionLayer, n: u32| {
        let Received::Request(inc) = layer.handle_request(register(n), false, now) else {
            panic!("not a new request");
        };
        let resp = ok(inc.request(), n);
        let id = layer.accept(inc, now).expect("room");
        layer.send_response(id, resp, now).expect("sent");
        while let Some((_, t)) = layer.poll_transmit() {
            sent = t.bytes.len();
        }
        while layer.poll_event().is_some() {}
    };
    // Warm up the allocator and the tables' first allocations.
    for n in 0..200 {
        step(&mut layer, n);
    }
    let before = live();
    for n in 200..200 + N {
        step(&mut layer, n);
    }
    let grown = live() - before;
    assert_eq!(layer.len(), (200 + N) as usize, "all still in Timer J");
    let per = grown as f64 / f64::from(N);
    drop(layer);
    (per, sent)
}

#[test]
fn completed_server_transaction_is_small() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (per, response) = layer_growth();
    println!(
        "completed non-INVITE server transaction: {per:.1} B (of which the 200: {response} B)"
    );
    assert!(
        per > response as f64,
        "the counter must see the response ({per})"
    );
    assert!(
        per <= BOUND,
        "{per:.1} B per completed transaction > {BOUND} B"
    );
}

/// The whole proxy: a REGISTER with digest, both exchanges (401, then 200), still within
/// Timer J of the 200. What is left after Timer J (the registration) is subtracted.
#[test]
fn proxy_keeps_little_per_digest_register_exchange() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut config = ServerConfig::for_domain("127.0.0.1");
    config.anti_flood.enabled = false;
    config.max_transactions = 1 << 20;
    let provider = sotto_crypto_rust::provider();
    let store = Arc::new(MemoryStore::new());
    let wall = SystemTime::now();
    let mut now = Instant::now();
    let mut proxy = Proxy::new(
        &config,
        vec![(TransportKind::Udp, "127.0.0.1:5060".parse().unwrap())],
        store.clone(),
        store.clone(),
        provider,
        now,
    )
    .unwrap();
    // Digest off: the memory of the 200's transaction is what is measured; the 401 is counted
    // by `transactions()` below.
    config.authentication.enabled = false;
    let mut noauth = Proxy::new(
        &config,
        vec![(TransportKind::Udp, "127.0.0.1:5060".parse().unwrap())],
        store.clone(),
        store,
        provider,
        now,
    )
    .unwrap();
    let feed = |p: &mut Proxy, n: u32, now: Instant| {
        let text = register_text(n).replace("Authorization", "X-Authorization");
        let source: SocketAddr = format!("127.0.0.1:{}", 10_000 + n % 50_000)
            .parse()
            .unwrap();
        p.handle_packet(
            Packet {
                data: Bytes::from(text),
                source,
                transport: TransportKind::Udp,
                connection: None,
                client_identities: Vec::new(),
                client_domains: Vec::new(),
                local: std::net::SocketAddr::from(([127, 0, 0, 1], 5060)),
            },
            now,
            wall,
        );
        let mut out = 0;
        while p.poll_transmit().is_some() {
            out += 1;
        }
        while p.poll_event().is_some() {}
        out
    };
    // With digest: the unauthenticated REGISTER is challenged and leaves no transaction.
    for n in 0..100 {
        assert_eq!(feed(&mut proxy, n, now), 1);
    }
    println!(
        "transactions after 100 challenges: {}",
        proxy.transactions()
    );
    assert_eq!(proxy.transactions(), 0);
    // Without digest: each REGISTER leaves its 200's transaction for Timer J.
    for n in 0..200 {
        feed(&mut noauth, n, now);
    }
    let before = live();
    for n in 200..200 + N {
        feed(&mut noauth, n, now);
    }
    let with_tx = live() - before;
    assert_eq!(noauth.transactions(), (200 + N) as usize);
    now += Duration::from_secs(40);
    noauth.handle_timeout(now);
    while noauth.poll_transmit().is_some() {}
    while noauth.poll_event().is_some() {}
    assert_eq!(noauth.transactions(), 0);
    let without = live() - before;
    let per = (with_tx - without) as f64 / f64::from(N);
    println!("proxy, per REGISTER answered 200, freed at Timer J: {per:.1} B");
    assert!(per > 0.0);
    assert!(per <= BOUND, "{per:.1} B per transaction > {BOUND} B");
}
