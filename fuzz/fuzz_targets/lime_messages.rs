//! Fuzz target: LIME's parsers and state machines as the network and the key server feed
//! them. The input, cut at the first 0xFF octet: a key-server body (parsed as a request,
//! answered by the key server logic over memory, and parsed as a reply on both curves) and a
//! DR message (its header parsed, then decrypted by a device with a live session and by a
//! device that has none, which reads it as a first message). Nothing may panic, a forged
//! message never decrypts, and a failed decryption leaves the device's stored state as it
//! was (no change to write). The two devices are made once and kept across inputs — that
//! last property is what makes this sound, and it keeps key derivation out of each input.

#![no_main]

use std::sync::{Mutex, OnceLock};

use libfuzzer_sys::fuzz_target;
use sotto_lime::keyserver::{KeyServer, Limits, MemoryKeyStore};
use sotto_lime::protocol::{Request, Response};
use sotto_lime::{CurveId, EncryptionPolicy, LimeUser, header};

/// A key server with one registered device, and a device pair with a session.
struct World {
    ks: KeyServer<MemoryKeyStore>,
    /// bob (a session with alice) and carol (no session).
    devices: Mutex<(LimeUser, LimeUser)>,
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
        let (mut carol, _) = LimeUser::create(p, "carol", CurveId::C25519, 2).expect("carol");
        let _ = bob.take_changes();
        let _ = carol.take_changes();
        World {
            ks,
            devices: Mutex::new((bob, carol)),
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
    let mut devices = w.devices.lock().unwrap_or_else(|e| e.into_inner());
    let (bob, carol) = &mut *devices;
    let cipher = body.get(..body.len().min(64)).unwrap_or_default();
    assert!(bob.decrypt(p, "alice", "bob", dr, cipher).is_err());
    assert!(bob.decrypt(p, "alice", "bob", dr, &[]).is_err());
    assert!(carol.decrypt(p, "alice", "carol", dr, cipher).is_err());
    for d in [bob, carol] {
        let changes = d.take_changes().expect("changes");
        assert!(changes.is_empty(), "a failed decryption changed the stored state");
    }
    // Stored state is read back without panics too.
    let _ = LimeUser::from_bytes(p, body, &[]);
    let _ = sotto_lime::DrSession::from_bytes(p, dr);
});
