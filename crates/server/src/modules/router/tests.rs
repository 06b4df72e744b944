use super::*;
use crate::modules::testutil::{locality, parse_request, with_source};
use crate::store_ops::testing::Served;
use sotto_store::{BindingStore, MemoryStore};
use std::time::{Duration, SystemTime};

fn module() -> (Served<Router>, Arc<MemoryStore>) {
    let store = Arc::new(MemoryStore::new());
    let m = Router::new(RouterConfig::default(), Arc::new(locality()));
    (Served::new(m, store.clone(), store.clone()), store)
}

fn request(line: &str, extra: &str) -> RequestContext {
    let method = line.split(' ').next().unwrap();
    let text = format!(
        "{line} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:4000;branch=z9hG4bK1\r\nMax-Forwards: 70\r\n\
         To: <sip:bob@example.test>\r\nFrom: <sip:alice@example.test>;tag=a\r\nCall-ID: c1\r\n\
         CSeq: 1 {method}\r\n{extra}Content-Length: 0\r\n\r\n"
    );
    with_source(parse_request(&text), "127.0.0.1:4000")
}

fn bind(store: &MemoryStore, contact: &str, q: Option<f32>) -> Binding {
    let mut b = Binding::new(
        "sip:bob@example.test",
        contact,
        "r1",
        1,
        SystemTime::now() + Duration::from_secs(600),
    );
    b.q = q;
    b.transport = Some("UDP".into());
    store.upsert(&b, SystemTime::now()).unwrap();
    b
}

fn status(v: &Verdict) -> Option<u16> {
    match v {
        Verdict::Reply(r) => Some(r.status.0),
        _ => None,
    }
}

#[test]
fn options_to_the_server_is_answered() {
    let (mut m, _) = module();
    let v = m.on_request(&mut request("OPTIONS sip:example.test", ""), Instant::now());
    assert_eq!(status(&v), Some(200));
}

#[test]
fn local_aor_forks_to_every_binding_by_q() {
    let (mut m, store) = module();
    bind(&store, "sip:bob@127.0.0.1:5091", Some(0.5));
    bind(&store, "sip:bob@127.0.0.1:5092;transport=tcp", Some(1.0));
    let mut ctx = request("INVITE sip:bob@example.test", "");
    assert_eq!(m.on_request(&mut ctx, Instant::now()), Verdict::Continue);
    let dests: Vec<_> = ctx
        .targets
        .iter()
        .map(|t| {
            (
                t.destination().unwrap().transport,
                t.destination().unwrap().remote.port(),
            )
        })
        .collect();
    assert_eq!(
        dests,
        vec![(TransportKind::Tcp, 5092), (TransportKind::Udp, 5091)]
    );
    assert_eq!(ctx.targets[1].uri.as_str(), "sip:bob@127.0.0.1:5091");
}

#[test]
fn no_binding_is_480_for_known_and_unknown_users() {
    let (mut m, _) = module();
    let a = m.on_request(
        &mut request("INVITE sip:bob@example.test", ""),
        Instant::now(),
    );
    let b = m.on_request(
        &mut request("INVITE sip:nobody@example.test", ""),
        Instant::now(),
    );
    assert_eq!(status(&a), Some(480));
    assert_eq!(a, b);
}

#[test]
fn foreign_domain_is_not_relayed() {
    let (mut m, _) = module();
    let v = m.on_request(
        &mut request("INVITE sip:bob@elsewhere.test", ""),
        Instant::now(),
    );
    assert_eq!(status(&v), Some(403));
    let v = m.on_request(
        &mut request("MESSAGE sip:bob@192.0.2.1:5060", ""),
        Instant::now(),
    );
    assert_eq!(status(&v), Some(403));
}

#[test]
fn in_dialog_request_is_loose_routed() {
    let (mut m, _) = module();
    let mut ctx = request(
        "BYE sip:bob@127.0.0.1:5090",
        "Route: <sip:127.0.0.1:5060;lr>\r\n",
    );
    assert_eq!(m.on_request(&mut ctx, Instant::now()), Verdict::Continue);
    assert!(!ctx.request.headers().contains("Route"));
    assert_eq!(
        ctx.targets[0].destination().unwrap().remote,
        "127.0.0.1:5090".parse().unwrap()
    );
    // A further Route after ours is the next hop; the Request-URI is kept.
    let mut ctx = request(
        "BYE sip:bob@127.0.0.1:5090",
        "Route: <sips:127.0.0.1:5061;lr>, <sip:192.0.2.7:5070;lr>\r\n",
    );
    assert_eq!(m.on_request(&mut ctx, Instant::now()), Verdict::Continue);
    assert_eq!(
        ctx.targets[0].destination().unwrap().remote,
        "192.0.2.7:5070".parse().unwrap()
    );
    assert_eq!(ctx.request.uri().as_str(), "sip:bob@127.0.0.1:5090");
    assert_eq!(ctx.request.routes().unwrap().len(), 1);
}

#[test]
fn stream_binding_goes_back_over_its_connection() {
    let (mut m, store) = module();
    let mut b = Binding::new(
        "sip:bob@example.test",
        "sip:bob@10.0.0.9:5555;transport=tls",
        "r1",
        1,
        SystemTime::now() + Duration::from_secs(600),
    );
    b.transport = Some("TLS".into());
    b.source = Some("127.0.0.1:45678".parse().unwrap());
    b.flow = Some("7".into());
    store.upsert(&b, SystemTime::now()).unwrap();
    let mut ctx = request("MESSAGE sip:bob@example.test", "");
    assert_eq!(m.on_request(&mut ctx, Instant::now()), Verdict::Continue);
    let d = ctx.targets[0].destination().unwrap();
    assert_eq!(
        (d.transport, d.remote, d.connection),
        (
            TransportKind::Tls,
            "127.0.0.1:45678".parse().unwrap(),
            Some(ConnectionId(7))
        )
    );
    assert_eq!(ctx.targets[0].registered_over, Some(TransportKind::Tls));
}

#[test]
fn gruus_select_one_instance() {
    let (mut m, store) = module();
    bind(&store, "sip:bob@127.0.0.1:5091", None);
    let mut b = Binding::new(
        "sip:bob@example.test",
        "sip:bob@127.0.0.1:5093",
        "r2",
        1,
        SystemTime::now() + Duration::from_secs(600),
    );
    b.instance_id = Some("urn:uuid:1".into());
    b.temp_gruu = Some("sip:tgruu.abc@example.test;gr".into());
    store.upsert(&b, SystemTime::now()).unwrap();
    for uri in [
        "sip:bob@example.test;gr=urn:uuid:1",
        "sip:tgruu.abc@example.test;gr",
    ] {
        let mut ctx = request(&format!("MESSAGE {uri}"), "");
        assert_eq!(
            m.on_request(&mut ctx, Instant::now()),
            Verdict::Continue,
            "{uri}"
        );
        assert_eq!(ctx.targets.len(), 1);
        assert_eq!(ctx.targets[0].destination().unwrap().remote.port(), 5093);
    }
}

#[test]
fn flow_token_route_goes_over_its_flow_and_a_bad_one_is_refused() {
    let tokens = Arc::new(FlowTokens::new(sotto_crypto_rust::provider()).unwrap());
    let store = Arc::new(MemoryStore::new());
    let m =
        Router::new(RouterConfig::default(), Arc::new(locality())).with_flow_tokens(tokens.clone());
    let mut m = Served::new(m, store.clone(), store.clone());
    let flow = Flow {
        transport: TransportKind::Tls,
        connection: ConnectionId(5),
        remote: "127.0.0.1:45000".parse().unwrap(),
    };
    let route = format!("<sips:{}@127.0.0.1:5061;lr;ob>", tokens.encode(&flow));
    // From UDP (no flow): over the token's flow, Request-URI untouched.
    let mut ctx = request("BYE sip:bob@10.0.0.9:5555", &format!("Route: {route}\r\n"));
    assert_eq!(m.on_request(&mut ctx, Instant::now()), Verdict::Continue);
    assert_eq!(ctx.targets.len(), 1);
    assert_eq!(ctx.targets[0].destination(), Some(&flow.destination()));
    assert_eq!(ctx.request.uri().as_str(), "sip:bob@10.0.0.9:5555");
    assert!(!ctx.request.headers().contains("Route"));
    // Arriving on that very flow: routed normally (to the Request-URI).
    let mut ctx = request("BYE sip:bob@127.0.0.1:5090", &format!("Route: {route}\r\n"));
    ctx.transport = TransportKind::Tls;
    ctx.connection = Some(ConnectionId(5));
    ctx.source = flow.remote;
    assert_eq!(m.on_request(&mut ctx, Instant::now()), Verdict::Continue);
    assert_eq!(ctx.targets[0].destination().unwrap().remote.port(), 5090);
    assert_eq!(ctx.targets[0].destination().unwrap().connection, None);
    // Altered: 403.
    let bad = route.replacen("<sips:01", "<sips:00", 1);
    let mut ctx = request("BYE sip:bob@10.0.0.9:5555", &format!("Route: {bad}\r\n"));
    assert_eq!(status(&m.on_request(&mut ctx, Instant::now())), Some(403));
    let mut figures = Vec::new();
    m.counters(&mut |name, v| figures.push((name, v)));
    assert_eq!(
        figures,
        vec![
            ("flow_routed_total", 1),
            ("flow_token_refused_total", 1),
            ("store_failures_total", 0)
        ]
    );
    // A router without the tokens ignores them (plain loose routing).
    let (mut plain, _) = module();
    let mut ctx = request("BYE sip:bob@127.0.0.1:5090", &format!("Route: {bad}\r\n"));
    assert_eq!(
        plain.on_request(&mut ctx, Instant::now()),
        Verdict::Continue
    );
    assert_eq!(ctx.targets[0].destination().unwrap().remote.port(), 5090);
}
