//! Local devices through the key server logic (in memory): registration, bundles fetched when
//! a session is missing, a message to a user's devices and the sender's other device, replies,
//! errors of the protocol, and each OPk served once, also to many threads at once.

use std::sync::Arc;

use sotto_crypto::CryptoProvider;
use sotto_lime::keyserver::{KeyServer, Limits, MemoryKeyStore};
use sotto_lime::protocol::{ErrorCode, Request, Response};
use sotto_lime::{CurveId, EncryptionPolicy, LimeError, LimeUser, PeerTrust};

fn p() -> &'static CryptoProvider {
    sotto_crypto_rust::provider()
}

fn server() -> KeyServer<MemoryKeyStore> {
    KeyServer::new(
        MemoryKeyStore::default(),
        vec![CurveId::C25519, CurveId::C448],
        Limits::default(),
    )
}

fn register(ks: &KeyServer<MemoryKeyStore>, curve: CurveId, id: &str) -> LimeUser {
    let (u, body) = LimeUser::create(p(), id, curve, 5).unwrap();
    let reply = ks.handle(id, &body);
    assert!(matches!(
        Response::parse(curve, &reply),
        Ok(Response::Ack(_))
    ));
    u
}

/// Encrypts, fetching bundles for devices without a session.
fn send(
    ks: &KeyServer<MemoryKeyStore>,
    from: &mut LimeUser,
    to_user: &str,
    devices: &[&str],
    text: &[u8],
) -> sotto_lime::Encrypted {
    let needed = from.sessions_needed(devices);
    if !needed.is_empty() {
        let reply = ks.handle(from.device_id(), &from.bundle_request(&needed));
        assert!(from.handle_bundles(p(), &reply).unwrap().is_empty());
    }
    from.encrypt(p(), to_user, devices, text, EncryptionPolicy::CipherMessage)
        .unwrap()
}

#[test]
fn alice_writes_to_bob_and_her_other_device_and_bob_answers() {
    for curve in [CurveId::C25519, CurveId::C448] {
        let ks = server();
        let (a1, a2, b1) = (
            "sip:alice@example.test;gr=a1",
            "sip:alice@example.test;gr=a2",
            "sip:bob@example.test;gr=b1",
        );
        let mut alice1 = register(&ks, curve, a1);
        let mut alice2 = register(&ks, curve, a2);
        let mut bob = register(&ks, curve, b1);
        assert!(matches!(
            alice1.encrypt(
                p(),
                "sip:bob@example.test",
                &[b1],
                b"x",
                EncryptionPolicy::default()
            ),
            Err(LimeError::NoSession(_))
        ));
        let enc = send(
            &ks,
            &mut alice1,
            "sip:bob@example.test",
            &[b1, a2],
            b"hi bob",
        );
        for (dev, user) in [(&mut bob, b1), (&mut alice2, a2)] {
            let dr = &enc.dr_messages.iter().find(|(d, _)| d == user).unwrap().1;
            let (plain, status) = dev
                .decrypt(p(), a1, "sip:bob@example.test", dr, &enc.cipher_message)
                .unwrap();
            assert_eq!(&plain[..], b"hi bob");
            assert!(status.first_contact);
            assert_eq!(status.trust, PeerTrust::Untrusted);
            assert_eq!(dev.opk_count(), 4, "the OPk used is forgotten");
        }
        // Bob answers without fetching anything: his session came with the first message.
        assert!(bob.sessions_needed(&[a1]).is_empty());
        let reply = bob
            .encrypt(
                p(),
                "sip:alice@example.test",
                &[a1],
                b"hi alice",
                EncryptionPolicy::DrMessage,
            )
            .unwrap();
        let (plain, status) = alice1
            .decrypt(
                p(),
                b1,
                "sip:alice@example.test",
                &reply.dr_messages[0].1,
                &reply.cipher_message,
            )
            .unwrap();
        assert_eq!(&plain[..], b"hi alice");
        assert!(!status.first_contact);
        // A second message from alice: no X3DH init any more.
        let again = send(&ks, &mut alice1, "sip:bob@example.test", &[b1], b"again");
        let h = sotto_lime::header::parse(curve, &again.dr_messages[0].1).unwrap();
        assert!(h.x3dh_init.is_none());
        let (plain, _) = bob
            .decrypt(
                p(),
                a1,
                "sip:bob@example.test",
                &again.dr_messages[0].1,
                &again.cipher_message,
            )
            .unwrap();
        assert_eq!(&plain[..], b"again");
        // Trust: confirming bob's key, then a different key for his device, makes it unsafe.
        let bob_ik = bob.identity_key().to_vec();
        alice1.set_peer_trust(b1, &bob_ik, PeerTrust::Trusted);
        assert_eq!(alice1.peer(b1).unwrap().trust, PeerTrust::Trusted);
        alice1.set_peer_trust(b1, &vec![9u8; bob_ik.len()], PeerTrust::Trusted);
        assert_eq!(alice1.peer(b1).unwrap().trust, PeerTrust::Unsafe);
    }
}

#[test]
fn protocol_errors_have_their_codes() {
    let ks = server();
    let code = |reply: Vec<u8>| match Response::parse(CurveId::C25519, &reply) {
        Err(LimeError::Server { code, .. }) => code,
        other => panic!("{other:?}"),
    };
    let (u, body) = LimeUser::create(p(), "d1", CurveId::C25519, 2).unwrap();
    assert_eq!(
        code(ks.handle("d1", &[0x02, 0x09, 0x01])),
        ErrorCode::BadProtocolVersion as u8
    );
    assert_eq!(
        code(ks.handle("d1", &[0x01, 0x09, 0x07])),
        ErrorCode::BadCurve as u8
    );
    assert_eq!(
        code(ks.handle("d1", &body[..body.len() - 1])),
        ErrorCode::BadSize as u8
    );
    assert_eq!(code(ks.handle("", &body)), ErrorCode::MissingSenderId as u8);
    assert_eq!(
        code(ks.handle("d1", &Request::GetSelfOpks.encode(CurveId::C25519))),
        ErrorCode::UserNotFound as u8
    );
    assert!(Response::parse(CurveId::C25519, &ks.handle("d1", &body)).is_ok());
    assert_eq!(code(ks.handle("d1", &body)), ErrorCode::UserAlreadyIn as u8);
    let reply = ks.handle("d1", &Request::GetSelfOpks.encode(CurveId::C25519));
    assert!(matches!(
        Response::parse(CurveId::C25519, &reply),
        Ok(Response::SelfOpks(ids)) if ids.len() == 2
    ));
    // Too many OPks for one device.
    let mut u = u;
    let many = u.new_opks(p(), 600).unwrap();
    assert_eq!(
        code(ks.handle("d1", &many)),
        ErrorCode::ResourceLimitReached as u8
    );
    // A device on the other curve has no bundle for this one.
    let (_, b448) = LimeUser::create(p(), "d448", CurveId::C448, 1).unwrap();
    ks.handle("d448", &b448);
    let reply = ks.handle("d1", &u.bundle_request(&["d448".into(), "nobody".into()]));
    assert_eq!(
        u.handle_bundles(p(), &reply).unwrap(),
        vec!["d448", "nobody"]
    );
}

/// 200 fetches of one device's bundle from 8 threads: its 50 OPks are each served once, the
/// other 150 bundles come without one.
#[test]
fn an_opk_is_served_at_most_once_under_concurrent_requests() {
    let ks = Arc::new(server());
    let (_, body) = LimeUser::create(p(), "bob", CurveId::C25519, 50).unwrap();
    ks.handle("bob", &body);
    let (asker, reg) = LimeUser::create(p(), "alice", CurveId::C25519, 0).unwrap();
    ks.handle("alice", &reg);
    let req = Arc::new(asker.bundle_request(&["bob".into()]));
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let (ks, req) = (ks.clone(), req.clone());
            std::thread::spawn(move || {
                (0..25)
                    .filter_map(|_| {
                        match Response::parse(CurveId::C25519, &ks.handle("alice", &req)) {
                            Ok(Response::PeerBundles(e)) => match &e[0] {
                                sotto_lime::protocol::BundleEntry::Bundle(b) => {
                                    b.opk.as_ref().map(|(_, id)| *id)
                                }
                                _ => None,
                            },
                            other => panic!("{other:?}"),
                        }
                    })
                    .collect::<Vec<u32>>()
            })
        })
        .collect();
    let mut ids: Vec<u32> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    assert_eq!(ids.len(), 50, "each OPk handed out, none twice");
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 50);
}

/// A store as the agent keeps one: the keys blob and a blob per session, written from
/// `take_changes` after every operation.
#[derive(Default)]
struct Stored {
    keys: Vec<u8>,
    sessions: std::collections::BTreeMap<String, Vec<u8>>,
}

impl Stored {
    fn commit(&mut self, u: &mut LimeUser) {
        let c = u.take_changes().unwrap();
        if let Some(k) = c.keys {
            self.keys = k.to_vec();
        }
        for (d, s) in c.sessions {
            self.sessions.insert(d, s.to_vec());
        }
    }

    fn reload(&self) -> LimeUser {
        let s: Vec<(String, Vec<u8>)> = self.sessions.clone().into_iter().collect();
        LimeUser::from_bytes(p(), &self.keys, &s).unwrap()
    }
}

/// Keys and sessions written after every message survive a restart of either side: the
/// conversation goes on, and an OPk used before the restart stays used.
#[test]
fn keys_and_sessions_survive_a_restart() {
    for curve in [CurveId::C25519, CurveId::C448] {
        let ks = server();
        let (a1, b1) = ("sip:alice@example.test;gr=a1", "sip:bob@example.test;gr=b1");
        let (mut alice, mut bob) = (register(&ks, curve, a1), register(&ks, curve, b1));
        let (mut sa, mut sb) = (Stored::default(), Stored::default());
        sa.commit(&mut alice);
        sb.commit(&mut bob);
        let m = send(&ks, &mut alice, "bob", &[b1], b"before");
        sa.commit(&mut alice);
        bob.decrypt(p(), a1, "bob", &m.dr_messages[0].1, &m.cipher_message)
            .unwrap();
        sb.commit(&mut bob);
        let used_opks = bob.opk_count();
        // Both restart.
        let (mut alice, mut bob) = (sa.reload(), sb.reload());
        assert_eq!(bob.opk_count(), used_opks, "the used OPk stays forgotten");
        assert_eq!(alice.identity_key(), sa.reload().identity_key());
        let r = bob
            .encrypt(
                p(),
                "alice",
                &[a1],
                b"after",
                EncryptionPolicy::CipherMessage,
            )
            .unwrap();
        sb.commit(&mut bob);
        let (plain, status) = alice
            .decrypt(p(), b1, "alice", &r.dr_messages[0].1, &r.cipher_message)
            .unwrap();
        assert_eq!(&plain[..], b"after");
        assert!(!status.first_contact);
        sa.commit(&mut alice);
        // The contract: changes are committed before a message leaves. A message encrypted
        // but not committed when the process dies never left, so its chain position is
        // taken again by the next message after the restart (same Ns), and bob reads it.
        let lost = alice
            .encrypt(p(), "bob", &[b1], b"lost", EncryptionPolicy::CipherMessage)
            .unwrap();
        let mut alice = sa.reload();
        let next = alice
            .encrypt(p(), "bob", &[b1], b"next", EncryptionPolicy::CipherMessage)
            .unwrap();
        let ns = |m: &[u8]| sotto_lime::header::parse(curve, m).unwrap().ns;
        assert_eq!(ns(&lost.dr_messages[0].1), ns(&next.dr_messages[0].1));
        let (plain, _) = bob
            .decrypt(p(), a1, "bob", &next.dr_messages[0].1, &next.cipher_message)
            .unwrap();
        assert_eq!(&plain[..], b"next");
        assert!(LimeUser::from_bytes(p(), &sa.keys[..10], &[]).is_err());
    }
}

/// A new SPk every 7 days, the old one kept 30 days for first messages in flight: a first
/// message made with last week's bundle still opens; one made with a bundle older than the
/// retired SPk's 30 days does not.
#[test]
fn signed_prekeys_rotate_weekly_and_old_ones_serve_a_month() {
    const DAY: u64 = 24 * 3600;
    let ks = server();
    let curve = CurveId::C25519;
    let (a1, b1) = ("a1", "b1");
    let mut alice = register(&ks, curve, a1);
    let mut bob = register(&ks, curve, b1);
    let t0 = 1_800_000_000;
    assert_eq!(
        bob.maintain(p(), t0).unwrap(),
        None,
        "a fresh SPk is stamped, not rotated"
    );
    // Alice takes bob's bundle now, sends a week and a day later, after bob rotated.
    let reply = ks.handle(a1, &alice.bundle_request(&[b1.into()]));
    alice.handle_bundles(p(), &reply).unwrap();
    assert_eq!(bob.maintain(p(), t0 + 6 * DAY).unwrap(), None);
    let post = bob
        .maintain(p(), t0 + 8 * DAY)
        .unwrap()
        .expect("a new SPk after 7 days");
    assert!(matches!(
        Response::parse(curve, &ks.handle(b1, &post)),
        Ok(Response::Ack(_))
    ));
    let m = alice
        .encrypt(
            p(),
            "bob",
            &[b1],
            b"late first message",
            EncryptionPolicy::CipherMessage,
        )
        .unwrap();
    let (plain, _) = bob
        .decrypt(p(), a1, "bob", &m.dr_messages[0].1, &m.cipher_message)
        .unwrap();
    assert_eq!(&plain[..], b"late first message");
    // Carol takes bob's bundle (the new SPk) but writes only after bob retired that SPk too
    // and its 30 days passed: her first message cannot open.
    let mut carol = register(&ks, curve, "c1");
    let reply = ks.handle("c1", &carol.bundle_request(&[b1.into()]));
    carol.handle_bundles(p(), &reply).unwrap();
    let post = bob
        .maintain(p(), t0 + 16 * DAY)
        .unwrap()
        .expect("rotated again");
    ks.handle(b1, &post);
    assert_eq!(
        bob.maintain(p(), t0 + 16 * DAY + 31 * DAY)
            .unwrap()
            .map(|_| ()),
        Some(())
    );
    let m = carol
        .encrypt(
            p(),
            "bob",
            &[b1],
            b"too late",
            EncryptionPolicy::CipherMessage,
        )
        .unwrap();
    assert!(matches!(
        bob.decrypt(p(), "c1", "bob", &m.dr_messages[0].1, &m.cipher_message),
        Err(LimeError::UnknownPrekey("signed", _))
    ));
}
