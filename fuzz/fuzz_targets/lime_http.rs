//! Fuzz target: the LIME key server's HTTP service (`sotto_server::lime_service`), what the
//! HTTPS edge hands it once a request is framed. The input, cut at the first 0xFF octet: a
//! request head (the first line `METHOD TARGET`, then `Name: value` lines) and a body. The
//! first octet's low bit asks for the request to be sent as alice's device would send it once
//! authenticated: her device id and valid digest credentials (answering a challenge the
//! service just gave) are added, so the body reaches the key server logic.
//!
//! Invariants (a failure is a crash): no panic; the status is one the service answers with
//! (200, 401, 403, 404, 405); a 200 carries `x3dh/octet-stream`; and a request that does not
//! carry the credentials added here never gets past authentication — it may get one of the
//! two protocol errors answered before credentials are looked at (a wrong content type, no
//! device id) but never the key server's answer to its body. The service and its stores are made once and kept across
//! inputs (the per-minute bundle window and registrations persist, as on a live server).

#![no_main]

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use sotto_lime::{CurveId, LimeError};
use sotto_lime::keyserver::MemoryKeyStore;
use sotto_lime::protocol::{ErrorCode, Response};
use sotto_server::lime_service::{CONTENT_TYPE, HttpRequest, LimeService, LimeServiceConfig};
use sotto_sip::digest::{
    Algorithm, ClientSecret, DigestClient, UserRecord, parse_challenges, select_challenge,
};
use sotto_store::{MemoryStore, UserStore};

const REALM: &str = "example.test";
const PATH: &str = "/lime";
const DEVICE: &str = "sip:alice@example.test;gr=urn:uuid:0a11ce00-0000-4000-8000-000000000001";

struct World {
    service: LimeService<MemoryKeyStore>,
    client: Mutex<DigestClient>,
    t0: Instant,
}

fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        let provider = sotto_crypto_rust::provider();
        let users = Arc::new(MemoryStore::new());
        let mut alice = UserRecord::new("alice");
        // invariant: the default provider hashes a password record.
        alice
            .set_password(provider, REALM, "alicepw", &[Algorithm::Sha256, Algorithm::Md5])
            .expect("a password record");
        users.put(&alice).expect("stored");
        let t0 = Instant::now();
        let config = LimeServiceConfig {
            path: PATH.into(),
            realm: REALM.into(),
            domains: vec![REALM.into()],
            ..LimeServiceConfig::default()
        };
        let service = LimeService::new(provider, MemoryKeyStore::default(), users, config, t0)
            .expect("the key server service");
        World {
            service,
            client: Mutex::new(DigestClient::new(provider)),
            t0,
        }
    })
}

/// `Authorization` for alice answering a fresh challenge of the service to `target`.
fn alice_credentials(w: &World, target: &str) -> Option<String> {
    let probe = HttpRequest {
        method: "POST",
        target,
        headers: vec![
            ("Content-Type", CONTENT_TYPE),
            ("X-Lime-user-identity", DEVICE),
        ],
        body: &[],
    };
    let challenge = w.service.handle(&probe, w.t0);
    let mut all = Vec::new();
    for (n, v) in &challenge.headers {
        if n.eq_ignore_ascii_case("WWW-Authenticate") {
            all.extend(parse_challenges(v).ok()?);
        }
    }
    let ch = select_challenge(&all)?;
    let mut client = w.client.lock().unwrap_or_else(|e| e.into_inner());
    let creds = client
        .respond(ch, "POST", target, "alice", ClientSecret::Password("alicepw"))
        .ok()?;
    Some(creds.to_string())
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let w = world();
    let cut = rest.iter().position(|&b| b == 0xFF).unwrap_or(rest.len());
    let (head, body) = (&rest[..cut], rest.get(cut + 1..).unwrap_or(&[]));
    let head = String::from_utf8_lossy(head);
    let mut lines = head.split('\n').map(|l| l.trim_end_matches('\r'));
    let mut start = lines.next().unwrap_or("").splitn(2, ' ');
    let method = start.next().unwrap_or("");
    let target = start.next().unwrap_or("");
    let mut headers: Vec<(&str, &str)> = lines.filter_map(|l| l.split_once(':')).collect();
    let authenticated = flags & 1 == 1;
    let auth;
    if authenticated {
        let Some(a) = alice_credentials(w, target) else {
            return; // a target the service does not challenge on (not its path)
        };
        auth = a;
        headers.retain(|(n, _)| {
            !n.trim().eq_ignore_ascii_case("authorization")
                && !n.trim().eq_ignore_ascii_case("x-lime-user-identity")
        });
        headers.push(("Authorization", &auth));
        headers.push(("X-Lime-user-identity", DEVICE));
    }
    let req = HttpRequest {
        method,
        target,
        headers,
        body,
    };
    let r = w.service.handle(&req, w.t0);
    assert!(
        matches!(r.status, 200 | 401 | 403 | 404 | 405),
        "unexpected status {}",
        r.status
    );
    if r.status == 200 {
        assert_eq!(r.content_type, Some(CONTENT_TYPE));
        if !authenticated {
            // Unauthenticated: only the two errors the service answers before it looks at
            // credentials, never anything of the key server's.
            let before_auth = [CurveId::C25519, CurveId::C448].iter().any(|&c| {
                matches!(
                    Response::parse(c, &r.body),
                    Err(LimeError::Server { code, .. })
                        if code == ErrorCode::BadContentType as u8
                            || code == ErrorCode::MissingSenderId as u8
                )
            });
            assert!(before_auth, "an unauthenticated request reached the key server");
        }
    }
});
