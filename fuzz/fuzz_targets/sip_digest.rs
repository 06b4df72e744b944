//! Fuzz target: SIP digest authentication headers (`sotto_sip::digest`) on arbitrary text.
//!
//! The first input byte holds flags; the rest, decoded lossily as UTF-8, is one header value
//! given to `Challenge::parse`, `parse_challenges` and `Credentials::parse`.
//!
//! Beyond "no panic on any input":
//! - whatever parses prints (`Display`) to text that parses back to the same value (for
//!   `parse_challenges`, the challenges joined with `, `);
//! - parsed credentials go through `NonceManager::verify` (twice, as a replay) against a
//!   manager with a fixed secret and a user record for the credentials' name and realm. The
//!   flags choose whether the nonce is replaced by one the manager issued, whether the
//!   response is replaced by the right one, when verification happens (0–420 s after issue;
//!   nonces live 300 s) and whether RFC 2069 answers are allowed. A nonce the manager did not
//!   issue never verifies; a right response to a fresh issued nonce always verifies when the
//!   credentials meet the policy; and an accepted answer with a nonce-count is a replay the
//!   second time.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sotto_sip::digest::{
    Algorithm, Challenge, Credentials, NonceConfig, NonceManager, Outcome, Qop, UserRecord,
    compute_response, parse_challenges,
};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const ALL: [Algorithm; 4] = [
    Algorithm::Sha256,
    Algorithm::Sha256Sess,
    Algorithm::Md5,
    Algorithm::Md5Sess,
];
const PASSWORD: &str = "fuzz password";
const METHOD: &str = "REGISTER";

fn epoch() -> Instant {
    static T0: OnceLock<Instant> = OnceLock::new();
    *T0.get_or_init(Instant::now)
}

fn check_verify(creds: &Credentials, flags: u8) {
    let provider = sotto_crypto_rust::provider();
    let t0 = epoch();
    let config = NonceConfig {
        algorithms: ALL.to_vec(),
        allow_rfc2069: flags & 1 != 0,
        ..NonceConfig::default()
    };
    let lifetime = config.lifetime;
    // invariant: HMAC-SHA-256 takes any key length.
    let mut mgr = NonceManager::with_secret(provider, config, &[0x5a; 32], t0).expect("manager");
    let issued_at = t0 + Duration::from_secs(1);
    let verify_at = issued_at + Duration::from_secs(60 * u64::from((flags >> 3) & 7));

    let mut creds = creds.clone();
    let own_nonce = flags & 2 != 0;
    if own_nonce {
        creds.nonce = mgr.issue_nonce(&creds.realm, issued_at).expect("nonce");
    }
    let mut user = UserRecord::new(creds.username.clone());
    user.set_password(provider, &creds.realm, PASSWORD, &ALL)
        .expect("HA1 for every algorithm");
    let mut right = false;
    if flags & 4 != 0 {
        let ha1 = user.ha1(&creds.realm, creds.algorithm).expect("stored HA1");
        if let Ok(r) = compute_response(
            provider,
            creds.algorithm,
            ha1,
            &creds.nonce,
            creds.nc.unwrap_or(0),
            creds.cnonce.as_deref().unwrap_or(""),
            creds.qop,
            METHOD,
            &creds.uri,
        ) {
            creds.response = r;
            right = true;
            // The edited credentials still print and parse back.
            assert_eq!(Credentials::parse(&creds.to_string()).as_ref(), Ok(&creds));
        }
    }
    let withhold_user = flags & 0x40 != 0;
    let user_ref = (!withhold_user).then_some(&user);

    let first = mgr.verify(
        &creds,
        METHOD,
        &creds.uri,
        &creds.realm,
        user_ref,
        verify_at,
    );
    if !own_nonce {
        assert_ne!(
            first,
            Outcome::Ok,
            "a nonce the manager never issued was accepted"
        );
    }
    if withhold_user {
        assert_ne!(first, Outcome::Ok, "accepted without a user record");
    }
    let policy_ok = match creds.qop {
        Some(Qop::Auth) => creds.nc.is_some_and(|nc| nc > 0),
        None => flags & 1 != 0,
        Some(_) => false,
    };
    let fresh = verify_at - issued_at <= lifetime;
    if own_nonce && right && policy_ok && !withhold_user && fresh {
        assert_eq!(
            first,
            Outcome::Ok,
            "a right answer to a fresh nonce was refused"
        );
    }
    if own_nonce && right && policy_ok && !withhold_user && !fresh {
        assert_eq!(first, Outcome::Stale);
    }
    let second = mgr.verify(
        &creds,
        METHOD,
        &creds.uri,
        &creds.realm,
        user_ref,
        verify_at,
    );
    if first == Outcome::Ok && creds.qop.is_some() {
        assert_eq!(second, Outcome::Replay, "a nonce-count was accepted twice");
    }
    assert!(mgr.tracked() <= 1);
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let value = String::from_utf8_lossy(rest);

    if let Ok(c) = Challenge::parse(&value) {
        let printed = c.to_string();
        assert_eq!(Challenge::parse(&printed).as_ref(), Ok(&c), "{printed:?}");
    }
    if let Ok(list) = parse_challenges(&value) {
        let printed = list
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        assert_eq!(
            parse_challenges(&printed).as_ref(),
            Ok(&list),
            "{printed:?}"
        );
    }
    if let Ok(creds) = Credentials::parse(&value) {
        let printed = creds.to_string();
        assert_eq!(
            Credentials::parse(&printed).as_ref(),
            Ok(&creds),
            "{printed:?}"
        );
        check_verify(&creds, flags);
    }
});
