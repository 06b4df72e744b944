//! Fuzz target: ZRTP packets. The input is taken twice: as a datagram as it came (header
//! and CRC checks), and as a message body framed with a valid header and CRC, so the
//! message parsers and the engine's state machine see it. An engine that has already sent
//! its Hello and holds a peer's Hello receives every message; nothing may panic, and a
//! message the parsers accept must keep its declared length.

#![no_main]

use std::sync::{Arc, Mutex};
use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use sotto_media::zrtp::messages::{commit, dhpart, hello, small};
use sotto_media::zrtp::packet::{self, MessageType};
use sotto_media::zrtp::{ZidCache, ZrtpConfig, ZrtpEngine};

fn engine() -> ZrtpEngine {
    let cache = Arc::new(Mutex::new(ZidCache::new([7; 12])));
    // invariant: the default configuration is valid and the default provider's RNG works.
    ZrtpEngine::new(sotto_crypto_rust::provider(), ZrtpConfig::new(1), cache).expect("engine")
}

fuzz_target!(|data: &[u8]| {
    #[allow(clippy::disallowed_methods)]
    let now = Instant::now();
    let mut e = engine();
    let mut buf = [0u8; 2048];
    while e.poll_transmit(now, &mut buf).is_some() {}
    e.handle_packet(now, data);

    // The same bytes as a message: preamble and length fixed up, padded to whole words.
    let mut m = data.to_vec();
    if m.len() < 12 {
        return;
    }
    m.truncate(packet::MAX_MESSAGE_LEN);
    while m.len() % 4 != 0 {
        m.push(0);
    }
    m[0] = 0x50;
    m[1] = 0x5a;
    let words = (m.len() / 4) as u16;
    m[2..4].copy_from_slice(&words.to_be_bytes());
    let Some(n) = packet::frame(1, 2, &m, &mut buf) else {
        return;
    };
    let Ok(p) = packet::parse(&buf[..n]) else {
        return;
    };
    assert_eq!(p.message.len(), m.len());
    match p.kind {
        MessageType::Hello => {
            let _ = hello::parse(p.message);
        }
        MessageType::Commit => {
            let _ = commit::parse(p.message);
        }
        MessageType::DhPart1 | MessageType::DhPart2 => {
            for pv in [32, 56, 256, 384] {
                let _ = dhpart::parse(p.message, pv);
            }
        }
        MessageType::Error => {
            let _ = small::parse_error(p.message);
        }
        MessageType::Ping => {
            let _ = small::parse_ping(p.message);
        }
        _ => {}
    }
    e.handle_packet(now, &buf[..n]);
    while e.poll_transmit(now, &mut buf).is_some() {}
    while e.poll_event().is_some() {}
});
