//! A man in the middle for ZRTP tests: a UDP SIP forwarder that rewrites the SDP (media port,
//! `a=zrtp-hash`) so both media streams come to it, and two ZRTP endpoints (sotto's engine)
//! that terminate ZRTP with each side separately and re-encrypt SRTP between them. What an
//! attacker on an unprotected signalling path can do; ZRTP shows it as two different SASes,
//! and as a cache mismatch to a peer that verified the real one before.

#![allow(dead_code, unreachable_pub)]

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sotto_media::SrtpSession;
use sotto_media::zrtp::{ZidCache, ZrtpConfig, ZrtpEngine, ZrtpEvent, packet};

/// The SASes the relay agreed with each side: (toward the caller, toward the callee).
pub type Sases = Arc<Mutex<(Option<String>, Option<String>)>>;

/// A running relay; stopped on drop.
pub struct ZrtpRelay {
    /// The SIP port the caller calls (`sip:bob@127.0.0.1:<sip>`).
    pub sip: u16,
    /// The SASes agreed with each side.
    pub sases: Sases,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

fn bind() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind relay socket");
    s.set_nonblocking(true).expect("nonblocking");
    s
}

fn port(s: &UdpSocket) -> u16 {
    s.local_addr().expect("local addr").port()
}

/// One ZRTP leg: the engine, its socket, the peer's latched address, SRTP once keyed.
struct Leg {
    engine: ZrtpEngine,
    sock: UdpSocket,
    peer: Option<SocketAddr>,
    /// (unprotect what the peer sends, protect what we send it).
    srtp: Option<(SrtpSession, SrtpSession)>,
    sas: Option<String>,
}

impl Leg {
    fn new(zid: [u8; 12], ssrc: u32) -> Leg {
        let cache = Arc::new(Mutex::new(ZidCache::new(zid)));
        let engine = ZrtpEngine::new(sotto_crypto_rust::provider(), ZrtpConfig::new(ssrc), cache)
            .expect("relay ZRTP engine");
        Leg {
            engine,
            sock: bind(),
            peer: None,
            srtp: None,
            sas: None,
        }
    }

    /// Sends what the engine has, reads its events.
    fn pump(&mut self, now: Instant) {
        if self.engine.poll_timeout().is_some_and(|t| t <= now) {
            self.engine.handle_timeout(now);
        }
        let mut buf = [0u8; 2048];
        if let Some(peer) = self.peer {
            while let Some(n) = self.engine.poll_transmit(now, &mut buf) {
                let _ = self.sock.send_to(&buf[..n], peer);
            }
        }
        while let Some(ev) = self.engine.poll_event() {
            if let ZrtpEvent::Secure(s, keys) = ev {
                let p = sotto_crypto_rust::provider();
                let rx = SrtpSession::new(p, keys.inbound.clone()).expect("srtp in");
                let tx = SrtpSession::new(p, keys.outbound.clone()).expect("srtp out");
                self.srtp = Some((rx, tx));
                self.sas = Some(s.sas);
            }
        }
    }
}

/// Rewrites the SDP of a SIP message: the audio port to `media_port`, the `a=zrtp-hash` to
/// `hash`, `a=rtcp` lines dropped; then every `from` address to `to`, and Content-Length.
fn rewrite(msg: &str, media_port: u16, hash: &str, swaps: &[(String, String)]) -> String {
    let (head, body) = msg.split_once("\r\n\r\n").unwrap_or((msg, ""));
    let mut out_body = String::new();
    for line in body.split("\r\n").filter(|l| !l.is_empty()) {
        if let Some(rest) = line.strip_prefix("m=audio ") {
            let after = rest.split_once(' ').map(|(_, r)| r).unwrap_or("");
            out_body.push_str(&format!("m=audio {media_port} {after}\r\n"));
        } else if line.starts_with("a=zrtp-hash:") {
            out_body.push_str(&format!("a=zrtp-hash:1.10 {hash}\r\n"));
        } else if line.starts_with("a=rtcp:") {
        } else {
            out_body.push_str(line);
            out_body.push_str("\r\n");
        }
    }
    let mut head = head.to_owned();
    for (from, to) in swaps {
        head = head.replace(from.as_str(), to);
    }
    let mut lines: Vec<String> = head
        .split("\r\n")
        .filter(|l| !l.to_ascii_lowercase().starts_with("content-length"))
        .map(str::to_owned)
        .collect();
    lines.push(format!("Content-Length: {}", out_body.len()));
    format!("{}\r\n\r\n{out_body}", lines.join("\r\n"))
}

impl ZrtpRelay {
    /// A relay in front of the callee's SIP port `callee_sip`; it poses to the caller with
    /// ZID `zid_to_caller` (the callee's, as an attacker who saw an earlier call would) and
    /// to the callee with `zid_to_callee`.
    pub fn start(callee_sip: u16, zid_to_caller: [u8; 12], zid_to_callee: [u8; 12]) -> ZrtpRelay {
        let s1 = bind(); // faces the caller
        let s2 = bind(); // faces the callee
        let sip = port(&s1);
        let stop = Arc::new(AtomicBool::new(false));
        let sases: Sases = Arc::new(Mutex::new((None, None)));
        let (stop2, sases2) = (stop.clone(), sases.clone());
        let thread = std::thread::spawn(move || {
            let mut a = Leg::new(zid_to_caller, 0x0A0A_0A0A);
            let mut b = Leg::new(zid_to_callee, 0x0B0B_0B0B);
            let (a_hash, b_hash) = (a.engine.hello_hash(), b.engine.hello_hash());
            let (a_port, b_port) = (port(&a.sock), port(&b.sock));
            let callee: SocketAddr = ([127, 0, 0, 1], callee_sip).into();
            let s2_port = port(&s2);
            let mut caller: Option<SocketAddr> = None;
            let mut buf = [0u8; 4096];
            while !stop2.load(Ordering::Relaxed) {
                let now = Instant::now();
                let mut idle = true;
                // Signalling, caller → callee.
                while let Ok((n, src)) = s1.recv_from(&mut buf) {
                    idle = false;
                    caller = Some(src);
                    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                    let swaps = [
                        (
                            format!("127.0.0.1:{}", src.port()),
                            format!("127.0.0.1:{s2_port}"),
                        ),
                        (
                            format!("127.0.0.1:{sip}"),
                            format!("127.0.0.1:{callee_sip}"),
                        ),
                    ];
                    let out = rewrite(&text, b_port, &b_hash, &swaps);
                    let _ = s2.send_to(out.as_bytes(), callee);
                }
                // Signalling, callee → caller.
                while let Ok((n, _)) = s2.recv_from(&mut buf) {
                    idle = false;
                    let Some(c) = caller else { continue };
                    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                    let swaps = [
                        (
                            format!("127.0.0.1:{s2_port}"),
                            format!("127.0.0.1:{}", c.port()),
                        ),
                        (
                            format!("127.0.0.1:{callee_sip}"),
                            format!("127.0.0.1:{sip}"),
                        ),
                    ];
                    let out = rewrite(&text, a_port, &a_hash, &swaps);
                    let _ = s1.send_to(out.as_bytes(), c);
                }
                // Media, each way: ZRTP to the leg's engine, SRTP re-encrypted for the other.
                for dir in 0..2 {
                    let (from, to) = if dir == 0 {
                        (&mut a, &mut b)
                    } else {
                        (&mut b, &mut a)
                    };
                    while let Ok((n, src)) = from.sock.recv_from(&mut buf) {
                        idle = false;
                        from.peer = Some(src);
                        let pkt = &mut buf[..n];
                        if packet::is_zrtp(pkt) {
                            from.engine.handle_packet(now, pkt);
                            continue;
                        }
                        let rtcp = n > 1 && (200..=204).contains(&pkt[1]);
                        if rtcp || pkt[0] >> 6 != 2 {
                            continue;
                        }
                        let (Some((rx, _)), Some((_, tx)), Some(dst)) =
                            (from.srtp.as_mut(), to.srtp.as_mut(), to.peer)
                        else {
                            continue;
                        };
                        let Ok(clear) = rx.unprotect_rtp(pkt) else {
                            continue;
                        };
                        let mut out = [0u8; 2048];
                        out[..clear].copy_from_slice(&pkt[..clear]);
                        if let Ok(len) = tx.protect_rtp(&mut out, clear) {
                            let _ = to.sock.send_to(&out[..len], dst);
                        }
                    }
                }
                a.pump(now);
                b.pump(now);
                if let Ok(mut s) = sases2.lock() {
                    *s = (a.sas.clone(), b.sas.clone());
                }
                if idle {
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        });
        ZrtpRelay {
            sip,
            sases,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for ZrtpRelay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
