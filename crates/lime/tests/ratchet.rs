//! X3DH and the Double Ratchet between in-process devices, both curves: the first message
//! (X3DH init in its header), replies turning the ratchet, messages out of order and lost,
//! a session stored and read back mid-conversation, tampering, the skipped-key bound, and
//! one message to several devices under each policy.

use sotto_crypto::CryptoProvider;
use sotto_lime::keys::{IdentityKey, OneTimePreKey, SignedPreKey};
use sotto_lime::session::MAX_MESSAGE_SKIP;
use sotto_lime::x3dh::{self, PeerBundle};
use sotto_lime::{
    CurveId, DrSession, EncryptionPolicy, LimeError, decrypt_message, encrypt_message, header,
};

fn p() -> &'static CryptoProvider {
    sotto_crypto_rust::provider()
}

const CURVES: [CurveId; 2] = [CurveId::C25519, CurveId::C448];

/// A device with its prekeys, as it registered them.
struct Device {
    id: String,
    ik: IdentityKey,
    spk: SignedPreKey,
    opk: OneTimePreKey,
}

impl Device {
    fn new(curve: CurveId, id: &str) -> Device {
        let ik = IdentityKey::generate(p(), curve).unwrap();
        let spk = SignedPreKey::generate(p(), &ik).unwrap();
        let opk = OneTimePreKey::generate(p(), curve).unwrap();
        Device {
            id: id.into(),
            ik,
            spk,
            opk,
        }
    }

    fn bundle(&self, with_opk: bool) -> PeerBundle {
        PeerBundle {
            device_id: self.id.clone(),
            ik: self.ik.public.clone(),
            spk: self.spk.key.public.clone(),
            spk_id: self.spk.id,
            spk_signature: self.spk.signature.clone(),
            opk: with_opk.then(|| (self.opk.key.public.clone(), self.opk.id)),
        }
    }
}

/// Alice's session toward Bob (from his bundle) and Bob's, made from Alice's first message.
fn pair(curve: CurveId, with_opk: bool) -> (Device, Device, DrSession, Vec<u8>) {
    let (alice, bob) = (Device::new(curve, "alice-1"), Device::new(curve, "bob-1"));
    let (secret, init) = x3dh::initiate(p(), &alice.ik, &alice.id, &bob.bundle(with_opk)).unwrap();
    let mut encoded = Vec::new();
    init.encode(&mut encoded);
    let s = DrSession::initiator(
        p(),
        curve,
        secret.sk,
        secret.ad,
        &bob.spk.key.public,
        encoded,
    )
    .unwrap();
    (alice, bob, s, Vec::new())
}

/// Bob's session from a first message `msg` (its X3DH init read from the header).
fn respond(curve: CurveId, bob: &Device, from: &str, msg: &[u8]) -> DrSession {
    let h = header::parse(curve, msg).unwrap();
    let init = h.x3dh_init.expect("a first message carries the X3DH init");
    assert_eq!(init.spk_id, bob.spk.id);
    let opk = init.opk_id.map(|id| {
        assert_eq!(id, bob.opk.id);
        &bob.opk
    });
    let secret = x3dh::respond(p(), &bob.ik, &bob.id, from, &init, &bob.spk, opk).unwrap();
    DrSession::responder(curve, secret.sk, secret.ad, bob.spk.key.clone())
}

#[test]
fn first_message_replies_and_the_ratchet_turning() {
    for curve in CURVES {
        for with_opk in [true, false] {
            let (alice, bob, mut a, _) = pair(curve, with_opk);
            let m1 = a.encrypt(p(), b"hello bob", b"ad", true).unwrap();
            let m2 = a.encrypt(p(), b"still there?", b"ad", true).unwrap();
            assert!(a.awaiting_reply());
            let mut b = respond(curve, &bob, &alice.id, &m1);
            assert_eq!(&b.decrypt(p(), &m1, b"ad", true).unwrap()[..], b"hello bob");
            assert_eq!(
                &b.decrypt(p(), &m2, b"ad", true).unwrap()[..],
                b"still there?"
            );
            let r1 = b.encrypt(p(), b"hi alice", b"ad", true).unwrap();
            assert!(header::parse(curve, &r1).unwrap().x3dh_init.is_none());
            assert_eq!(&a.decrypt(p(), &r1, b"ad", true).unwrap()[..], b"hi alice");
            assert!(
                !a.awaiting_reply(),
                "the init stops riding once the peer answered"
            );
            let m3 = a.encrypt(p(), b"ratchet turned", b"ad", true).unwrap();
            assert!(header::parse(curve, &m3).unwrap().x3dh_init.is_none());
            assert_eq!(
                &b.decrypt(p(), &m3, b"ad", true).unwrap()[..],
                b"ratchet turned"
            );
        }
    }
}

#[test]
fn out_of_order_lost_and_replayed_messages() {
    for curve in CURVES {
        let (alice, bob, mut a, _) = pair(curve, true);
        let msgs: Vec<Vec<u8>> = (0..6)
            .map(|i| {
                a.encrypt(p(), format!("m{i}").as_bytes(), b"", true)
                    .unwrap()
            })
            .collect();
        let mut b = respond(curve, &bob, &alice.id, &msgs[0]);
        for i in [3, 0, 5, 1] {
            let got = b.decrypt(p(), &msgs[i], b"", true).unwrap();
            assert_eq!(&got[..], format!("m{i}").as_bytes());
        }
        assert_eq!(
            b.decrypt(p(), &msgs[3], b"", true),
            Err(LimeError::DecryptFailed),
            "a replay does not open"
        );
        // Bob answers, Alice answers back: the old chain's m2 and m4 still open.
        let r = b.encrypt(p(), b"r", b"", true).unwrap();
        a.decrypt(p(), &r, b"", true).unwrap();
        let n = a.encrypt(p(), b"new chain", b"", true).unwrap();
        assert_eq!(&b.decrypt(p(), &n, b"", true).unwrap()[..], b"new chain");
        for i in [4, 2] {
            let got = b.decrypt(p(), &msgs[i], b"", true).unwrap();
            assert_eq!(&got[..], format!("m{i}").as_bytes());
        }
    }
}

#[test]
fn a_session_stored_and_read_back_goes_on() {
    for curve in CURVES {
        let (alice, bob, mut a, _) = pair(curve, true);
        let m1 = a.encrypt(p(), b"one", b"", true).unwrap();
        let skipped = a.encrypt(p(), b"two", b"", true).unwrap();
        let m3 = a.encrypt(p(), b"three", b"", true).unwrap();
        let mut b = respond(curve, &bob, &alice.id, &m1);
        b.decrypt(p(), &m1, b"", true).unwrap();
        b.decrypt(p(), &m3, b"", true).unwrap();
        let mut b = DrSession::from_bytes(p(), &b.to_bytes()).unwrap();
        let mut a = DrSession::from_bytes(p(), &a.to_bytes()).unwrap();
        assert_eq!(&b.decrypt(p(), &skipped, b"", true).unwrap()[..], b"two");
        let r = b.encrypt(p(), b"reply", b"", true).unwrap();
        assert_eq!(&a.decrypt(p(), &r, b"", true).unwrap()[..], b"reply");
        assert!(DrSession::from_bytes(p(), &b.to_bytes()[..20]).is_err());
    }
}

#[test]
fn tampering_fails_and_leaves_the_session_as_it_was() {
    for curve in CURVES {
        let (alice, bob, mut a, _) = pair(curve, true);
        let m1 = a.encrypt(p(), b"one", b"ad", true).unwrap();
        let mut b = respond(curve, &bob, &alice.id, &m1);
        let before = b.to_bytes();
        let mut bad = m1.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert_eq!(
            b.decrypt(p(), &bad, b"ad", true),
            Err(LimeError::DecryptFailed)
        );
        assert_eq!(
            b.decrypt(p(), &m1, b"other ad", true),
            Err(LimeError::DecryptFailed)
        );
        assert!(
            b.decrypt(p(), &m1, b"ad", false).is_err(),
            "policy flag checked"
        );
        assert!(b.decrypt(p(), &m1[..10], b"ad", true).is_err());
        assert_eq!(b.to_bytes(), before, "unchanged by failures");
        assert_eq!(&b.decrypt(p(), &m1, b"ad", true).unwrap()[..], b"one");
    }
}

#[test]
fn messages_too_far_ahead_are_refused() {
    let curve = CurveId::C25519;
    let (alice, bob, mut a, _) = pair(curve, false);
    let first = a.encrypt(p(), b"0", b"", true).unwrap();
    let mut b = respond(curve, &bob, &alice.id, &first);
    b.decrypt(p(), &first, b"", true).unwrap();
    let mut last = Vec::new();
    for _ in 0..MAX_MESSAGE_SKIP + 2 {
        last = a.encrypt(p(), b"x", b"", true).unwrap();
    }
    assert!(matches!(
        b.decrypt(p(), &last, b"", true),
        Err(LimeError::TooManySkipped(_))
    ));
}

#[test]
fn a_forged_bundle_signature_is_refused() {
    for curve in CURVES {
        let (alice, bob) = (Device::new(curve, "a"), Device::new(curve, "b"));
        let mut bundle = bob.bundle(true);
        bundle.spk_signature[0] ^= 1;
        assert!(matches!(
            x3dh::initiate(p(), &alice.ik, &alice.id, &bundle),
            Err(LimeError::BadSignature(_))
        ));
    }
}

/// One message from alice to bob's two devices and alice's other device, each policy.
#[test]
fn one_message_to_several_devices_under_each_policy() {
    for curve in CURVES {
        let alice = Device::new(curve, "sip:alice@example.test;gr=a1");
        let devices: Vec<Device> = [
            "sip:bob@example.test;gr=b1",
            "sip:bob@example.test;gr=b2",
            "sip:alice@example.test;gr=a2",
        ]
        .iter()
        .map(|id| Device::new(curve, id))
        .collect();
        let mut ours: Vec<DrSession> = devices
            .iter()
            .map(|d| {
                let (s, init) = x3dh::initiate(p(), &alice.ik, &alice.id, &d.bundle(true)).unwrap();
                let mut e = Vec::new();
                init.encode(&mut e);
                DrSession::initiator(p(), curve, s.sk, s.ad, &d.spk.key.public, e).unwrap()
            })
            .collect();
        let mut theirs: Vec<Option<DrSession>> = devices.iter().map(|_| None).collect();
        for (policy, text) in [
            (
                EncryptionPolicy::CipherMessage,
                &b"a long enough chat message for the cipher"[..],
            ),
            (EncryptionPolicy::DrMessage, &b"short"[..]),
            (EncryptionPolicy::OptimizeUploadSize, &b"x"[..]),
        ] {
            let mut recipients: Vec<(&str, &mut DrSession)> = devices
                .iter()
                .map(|d| d.id.as_str())
                .zip(ours.iter_mut())
                .collect();
            let enc = encrypt_message(
                p(),
                &mut recipients,
                text,
                "sip:bob@example.test",
                &alice.id,
                policy,
            )
            .unwrap();
            assert_eq!(
                enc.cipher_message.is_empty(),
                policy.direct(3, text.len()),
                "{policy:?}"
            );
            for (i, d) in devices.iter().enumerate() {
                let (to, dr) = &enc.dr_messages[i];
                assert_eq!(to, &d.id);
                let s = theirs[i].get_or_insert_with(|| respond(curve, d, &alice.id, dr));
                // Another device's DR message does not open with this device's id.
                let other = &enc.dr_messages[(i + 1) % 3].1;
                assert!(
                    decrypt_message(
                        p(),
                        s,
                        &alice.id,
                        &d.id,
                        "sip:bob@example.test",
                        other,
                        &enc.cipher_message
                    )
                    .is_err()
                );
                let got = decrypt_message(
                    p(),
                    s,
                    &alice.id,
                    &d.id,
                    "sip:bob@example.test",
                    dr,
                    &enc.cipher_message,
                )
                .unwrap();
                assert_eq!(&got[..], text, "{policy:?} {}", d.id);
                // The recipient user is authenticated too.
                assert!(
                    decrypt_message(
                        p(),
                        s,
                        &alice.id,
                        &d.id,
                        "sip:eve@example.test",
                        dr,
                        &enc.cipher_message
                    )
                    .is_err()
                );
            }
        }
    }
}
