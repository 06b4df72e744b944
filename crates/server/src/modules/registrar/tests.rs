use super::*;
use crate::modules::testutil::{locality, parse_request, with_source};
use crate::store_ops::testing::Served;
use sotto_store::MemoryStore;

fn module() -> (Served<Registrar>, Arc<MemoryStore>) {
    let store = Arc::new(MemoryStore::new());
    let m = Registrar::new(
        RegistrarConfig::default(),
        Arc::new(locality()),
        sotto_crypto_rust::provider(),
    );
    (Served::new(m, store.clone(), store.clone()), store)
}

fn register(cseq: u32, call_id: &str, extra: &str) -> RequestContext {
    let text = format!(
        "REGISTER sip:example.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:4000;branch=z9hG4bK{cseq}\r\n\
         Max-Forwards: 70\r\nTo: <sip:alice@example.test>\r\nFrom: <sip:alice@example.test>;tag=a\r\n\
         Call-ID: {call_id}\r\nCSeq: {cseq} REGISTER\r\n{extra}Content-Length: 0\r\n\r\n"
    );
    with_source(parse_request(&text), "127.0.0.1:4000")
}

fn reply(v: Verdict) -> Reply {
    match v {
        Verdict::Reply(r) => r,
        other => panic!("expected a reply, got {other:?}"),
    }
}

fn contacts(r: &Reply) -> Vec<String> {
    r.headers
        .iter()
        .filter(|(n, _)| n == "Contact")
        .map(|(_, v)| v.clone())
        .collect()
}

#[test]
fn registers_several_contacts_and_lists_them() {
    let (mut m, store) = module();
    let now = Instant::now();
    let mut ctx = register(
        1,
        "c1",
        "Contact: <sip:alice@127.0.0.1:4000>, <sip:alice@127.0.0.1:4002>;expires=120\r\nExpires: 600\r\n",
    );
    let wall = ctx.wall;
    let r = reply(m.on_request(&mut ctx, now));
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        contacts(&r),
        vec![
            "<sip:alice@127.0.0.1:4000>;expires=600".to_owned(),
            "<sip:alice@127.0.0.1:4002>;expires=120".to_owned()
        ]
    );
    assert_eq!(
        store
            .bindings("sip:alice@example.test", wall)
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn too_brief_is_423_with_min_expires_and_long_is_capped() {
    let (mut m, _) = module();
    let now = Instant::now();
    let r = reply(m.on_request(
        &mut register(1, "c1", "Contact: <sip:alice@127.0.0.1:4000>;expires=5\r\n"),
        now,
    ));
    assert_eq!(r.status, StatusCode::INTERVAL_TOO_BRIEF);
    assert_eq!(r.headers, vec![("Min-Expires".to_owned(), "60".to_owned())]);
    let r = reply(m.on_request(
        &mut register(
            2,
            "c1",
            "Contact: <sip:alice@127.0.0.1:4000>;expires=999999\r\n",
        ),
        now,
    ));
    assert_eq!(
        contacts(&r),
        vec!["<sip:alice@127.0.0.1:4000>;expires=86400".to_owned()]
    );
}

#[test]
fn refresh_unregister_one_and_star() {
    let (mut m, store) = module();
    let now = Instant::now();
    let two = "Contact: <sip:alice@127.0.0.1:4000>, <sip:alice@127.0.0.1:4002>\r\n";
    reply(m.on_request(&mut register(1, "c1", two), now));
    // Refresh with a new expiry.
    let r = reply(m.on_request(
        &mut register(
            2,
            "c1",
            "Contact: <sip:alice@127.0.0.1:4000>;expires=300\r\n",
        ),
        now,
    ));
    assert!(contacts(&r).contains(&"<sip:alice@127.0.0.1:4000>;expires=300".to_owned()));
    // Remove one.
    let r = reply(m.on_request(
        &mut register(3, "c1", "Contact: <sip:alice@127.0.0.1:4000>;expires=0\r\n"),
        now,
    ));
    assert_eq!(
        contacts(&r),
        vec!["<sip:alice@127.0.0.1:4002>;expires=3600".to_owned()]
    );
    // Out of order CSeq on the same Call-ID fails and changes nothing.
    let r = reply(m.on_request(
        &mut register(1, "c1", "Contact: <sip:alice@127.0.0.1:4002>;expires=0\r\n"),
        now,
    ));
    assert_eq!(r.status, StatusCode::SERVER_INTERNAL_ERROR);
    // `*` needs Expires: 0.
    let r = reply(m.on_request(&mut register(4, "c1", "Contact: *\r\n"), now));
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let mut ctx = register(5, "c1", "Contact: *\r\nExpires: 0\r\n");
    let wall = ctx.wall;
    let r = reply(m.on_request(&mut ctx, now));
    assert_eq!(r.status, StatusCode::OK);
    assert!(contacts(&r).is_empty());
    assert!(
        store
            .bindings("sip:alice@example.test", wall)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn gruus_for_instances_when_supported() {
    let (mut m, store) = module();
    let now = Instant::now();
    let mut ctx = register(
        1,
        "c1",
        "Supported: gruu, outbound\r\nContact: <sip:alice@127.0.0.1:4000>;+sip.instance=\"<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>\";reg-id=1\r\n",
    );
    let wall = ctx.wall;
    let r = reply(m.on_request(&mut ctx, now));
    let c = contacts(&r);
    assert_eq!(c.len(), 1);
    assert!(
        c[0].contains(
            ";pub-gruu=\"sip:alice@example.test;gr=urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6\""
        ),
        "{}",
        c[0]
    );
    assert!(c[0].contains(";temp-gruu=\"sip:tgruu."), "{}", c[0]);
    assert!(
        r.headers
            .contains(&("Require".to_owned(), "outbound".to_owned()))
    );
    let b = store.bindings("sip:alice@example.test", wall).unwrap();
    let temp = b[0].temp_gruu.clone().unwrap();
    assert_eq!(
        store.by_temp_gruu(&temp, wall).unwrap().map(|b| b.contact),
        Some("sip:alice@127.0.0.1:4000".to_owned())
    );
}

#[test]
fn gruu_and_outbound_can_be_switched_off() {
    let store = Arc::new(MemoryStore::new());
    let config = RegistrarConfig {
        gruu: false,
        outbound: false,
        ..RegistrarConfig::default()
    };
    let m = Registrar::new(config, Arc::new(locality()), sotto_crypto_rust::provider());
    let mut m = Served::new(m, store.clone(), store.clone());
    let mut ctx = register(
        1,
        "c1",
        "Supported: gruu, outbound\r\nContact: <sip:alice@127.0.0.1:4000>;+sip.instance=\"<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>\";reg-id=1\r\n",
    );
    let wall = ctx.wall;
    let r = reply(m.on_request(&mut ctx, Instant::now()));
    let c = contacts(&r);
    assert_eq!(c.len(), 1);
    assert!(!c[0].contains("gruu"), "{}", c[0]);
    assert!(!r.headers.iter().any(|(n, _)| n == "Require"));
    let b = store.bindings("sip:alice@example.test", wall).unwrap();
    assert_eq!((b[0].reg_id, b[0].temp_gruu.as_deref()), (None, None));
}

#[test]
fn flow_of_a_stream_registration_is_remembered() {
    let (mut m, store) = module();
    let now = Instant::now();
    let mut ctx = register(
        1,
        "c1",
        "Contact: <sip:alice@127.0.0.1:4000;transport=tls>\r\n",
    );
    ctx.transport = sotto_sip::transport::TransportKind::Tls;
    ctx.connection = Some(sotto_sip::transport::ConnectionId(42));
    let wall = ctx.wall;
    reply(m.on_request(&mut ctx, now));
    let b = store.bindings("sip:alice@example.test", wall).unwrap();
    assert_eq!(b[0].flow.as_deref(), Some("42"));
    assert_eq!(b[0].transport.as_deref(), Some("TLS"));
}

#[test]
fn other_users_and_domains_are_refused() {
    let (mut m, _) = module();
    let now = Instant::now();
    let mut ctx = register(1, "c1", "Contact: <sip:alice@127.0.0.1:4000>\r\n");
    ctx.authenticated = Some("bob".into());
    assert_eq!(
        reply(m.on_request(&mut ctx, now)).status,
        StatusCode::FORBIDDEN
    );
    let text = "REGISTER sip:example.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:4000;branch=z9hG4bK1\r\n\
        Max-Forwards: 70\r\nTo: <sip:alice@elsewhere.test>\r\nFrom: <sip:alice@elsewhere.test>;tag=a\r\n\
        Call-ID: c9\r\nCSeq: 1 REGISTER\r\nContact: <sip:alice@127.0.0.1:4000>\r\nContent-Length: 0\r\n\r\n";
    let mut ctx = with_source(parse_request(text), "127.0.0.1:4000");
    assert_eq!(
        reply(m.on_request(&mut ctx, now)).status,
        StatusCode::FORBIDDEN
    );
}

#[test]
fn register_for_another_server_passes_through() {
    let (mut m, _) = module();
    let text = "REGISTER sip:elsewhere.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:4000;branch=z9hG4bK1\r\n\
        Max-Forwards: 70\r\nTo: <sip:alice@elsewhere.test>\r\nFrom: <sip:alice@elsewhere.test>;tag=a\r\n\
        Call-ID: c9\r\nCSeq: 1 REGISTER\r\nContact: <sip:alice@127.0.0.1:4000>\r\nContent-Length: 0\r\n\r\n";
    let mut ctx = with_source(parse_request(text), "127.0.0.1:4000");
    assert_eq!(m.on_request(&mut ctx, Instant::now()), Verdict::Continue);
}

/// The 200 OK is built from the bindings read before the update with the request's changes
/// applied (no second read): it must list exactly what the store then holds.
#[test]
fn listing_after_refresh_add_and_remove_matches_the_store() {
    let (mut m, store) = module();
    let now = Instant::now();
    let mut first = register(
        1,
        "c1",
        "Contact: <sip:alice@127.0.0.1:4000>, <sip:alice@127.0.0.1:4001>\r\nExpires: 600\r\n",
    );
    assert_eq!(reply(m.on_request(&mut first, now)).status, StatusCode::OK);
    // Refresh 4000 with a new expiry, remove 4001, add 4002 (instance), all in one request.
    let mut second = register(
        2,
        "c1",
        "Contact: <sip:alice@127.0.0.1:4000>;expires=300, <sip:alice@127.0.0.1:4001>;expires=0, \
         <sip:alice@127.0.0.1:4002>;+sip.instance=\"<urn:uuid:1>\";expires=900\r\n",
    );
    let wall = second.wall;
    let r = reply(m.on_request(&mut second, now));
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        contacts(&r),
        vec![
            "<sip:alice@127.0.0.1:4000>;expires=300".to_owned(),
            "<sip:alice@127.0.0.1:4002>;expires=900;+sip.instance=\"<urn:uuid:1>\"".to_owned(),
        ]
    );
    let mut stored: Vec<String> = store
        .bindings("sip:alice@example.test", wall)
        .unwrap()
        .into_iter()
        .map(|b| b.contact)
        .collect();
    stored.sort();
    assert_eq!(
        stored,
        vec![
            "sip:alice@127.0.0.1:4000".to_owned(),
            "sip:alice@127.0.0.1:4002".to_owned()
        ]
    );
    // The same instance moving to another address replaces its binding in the listing.
    let mut third = register(
        3,
        "c1",
        "Contact: <sip:alice@127.0.0.1:4003>;+sip.instance=\"<urn:uuid:1>\";expires=900\r\n",
    );
    let r = reply(m.on_request(&mut third, now));
    assert_eq!(
        contacts(&r),
        vec![
            "<sip:alice@127.0.0.1:4000>;expires=300".to_owned(),
            "<sip:alice@127.0.0.1:4003>;expires=900;+sip.instance=\"<urn:uuid:1>\"".to_owned(),
        ]
    );
}
