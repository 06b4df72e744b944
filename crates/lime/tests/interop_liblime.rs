//! sotto's LIME against Linphone's own (Debian `liblime-dev` 5.1, its C API, driven by
//! `liblime_peer.c`, built here with cc), on Curve25519 and on Curve448. Both register on
//! sotto's key server logic (in process: the harness's key-server posts come to it), then:
//!
//! - liblime writes first to a sotto device (X3DH init from liblime), sotto decrypts and
//!   answers (the ratchet turns), liblime decrypts;
//! - sotto writes first to another liblime device (X3DH init from sotto, the SPk signature
//!   checked by liblime), liblime decrypts and answers, sotto decrypts;
//! - under the cipher-message policy (Linphone's chat) and the DR-message policy, and to two
//!   devices at once; a tampered message fails on both sides.

use sotto_crypto::CryptoProvider;
use sotto_lime::keyserver::{KeyServer, Limits, MemoryKeyStore};
use sotto_lime::{CurveId, EncryptionPolicy, LimeUser, PeerTrust};

fn p() -> &'static CryptoProvider {
    sotto_crypto_rust::provider()
}

#[path = "common/liblime.rs"]
mod liblime;

use liblime::{Liblime, hex_or_dash as h, unhex};

/// Runs `cmd` on liblime, its key-server posts answered by `ks` in process.
fn run(lime: &mut Liblime, ks: &KeyServer<MemoryKeyStore>, cmd: &str) -> String {
    lime.run(cmd, &mut |from, body| (200, ks.handle(from, body)))
}

/// A liblime peer with its database in a fresh directory (kept alive with it).
fn start_liblime(name: &str) -> (Liblime, tempfile::TempDir) {
    let dir = tempfile::Builder::new()
        .prefix(&format!("sotto-liblime-{name}-"))
        .tempdir()
        .unwrap();
    (Liblime::start(&dir.path().join("lime.sqlite")), dir)
}

/// What liblime's encrypt gives: the cipher message, and (device, status, DR message) per
/// recipient.
type LimeEncrypted = (Vec<u8>, Vec<(String, u8, Vec<u8>)>);

/// liblime's encrypt.
fn lime_encrypt(
    lime: &mut Liblime,
    ks: &KeyServer<MemoryKeyStore>,
    local: &str,
    user: &str,
    policy: u8,
    text: &[u8],
    devices: &[&str],
) -> LimeEncrypted {
    let out = run(
        lime,
        ks,
        &format!(
            "encrypt {local} {user} {policy} {} {}",
            h(text),
            devices.join(" ")
        ),
    );
    let mut parts = out.split(' ');
    assert_eq!(parts.next(), Some("ENC"), "{out}");
    let cipher = unhex(parts.next().unwrap());
    let recs = parts
        .map(|r| {
            // DEVICE|STATUS|HEXDR (a GRUU holds '=' but no '|').
            let mut f = r.rsplitn(3, '|');
            let dr = unhex(f.next().unwrap());
            let st: u8 = f.next().unwrap().parse().unwrap();
            (f.next().unwrap().to_owned(), st, dr)
        })
        .collect();
    (cipher, recs)
}

/// liblime's decrypt: (status, plaintext).
fn lime_decrypt(
    lime: &mut Liblime,
    ks: &KeyServer<MemoryKeyStore>,
    local: &str,
    user: &str,
    sender: &str,
    dr: &[u8],
    cipher: &[u8],
) -> (u8, Vec<u8>) {
    let out = run(
        lime,
        ks,
        &format!("decrypt {local} {user} {sender} {} {}", h(dr), h(cipher)),
    );
    let mut parts = out.split(' ');
    assert_eq!(parts.next(), Some("DEC"), "{out}");
    let st = parts.next().unwrap().parse().unwrap();
    (st, unhex(parts.next().unwrap_or("-")))
}

/// liblime's PeerDeviceStatus values.
const UNTRUSTED: u8 = 0;
const FAIL: u8 = 3;
const UNKNOWN: u8 = 4;

fn sotto_user(ks: &KeyServer<MemoryKeyStore>, curve: CurveId, id: &str) -> LimeUser {
    let (u, body) = LimeUser::create(p(), id, curve, 10).unwrap();
    ks.handle(id, &body);
    u
}

fn both_ways(curve: CurveId) {
    let ks = KeyServer::new(
        MemoryKeyStore::default(),
        vec![CurveId::C25519, CurveId::C448],
        Limits::default(),
    );
    let (l1, l2, s1) = (
        "sip:lime@example.test;gr=l1",
        "sip:lime@example.test;gr=l2",
        "sip:sotto@example.test;gr=s1",
    );
    let (lime_user, sotto_uri) = ("sip:lime@example.test", "sip:sotto@example.test");
    let (mut lime, _lime_dir) = start_liblime(curve.name());
    for d in [l1, l2] {
        let r = run(&mut lime, &ks, &format!("create {d} {} 20", curve.id()));
        assert_eq!(r, "OK", "liblime registers {d} on sotto's key server");
    }
    let mut sotto = sotto_user(&ks, curve, s1);

    // 1. liblime writes first, cipher-message policy; sotto answers; liblime decrypts.
    let (cipher, recs) = lime_encrypt(
        &mut lime,
        &ks,
        l1,
        sotto_uri,
        1,
        b"hello from liblime",
        &[s1],
    );
    assert_eq!(recs[0].1, UNKNOWN, "first contact for liblime");
    assert!(!cipher.is_empty());
    let (plain, status) = sotto
        .decrypt(p(), l1, sotto_uri, &recs[0].2, &cipher)
        .unwrap();
    assert_eq!(
        &plain[..],
        b"hello from liblime",
        "{curve:?}: sotto reads liblime's X3DH init"
    );
    assert!(status.first_contact && status.trust == PeerTrust::Untrusted);
    let reply = sotto
        .encrypt(
            p(),
            lime_user,
            &[l1],
            b"hello liblime, from sotto",
            EncryptionPolicy::CipherMessage,
        )
        .unwrap();
    let (st, plain) = lime_decrypt(
        &mut lime,
        &ks,
        l1,
        lime_user,
        s1,
        &reply.dr_messages[0].1,
        &reply.cipher_message,
    );
    assert_eq!(st, UNTRUSTED, "{curve:?}");
    assert_eq!(plain, b"hello liblime, from sotto");
    // After the ratchet turned, liblime again, DR-message policy.
    let (cipher, recs) = lime_encrypt(&mut lime, &ks, l1, sotto_uri, 0, b"short", &[s1]);
    assert!(cipher.is_empty(), "DR-message policy: no cipher message");
    let (plain, _) = sotto
        .decrypt(p(), l1, sotto_uri, &recs[0].2, &cipher)
        .unwrap();
    assert_eq!(&plain[..], b"short");

    // 2. sotto writes first to l2 (fetching its bundle from the key server), both policies.
    let needed = sotto.sessions_needed(&[l2]);
    let bundles = ks.handle(s1, &sotto.bundle_request(&needed));
    assert!(sotto.handle_bundles(p(), &bundles).unwrap().is_empty());
    for (i, policy) in [EncryptionPolicy::CipherMessage, EncryptionPolicy::DrMessage]
        .into_iter()
        .enumerate()
    {
        let text = format!("sotto to l2, message {i}");
        let m = sotto
            .encrypt(p(), lime_user, &[l2], text.as_bytes(), policy)
            .unwrap();
        let (st, plain) = lime_decrypt(
            &mut lime,
            &ks,
            l2,
            lime_user,
            s1,
            &m.dr_messages[0].1,
            &m.cipher_message,
        );
        assert_ne!(
            st, FAIL,
            "{curve:?}: liblime reads sotto's X3DH init ({policy:?})"
        );
        assert_eq!(plain, text.as_bytes());
    }
    let (cipher, recs) = lime_encrypt(&mut lime, &ks, l2, sotto_uri, 1, b"l2 answers sotto", &[s1]);
    let (plain, _) = sotto
        .decrypt(p(), l2, sotto_uri, &recs[0].2, &cipher)
        .unwrap();
    assert_eq!(&plain[..], b"l2 answers sotto");

    // 3. One message from sotto to both liblime devices; then one tampered.
    let m = sotto
        .encrypt(
            p(),
            lime_user,
            &[l1, l2],
            b"to both of you",
            EncryptionPolicy::CipherMessage,
        )
        .unwrap();
    for (d, dr) in &m.dr_messages {
        let (st, plain) = lime_decrypt(&mut lime, &ks, d, lime_user, s1, dr, &m.cipher_message);
        assert_ne!(st, FAIL, "{d}");
        assert_eq!(plain, b"to both of you");
    }
    let mut bad = m.cipher_message.clone();
    bad[0] ^= 1;
    let m2 = sotto
        .encrypt(
            p(),
            lime_user,
            &[l1],
            b"tampered on the way",
            EncryptionPolicy::CipherMessage,
        )
        .unwrap();
    let mut bad2 = m2.cipher_message.clone();
    bad2[0] ^= 1;
    let (st, _) = lime_decrypt(
        &mut lime,
        &ks,
        l1,
        lime_user,
        s1,
        &m2.dr_messages[0].1,
        &bad2,
    );
    assert_eq!(st, FAIL, "liblime refuses a tampered message");
    let (cipher, mut recs) = lime_encrypt(&mut lime, &ks, l1, sotto_uri, 1, b"x", &[s1]);
    let last = recs[0].2.len() - 1;
    recs[0].2[last] ^= 1;
    assert!(
        sotto
            .decrypt(p(), l1, sotto_uri, &recs[0].2, &cipher)
            .is_err()
    );
    let _ = bad;

    // liblime's identity key is the one sotto recorded.
    let ik = run(&mut lime, &ks, &format!("ik {l1}"));
    let ik = unhex(ik.strip_prefix("IK ").unwrap());
    assert_eq!(sotto.peer(l1).unwrap().ik, ik);
}

#[test]
fn liblime_and_sotto_talk_both_ways_on_curve25519() {
    both_ways(CurveId::C25519);
}

#[test]
fn liblime_and_sotto_talk_both_ways_on_curve448() {
    both_ways(CurveId::C448);
}
