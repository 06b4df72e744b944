//! Fuzz target: LIME's parsers and state machines as the network and the key server feed
//! them. The input, cut at the first 0xFF octet: a key-server body (parsed as a request,
//! answered by the key server logic over memory, and parsed as a reply on both curves) and a
//! DR message (its header parsed, then decrypted by a device with a live session and by a
//! device that has none, which reads it as a first message). Nothing may panic, and a forged
//! message never decrypts.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sotto_lime::keyserver::{KeyServer, Limits, MemoryKeyStore};
use sotto_lime::protocol::{Request, Response};
use sotto_lime::{CurveId, EncryptionPolicy, LimeUser, header};

/// A key server with one registered device, and a device pair with a session.
struct World {
    ks: KeyServer<MemoryKeyStore>,
    bob_keys: Vec<u8>,
    sessions: Vec<(String, Vec<u8>)>,
    carol_keys: Vec<u8>,
}

fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        let p = sotto_crypto_rust::provider();
        let ks = KeyServer::new(
            MemoryKeyStore::default(),
            vec![CurveId::C25519, CurveId::C448],
            Limits::default(),
        );
        // invariant: the default provider makes keys and the memory store registers them.
        let (mut alice, reg) = LimeUser::create(p, "alice", CurveId::C25519, 2).expect("alice");
        ks.handle("alice", &reg);
        let (mut bob, reg) = LimeUser::create(p, "bob", CurveId::C25519, 2).expect("bob");
        ks.handle("bob", &reg);
        let reply = ks.handle("alice", &alice.bundle_request(&["bob".into()]));
        alice.handle_bundles(p, &reply).expect("bundle");
        let m = alice
            .encrypt(p, "bob", &["bob"], b"hello", EncryptionPolicy::CipherMessage)
            .expect("encrypt");
        bob.decrypt(p, "alice", "bob", &m.dr_messages[0].1, &m.cipher_message)
            .expect("decrypt");
        let (carol, _) = LimeUser::create(p, "carol", CurveId::C25519, 2).expect("carol");
        World {
            ks,
            bob_keys: bob.keys_to_bytes().expect("keys").to_vec(),
            sessions: vec![(
                "alice".into(),
                bob.session_bytes("alice").expect("session").to_vec(),
            )],
            carol_keys: carol.keys_to_bytes().expect("keys").to_vec(),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let p = sotto_crypto_rust::provider();
    let w = world();
    let (body, dr) = match data.iter().position(|&b| b == 0xFF) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let _ = Request::parse(body);
    let _ = w.ks.handle("alice", body);
    for c in [CurveId::C25519, CurveId::C448] {
        let _ = Response::parse(c, body);
        let _ = header::parse(c, dr);
    }
    // A device with a session, and one without: neither may panic, neither may decrypt.
    let mut bob = LimeUser::from_bytes(p, &w.bob_keys, &w.sessions).expect("bob");
    let cipher = body.get(..body.len().min(64)).unwrap_or_default();
    assert!(bob.decrypt(p, "alice", "bob", dr, cipher).is_err());
    assert!(bob.decrypt(p, "alice", "bob", dr, &[]).is_err());
    let mut carol = LimeUser::from_bytes(p, &w.carol_keys, &[]).expect("carol");
    assert!(carol.decrypt(p, "alice", "carol", dr, cipher).is_err());
    // Stored state is read back without panics too.
    let _ = LimeUser::from_bytes(p, body, &[]);
    let _ = sotto_lime::DrSession::from_bytes(p, dr);
});
