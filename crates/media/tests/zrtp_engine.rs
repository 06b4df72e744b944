//! The ZRTP engine between two (or, for the man in the middle, four) in-process endpoints:
//! every key agreement, the cache across calls, a relay that terminates ZRTP on each side,
//! loss, contention, timeouts, the zrtp-hash check, and garbage.

// The tests count virtual time from one reading of the clock.
#![allow(clippy::disallowed_methods)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sotto_crypto::CryptoProvider;
use sotto_media::zrtp::{
    CacheStatus, Role, ZidCache, ZrtpConfig, ZrtpEngine, ZrtpEvent, ZrtpKeyAgreement,
    ZrtpPreferences, ZrtpSecured,
};
use sotto_media::{SrtpPolicy, keyx::SrtpKeys};

fn provider() -> &'static CryptoProvider {
    sotto_crypto_rust::provider()
}

fn cache(zid: u8) -> Arc<Mutex<ZidCache>> {
    Arc::new(Mutex::new(ZidCache::new([zid; 12])))
}

fn engine(cache: &Arc<Mutex<ZidCache>>, prefs: ZrtpPreferences, ssrc: u32) -> ZrtpEngine {
    let mut c = ZrtpConfig::new(ssrc);
    c.preferences = prefs;
    ZrtpEngine::new(provider(), c, cache.clone()).unwrap()
}

#[derive(Default, Debug)]
struct Outcome {
    sas: Option<ZrtpSecured>,
    secure: Option<(ZrtpSecured, SrtpKeys)>,
    failed: Option<String>,
}

impl Outcome {
    fn done(&self) -> bool {
        self.secure.is_some() || self.failed.is_some()
    }
    fn take(&mut self, e: &mut ZrtpEngine) {
        while let Some(ev) = e.poll_event() {
            match ev {
                ZrtpEvent::Sas(s) => self.sas = Some(s),
                ZrtpEvent::Secure(s, k) => self.secure = Some((s, *k)),
                ZrtpEvent::Failed(r) => self.failed = Some(r),
                ZrtpEvent::GoClearRefused => {}
            }
        }
    }
}

/// Runs two engines against each other for at most `limit` of virtual time; `drop(n)` says
/// whether the n-th packet on the wire is lost.
fn run(
    a: &mut ZrtpEngine,
    b: &mut ZrtpEngine,
    limit: Duration,
    mut drop: impl FnMut(usize) -> bool,
) -> (Outcome, Outcome) {
    let t0 = Instant::now();
    let (mut oa, mut ob) = (Outcome::default(), Outcome::default());
    let mut buf = [0u8; 2048];
    let mut n = 0usize;
    let mut now = t0;
    while now < t0 + limit && !(oa.done() && ob.done()) {
        for _ in 0..8 {
            let mut moved = false;
            while let Some(len) = a.poll_transmit(now, &mut buf) {
                moved = true;
                n += 1;
                if !drop(n) {
                    b.handle_packet(now, &buf[..len]);
                }
            }
            while let Some(len) = b.poll_transmit(now, &mut buf) {
                moved = true;
                n += 1;
                if !drop(n) {
                    a.handle_packet(now, &buf[..len]);
                }
            }
            if !moved {
                break;
            }
        }
        oa.take(a);
        ob.take(b);
        now += Duration::from_millis(10);
        for e in [&mut *a, &mut *b] {
            if e.poll_timeout().is_some_and(|t| t <= now) {
                e.handle_timeout(now);
            }
        }
    }
    oa.take(a);
    ob.take(b);
    (oa, ob)
}

fn same_keys(x: &SrtpPolicy, y: &SrtpPolicy) -> bool {
    x.suite == y.suite
        && x.master_key.expose() == y.master_key.expose()
        && x.master_salt.expose() == y.master_salt.expose()
}

fn secure_pair(a: &Outcome, b: &Outcome) -> (ZrtpSecured, ZrtpSecured) {
    let (sa, ka) = a.secure.clone().expect("a secure");
    let (sb, kb) = b.secure.clone().expect("b secure");
    assert_eq!(sa.sas, sb.sas, "both sides show the same SAS");
    assert_ne!(sa.role, sb.role);
    assert!(same_keys(&ka.outbound, &kb.inbound));
    assert!(same_keys(&ka.inbound, &kb.outbound));
    assert!(!same_keys(&ka.outbound, &ka.inbound));
    (sa, sb)
}

#[test]
fn every_key_agreement_agrees_the_same_keys_and_sas() {
    for ka in [
        ZrtpKeyAgreement::X255,
        ZrtpKeyAgreement::E255,
        ZrtpKeyAgreement::X448,
        ZrtpKeyAgreement::Dh3k,
        ZrtpKeyAgreement::Dh2k,
    ] {
        let (ca, cb) = (cache(1), cache(2));
        let prefs = ZrtpPreferences::with_key_agreement(ka);
        let mut a = engine(&ca, prefs.clone(), 0x1111);
        let mut b = engine(&cb, prefs, 0x2222);
        let (oa, ob) = run(&mut a, &mut b, Duration::from_secs(5), |_| false);
        let (sa, _) = secure_pair(&oa, &ob);
        assert_eq!(sa.suite.key_agreement, ka);
        assert_eq!(sa.cache, CacheStatus::New);
        assert!(!sa.verified);
        assert_eq!(sa.sas.len(), 4, "B32 by default");
        // The initiator knew the SAS before the keys (Confirm1).
        let initiator = if sa.role == Role::Initiator { &oa } else { &ob };
        assert!(initiator.sas.is_some());
    }
}

#[test]
fn the_second_call_matches_the_cache_and_keeps_the_verification() {
    let (ca, cb) = (cache(1), cache(2));
    let mut a = engine(&ca, ZrtpPreferences::default(), 1);
    let mut b = engine(&cb, ZrtpPreferences::default(), 2);
    let (oa, ob) = run(&mut a, &mut b, Duration::from_secs(5), |_| false);
    let (first, _) = secure_pair(&oa, &ob);
    assert_eq!(first.cache, CacheStatus::New);
    a.set_sas_verified(true);
    b.set_sas_verified(true);
    assert!(ca.lock().unwrap().is_dirty());

    for _ in 0..2 {
        let mut a = engine(&ca, ZrtpPreferences::default(), 1);
        let mut b = engine(&cb, ZrtpPreferences::default(), 2);
        let (oa, ob) = run(&mut a, &mut b, Duration::from_secs(5), |_| false);
        let (sa, sb) = secure_pair(&oa, &ob);
        assert_eq!(
            (sa.cache, sb.cache),
            (CacheStatus::Match, CacheStatus::Match)
        );
        assert!(sa.verified && sb.verified, "verified on both sides");
        assert_ne!(sa.sas, first.sas, "fresh keys every call");
    }
    // One side loses its cache: the other reports the mismatch and forgets the verification.
    let fresh = cache(2);
    let mut a = engine(&ca, ZrtpPreferences::default(), 1);
    let mut b = engine(&fresh, ZrtpPreferences::default(), 2);
    let (oa, ob) = run(&mut a, &mut b, Duration::from_secs(5), |_| false);
    let (sa, sb) = secure_pair(&oa, &ob);
    assert_eq!(sa.cache, CacheStatus::Mismatch);
    assert_eq!(sb.cache, CacheStatus::New);
    assert!(!sa.verified);
    let c = ca.lock().unwrap();
    let peer = c.peer(&[2; 12]).unwrap();
    assert!(peer.unsafe_mismatch && !peer.verified);
}

/// A relay that terminates ZRTP with each side (an active man in the middle).
#[test]
fn a_man_in_the_middle_shows_two_sases_and_breaks_the_cache() {
    let (ca, cb) = (cache(1), cache(2));
    // A first, honest call, verified on both sides.
    {
        let mut a = engine(&ca, ZrtpPreferences::default(), 1);
        let mut b = engine(&cb, ZrtpPreferences::default(), 2);
        let (oa, ob) = run(&mut a, &mut b, Duration::from_secs(5), |_| false);
        secure_pair(&oa, &ob);
        a.set_sas_verified(true);
        b.set_sas_verified(true);
    }
    // The attacker poses as B to A and as A to B (its own ZIDs: it lacks their caches).
    let (m1c, m2c) = (cache(9), cache(8));
    let mut a = engine(&ca, ZrtpPreferences::default(), 1);
    let mut m1 = engine(&m1c, ZrtpPreferences::default(), 3);
    let mut m2 = engine(&m2c, ZrtpPreferences::default(), 4);
    let mut b = engine(&cb, ZrtpPreferences::default(), 2);
    let (oa, _) = run(&mut a, &mut m1, Duration::from_secs(5), |_| false);
    let (_, ob) = run(&mut m2, &mut b, Duration::from_secs(5), |_| false);
    let (sa, _) = oa.secure.clone().unwrap();
    let (sb, _) = ob.secure.clone().unwrap();
    assert_ne!(
        sa.sas, sb.sas,
        "the users compare SASes and see they differ"
    );
    // With another ZID A sees a new peer; posing with B's ZID (a stolen ZID without rs1)
    // is the case the cache catches:
    let (m3c, m4c) = (cache(2), cache(1));
    let mut a = engine(&ca, ZrtpPreferences::default(), 1);
    let mut m3 = engine(&m3c, ZrtpPreferences::default(), 3);
    let mut m4 = engine(&m4c, ZrtpPreferences::default(), 4);
    let mut b = engine(&cb, ZrtpPreferences::default(), 2);
    let (oa, _) = run(&mut a, &mut m3, Duration::from_secs(5), |_| false);
    let (_, ob) = run(&mut m4, &mut b, Duration::from_secs(5), |_| false);
    let (sa, _) = oa.secure.clone().unwrap();
    let (sb, _) = ob.secure.clone().unwrap();
    assert_ne!(sa.sas, sb.sas);
    assert_eq!(
        (sa.cache, sb.cache),
        (CacheStatus::Mismatch, CacheStatus::Mismatch)
    );
    assert!(!sa.verified && !sb.verified);
    assert!(ca.lock().unwrap().peer(&[2; 12]).unwrap().unsafe_mismatch);
    assert!(cb.lock().unwrap().peer(&[1; 12]).unwrap().unsafe_mismatch);
}

#[test]
fn lost_packets_are_retransmitted() {
    for pattern in [3usize, 4, 5, 7] {
        let (ca, cb) = (cache(1), cache(2));
        let mut a = engine(&ca, ZrtpPreferences::default(), 1);
        let mut b = engine(&cb, ZrtpPreferences::default(), 2);
        let (oa, ob) = run(&mut a, &mut b, Duration::from_secs(20), |n| {
            n % pattern == 0
        });
        secure_pair(&oa, &ob);
    }
}

#[test]
fn a_silent_peer_fails_the_exchange_with_a_reason() {
    let (ca, cb) = (cache(1), cache(2));
    let mut a = engine(&ca, ZrtpPreferences::default(), 1);
    let mut b = engine(&cb, ZrtpPreferences::default(), 2);
    let (oa, _) = run(&mut a, &mut b, Duration::from_secs(40), |_| true);
    let reason = oa.failed.expect("fails");
    assert!(reason.contains("no ZRTP Hello"), "{reason}");
}

#[test]
fn a_hello_not_matching_the_sdp_hash_is_never_accepted() {
    let (ca, cb) = (cache(1), cache(2));
    let mut a = engine(&ca, ZrtpPreferences::default(), 1);
    let mut b = engine(&cb, ZrtpPreferences::default(), 2);
    a.set_peer_hello_hash([0xAB; 32]);
    let (oa, ob) = run(&mut a, &mut b, Duration::from_secs(40), |_| false);
    assert!(oa.secure.is_none() && ob.secure.is_none());
    let reason = oa.failed.expect("fails");
    assert!(reason.contains("zrtp-hash"), "{reason}");

    // The right hash passes.
    let mut a = engine(&ca, ZrtpPreferences::default(), 1);
    let mut b = engine(&cb, ZrtpPreferences::default(), 2);
    let hex = b.hello_hash();
    let mut h = [0u8; 32];
    for (i, x) in h.iter_mut().enumerate() {
        *x = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
    }
    a.set_peer_hello_hash(h);
    let (oa, ob) = run(&mut a, &mut b, Duration::from_secs(5), |_| false);
    secure_pair(&oa, &ob);
}

#[test]
fn different_preferences_meet_on_the_cheaper_agreement() {
    let (ca, cb) = (cache(1), cache(2));
    let pa = ZrtpPreferences {
        key_agreements: vec![ZrtpKeyAgreement::Dh3k, ZrtpKeyAgreement::X448],
        ..Default::default()
    };
    let pb = ZrtpPreferences {
        key_agreements: vec![ZrtpKeyAgreement::X448, ZrtpKeyAgreement::Dh3k],
        ..Default::default()
    };
    let mut a = engine(&ca, pa, 1);
    let mut b = engine(&cb, pb, 2);
    let (oa, ob) = run(&mut a, &mut b, Duration::from_secs(5), |_| false);
    let (sa, _) = secure_pair(&oa, &ob);
    assert_eq!(sa.suite.key_agreement, ZrtpKeyAgreement::X448);
}

#[test]
fn garbage_and_replayed_packets_change_nothing() {
    let (ca, cb) = (cache(1), cache(2));
    let mut a = engine(&ca, ZrtpPreferences::default(), 1);
    let mut b = engine(&cb, ZrtpPreferences::default(), 2);
    let now = Instant::now();
    let mut buf = [0u8; 2048];
    let n = b.poll_transmit(now, &mut buf).unwrap();
    let hello = buf[..n].to_vec();
    // Every truncation and single-bit flip of a Hello is dropped without a panic.
    for len in 0..hello.len() {
        a.handle_packet(now, &hello[..len]);
    }
    for i in 0..hello.len() * 8 {
        let mut p = hello.clone();
        p[i / 8] ^= 1 << (i % 8);
        a.handle_packet(now, &p);
    }
    let mut seed = 0x1234_5678u32;
    for _ in 0..2000 {
        let mut p = vec![0u8; (seed % 600) as usize];
        for x in p.iter_mut() {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
            *x = (seed >> 16) as u8;
        }
        if p.len() > 8 {
            p[0] = 0x10;
            p[4..8].copy_from_slice(b"ZRTP");
        }
        a.handle_packet(now, &p);
    }
    while a.poll_event().is_some() {}
    // The exchange still completes.
    let (oa, ob) = run(&mut a, &mut b, Duration::from_secs(5), |_| false);
    secure_pair(&oa, &ob);
}

/// Writes the packets of one handshake to `fuzz/seeds/zrtp_packet/` (the fuzz target's
/// seeds; run by hand with `--ignored`).
#[test]
#[ignore = "writes the fuzz seeds; run by hand"]
fn write_fuzz_seeds() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/zrtp_packet");
    std::fs::create_dir_all(&dir).unwrap();
    let (ca, cb) = (cache(1), cache(2));
    let mut a = engine(&ca, ZrtpPreferences::default(), 1);
    let mut b = engine(&cb, ZrtpPreferences::default(), 2);
    let now = Instant::now();
    let mut buf = [0u8; 2048];
    let mut n = 0;
    for _ in 0..16 {
        while let Some(len) = a.poll_transmit(now, &mut buf) {
            std::fs::write(dir.join(format!("{n:02}-a")), &buf[..len]).unwrap();
            n += 1;
            b.handle_packet(now, &buf[..len]);
        }
        while let Some(len) = b.poll_transmit(now, &mut buf) {
            std::fs::write(dir.join(format!("{n:02}-b")), &buf[..len]).unwrap();
            n += 1;
            a.handle_packet(now, &buf[..len]);
        }
    }
    assert!(a.is_secure() && b.is_secure());
}

/// The PGP word list in the code is the reference list (tests/vectors/zrtp), and the SAS
/// renderings match the examples computed from the RFC's pseudocode.
#[test]
fn sas_rendering_matches_the_vectors() {
    use sotto_media::zrtp::ZrtpSasType;
    use sotto_media::zrtp::pgp_words::{EVEN, ODD};
    use sotto_media::zrtp::sas::render;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/zrtp");
    let words: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("pgp_word_list.json")).unwrap())
            .unwrap();
    for (i, w) in words["even"].as_array().unwrap().iter().enumerate() {
        assert_eq!(w.as_str().unwrap(), EVEN[i]);
    }
    for (i, w) in words["odd"].as_array().unwrap().iter().enumerate() {
        assert_eq!(w.as_str().unwrap(), ODD[i]);
    }
    let sas: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("sas_rendering.json")).unwrap())
            .unwrap();
    let ex = &sas["derived_examples"];
    let value =
        |v: &serde_json::Value| u32::from_str_radix(v["sasvalue"].as_str().unwrap(), 16).unwrap();
    for e in ex["b32"].as_array().unwrap() {
        assert_eq!(
            render(ZrtpSasType::B32, value(e)),
            e["b32"].as_str().unwrap()
        );
    }
    for e in ex["b256"].as_array().unwrap() {
        let w = e["b256"].as_array().unwrap();
        assert_eq!(
            render(ZrtpSasType::B256, value(e)),
            format!("{}:{}", w[0].as_str().unwrap(), w[1].as_str().unwrap())
        );
    }
}

/// A second stream of the same call in Multistream mode: no DH, the first stream's SAS and
/// session, fresh SRTP keys, the cache untouched; without a session it is refused, and a DH
/// Commit beats a Multistream one.
#[test]
fn a_second_stream_in_multistream_mode() {
    use sotto_media::zrtp::ZrtpConfig;
    let (ca, cb) = (cache(1), cache(2));
    let mut a = engine(&ca, ZrtpPreferences::default(), 1);
    let mut b = engine(&cb, ZrtpPreferences::default(), 2);
    let (oa, ob) = run(&mut a, &mut b, Duration::from_secs(5), |_| false);
    let (first, _) = secure_pair(&oa, &ob);
    let (ka1, _) = oa.secure.clone().unwrap();
    let rs1_before = ca
        .lock()
        .unwrap()
        .peer(&[2; 12])
        .unwrap()
        .rs1
        .clone()
        .unwrap();

    let second = |c: &Arc<Mutex<ZidCache>>, e: &ZrtpEngine, ssrc| {
        let mut cfg = ZrtpConfig::new(ssrc);
        cfg.multistream = Some(e.multistream_keys().expect("session keys"));
        ZrtpEngine::new(provider(), cfg, c.clone()).unwrap()
    };
    let mut a2 = second(&ca, &a, 3);
    let mut b2 = second(&cb, &b, 4);
    let (oa2, ob2) = run(&mut a2, &mut b2, Duration::from_secs(10), |n| n % 4 == 0);
    assert!(
        oa2.failed.is_none() && ob2.failed.is_none(),
        "{oa2:?} {ob2:?}"
    );
    let (sa2, _) = secure_pair(&oa2, &ob2);
    assert_eq!(sa2.sas, first.sas, "the first stream's SAS");
    assert_eq!(sa2.suite, ka1.suite);
    let (k1, k2) = (
        oa.secure
            .as_ref()
            .unwrap()
            .1
            .outbound
            .master_key
            .expose()
            .to_vec(),
        oa2.secure
            .as_ref()
            .unwrap()
            .1
            .outbound
            .master_key
            .expose()
            .to_vec(),
    );
    assert_ne!(k1, k2, "fresh SRTP keys for the second stream");
    let rs1_after = ca
        .lock()
        .unwrap()
        .peer(&[2; 12])
        .unwrap()
        .rs1
        .clone()
        .unwrap();
    assert_eq!(rs1_before.expose(), rs1_after.expose(), "cache untouched");

    // A peer without the session commits DH: a DH Commit beats a Multistream one, and the
    // stream is keyed in DH mode (with the cached secret).
    let mut a3 = second(&ca, &a, 5);
    let mut b3 = engine(&cb, ZrtpPreferences::default(), 6);
    let (oa3, ob3) = run(&mut a3, &mut b3, Duration::from_secs(5), |_| false);
    let (sa3, _) = secure_pair(&oa3, &ob3);
    assert_eq!(
        sa3.cache,
        CacheStatus::Match,
        "DH mode with the cached secret"
    );
}

/// The auxiliary secret (kept in the cache per peer, or given for the call): proved by both
/// sides when equal, reported as a mismatch (and left out of s0) when not.
#[test]
fn the_auxiliary_secret_is_proved_or_reported_as_differing() {
    use sotto_crypto::secret::SecretBytes;
    for (aux_a, aux_b, want) in [([5u8; 16], [5u8; 16], true), ([5u8; 16], [6u8; 16], false)] {
        let (ca, cb) = (cache(1), cache(2));
        ca.lock()
            .unwrap()
            .set_aux([2; 12], Some(SecretBytes::from_slice(&aux_a)));
        cb.lock()
            .unwrap()
            .set_aux([1; 12], Some(SecretBytes::from_slice(&aux_b)));
        let mut a = engine(&ca, ZrtpPreferences::default(), 1);
        let mut b = engine(&cb, ZrtpPreferences::default(), 2);
        let (oa, ob) = run(&mut a, &mut b, Duration::from_secs(5), |_| false);
        let (sa, sb) = secure_pair(&oa, &ob);
        assert_eq!((sa.aux_matched, sb.aux_matched), (Some(want), Some(want)));
    }
}
