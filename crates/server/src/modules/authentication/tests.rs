use super::*;
use crate::modules::testutil::{locality, parse_request, with_source};
use crate::store_ops::testing::Served;
use sotto_sip::digest::{Algorithm, ClientSecret, DigestClient, UserRecord, parse_challenges};
use sotto_store::{MemoryStore, UserStore};
use std::time::Duration;

const REALM: &str = "example.test";

fn module(now: Instant) -> Served<Authentication> {
    let provider = sotto_crypto_rust::provider();
    let store = MemoryStore::new();
    let mut alice = UserRecord::new("alice");
    alice
        .set_password(
            provider,
            REALM,
            "secret",
            &[Algorithm::Sha256, Algorithm::Md5],
        )
        .unwrap();
    store.put(&alice).unwrap();
    let store = Arc::new(store);
    let m = Authentication::new(
        AuthenticationConfig::default(),
        REALM,
        Arc::new(locality()),
        provider,
        now,
    )
    .unwrap();
    Served::new(m, store.clone(), store)
}

fn register(user: &str, auth: Option<&str>) -> RequestContext {
    let auth = auth
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    let text = format!(
        "REGISTER sip:example.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:4000;branch=z9hG4bK1\r\n\
         Max-Forwards: 70\r\nTo: <sip:{user}@example.test>\r\nFrom: <sip:{user}@example.test>;tag=a\r\n\
         Call-ID: c1\r\nCSeq: 1 REGISTER\r\nContact: <sip:{user}@127.0.0.1:4000>\r\n{auth}\
         Content-Length: 0\r\n\r\n"
    );
    with_source(parse_request(&text), "127.0.0.1:4000")
}

fn reply(v: Verdict) -> Reply {
    match v {
        Verdict::Reply(r) => r,
        other => panic!("expected a reply, got {other:?}"),
    }
}

fn challenges_of(r: &Reply, header: &str) -> Vec<sotto_sip::digest::Challenge> {
    r.headers
        .iter()
        .filter(|(n, _)| n == header)
        .flat_map(|(_, v)| parse_challenges(v).unwrap())
        .collect()
}

/// Answers the first challenge of `algorithm` in `r` as `user` with `password`.
fn answer(
    r: &Reply,
    header: &str,
    algorithm: Algorithm,
    method: &str,
    uri: &str,
    user: &str,
    password: &str,
) -> String {
    let c = challenges_of(r, header)
        .into_iter()
        .find(|c| c.algorithm == algorithm)
        .expect("challenge offered");
    let mut client = DigestClient::new(sotto_crypto_rust::provider());
    client
        .respond(&c, method, uri, user, ClientSecret::Password(password))
        .unwrap()
        .to_string()
}

#[test]
fn register_is_challenged_with_sha256_then_md5() {
    let now = Instant::now();
    let mut m = module(now);
    let r = reply(m.on_request(&mut register("alice", None), now));
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let algs: Vec<Algorithm> = challenges_of(&r, "WWW-Authenticate")
        .iter()
        .map(|c| c.algorithm)
        .collect();
    assert_eq!(algs, vec![Algorithm::Sha256, Algorithm::Md5]);
}

#[test]
fn right_password_authenticates_with_either_algorithm() {
    for alg in [Algorithm::Sha256, Algorithm::Md5] {
        let now = Instant::now();
        let mut m = module(now);
        let r = reply(m.on_request(&mut register("alice", None), now));
        let creds = answer(
            &r,
            "WWW-Authenticate",
            alg,
            "REGISTER",
            "sip:example.test",
            "alice",
            "secret",
        );
        let mut ctx = register("alice", Some(&creds));
        assert_eq!(m.on_request(&mut ctx, now), Verdict::Continue, "{alg}");
        assert_eq!(ctx.authenticated.as_deref(), Some("alice"));
        assert!(!ctx.auth_failure);
        // The same credentials again are a replay: refused.
        let mut again = register("alice", Some(&creds));
        assert_eq!(
            reply(m.on_request(&mut again, now)).status,
            StatusCode::UNAUTHORIZED
        );
        assert!(again.auth_failure);
    }
}

#[test]
fn unknown_user_and_wrong_password_look_the_same() {
    let now = Instant::now();
    let mut m = module(now);
    let shape = |m: &mut Served<Authentication>, user: &str, password: &str| {
        let r = reply(m.on_request(&mut register(user, None), now));
        let creds = answer(
            &r,
            "WWW-Authenticate",
            Algorithm::Sha256,
            "REGISTER",
            "sip:example.test",
            user,
            password,
        );
        let mut ctx = register(user, Some(&creds));
        let r = reply(m.on_request(&mut ctx, now));
        assert!(ctx.auth_failure);
        let cs = challenges_of(&r, "WWW-Authenticate");
        (
            r.status,
            r.headers.len(),
            cs.iter()
                .map(|c| (c.algorithm, c.stale, c.realm.clone(), c.nonce.len()))
                .collect::<Vec<_>>(),
        )
    };
    let wrong = shape(&mut m, "alice", "guess");
    let unknown = shape(&mut m, "mallory", "guess");
    assert_eq!(wrong, unknown);
    assert_eq!(wrong.0, StatusCode::UNAUTHORIZED);
    assert_eq!(m.failures(), 2);
}

#[test]
fn stale_nonce_is_rechallenged_without_failure() {
    let now = Instant::now();
    let mut m = module(now);
    let r = reply(m.on_request(&mut register("alice", None), now));
    let creds = answer(
        &r,
        "WWW-Authenticate",
        Algorithm::Sha256,
        "REGISTER",
        "sip:example.test",
        "alice",
        "secret",
    );
    let later = now + AuthenticationConfig::default().nonce_lifetime + Duration::from_secs(1);
    let mut ctx = register("alice", Some(&creds));
    let r = reply(m.on_request(&mut ctx, later));
    assert!(!ctx.auth_failure);
    assert!(
        challenges_of(&r, "WWW-Authenticate")
            .iter()
            .all(|c| c.stale)
    );
}

fn invite(from: &str, auth: Option<&str>) -> RequestContext {
    let auth = auth
        .map(|a| format!("Proxy-Authorization: {a}\r\n"))
        .unwrap_or_default();
    let text = format!(
        "INVITE sip:bob@example.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:4000;branch=z9hG4bK2\r\n\
         Max-Forwards: 70\r\nTo: <sip:bob@example.test>\r\nFrom: <{from}>;tag=a\r\n\
         Call-ID: c2\r\nCSeq: 1 INVITE\r\n{auth}Content-Length: 0\r\n\r\n"
    );
    with_source(parse_request(&text), "127.0.0.1:4000")
}

#[test]
fn invite_from_our_domain_gets_407_and_passes_with_credentials() {
    let now = Instant::now();
    let mut m = module(now);
    let r = reply(m.on_request(&mut invite("sip:alice@example.test", None), now));
    assert_eq!(r.status, StatusCode::PROXY_AUTHENTICATION_REQUIRED);
    let creds = answer(
        &r,
        "Proxy-Authenticate",
        Algorithm::Md5,
        "INVITE",
        "sip:bob@example.test",
        "alice",
        "secret",
    );
    let mut ctx = invite("sip:alice@example.test", Some(&creds));
    assert_eq!(m.on_request(&mut ctx, now), Verdict::Continue);
    // Our credentials are not forwarded.
    assert!(!ctx.request.headers().contains("Proxy-Authorization"));
}

#[test]
fn credentials_of_another_user_are_forbidden() {
    let now = Instant::now();
    let mut m = module(now);
    let r = reply(m.on_request(&mut invite("sip:bob@example.test", None), now));
    let creds = answer(
        &r,
        "Proxy-Authenticate",
        Algorithm::Sha256,
        "INVITE",
        "sip:bob@example.test",
        "alice",
        "secret",
    );
    let mut ctx = invite("sip:bob@example.test", Some(&creds));
    assert_eq!(
        reply(m.on_request(&mut ctx, now)).status,
        StatusCode::FORBIDDEN
    );
    assert!(ctx.auth_failure);
}

#[test]
fn foreign_from_is_not_challenged() {
    let now = Instant::now();
    let mut m = module(now);
    assert_eq!(
        m.on_request(&mut invite("sip:carol@elsewhere.test", None), now),
        Verdict::Continue
    );
}

#[test]
fn matching_client_certificate_authenticates() {
    let now = Instant::now();
    let mut m = module(now);
    let mut ctx = invite("sip:alice@example.test", None);
    ctx.client_identities = vec!["sip:alice@example.test".into()];
    assert_eq!(m.on_request(&mut ctx, now), Verdict::Continue);
    assert_eq!(ctx.authenticated.as_deref(), Some("alice"));
    // A certificate for someone else does not: digest is asked for.
    let mut ctx = invite("sip:alice@example.test", None);
    ctx.client_identities = vec!["sip:bob@example.test".into(), "bob@example.test".into()];
    assert_eq!(
        reply(m.on_request(&mut ctx, now)).status,
        StatusCode::PROXY_AUTHENTICATION_REQUIRED
    );
}

/// A client that answers its challenge while thousands of others authenticate meanwhile (a
/// registration storm) is still accepted: more than the 4,096 used nonces that the default
/// nonce policy remembers are tracked before the oldest are declared stale.
#[test]
fn slow_answer_during_a_storm_of_authentications_is_accepted() {
    let now = Instant::now();
    let mut m = module(now);
    let slow = reply(m.on_request(&mut register("alice", None), now));
    let slow_auth = answer(
        &slow,
        "WWW-Authenticate",
        Algorithm::Md5,
        "REGISTER",
        "sip:example.test",
        "alice",
        "secret",
    );
    let at = now + Duration::from_millis(10);
    for i in 0..5000 {
        let c = reply(m.on_request(&mut register("alice", None), at));
        let auth = answer(
            &c,
            "WWW-Authenticate",
            Algorithm::Md5,
            "REGISTER",
            "sip:example.test",
            "alice",
            "secret",
        );
        let mut ctx = register("alice", Some(&auth));
        assert!(
            matches!(m.on_request(&mut ctx, at), Verdict::Continue),
            "flow {i} refused"
        );
    }
    let mut ctx = register("alice", Some(&slow_auth));
    let v = m.on_request(&mut ctx, at);
    assert!(matches!(v, Verdict::Continue), "slow client refused: {v:?}");
    assert_eq!(ctx.authenticated.as_deref(), Some("alice"));
}
