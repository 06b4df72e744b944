//! DTLS-SRTP behind the key-exchange seam, two exchanges wired back to back on virtual time:
//! roles from a=setup, fingerprints checked, one handshake per port without rtcp-mux (SRTCP
//! keyed apart), the offerer keeping a ClientHello that beats the answer, a tampered
//! fingerprint failing the call with no keys, silence given up after the retransmissions.
// Instant::now() only seeds the virtual timeline; time then moves by the exchanges' timers.
#![allow(clippy::disallowed_methods)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use sotto_crypto::dtls::{DtlsRole, SrtpProfile};
use sotto_media::dtls::{DtlsExchange, Fingerprint};
use sotto_media::keyx::{
    KeyExchangeEvent, MediaKeyExchange, MediaProtection, RemoteMedia, SdpAttribute, SrtpKeys,
};
use sotto_media::session::Channel;

fn provider() -> &'static sotto_crypto::CryptoProvider {
    sotto_crypto_rust::provider()
}

fn exchange(name: &str, profiles: &[SrtpProfile]) -> DtlsExchange {
    let cert = provider().dtls.generate_certificate(name).unwrap();
    DtlsExchange::new(provider(), Arc::new(cert), profiles.to_vec(), true).unwrap()
}

fn remote<'a>(attrs: &'a [SdpAttribute]) -> RemoteMedia<'a> {
    RemoteMedia {
        profile: "UDP/TLS/RTP/SAVP",
        attributes: attrs,
    }
}

/// Offer from `a`, answer from `b` (with `mux` saying whether both sides multiplex RTCP).
fn negotiate(a: &mut DtlsExchange, b: &mut DtlsExchange, mux: bool) {
    let rng = provider().rng;
    let mut offer = a.offer(rng).unwrap();
    if mux {
        offer.push(SdpAttribute {
            name: "rtcp-mux".into(),
            value: None,
        });
    }
    let mut answer = b.answer(remote(&offer), rng).unwrap();
    if mux {
        answer.push(SdpAttribute {
            name: "rtcp-mux".into(),
            value: None,
        });
    }
    assert!(answer.contains(&SdpAttribute::new("setup", "active")));
    // RFC 8842: the offer names its association; the answer does since the offer did.
    let tls_id = |a: &[SdpAttribute]| a.iter().find(|x| x.name == "tls-id").cloned();
    assert!(tls_id(&offer).is_some() && tls_id(&answer).is_some());
    assert_ne!(tls_id(&offer), tls_id(&answer));
    a.answered(remote(&answer)).unwrap();
}

#[derive(Default)]
struct Seen {
    keys: Option<SrtpKeys>,
    failed: Option<String>,
    protection: Option<MediaProtection>,
}

fn drain(x: &mut DtlsExchange, seen: &mut Seen) {
    while let Some(e) = x.poll_event() {
        match e {
            KeyExchangeEvent::KeysReady(k) => seen.keys = Some(k),
            KeyExchangeEvent::Failed { reason } => seen.failed = Some(reason),
            KeyExchangeEvent::Protection(p) => seen.protection = Some(p),
            _ => {}
        }
    }
}

/// Runs both on virtual time for `for_`, passing datagrams unless `lose` says so.
fn run(
    a: &mut DtlsExchange,
    b: &mut DtlsExchange,
    t0: Instant,
    for_: Duration,
    lose: &mut dyn FnMut(usize) -> bool,
) -> (Seen, Seen, usize) {
    let (mut sa, mut sb) = (Seen::default(), Seen::default());
    let mut now = t0;
    let mut n = 0;
    let mut buf = [0u8; 2048];
    while now < t0 + for_ {
        let mut moved = true;
        while moved {
            moved = false;
            for a_to_b in [true, false] {
                let (from, to) = if a_to_b {
                    (&mut *a, &mut *b)
                } else {
                    (&mut *b, &mut *a)
                };
                while let Some((len, ch)) = from.poll_transmit(now, &mut buf) {
                    moved = true;
                    n += 1;
                    if !lose(n) {
                        to.handle_packet(now, ch, &buf[..len]);
                    }
                }
            }
        }
        drain(a, &mut sa);
        drain(b, &mut sb);
        let next = [a.poll_timeout(), b.poll_timeout()]
            .into_iter()
            .flatten()
            .min();
        match next {
            Some(t) if t > now => now = t,
            Some(_) => {}
            None => break,
        }
        a.handle_timeout(now);
        b.handle_timeout(now);
    }
    drain(a, &mut sa);
    drain(b, &mut sb);
    (sa, sb, n)
}

fn key(p: &sotto_media::SrtpPolicy) -> Vec<u8> {
    p.master_key.expose().to_vec()
}

#[test]
fn offer_answer_roles_and_equal_keys_with_rtcp_mux() {
    let (mut a, mut b) = (
        exchange("a", &SrtpProfile::ALL),
        exchange("b", &SrtpProfile::ALL),
    );
    negotiate(&mut a, &mut b, true);
    assert_eq!(a.role(), Some(DtlsRole::Server), "the offerer is passive");
    assert_eq!(b.role(), Some(DtlsRole::Client), "the answerer is active");
    let (sa, sb, _) = run(
        &mut a,
        &mut b,
        Instant::now(),
        Duration::from_secs(5),
        &mut |_| false,
    );
    let (ka, kb) = (sa.keys.unwrap(), sb.keys.unwrap());
    assert_eq!(key(&ka.outbound), key(&kb.inbound));
    assert_eq!(key(&ka.inbound), key(&kb.outbound));
    assert_ne!(key(&ka.outbound), key(&ka.inbound));
    assert!(ka.rtcp.is_none(), "one handshake with rtcp-mux");
    match sa.protection.unwrap() {
        MediaProtection::Dtls {
            profile,
            fingerprint_verified,
            details,
        } => {
            assert_eq!(profile.as_deref(), Some("AEAD_AES_128_GCM"));
            assert!(fingerprint_verified);
            let d = details.unwrap();
            assert_eq!(d.handshakes, 1);
            assert_eq!(d.role, "server");
            assert_eq!(d.peer_fingerprint, b.fingerprint().to_string());
        }
        p => panic!("{p:?}"),
    }
}

#[test]
fn without_rtcp_mux_rtcp_gets_its_own_handshake_and_keys() {
    let (mut a, mut b) = (
        exchange("a", &[SrtpProfile::Aes128CmSha1_80]),
        exchange("b", &SrtpProfile::ALL),
    );
    negotiate(&mut a, &mut b, false);
    let (sa, sb, _) = run(
        &mut a,
        &mut b,
        Instant::now(),
        Duration::from_secs(5),
        &mut |_| false,
    );
    let (ka, kb) = (sa.keys.unwrap(), sb.keys.unwrap());
    let (ra, rb) = (ka.rtcp.unwrap(), kb.rtcp.unwrap());
    assert_eq!(key(&ra.outbound), key(&rb.inbound));
    assert_ne!(key(&ra.outbound), key(&ka.outbound), "RTCP keyed apart");
    assert_eq!(ka.outbound.suite.name(), "AES_CM_128_HMAC_SHA1_80");
}

#[test]
fn handshakes_survive_heavy_loss_on_virtual_time() {
    for seed in 0..6u64 {
        let (mut a, mut b) = (
            exchange("a", &SrtpProfile::ALL),
            exchange("b", &SrtpProfile::ALL),
        );
        negotiate(&mut a, &mut b, seed % 2 == 0);
        // Lose 40 % of the datagrams (a fixed pattern per seed).
        let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
        let mut lose = |_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 33) % 10 < 4
        };
        let t0 = Instant::now();
        let (sa, sb, sent) = run(&mut a, &mut b, t0, Duration::from_secs(60), &mut lose);
        assert!(
            sa.keys.is_some() && sb.keys.is_some(),
            "seed {seed}: keyed through loss ({sent} datagrams; {:?} {:?})",
            sa.failed,
            sb.failed
        );
    }
}

#[test]
fn a_clienthello_before_the_answer_is_kept() {
    let (mut a, mut b) = (
        exchange("a", &SrtpProfile::ALL),
        exchange("b", &SrtpProfile::ALL),
    );
    let rng = provider().rng;
    let offer = a.offer(rng).unwrap();
    let answer = b.answer(remote(&offer), rng).unwrap();
    let now = Instant::now();
    let mut buf = [0u8; 2048];
    // The answerer's ClientHello reaches the offerer before the 200 OK does.
    while let Some((len, ch)) = b.poll_transmit(now, &mut buf) {
        a.handle_packet(now, ch, &buf[..len]);
    }
    a.answered(remote(&answer)).unwrap();
    let (sa, sb, _) = run(&mut a, &mut b, now, Duration::from_secs(5), &mut |_| false);
    assert!(sa.keys.is_some() && sb.keys.is_some());
}

#[test]
fn a_tampered_fingerprint_fails_the_call_without_keys() {
    let (mut a, mut b) = (
        exchange("a", &SrtpProfile::ALL),
        exchange("b", &SrtpProfile::ALL),
    );
    let rng = provider().rng;
    let mut offer = a.offer(rng).unwrap();
    // A proxy (or a man in the middle) replaces the offerer's fingerprint with its own.
    let mallory = exchange("mallory", &SrtpProfile::ALL);
    for attr in &mut offer {
        if attr.name == "fingerprint" {
            attr.value = Some(mallory.fingerprint().to_string());
        }
    }
    let answer = b.answer(remote(&offer), rng).unwrap();
    a.answered(remote(&answer)).unwrap();
    let (sa, sb, _) = run(
        &mut a,
        &mut b,
        Instant::now(),
        Duration::from_secs(5),
        &mut |_| false,
    );
    assert!(sb.keys.is_none(), "the answerer never keys its media");
    let reason = sb.failed.expect("the answerer fails the call");
    assert!(
        reason.contains("does not match the fingerprint"),
        "{reason}"
    );
    assert!(sa.keys.is_none() || sa.failed.is_some() || sb.keys.is_none());
}

#[test]
fn offers_without_fingerprint_or_with_another_profile_are_refused() {
    let mut b = exchange("b", &SrtpProfile::ALL);
    let rng = provider().rng;
    let e = b
        .answer(remote(&[SdpAttribute::new("setup", "actpass")]), rng)
        .unwrap_err();
    assert_eq!(e.status, 488);
    assert!(e.reason.contains("fingerprint"), "{}", e.reason);
    let a = exchange("a", &SrtpProfile::ALL);
    let f = a.fingerprint().to_string();
    let attrs = [SdpAttribute::new("fingerprint", f)];
    let e = b
        .answer(
            RemoteMedia {
                profile: "RTP/SAVP",
                attributes: &attrs,
            },
            rng,
        )
        .unwrap_err();
    assert!(e.reason.contains("UDP/TLS/RTP/SAVP"), "{}", e.reason);
    assert!(Fingerprint::parse(&a.fingerprint().to_string()).is_some());
    // An offer without a=tls-id (linphonec's) gets an answer without one.
    let attrs = [
        SdpAttribute::new("fingerprint", a.fingerprint().to_string()),
        SdpAttribute::new("setup", "actpass"),
    ];
    let answer = b.answer(remote(&attrs), rng).unwrap();
    assert!(answer.iter().all(|x| x.name != "tls-id"), "{answer:?}");
}

#[test]
fn a_silent_peer_is_given_up_after_the_retransmissions() {
    let (mut a, mut b) = (
        exchange("a", &SrtpProfile::ALL),
        exchange("b", &SrtpProfile::ALL),
    );
    negotiate(&mut a, &mut b, true);
    let t0 = Instant::now();
    let (_, sb, sent) = run(&mut a, &mut b, t0, Duration::from_secs(300), &mut |_| true);
    let reason = sb.failed.expect("the client gives up");
    assert!(reason.contains("DTLS"), "{reason}");
    // The ClientHello and its five retransmissions (after 1, 3, 7, 15, 31 s), nothing more.
    assert_eq!(sent, 6, "{reason}");
    assert!(b.poll_timeout().is_none());
    let _ = Channel::Rtp;
}
