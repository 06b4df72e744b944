//! Digest authentication: RFC 7616 §3.9.1 vectors and client/server round trips.

use sotto_crypto::CryptoProvider;
use sotto_sip::digest::{
    Algorithm, Challenge, ClientSecret, Credentials, DigestClient, Ha1, NonceConfig, NonceManager,
    Outcome, Qop, UserRecord, compute_response, parse_challenges, select_challenge,
};
use std::time::{Duration, Instant};

fn provider() -> &'static CryptoProvider {
    sotto_crypto_rust::provider()
}

/// Reads `name: value` lines (continuations indented) from a vector file, in order.
fn read_vector(name: &str) -> Vec<(String, String)> {
    let path = format!(
        "{}/tests/vectors/rfc7616/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).expect("vector file present");
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        if line.starts_with(' ') || line.starts_with('\t') {
            let last = out.last_mut().expect("continuation follows a field");
            last.1.push(' ');
            last.1.push_str(line.trim());
        } else {
            let (k, v) = line.split_once(':').expect("name: value");
            out.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    out
}

fn field<'a>(v: &'a [(String, String)], name: &str) -> &'a str {
    v.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .expect("field present")
}

fn all<'a>(v: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    v.iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .collect()
}

#[test]
fn rfc7616_example_responses() {
    let v = read_vector("sec3.9.1.txt");
    let (method, uri) = (field(&v, "method"), field(&v, "uri"));
    let (user, password) = (field(&v, "username"), field(&v, "password"));

    let challenges: Vec<Challenge> = all(&v, "WWW-Authenticate")
        .into_iter()
        .map(|h| Challenge::parse(h).expect("challenge parses"))
        .collect();
    assert_eq!(challenges.len(), 2);
    for c in &challenges {
        assert_eq!(c.realm, "http-auth@example.org");
        assert_eq!(c.qop, vec![Qop::Auth, Qop::AuthInt]);
        assert_eq!(
            c.opaque.as_deref(),
            Some("FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS")
        );
    }
    let chosen = select_challenge(&challenges).expect("one is answerable");
    assert_eq!(chosen.algorithm, Algorithm::Sha256);

    let answers = all(&v, "Authorization");
    assert_eq!(answers.len(), 2);
    let mut seen = Vec::new();
    for a in answers {
        let creds = Credentials::parse(a).expect("credentials parse");
        assert_eq!(creds.username, user);
        assert_eq!(creds.uri, uri);
        assert_eq!(creds.nc, Some(1));
        assert_eq!(creds.qop, Some(Qop::Auth));
        let ha1 = Ha1::from_password(provider(), creds.algorithm, user, &creds.realm, password)
            .expect("ha1");
        let computed = compute_response(
            provider(),
            creds.algorithm,
            &ha1,
            &creds.nonce,
            1,
            creds.cnonce.as_deref().expect("cnonce"),
            Some(Qop::Auth),
            method,
            uri,
        )
        .expect("response");
        assert_eq!(computed, creds.response, "{}", creds.algorithm);
        // The same HA1 loaded from storage gives the same answer.
        let stored =
            Ha1::from_hex(creds.algorithm, &ha1.as_hex().to_ascii_uppercase()).expect("stored ha1");
        assert_eq!(stored, ha1);
        // Printing and parsing again keeps every value.
        assert_eq!(Credentials::parse(&creds.to_string()), Ok(creds.clone()));
        seen.push(creds.algorithm);
    }
    seen.sort_by_key(|a| a.name());
    assert_eq!(seen, [Algorithm::Md5, Algorithm::Sha256]);

    // Both challenges in one header value (comma-separated) parse the same.
    let joined = all(&v, "WWW-Authenticate").join(", ");
    assert_eq!(parse_challenges(&joined), Ok(challenges));
}

struct Server {
    nonces: NonceManager,
    alice: UserRecord,
    t0: Instant,
}

const REALM: &str = "sotto.test";
const URI: &str = "sip:registrar@127.0.0.1";

fn server(config: NonceConfig) -> Server {
    let t0 = Instant::now();
    let nonces = NonceManager::new(provider(), config.clone(), t0).expect("manager");
    let mut alice = UserRecord::new("alice");
    alice
        .set_password(provider(), REALM, "correct horse", &config.algorithms)
        .expect("ha1");
    Server { nonces, alice, t0 }
}

/// Client answers the server's challenge for `alg`, through the header text both ways.
fn answer(
    s: &Server,
    client: &mut DigestClient,
    alg: Algorithm,
    password: &str,
    at: Instant,
) -> (Challenge, Credentials) {
    let offered = s.nonces.challenges(REALM, false, at).expect("challenges");
    let header = offered
        .iter()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let parsed = parse_challenges(&header).expect("challenge header parses");
    let ch = parsed
        .into_iter()
        .find(|c| c.algorithm == alg)
        .expect("algorithm offered");
    let creds = client
        .respond(
            &ch,
            "REGISTER",
            URI,
            "alice",
            ClientSecret::Password(password),
        )
        .expect("respond");
    let creds = Credentials::parse(&creds.to_string()).expect("credentials parse");
    (ch, creds)
}

fn verify0(s: &mut Server, creds: &Credentials) -> Outcome {
    let t0 = s.t0;
    verify(s, creds, t0)
}

fn verify(s: &mut Server, creds: &Credentials, at: Instant) -> Outcome {
    s.nonces
        .verify(creds, "REGISTER", URI, REALM, Some(&s.alice), at)
}

#[test]
fn round_trip_both_algorithms_and_nonce_count() {
    for alg in [Algorithm::Sha256, Algorithm::Md5] {
        let mut s = server(NonceConfig::default());
        let mut client = DigestClient::new(provider());
        let t = s.t0 + Duration::from_secs(1);
        let (ch, creds) = answer(&s, &mut client, alg, "correct horse", t);
        assert_eq!(creds.algorithm, alg);
        assert_eq!(creds.nc, Some(1));
        assert_eq!(creds.response.len(), alg.hex_len());
        assert_eq!(verify(&mut s, &creds, t), Outcome::Ok, "{alg}");
        // Same nonce again: nc 2, then 3 are accepted; the cnonce is fresh each time.
        let c2 = client
            .respond(
                &ch,
                "REGISTER",
                URI,
                "alice",
                ClientSecret::Password("correct horse"),
            )
            .expect("respond");
        assert_eq!(c2.nc, Some(2));
        assert_ne!(c2.cnonce, creds.cnonce);
        assert_eq!(verify(&mut s, &c2, t), Outcome::Ok);
        // Replaying nc 2 (and the older nc 1) is refused.
        assert_eq!(verify(&mut s, &c2, t), Outcome::Replay);
        assert_eq!(verify(&mut s, &creds, t), Outcome::Replay);
        let ha1 = s.alice.ha1(REALM, alg).expect("stored").clone();
        let c3 = client
            .respond(&ch, "REGISTER", URI, "alice", ClientSecret::Ha1(&ha1))
            .expect("respond with ha1");
        assert_eq!(c3.nc, Some(3));
        assert_eq!(verify(&mut s, &c3, t), Outcome::Ok);
    }
}

#[test]
fn sess_variants_round_trip() {
    let config = NonceConfig {
        algorithms: vec![Algorithm::Sha256Sess, Algorithm::Md5Sess],
        ..NonceConfig::default()
    };
    for alg in [Algorithm::Sha256Sess, Algorithm::Md5Sess] {
        let mut s = server(config.clone());
        let mut client = DigestClient::new(provider());
        let (_, creds) = answer(&s, &mut client, alg, "correct horse", s.t0);
        assert_eq!(verify0(&mut s, &creds), Outcome::Ok);
    }
}

#[test]
fn wrong_password_is_mismatch() {
    let mut s = server(NonceConfig::default());
    let mut client = DigestClient::new(provider());
    let (_, creds) = answer(&s, &mut client, Algorithm::Sha256, "wrong horse", s.t0);
    assert_eq!(verify0(&mut s, &creds), Outcome::Mismatch);
    // A response altered in one digit is also a mismatch.
    let (_, mut good) = answer(&s, &mut client, Algorithm::Md5, "correct horse", s.t0);
    let last = good.response.pop().expect("non-empty");
    good.response.push(if last == '0' { '1' } else { '0' });
    assert_eq!(verify0(&mut s, &good), Outcome::Mismatch);
}

#[test]
fn expired_nonce_is_stale_only_when_response_is_right() {
    let mut s = server(NonceConfig {
        lifetime: Duration::from_secs(30),
        ..NonceConfig::default()
    });
    let mut client = DigestClient::new(provider());
    let (_, creds) = answer(&s, &mut client, Algorithm::Sha256, "correct horse", s.t0);
    let (_, wrong) = answer(&s, &mut client, Algorithm::Sha256, "wrong", s.t0);
    let at_limit = s.t0 + Duration::from_secs(30);
    let late = s.t0 + Duration::from_secs(31);
    assert_eq!(verify(&mut s, &wrong, late), Outcome::Mismatch);
    assert_eq!(verify(&mut s, &creds, late), Outcome::Stale);
    assert_eq!(verify(&mut s, &creds, at_limit), Outcome::Ok);
    // The stale answer: a new challenge with stale=true, which the client answers afresh.
    let again = s.nonces.challenges(REALM, true, late).expect("challenges");
    let first = again.first().expect("one challenge");
    assert!(first.stale);
    assert!(first.to_string().contains("stale=true"));
    let fresh = client
        .respond(
            first,
            "REGISTER",
            URI,
            "alice",
            ClientSecret::Password("correct horse"),
        )
        .expect("respond");
    assert_eq!(verify(&mut s, &fresh, late), Outcome::Ok);
}

#[test]
fn tampered_and_foreign_nonces_are_invalid() {
    let mut s = server(NonceConfig::default());
    let mut client = DigestClient::new(provider());
    let (ch, _) = answer(&s, &mut client, Algorithm::Sha256, "correct horse", s.t0);
    // Flip each region of the nonce (timestamp, random part, tag) in turn.
    for pos in [0usize, 15, 20, 40, 63] {
        let mut bad = ch.clone();
        let mut bytes = bad.nonce.into_bytes();
        let b = bytes.get_mut(pos).expect("nonce long enough");
        *b = if *b == b'0' { b'1' } else { b'0' };
        bad.nonce = String::from_utf8(bytes).expect("ascii");
        let creds = client
            .respond(
                &bad,
                "REGISTER",
                URI,
                "alice",
                ClientSecret::Password("correct horse"),
            )
            .expect("respond");
        assert_eq!(verify0(&mut s, &creds), Outcome::InvalidNonce, "pos {pos}");
    }
    // A nonce from another server (another secret) and a non-hex nonce.
    let other = NonceManager::new(provider(), NonceConfig::default(), s.t0).expect("manager");
    for nonce in [
        other.issue_nonce(REALM, s.t0).expect("nonce"),
        "not-a-nonce".to_owned(),
        String::new(),
    ] {
        let c = Challenge::new(REALM, nonce, Algorithm::Sha256);
        let creds = client
            .respond(
                &c,
                "REGISTER",
                URI,
                "alice",
                ClientSecret::Password("correct horse"),
            )
            .expect("respond");
        assert_eq!(verify0(&mut s, &creds), Outcome::InvalidNonce);
    }
    // A nonce issued for another realm does not validate in this one.
    let nonce = s.nonces.issue_nonce("other.test", s.t0).expect("nonce");
    let c = Challenge::new(REALM, nonce, Algorithm::Sha256);
    let creds = client
        .respond(
            &c,
            "REGISTER",
            URI,
            "alice",
            ClientSecret::Password("correct horse"),
        )
        .expect("respond");
    assert_eq!(verify0(&mut s, &creds), Outcome::InvalidNonce);
}

#[test]
fn policy_outcomes() {
    let mut s = server(NonceConfig::default());
    let mut client = DigestClient::new(provider());
    let (_, creds) = answer(&s, &mut client, Algorithm::Sha256, "correct horse", s.t0);
    let t = s.t0;
    assert_eq!(
        s.nonces.verify(
            &creds,
            "REGISTER",
            "sip:other@127.0.0.1",
            REALM,
            Some(&s.alice),
            t
        ),
        Outcome::UriMismatch
    );
    assert_eq!(
        s.nonces
            .verify(&creds, "REGISTER", URI, "elsewhere", Some(&s.alice), t),
        Outcome::RealmMismatch
    );
    assert_eq!(
        s.nonces.verify(&creds, "REGISTER", URI, REALM, None, t),
        Outcome::UnknownUser
    );
    let bob = UserRecord::new("bob");
    assert_eq!(
        s.nonces
            .verify(&creds, "REGISTER", URI, REALM, Some(&bob), t),
        Outcome::UnknownUser
    );
    // The method is covered by the response.
    assert_eq!(
        s.nonces
            .verify(&creds, "INVITE", URI, REALM, Some(&s.alice), t),
        Outcome::Mismatch
    );
    // A server that offers only SHA-256 refuses MD5.
    let mut strict = server(NonceConfig {
        algorithms: vec![Algorithm::Sha256],
        ..NonceConfig::default()
    });
    let md5 = Challenge::new(
        REALM,
        strict.nonces.issue_nonce(REALM, t).expect("nonce"),
        Algorithm::Md5,
    );
    let creds = client
        .respond(
            &md5,
            "REGISTER",
            URI,
            "alice",
            ClientSecret::Password("correct horse"),
        )
        .expect("respond");
    assert_eq!(verify(&mut strict, &creds, t), Outcome::UnknownAlgorithm);
    // An HA1 for another algorithm is refused by the client.
    let ha1 = Ha1::from_password(provider(), Algorithm::Md5, "alice", REALM, "x").expect("ha1");
    let sha = Challenge::new(REALM, "n", Algorithm::Sha256);
    assert!(
        client
            .respond(&sha, "REGISTER", URI, "alice", ClientSecret::Ha1(&ha1))
            .is_err()
    );
}

#[test]
fn rfc2069_compatibility() {
    let config = NonceConfig {
        allow_rfc2069: true,
        ..NonceConfig::default()
    };
    let mut s = server(config);
    let mut client = DigestClient::new(provider());
    let mut ch = s
        .nonces
        .challenges(REALM, false, s.t0)
        .expect("challenges")
        .remove(0);
    ch.qop.clear();
    let header = ch.to_string();
    assert!(!header.contains("qop"));
    let ch = Challenge::parse(&header).expect("parses");
    let creds = client
        .respond(
            &ch,
            "REGISTER",
            URI,
            "alice",
            ClientSecret::Password("correct horse"),
        )
        .expect("respond");
    assert_eq!(
        (creds.qop, creds.nc, creds.cnonce.as_deref()),
        (None, None, None)
    );
    let printed = creds.to_string();
    assert!(!printed.contains("nc=") && !printed.contains("cnonce"));
    assert_eq!(verify0(&mut s, &creds), Outcome::Ok);
    // The default policy refuses responses without qop.
    let mut strict = server(NonceConfig::default());
    let nonce = strict.nonces.issue_nonce(REALM, s.t0).expect("nonce");
    let mut ch = Challenge::new(REALM, nonce, Algorithm::Sha256);
    ch.qop.clear();
    let creds = client
        .respond(
            &ch,
            "REGISTER",
            URI,
            "alice",
            ClientSecret::Password("correct horse"),
        )
        .expect("respond");
    assert_eq!(verify0(&mut strict, &creds), Outcome::Malformed);
}

#[test]
fn tracking_is_bounded_and_evicted_nonces_go_stale() {
    let mut s = server(NonceConfig {
        max_tracked: 2,
        ..NonceConfig::default()
    });
    let mut client = DigestClient::new(provider());
    let mut first = None;
    for i in 0..5u64 {
        let at = s.t0 + Duration::from_millis(10 * i);
        let (ch, creds) = answer(&s, &mut client, Algorithm::Sha256, "correct horse", at);
        assert_eq!(verify(&mut s, &creds, at), Outcome::Ok);
        assert!(s.nonces.tracked() <= 2);
        first.get_or_insert(ch);
    }
    // The first nonce's count was forgotten: its next use must take a new nonce.
    let ch = first.expect("set");
    let creds = client
        .respond(
            &ch,
            "REGISTER",
            URI,
            "alice",
            ClientSecret::Password("correct horse"),
        )
        .expect("respond");
    let at = s.t0 + Duration::from_secs(1);
    assert_eq!(verify(&mut s, &creds, at), Outcome::Stale);
}

#[test]
fn ha1_is_redacted_and_checked() {
    let ha1 = Ha1::from_password(provider(), Algorithm::Sha256, "alice", REALM, "pw").expect("ha1");
    let dbg = format!("{ha1:?}");
    assert!(!dbg.contains(ha1.as_hex()), "{dbg}");
    assert!(Ha1::from_hex(Algorithm::Md5, ha1.as_hex()).is_err());
    assert!(Ha1::from_hex(Algorithm::Sha256, &"g".repeat(64)).is_err());
    let mut rec = UserRecord::new("alice");
    rec.set_password(
        provider(),
        REALM,
        "pw",
        &[Algorithm::Sha256, Algorithm::Md5],
    )
    .expect("set");
    assert_eq!(rec.ha1(REALM, Algorithm::Sha256Sess), Some(&ha1));
    assert!(rec.ha1("other", Algorithm::Sha256).is_none());
    assert_eq!(rec.entries().count(), 2);
}
