//! Fuzz target (interaction): a UAC and a UAS `TransactionLayer` (`sotto_sip::transaction`)
//! talking over a virtual network on a virtual clock, with the fuzz input choosing what happens.
//!
//! Input: the first byte picks the request (bit 0: INVITE, else OPTIONS) and the transport
//! (bit 1: reliable). Then each action byte (at most 512 actions) is one of, by its value
//! modulo 8, taking its arguments from the next bytes:
//! 0. deliver the pending message chosen by the next byte;
//! 1. drop it (unreliable only);
//! 2. duplicate it (unreliable only);
//! 3. move it to the back of the queue (reorder);
//! 4. advance time by the next two bytes in ms (firing every timer on the way);
//! 5. the UAS TU sends the response code chosen by the next byte on the server transaction
//!    chosen by the byte after (2xx to INVITE included, as often as it likes);
//! 6. the UAC TU sends CANCEL for its INVITE (once);
//! 7. the transport reports an error for the transaction chosen by the next byte.
//!
//! The TUs behave as RFC 3261 asks of them: the UAS accepts every new request, answers a
//! cancelled INVITE with 487 and retransmits its 2xx (T1 doubling to T2, unreliable only)
//! until the ACK comes or 64·T1 passed (§13.3.1.4); the UAC ACKs every 2xx (§13.2.2.4).
//!
//! When the input ends, the UAS TU answers every request it has not answered, the network
//! becomes lossless and time runs on. Invariants (a failure is a crash):
//! - no panic; every message either side sends parses;
//! - per client transaction: at most one final response event for a non-INVITE; for an
//!   INVITE at most one non-2xx final, never both a 2xx and a non-2xx, and never a final
//!   response after a timeout; no event after `Terminated`, which comes at most once;
//! - per server transaction: no event after `Terminated`, which comes at most once;
//! - a terminated transaction is gone from its layer, and a layer never keeps one that
//!   reported `Terminated`;
//! - after the input ends every transaction terminates within 2·64·T1 + T2 + T4 of virtual
//!   time: a transaction alive then lasts at most 64·T1 more, and one created afterwards (a
//!   request whose every earlier copy was lost reaching the UAS late) starts within 64·T1. The
//!   one exception is the UAC INVITE left in Proceeding after the UAS gave its 2xx up
//!   (every copy lost): only the UAC TU can end it (§9.1), so it is checked to be exactly
//!   that case.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use sotto_sip::message::{Message, Method, Request, Response, StatusCode};
use sotto_sip::parse::{Limits, parse_message};
use sotto_sip::transaction::{
    ClientEvent, ClientState, LayerConfig, LayerEvent, Received, ServerEvent, TimerConfig,
    TransactionId, TransactionLayer,
};
use std::collections::{HashMap, VecDeque};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const MAX_ACTIONS: usize = 512;
/// Bound on timer firings and deliveries in one phase (a livelock is a failure).
const MAX_STEPS: usize = 20_000;
const CODES: [u16; 12] = [100, 180, 183, 200, 202, 302, 404, 408, 486, 487, 500, 603];

fn epoch() -> Instant {
    static T0: OnceLock<Instant> = OnceLock::new();
    *T0.get_or_init(Instant::now)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Uac,
    Uas,
}

#[derive(Debug, Default)]
struct ClientLog {
    invite: bool,
    finals_2xx: u32,
    finals_other: u32,
    timeout: bool,
    terminated: bool,
}

#[derive(Debug, Default)]
struct ServerLog {
    terminated: bool,
}

/// The UAS TU's 2xx retransmission (§13.3.1.4).
#[derive(Debug)]
struct Retx2xx {
    id: TransactionId,
    response: Response,
    next: Instant,
    interval: Duration,
    give_up: Instant,
}

struct Sim {
    timers: TimerConfig,
    now: Instant,
    reliable: bool,
    invite: bool,
    uac: TransactionLayer,
    uas: TransactionLayer,
    net: VecDeque<(Side, Bytes)>,
    request: Request,
    uac_invite: Option<TransactionId>,
    cancel_sent: bool,
    clients: HashMap<TransactionId, ClientLog>,
    servers: HashMap<TransactionId, ServerLog>,
    /// Server transactions in creation order, with their request, for the UAS TU.
    uas_requests: Vec<(TransactionId, Request)>,
    retx: Option<Retx2xx>,
    /// The UAS TU gave up retransmitting a 2xx that was never ACKed.
    gave_up_2xx: bool,
    acks: u32,
    /// Input is over: the UAS TU answers every new request at once.
    draining: bool,
}

fn decode(bytes: &Bytes) -> Message {
    parse_message(bytes.clone(), &Limits::default()).expect("a message the stack sent parses")
}

fn request_text(method: &str, branch: &str, to: &str) -> String {
    format!(
        "{method} sip:bob@127.0.0.1:5080 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:5070;branch={branch}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:alice@127.0.0.1>;tag=a1\r\n\
         To: {to}\r\n\
         Call-ID: fuzz1@127.0.0.1\r\n\
         CSeq: 1 {method}\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

fn parse_request(text: String) -> Request {
    match decode(&Bytes::from(text)) {
        Message::Request(r) => r,
        Message::Response(_) => unreachable!("a request line"),
    }
}

impl Sim {
    fn new(invite: bool, reliable: bool) -> Sim {
        let timers = TimerConfig::default();
        let config = LayerConfig {
            timers,
            ..LayerConfig::default()
        };
        let provider = sotto_crypto_rust::provider();
        let method = if invite { "INVITE" } else { "OPTIONS" };
        let request = parse_request(request_text(method, "z9hG4bKfuzz1", "<sip:bob@127.0.0.1>"));
        let mut sim = Sim {
            timers,
            now: epoch(),
            reliable,
            invite,
            uac: TransactionLayer::new(config, provider),
            uas: TransactionLayer::new(config, provider),
            net: VecDeque::new(),
            request: request.clone(),
            uac_invite: None,
            cancel_sent: false,
            clients: HashMap::new(),
            servers: HashMap::new(),
            uas_requests: Vec::new(),
            retx: None,
            gave_up_2xx: false,
            acks: 0,
            draining: false,
        };
        let id = sim
            .uac
            .send_request(request, reliable, sim.now)
            .expect("the request starts a client transaction");
        sim.clients.insert(
            id,
            ClientLog {
                invite,
                ..ClientLog::default()
            },
        );
        if invite {
            sim.uac_invite = Some(id);
        }
        sim.pump();
        sim
    }

    /// Moves both layers' output to the network and through the TUs, checking events.
    fn pump(&mut self) {
        for _ in 0..MAX_STEPS {
            let mut progress = false;
            while let Some((_, t)) = self.uac.poll_transmit() {
                decode(&t.bytes);
                self.net.push_back((Side::Uas, t.bytes));
                progress = true;
            }
            while let Some((_, t)) = self.uas.poll_transmit() {
                decode(&t.bytes);
                self.net.push_back((Side::Uac, t.bytes));
                progress = true;
            }
            while let Some(ev) = self.uac.poll_event() {
                self.client_event(ev);
                progress = true;
            }
            while let Some(ev) = self.uas.poll_event() {
                self.server_event(ev);
                progress = true;
            }
            if !progress {
                return;
            }
        }
        panic!("output never drained");
    }

    fn client_event(&mut self, ev: LayerEvent) {
        let LayerEvent::Client(id, ev) = ev else {
            panic!("a server event from the UAC layer: {ev:?}");
        };
        let log = self.clients.get_mut(&id).expect("event of a known client");
        assert!(!log.terminated, "client event after Terminated: {ev:?}");
        let mut ack_to = None;
        match ev {
            ClientEvent::Response(r) => {
                let s = r.status();
                if s.is_final() {
                    assert!(!log.timeout, "final response after a timeout");
                    if s.is_success() {
                        log.finals_2xx += 1;
                        if log.invite {
                            ack_to = r.headers().get("To").map(str::to_owned);
                        }
                    } else {
                        log.finals_other += 1;
                    }
                    if log.invite {
                        assert!(log.finals_other <= 1, "two non-2xx finals to an INVITE");
                        assert!(
                            log.finals_other == 0 || log.finals_2xx == 0,
                            "a 2xx and a non-2xx final to one INVITE"
                        );
                    } else {
                        assert!(log.finals_2xx + log.finals_other <= 1, "two finals");
                    }
                }
            }
            ClientEvent::Timeout => {
                assert!(
                    log.finals_2xx + log.finals_other == 0,
                    "timeout after a final response"
                );
                log.timeout = true;
            }
            ClientEvent::TransportError => {}
            ClientEvent::Terminated => {
                log.terminated = true;
                assert!(self.uac.client(id).is_none(), "terminated client kept");
            }
        }
        if let Some(to) = ack_to {
            // §13.2.2.4: the UAC core ACKs every 2xx, end to end (a new branch).
            self.acks += 1;
            let ack = request_text("ACK", &format!("z9hG4bKack{}", self.acks), &to);
            self.net.push_back((Side::Uas, Bytes::from(ack)));
        }
    }

    fn server_event(&mut self, ev: LayerEvent) {
        let LayerEvent::Server(id, ev) = ev else {
            panic!("a client event from the UAS layer: {ev:?}");
        };
        let log = self.servers.entry(id).or_default();
        assert!(!log.terminated, "server event after Terminated: {ev:?}");
        match ev {
            ServerEvent::Terminated => {
                log.terminated = true;
                assert!(self.uas.server(id).is_none(), "terminated server kept");
            }
            ServerEvent::Ack(_) | ServerEvent::Timeout | ServerEvent::TransportError => {}
        }
    }

    fn respond(&mut self, id: TransactionId, code: u16) {
        let Some(req) = self
            .uas_requests
            .iter()
            .find(|(i, _)| *i == id)
            .map(|(_, r)| r.clone())
        else {
            return;
        };
        let mut r = Response::from_request(&req, StatusCode(code));
        if code > 100 {
            r.set_to_tag("uas1");
        }
        let ok = self.uas.send_response(id, r.clone(), self.now).is_ok();
        if ok
            && !self.reliable
            && *req.method() == Method::Invite
            && StatusCode(code).is_success()
            && self.retx.is_none()
        {
            self.retx = Some(Retx2xx {
                id,
                response: r,
                next: self.now + self.timers.t1,
                interval: self.timers.t1,
                give_up: self.now + self.timers.t1_x64(),
            });
        }
        self.pump();
    }

    fn deliver(&mut self, idx: usize) {
        let Some((to, bytes)) = self.net.remove(idx) else {
            return;
        };
        let msg = decode(&bytes);
        match to {
            Side::Uac => match self.uac.handle_message(msg, self.reliable, self.now) {
                Received::Response(_) | Received::StrayResponse(_) => {}
                other => panic!("UAC layer: unexpected {other:?}"),
            },
            Side::Uas => match self.uas.handle_message(msg, self.reliable, self.now) {
                Received::Request(incoming) => {
                    let req = incoming.request().clone();
                    let id = self.uas.accept(incoming, self.now).expect("room to accept");
                    self.uas_requests.push((id, req));
                    self.pump();
                    if self.draining {
                        self.respond(id, 200);
                    }
                }
                Received::Cancel { cancel, invite } => {
                    self.servers.entry(cancel).or_default();
                    self.pump();
                    // §9.2: the UAS TU answers the cancelled INVITE with 487.
                    if let Some(inv) = invite
                        && self
                            .uas
                            .server(inv)
                            .is_some_and(|s| !s.has_final_response())
                    {
                        self.respond(inv, 487);
                    }
                }
                Received::Ack(_) => {
                    // The ACK of the 2xx: the UAS TU stops retransmitting it.
                    if self.retx.is_some() {
                        self.retx = None;
                    }
                }
                Received::Absorbed(_) | Received::Merged(_) => {}
                other => panic!("UAS layer: unexpected {other:?}"),
            },
        }
        self.pump();
    }

    fn next_deadline(&self) -> Option<Instant> {
        [
            self.uac.poll_timeout(),
            self.uas.poll_timeout(),
            self.retx.as_ref().map(|r| r.next.min(r.give_up)),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Fires the one earliest deadline (all due timers at that instant).
    fn fire(&mut self, at: Instant) {
        self.now = self.now.max(at);
        let now = self.now;
        self.uac.handle_timeout(now);
        self.uas.handle_timeout(now);
        if let Some(r) = &mut self.retx {
            if r.give_up <= now {
                self.retx = None;
                self.gave_up_2xx = true;
            } else if r.next <= now {
                r.interval = (r.interval * 2).min(self.timers.t2);
                r.next = now + r.interval;
                let (id, resp) = (r.id, r.response.clone());
                // Accepted allows further 2xx; after Timer L the transaction is gone and
                // the TU sends the 2xx itself, which the harness skips.
                let _ = self.uas.send_response(id, resp, now);
            }
        }
        self.pump();
    }

    fn advance(&mut self, by: Duration) {
        let target = self.now + by;
        for _ in 0..MAX_STEPS {
            match self.next_deadline() {
                Some(at) if at <= target => self.fire(at),
                _ => {
                    self.now = target;
                    return;
                }
            }
        }
        panic!("timers never settle");
    }

    fn pick(&self, b: u8) -> Option<usize> {
        (!self.net.is_empty()).then(|| usize::from(b) % self.net.len())
    }

    fn step(&mut self, op: u8, args: &mut impl Iterator<Item = u8>) {
        let mut arg = || args.next().unwrap_or(0);
        match op % 8 {
            0 => {
                if let Some(i) = self.pick(arg()) {
                    self.deliver(i);
                }
            }
            1 => {
                let b = arg();
                if !self.reliable
                    && let Some(i) = self.pick(b)
                {
                    self.net.remove(i);
                }
            }
            2 => {
                let b = arg();
                if !self.reliable
                    && let Some(i) = self.pick(b)
                    && let Some(m) = self.net.get(i).cloned()
                {
                    self.net.push_back(m);
                }
            }
            3 => {
                if let Some(i) = self.pick(arg())
                    && let Some(m) = self.net.remove(i)
                {
                    self.net.push_back(m);
                }
            }
            4 => {
                let ms = u16::from_be_bytes([arg(), arg()]);
                self.advance(Duration::from_millis(u64::from(ms)));
            }
            5 => {
                let code = CODES[usize::from(arg()) % CODES.len()];
                let pick = usize::from(arg());
                if !self.uas_requests.is_empty() {
                    let id = self.uas_requests[pick % self.uas_requests.len()].0;
                    self.respond(id, code);
                }
            }
            6 => {
                if self.invite
                    && !self.cancel_sent
                    && self
                        .uac_invite
                        .is_some_and(|id| self.uac.client(id).is_some())
                {
                    self.cancel_sent = true;
                    let cancel = parse_request(request_text(
                        "CANCEL",
                        "z9hG4bKfuzz1",
                        "<sip:bob@127.0.0.1>",
                    ));
                    assert_eq!(cancel.uri(), self.request.uri());
                    let id = self
                        .uac
                        .send_request(cancel, self.reliable, self.now)
                        .expect("CANCEL starts a client transaction");
                    self.clients.insert(id, ClientLog::default());
                    self.pump();
                }
            }
            _ => {
                let b = usize::from(arg());
                let mut ids: Vec<(bool, TransactionId)> = self
                    .clients
                    .iter()
                    .filter(|(_, l)| !l.terminated)
                    .map(|(id, _)| (true, *id))
                    .chain(
                        self.uas_requests
                            .iter()
                            .filter(|(id, _)| self.uas.server(*id).is_some())
                            .map(|(id, _)| (false, *id)),
                    )
                    .collect();
                ids.sort();
                if let Some(&(client, id)) = ids.get(b % ids.len().max(1)) {
                    if client {
                        self.uac.handle_transport_error(id, self.now);
                    } else {
                        self.uas.handle_transport_error(id, self.now);
                    }
                    self.pump();
                }
            }
        }
    }

    /// End of input: the UAS TU answers, the network is lossless, time runs on.
    fn finish(&mut self) {
        let end = self.now;
        self.draining = true;
        let pending: Vec<TransactionId> = self
            .uas_requests
            .iter()
            .map(|(id, _)| *id)
            .filter(|id| {
                self.uas
                    .server(*id)
                    .is_some_and(|s| !s.has_final_response())
            })
            .collect();
        for id in pending {
            self.respond(id, 200);
        }
        let bound = end + self.timers.t1_x64() * 2 + self.timers.t2 + self.timers.t4;
        for _ in 0..MAX_STEPS {
            if !self.net.is_empty() {
                self.deliver(0);
                continue;
            }
            match self.next_deadline() {
                Some(at) => {
                    assert!(
                        at <= bound || self.stuck_invite(),
                        "a transaction outlives the end of input by more than 2*64*T1+T2+T4: {}",
                        self.describe()
                    );
                    if at > bound {
                        break;
                    }
                    self.fire(at);
                }
                None => break,
            }
        }
        assert!(
            self.uas.is_empty(),
            "UAS transactions left: {}",
            self.describe()
        );
        assert!(
            self.uac.is_empty() || self.stuck_invite(),
            "UAC transactions left: {}",
            self.describe()
        );
        assert!(self.servers.values().all(|l| l.terminated));
    }

    /// The live transactions' states and next timers, for failure messages.
    fn describe(&self) -> String {
        let clients: Vec<_> = self
            .clients
            .keys()
            .filter_map(|id| {
                self.uac
                    .client(*id)
                    .map(|c| (*id, c.state(), c.poll_timeout()))
            })
            .collect();
        let servers: Vec<_> = self
            .uas_requests
            .iter()
            .filter_map(|(id, _)| {
                self.uas
                    .server(*id)
                    .map(|s| (*id, s.state(), s.poll_timeout()))
            })
            .collect();
        format!(
            "now {:?} after start; clients {clients:?}; servers {servers:?}; retx {}; net {}",
            self.now - epoch(),
            self.retx.is_some(),
            self.net.len()
        )
    }

    /// The one allowed leftover: the UAC INVITE in Proceeding after the UAS gave up its 2xx
    /// (or lost the transaction to a transport error), with nothing left to deliver.
    fn stuck_invite(&self) -> bool {
        let invite_proceeding = self
            .uac_invite
            .and_then(|id| self.uac.client(id))
            .is_some_and(|c| c.state() == ClientState::Proceeding);
        let only_it = self.uac.len() == 1;
        let uas_silent = self.uas.is_empty() && self.retx.is_none() && self.net.is_empty();
        invite_proceeding && only_it && uas_silent
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let mut sim = Sim::new(first & 1 != 0, first & 2 != 0);
    let mut bytes = rest.iter().copied();
    for _ in 0..MAX_ACTIONS {
        let Some(op) = bytes.next() else { break };
        sim.step(op, &mut bytes);
    }
    sim.finish();
});
