//! Fuzz target: the proxy core (`sotto_server::proxy::Proxy`) as the network feeds it — every
//! module of the chain (anti-flood, sanity, federation, authentication, registrar, router,
//! forward), the transaction layer, forking, flow tokens and the DNS-lookup and store seams —
//! on the config `sotto init --domain example.test` writes (wildcard listeners), with a user
//! `bob` whose phone is registered.
//!
//! Input: the first octet's bits choose authentication off (bit 0: the registrar and router
//! are reached without credentials), federation on (bit 1). The rest, cut at each `0xFF 0xFE`
//! pair, is a sequence of packets; each packet's first octet picks its transport (UDP, TCP,
//! TLS), its source (one of four addresses), a connection, and what happens after it: time
//! moves on by up to 16 s (firing every timer, retransmissions included), pending DNS
//! lookups are answered (a candidate or a failure), a send fails.
//!
//! Invariants (a failure is a crash): no panic; everything the proxy sends parses as SIP
//! (what it writes is read back by the next hop); time that runs on past every timer leaves
//! no transaction behind once no more input comes (nothing lives forever).

#![no_main]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use sotto_server::config::ServerConfig;
use sotto_server::proxy::{Packet, Proxy};
use sotto_sip::digest::{Algorithm, UserRecord};
use sotto_sip::parse::{Limits, parse_message};
use sotto_sip::resolve::{Candidate, ResolveError};
use sotto_sip::transport::{ConnectionId, TransportKind};
use sotto_store::{Binding, BindingStore, MemoryStore, UserStore};

const DOMAIN: &str = "example.test";
const SOURCES: [&str; 4] = [
    "127.0.0.1:5070",
    "127.0.0.2:40000",
    "192.0.2.7:5060",
    "[::1]:5080",
];
/// Bound on timer firings when time runs on (a livelock is a failure).
const MAX_FIRINGS: usize = 10_000;

struct Run {
    proxy: Proxy,
    now: Instant,
    wall: SystemTime,
    /// What the proxy may produce to a parse-back: its own limits plus what it adds.
    limits: Limits,
}

fn proxy(flags: u8) -> Run {
    let provider = sotto_crypto_rust::provider();
    let mut config = ServerConfig::for_domain(DOMAIN);
    config.authentication.enabled = flags & 1 == 0;
    config.federation.enabled = flags & 2 != 0;
    let store = Arc::new(MemoryStore::new());
    let mut bob = UserRecord::new("bob");
    // invariant: the default provider hashes a password record.
    bob.set_password(provider, DOMAIN, "bobpw", &[Algorithm::Sha256, Algorithm::Md5])
        .expect("a password record");
    store.put(&bob).expect("stored");
    let now = Instant::now();
    let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let binding = Binding::new(
        "sip:bob@example.test",
        "sip:bob@127.0.0.1:5090;transport=udp",
        "fuzz-reg",
        1,
        wall + Duration::from_secs(3600),
    );
    store.upsert(&binding, wall).expect("bob's phone registered");
    let listeners = vec![
        (TransportKind::Tls, "0.0.0.0:5061".parse().expect("listener")),
        (TransportKind::Udp, "0.0.0.0:5060".parse().expect("listener")),
        (TransportKind::Tcp, "0.0.0.0:5060".parse().expect("listener")),
    ];
    let proxy = Proxy::new(&config, listeners, store.clone(), store, provider, now)
        .expect("a proxy");
    proxy
        .locality()
        .set_interfaces(vec!["127.0.0.1".parse().expect("ip")]);
    let limits = Limits {
        max_message_bytes: 128 * 1024,
        max_headers: 512,
        max_line_bytes: 16 * 1024,
    };
    Run {
        proxy,
        now,
        wall,
        limits,
    }
}

impl Run {
    /// Checks and drops what the proxy sends; answers its DNS lookups as `answer` says.
    fn drain(&mut self, answer: u8, fail_send: bool) {
        for _ in 0..64 {
            let mut progress = false;
            while let Some(t) = self.proxy.poll_transmit() {
                progress = true;
                if let Err(e) = parse_message(t.data.clone(), &self.limits) {
                    panic!(
                        "the proxy sent what does not parse ({e}): {:?}",
                        String::from_utf8_lossy(&t.data)
                    );
                }
                if fail_send && let Some(tx) = t.transaction {
                    self.proxy.handle_send_error(tx, "fuzz: send failed", self.now);
                }
            }
            while self.proxy.poll_event().is_some() {
                progress = true;
            }
            while let Some(lookup) = self.proxy.poll_lookup() {
                progress = true;
                let result = if answer & 1 == 0 {
                    Ok(vec![Candidate {
                        transport: if answer & 2 == 0 {
                            TransportKind::Udp
                        } else {
                            TransportKind::Tls
                        },
                        addr: "127.0.0.9:5060".parse().expect("addr"),
                        server_name: Some(lookup.uri.host().to_owned()),
                    }])
                } else {
                    Err(ResolveError::NoServer(lookup.uri.host().to_owned()))
                };
                self.proxy.handle_lookup(lookup.id, result, self.now);
            }
            if !progress {
                return;
            }
        }
    }

    /// Moves time on by `by`, firing every timer due on the way.
    fn advance(&mut self, by: Duration, answer: u8) {
        let target = self.now + by;
        for _ in 0..MAX_FIRINGS {
            match self.proxy.poll_timeout() {
                Some(at) if at <= target => {
                    self.now = self.now.max(at);
                    self.wall += Duration::from_millis(1);
                    self.proxy.handle_timeout(self.now);
                    self.drain(answer, false);
                }
                _ => {
                    self.wall += target.saturating_duration_since(self.now);
                    self.now = target;
                    return;
                }
            }
        }
        panic!("timers never settle");
    }
}

fn packets(data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i + 1 < data.len() {
        if data[i] == 0xFF && data[i + 1] == 0xFE {
            out.push(&data[start..i]);
            start = i + 2;
            i += 2;
        } else {
            i += 1;
        }
    }
    out.push(&data[start..]);
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let mut run = proxy(flags);
    for p in packets(rest).into_iter().take(32) {
        let Some((&ctl, bytes)) = p.split_first() else {
            continue;
        };
        let transport = match ctl & 3 {
            0 | 3 => TransportKind::Udp,
            1 => TransportKind::Tcp,
            _ => TransportKind::Tls,
        };
        let source: SocketAddr = SOURCES[usize::from(ctl >> 2) & 3].parse().expect("source");
        let local: SocketAddr = match (transport, source) {
            (TransportKind::Tls, _) => "127.0.0.1:5061",
            (_, SocketAddr::V6(_)) => "[::1]:5060",
            _ => "127.0.0.1:5060",
        }
        .parse()
        .expect("local");
        let packet = Packet {
            data: Bytes::copy_from_slice(bytes),
            source,
            local,
            transport,
            connection: transport
                .is_stream()
                .then_some(ConnectionId(u64::from(ctl >> 4 & 1) + 1)),
            client_identities: Vec::new(),
            client_domains: Vec::new(),
        };
        run.proxy.handle_packet(packet, run.now, run.wall);
        run.drain(ctl >> 5, ctl & 0x80 != 0 && ctl & 0x40 != 0);
        let ms = u64::from(ctl >> 5) * 2000;
        run.advance(Duration::from_millis(ms), ctl);
    }
    // No more input: every transaction ends (Timer C bounds an INVITE that got a provisional
    // answer at 3 minutes; 64·T1 bounds the rest).
    run.advance(Duration::from_secs(400), 0);
    assert_eq!(
        run.proxy.transactions(),
        0,
        "transactions left long after the input ended"
    );
});
