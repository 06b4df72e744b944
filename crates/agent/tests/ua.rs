//! The sans-IO user agent on a virtual clock, with the test playing the proxy: registration
//! (digest SHA-256, RFC 5626 contact, refresh at half the granted lifetime, unregister),
//! calls between two agents (407 retry, ringing, offer/answer with SDES, ACK, BYE, CANCEL),
//! the media glue (SRTP keyed from the negotiated keys carries a tone end to end), the
//! mandatory-encryption refusal and ghost-call protection.

// `Instant::now()` is read once per test as the origin of the virtual clock; time then only
// moves by the durations the tests add.
#![allow(clippy::disallowed_methods)]

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use sotto_agent::call::CallState;
use sotto_agent::config::Encryption;
use sotto_agent::{CallId, Flow, TlsSummary, UaConfig, UaEvent, UserAgent};
use sotto_media::audio::{Codec, FRAME_SAMPLES, Tone, ToneReport};
use sotto_media::call::{CallMedia, MediaEvent};
use sotto_media::keyx::MediaKeyExchange;
use sotto_media::session::{Channel, NoProtection, RtpSession};
use sotto_net::{ConnectionId, Destination, TransportKind};
use sotto_sdp::NegotiatedMedia;
use sotto_sip::digest::{Algorithm, Challenge, Credentials, Ha1, compute_response};
use sotto_sip::message::{Message, Request, Response, StatusCode, Uri};
use sotto_sip::parse::{Limits, parse_message};
use zeroize::Zeroizing;

const PROXY: &str = "127.0.0.1:5061";

fn provider() -> &'static sotto_crypto::CryptoProvider {
    sotto_crypto_rust::provider()
}

fn config(user: &str, encryption: Encryption) -> UaConfig {
    UaConfig {
        identity: Uri::parse(&format!("sip:{user}@example.test")).unwrap(),
        username: user.to_owned(),
        password: Zeroizing::new(format!("{user}pw")),
        instance: format!("urn:uuid:00000000-0000-4000-8000-00000000000{}", user.len()),
        register_expires: Duration::from_secs(600),
        proxy_uri: Uri::parse(&format!("sips:{PROXY}")).unwrap(),
        proxy: Destination::new(TransportKind::Tls, PROXY.parse().unwrap()),
        encryption,
        trusted_hosts: Vec::new(),
        user_agent: "test".into(),
        tls_listen: None,
        udp_listen: None,
        sdes_without_tls: false,
        client_certificate: false,
    }
}

fn tls() -> Option<TlsSummary> {
    Some(TlsSummary {
        version: "TLSv1.3".into(),
        cipher_suite: "TLS13_AES_128_GCM_SHA256".into(),
    })
}

/// An agent whose flow to the proxy is connection `conn` from `local`.
struct Side {
    ua: UserAgent,
    flow: Flow,
    events: Vec<UaEvent>,
}

impl Side {
    fn new(user: &str, port: u16, conn: u64, encryption: Encryption) -> Side {
        let local: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let mut ua = UserAgent::new(config(user, encryption), provider()).unwrap();
        ua.set_flow(local, Some(ConnectionId(conn)));
        Side {
            ua,
            flow: Flow {
                transport: TransportKind::Tls,
                remote: PROXY.parse().unwrap(),
                local,
                connection: Some(ConnectionId(conn)),
                tls: tls(),
            },
            events: Vec::new(),
        }
    }

    /// Everything the agent sent, parsed; events are collected.
    fn sent(&mut self) -> Vec<Message> {
        let mut out = Vec::new();
        while let Some(o) = self.ua.poll_transmit() {
            assert_eq!(
                o.destination.remote,
                PROXY.parse().unwrap(),
                "all goes to the proxy"
            );
            out.push(parse_message(o.bytes, &Limits::default()).unwrap());
        }
        while let Some(e) = self.ua.poll_event() {
            self.events.push(e);
        }
        out
    }

    fn receive(&mut self, m: &Message, now: Instant) {
        let mut buf = Vec::new();
        m.write_to(&mut buf);
        let flow = self.flow.clone();
        self.ua.handle_incoming(Bytes::from(buf), &flow, now);
    }

    fn states(&self) -> Vec<(CallState, Option<String>)> {
        self.events
            .iter()
            .filter_map(|e| match e {
                UaEvent::CallState { state, reason, .. } => Some((*state, reason.clone())),
                _ => None,
            })
            .collect()
    }

    /// The negotiated stream and the key exchange of the call whose media is ready.
    fn media(&mut self) -> Option<(NegotiatedMedia, Box<dyn MediaKeyExchange>)> {
        let (call, neg) = self.events.iter().find_map(|e| match e {
            UaEvent::MediaReady { call, media, .. } => Some((*call, (**media).clone())),
            _ => None,
        })?;
        Some((neg, self.ua.take_key_exchange(call)?))
    }
}

fn request(m: &Message) -> &Request {
    m.as_request().expect("a request")
}

fn response(m: &Message) -> &Response {
    m.as_response().expect("a response")
}

fn challenge(req: &Request, status: StatusCode, header: &str) -> Message {
    let mut r = Response::from_request(req, status);
    r.set_to_tag("proxytag");
    let ch = Challenge::new("example.test", "nonce-1", Algorithm::Sha256);
    r.headers_mut().push(header, ch.to_string());
    Message::Response(r)
}

/// Checks the digest response of `value` against the password.
fn check_credentials(value: &str, method: &str, password: &str) -> Credentials {
    let c = Credentials::parse(value).unwrap();
    assert_eq!(c.algorithm, Algorithm::Sha256);
    let ha1 = Ha1::from_password(provider(), c.algorithm, &c.username, &c.realm, password).unwrap();
    let expected = compute_response(
        provider(),
        c.algorithm,
        &ha1,
        &c.nonce,
        c.nc.unwrap(),
        c.cnonce.as_deref().unwrap(),
        c.qop,
        method,
        &c.uri,
    )
    .unwrap();
    assert_eq!(c.response, expected);
    c
}

fn ok_with(req: &Request, contact: Option<String>) -> Message {
    let mut r = Response::from_request(req, StatusCode::OK);
    r.set_to_tag("regtag");
    if let Some(c) = contact {
        r.headers_mut().push("Contact", c);
    }
    Message::Response(r)
}

#[test]
fn register_with_digest_refresh_and_unregister() {
    let t0 = Instant::now();
    let mut a = Side::new("alice", 40000, 1, Encryption::Mandatory);
    a.ua.register(t0).unwrap();
    let sent = a.sent();
    let [first] = sent.as_slice() else {
        panic!("{sent:?}")
    };
    let reg = request(first);
    assert_eq!(reg.uri().as_str(), "sip:example.test");
    let contact = reg.headers().get("Contact").unwrap();
    assert!(
        contact.starts_with("<sip:alice@127.0.0.1:40000;transport=tls;ob>"),
        "{contact}"
    );
    assert!(contact.contains("+sip.instance=\"<urn:uuid:"), "{contact}");
    assert!(contact.contains("reg-id=1"), "{contact}");
    assert_eq!(reg.headers().get("Expires"), Some("600"));
    assert!(reg.headers().get("Supported").unwrap().contains("outbound"));
    assert!(reg.via_top().unwrap().transport.eq_ignore_ascii_case("TLS"));

    a.receive(
        &challenge(reg, StatusCode::UNAUTHORIZED, "WWW-Authenticate"),
        t0,
    );
    let sent = a.sent();
    let [second] = sent.as_slice() else {
        panic!("{sent:?}")
    };
    let reg2 = request(second);
    assert_eq!(reg2.cseq().unwrap().seq, reg.cseq().unwrap().seq + 1);
    assert_eq!(reg2.call_id().unwrap(), reg.call_id().unwrap());
    assert_ne!(
        reg2.via_top().unwrap().branch,
        reg.via_top().unwrap().branch
    );
    let creds = check_credentials(
        reg2.headers().get("Authorization").unwrap(),
        "REGISTER",
        "alicepw",
    );
    assert_eq!(creds.username, "alice");
    assert!(a.events.is_empty());

    // The registrar grants 120 s: the refresh is due at 60 s.
    let t1 = t0 + Duration::from_millis(30);
    let granted = format!("{};expires=120", contact);
    a.receive(&ok_with(reg2, Some(granted)), t1);
    assert!(a.sent().is_empty());
    match a.events.as_slice() {
        [UaEvent::Registered { expires, auth, .. }] => {
            assert_eq!(*expires, Duration::from_secs(120));
            assert_eq!(auth, "digest-SHA-256");
        }
        other => panic!("{other:?}"),
    }
    assert!(a.ua.is_registered());
    assert_eq!(a.ua.poll_timeout(), Some(t1 + Duration::from_secs(60)));
    a.ua.handle_timeout(t1 + Duration::from_secs(59));
    assert!(a.sent().is_empty(), "not before half the lifetime");
    a.ua.handle_timeout(t1 + Duration::from_secs(60));
    let sent = a.sent();
    let [refresh] = sent.as_slice() else {
        panic!("{sent:?}")
    };
    let refresh = request(refresh);
    assert_eq!(refresh.call_id().unwrap(), reg.call_id().unwrap());
    assert!(refresh.cseq().unwrap().seq > reg2.cseq().unwrap().seq);

    // Unregister: Expires 0, then `Unregistered`.
    a.events.clear();
    a.ua.unregister(t1 + Duration::from_secs(61)).unwrap();
    let sent = a.sent();
    let unreg = sent
        .iter()
        .map(request)
        .find(|r| r.headers().get("Expires") == Some("0"))
        .expect("an Expires: 0 REGISTER");
    a.receive(&ok_with(unreg, None), t1 + Duration::from_secs(61));
    a.sent();
    assert!(
        matches!(a.events.as_slice(), [UaEvent::Unregistered]),
        "{:?}",
        a.events
    );
    assert!(!a.ua.is_registered());
}

#[test]
fn registration_failure_is_reported() {
    let t0 = Instant::now();
    let mut a = Side::new("alice", 40000, 1, Encryption::Mandatory);
    a.ua.register(t0).unwrap();
    let sent = a.sent();
    let mut r = Response::from_request(request(&sent[0]), StatusCode::FORBIDDEN);
    r.set_to_tag("x");
    a.receive(&Message::Response(r), t0);
    a.sent();
    assert!(
        matches!(
            a.events.as_slice(),
            [UaEvent::RegistrationFailed { status: 403, .. }]
        ),
        "{:?}",
        a.events
    );
}

/// Relays every message between the two sides (the test is the proxy) until both are quiet;
/// returns the messages relayed, in order.
fn relay(a: &mut Side, b: &mut Side, now: Instant) -> Vec<Message> {
    let mut all = Vec::new();
    for _ in 0..32 {
        let from_a = a.sent();
        let from_b = b.sent();
        if from_a.is_empty() && from_b.is_empty() {
            return all;
        }
        for m in from_a {
            b.receive(&m, now);
            all.push(m);
        }
        for m in from_b {
            a.receive(&m, now);
            all.push(m);
        }
    }
    panic!("messages kept flowing");
}

fn incoming_call(s: &Side) -> CallId {
    s.events
        .iter()
        .find_map(|e| match e {
            UaEvent::IncomingCall { call, .. } => Some(*call),
            _ => None,
        })
        .expect("an incoming call")
}

#[test]
fn call_with_proxy_auth_sdes_media_and_bye() {
    let t0 = Instant::now();
    let mut a = Side::new("alice", 40000, 1, Encryption::Mandatory);
    let mut b = Side::new("bob", 40002, 2, Encryption::Mandatory);
    let bob = Uri::parse("sip:bob@example.test").unwrap();
    let call =
        a.ua.call(&bob, "127.0.0.1:7000".parse().unwrap(), t0)
            .unwrap();
    let sent = a.sent();
    let [invite] = sent.as_slice() else {
        panic!("{sent:?}")
    };
    let inv = request(invite);
    let offer = String::from_utf8_lossy(inv.body()).into_owned();
    assert!(offer.contains("m=audio 7000 RTP/SAVP"), "{offer}");
    assert!(
        offer.contains("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"),
        "{offer}"
    );
    // The proxy challenges; alice ACKs the 407 (transaction layer) and retries.
    a.receive(
        &challenge(
            inv,
            StatusCode::PROXY_AUTHENTICATION_REQUIRED,
            "Proxy-Authenticate",
        ),
        t0,
    );
    let sent = a.sent();
    let retry = sent
        .iter()
        .map(request)
        .find(|r| r.method().as_str() == "INVITE")
        .expect("a second INVITE");
    assert!(
        sent.iter()
            .map(request)
            .any(|r| r.method().as_str() == "ACK")
    );
    assert_eq!(retry.cseq().unwrap().seq, inv.cseq().unwrap().seq + 1);
    check_credentials(
        retry.headers().get("Proxy-Authorization").unwrap(),
        "INVITE",
        "alicepw",
    );
    b.receive(&Message::Request(retry.clone()), t0);
    relay(&mut a, &mut b, t0);
    let bcall = incoming_call(&b);
    assert_eq!(a.states(), [(CallState::Ringing, None)]);
    assert_eq!(b.states(), [(CallState::Ringing, None)]);

    b.ua.answer(bcall, "127.0.0.1:7002".parse().unwrap(), t0)
        .unwrap();
    let msgs = relay(&mut a, &mut b, t0);
    assert!(
        msgs.iter()
            .any(|m| m.as_request().is_some_and(|r| r.method().as_str() == "ACK"))
    );
    assert_eq!(a.states().last(), Some(&(CallState::Connected, None)));
    assert_eq!(a.ua.call_state(call), Some(CallState::Connected));
    let report = a
        .events
        .iter()
        .find_map(|e| match e {
            UaEvent::CallSecurity { report, .. } => Some(report.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(report.auth, "digest-SHA-256");
    assert_eq!(report.media_protection, "srtp-sdes");
    assert_eq!(report.tls_version.as_deref(), Some("TLSv1.3"));
    assert!(!report.end_to_end);
    let bsec = b
        .events
        .iter()
        .find_map(|e| match e {
            UaEvent::CallSecurity { report, .. } => Some(report.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(bsec.auth, "registration-flow");

    // Media: each side's key is the other's remote key; a tone crosses SRTP intact.
    let ma = a.media().unwrap();
    let mb = b.media().unwrap();
    assert_eq!(ma.0.remote_rtp_port, 7002);
    assert_eq!(mb.0.remote_rtp_port, 7000);
    assert!(a.media().is_none(), "the key exchange is handed out once");
    tone_crosses(ma, mb);

    // Alice hangs up.
    a.events.clear();
    b.events.clear();
    a.ua.hangup(call, t0).unwrap();
    relay(&mut a, &mut b, t0);
    assert_eq!(
        a.states(),
        [(CallState::Ended, Some("local hangup".into()))]
    );
    assert_eq!(
        b.states(),
        [(CallState::Ended, Some("remote hangup".into()))]
    );
    assert_eq!(a.ua.call_state(call), None);
}

/// Sends a second of 1000 Hz from `a`'s call media to `b`'s, on a virtual clock, protected
/// with the keys their key exchanges agreed (SDES: each side's key is the other's remote
/// key, or nothing would decrypt); `b` decodes it.
fn tone_crosses(
    a: (NegotiatedMedia, Box<dyn MediaKeyExchange>),
    b: (NegotiatedMedia, Box<dyn MediaKeyExchange>),
) {
    let t0 = Instant::now();
    let wall = SystemTime::UNIX_EPOCH;
    let p = provider();
    let mk = |(n, keyx): (NegotiatedMedia, Box<dyn MediaKeyExchange>)| {
        assert_eq!(keyx.protection().name(), "srtp-sdes");
        let cfg = sotto_agent::media::media_config(&n, "t", true).unwrap();
        assert_eq!(cfg.codec, Codec::Pcmu);
        let stream = RtpSession::new(cfg, Box::new(NoProtection::new()), p.rng, t0, wall).unwrap();
        let mut m = CallMedia::new(p, keyx, vec![stream]);
        assert_eq!(m.poll_event(), Some(MediaEvent::Secured));
        m
    };
    let (mut sa, mut sb) = (mk(a), mk(b));
    let a_addr: SocketAddr = "127.0.0.1:7000".parse().unwrap();
    let mut tone = Tone::new(1000.0, 8000, 8000);
    let (mut pcm, mut out) = ([0i16; FRAME_SAMPLES], [0i16; FRAME_SAMPLES]);
    let mut buf = [0u8; 1500];
    let mut got = Vec::new();
    for i in 0..50u64 {
        let now = t0 + Duration::from_millis(20 * i);
        tone.fill(&mut pcm);
        let t = sa.send_audio(now, 0, &pcm, &mut buf).unwrap().unwrap();
        assert_eq!(
            t.len,
            12 + FRAME_SAMPLES + 10,
            "RTP header, payload, 80-bit tag"
        );
        sb.handle_packet(now, 0, a_addr, Channel::Rtp, &mut buf[..t.len])
            .unwrap();
        while sb.poll_audio(now, 0, &mut out).is_some() {
            got.extend_from_slice(&out);
        }
    }
    assert_eq!(sb.stats(0).unwrap().packets_received, 50);
    let r = ToneReport::analyze(&got, 8000, 1000.0, 800);
    assert!(r.dominant_windows >= 4 && r.median_fraction > 0.5, "{r:?}");
}

#[test]
fn cancel_while_ringing() {
    let t0 = Instant::now();
    let mut a = Side::new("alice", 40000, 1, Encryption::Mandatory);
    let mut b = Side::new("bob", 40002, 2, Encryption::Mandatory);
    let call =
        a.ua.call(
            &Uri::parse("sip:bob@example.test").unwrap(),
            "127.0.0.1:7000".parse().unwrap(),
            t0,
        )
        .unwrap();
    relay(&mut a, &mut b, t0);
    assert_eq!(a.states(), [(CallState::Ringing, None)]);
    a.ua.hangup(call, t0).unwrap();
    let msgs = relay(&mut a, &mut b, t0);
    assert!(msgs.iter().any(|m| {
        m.as_request()
            .is_some_and(|r| r.method().as_str() == "CANCEL")
    }));
    assert!(msgs.iter().any(|m| {
        m.as_response()
            .is_some_and(|r| r.status() == StatusCode::REQUEST_TERMINATED)
    }));
    assert_eq!(
        a.states().last(),
        Some(&(CallState::Ended, Some("cancelled".into())))
    );
    assert_eq!(
        b.states().last(),
        Some(&(CallState::Ended, Some("cancelled by the caller".into())))
    );
}

#[test]
fn mandatory_encryption_refuses_plain_offers_with_488_and_warning() {
    let t0 = Instant::now();
    let mut a = Side::new("alice", 40000, 1, Encryption::None);
    let mut b = Side::new("bob", 40002, 2, Encryption::Mandatory);
    let call =
        a.ua.call(
            &Uri::parse("sip:bob@example.test").unwrap(),
            "127.0.0.1:7000".parse().unwrap(),
            t0,
        )
        .unwrap();
    let msgs = relay(&mut a, &mut b, t0);
    let refusal = msgs
        .iter()
        .filter_map(|m| m.as_response())
        .find(|r| r.status().is_final())
        .expect("a final response");
    assert_eq!(refusal.status().as_u16(), 488);
    let warning = refusal.headers().get("Warning").expect("a Warning");
    assert!(warning.contains("mandatory"), "{warning}");
    assert!(
        !msgs
            .iter()
            .filter_map(|m| m.as_response())
            .any(|r| r.status() == StatusCode::RINGING)
    );
    let (state, reason) = a.states().last().cloned().unwrap();
    assert_eq!(state, CallState::Ended);
    assert!(reason.unwrap().starts_with("488"), "{:?}", a.states());
    assert_eq!(a.ua.call_state(call), None);
    let (state, reason) = b.states().last().cloned().unwrap();
    assert_eq!(state, CallState::Ended);
    assert!(reason.unwrap().contains("488"));
    // Both sides still report the call's security: not established, no media protection.
    for side in [&a, &b] {
        let report = side
            .events
            .iter()
            .find_map(|e| match e {
                UaEvent::CallSecurity { report, .. } => Some(report.clone()),
                _ => None,
            })
            .expect("a call_security event");
        assert_eq!(report.media_protection, "none");
        assert!(report.note.unwrap().contains("not established"));
    }
}

#[test]
fn mandatory_encryption_needs_a_tls_first_hop() {
    let mut cfg = config("alice", Encryption::Mandatory);
    cfg.proxy = Destination::new(TransportKind::Udp, "127.0.0.1:5060".parse().unwrap());
    let mut ua = UserAgent::new(cfg, provider()).unwrap();
    ua.set_flow("127.0.0.1:40000".parse().unwrap(), None);
    let err = ua
        .call(
            &Uri::parse("sip:bob@example.test").unwrap(),
            "127.0.0.1:7000".parse().unwrap(),
            Instant::now(),
        )
        .unwrap_err();
    assert!(err.to_string().contains("TLS"), "{err}");
    assert!(ua.poll_transmit().is_none(), "no INVITE, no SDES over UDP");
}

fn direct_invite(to_port: u16) -> Message {
    let body = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";
    let text = format!(
        "INVITE sip:bob@127.0.0.1:{to_port} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bKghost\r\n\
         Max-Forwards: 70\r\nFrom: <sip:100@127.0.0.1>;tag=g\r\nTo: <sip:bob@127.0.0.1>\r\n\
         Call-ID: ghost\r\nCSeq: 1 INVITE\r\nContent-Type: application/sdp\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    parse_message(Bytes::from(text), &Limits::default()).unwrap()
}

#[test]
fn ghost_invite_is_refused_without_ringing_and_trusted_hosts_may_call() {
    let t0 = Instant::now();
    let mut b = Side::new("bob", 40002, 2, Encryption::Optional);
    let direct = Flow {
        transport: TransportKind::Udp,
        remote: "127.0.0.1:5099".parse().unwrap(),
        local: "127.0.0.1:5070".parse().unwrap(),
        connection: None,
        tls: None,
    };
    let mut buf = Vec::new();
    direct_invite(5070).write_to(&mut buf);
    b.ua.handle_incoming(Bytes::from(buf.clone()), &direct, t0);
    let out = b.ua.poll_transmit().expect("a response");
    assert_eq!(
        out.destination.remote, direct.remote,
        "answered where it came from"
    );
    let resp = parse_message(out.bytes, &Limits::default()).unwrap();
    assert_eq!(response(&resp).status(), StatusCode::FORBIDDEN);
    assert!(b.ua.poll_transmit().is_none(), "no 180");
    b.sent();
    assert!(
        matches!(b.events.as_slice(), [UaEvent::Rejected { status: 403, method, .. }] if method == "INVITE"),
        "{:?}",
        b.events
    );

    // The same INVITE from a configured trusted host rings.
    let mut cfg = config("bob", Encryption::Optional);
    cfg.trusted_hosts = vec!["127.0.0.1".parse().unwrap()];
    let mut ua = UserAgent::new(cfg, provider()).unwrap();
    ua.set_flow("127.0.0.1:40002".parse().unwrap(), Some(ConnectionId(2)));
    ua.handle_incoming(Bytes::from(buf), &direct, t0);
    let out = ua.poll_transmit().expect("a response");
    let resp = parse_message(out.bytes, &Limits::default()).unwrap();
    assert_eq!(response(&resp).status(), StatusCode::RINGING);
    let mut evs = Vec::new();
    while let Some(e) = ua.poll_event() {
        evs.push(e);
    }
    assert!(
        matches!(evs.first(), Some(UaEvent::IncomingCall { .. })),
        "{evs:?}"
    );
}

#[test]
fn sdes_over_a_plain_hop_is_refused() {
    let t0 = Instant::now();
    let mut cfg = config("bob", Encryption::Mandatory);
    cfg.trusted_hosts = vec!["127.0.0.1".parse().unwrap()];
    let mut ua = UserAgent::new(cfg, provider()).unwrap();
    ua.set_flow("127.0.0.1:40002".parse().unwrap(), Some(ConnectionId(2)));
    // An SDES offer arriving over UDP (from a trusted host, so it passes the ghost check).
    let mut alice = Side::new("alice", 40000, 1, Encryption::Mandatory);
    alice
        .ua
        .call(
            &Uri::parse("sip:bob@example.test").unwrap(),
            "127.0.0.1:7000".parse().unwrap(),
            t0,
        )
        .unwrap();
    let invite = alice.sent().remove(0);
    let mut buf = Vec::new();
    invite.write_to(&mut buf);
    let udp = Flow {
        transport: TransportKind::Udp,
        remote: "127.0.0.1:5099".parse().unwrap(),
        local: "127.0.0.1:5070".parse().unwrap(),
        connection: None,
        tls: None,
    };
    ua.handle_incoming(Bytes::from(buf), &udp, t0);
    let out = ua.poll_transmit().expect("a response");
    let resp = parse_message(out.bytes, &Limits::default()).unwrap();
    let resp = response(&resp);
    assert_eq!(resp.status().as_u16(), 488);
    assert!(resp.headers().get("Warning").unwrap().contains("non-TLS"));
}

#[test]
fn an_unanswered_call_is_refused_after_the_ring_timeout() {
    let t0 = Instant::now();
    let mut a = Side::new("alice", 40000, 1, Encryption::Mandatory);
    let mut b = Side::new("bob", 40002, 2, Encryption::Mandatory);
    a.ua.call(
        &Uri::parse("sip:bob@example.test").unwrap(),
        "127.0.0.1:7000".parse().unwrap(),
        t0,
    )
    .unwrap();
    relay(&mut a, &mut b, t0);
    assert_eq!(b.states(), [(CallState::Ringing, None)]);
    let deadline = t0 + sotto_agent::ua::RING_TIMEOUT;
    assert!(b.ua.poll_timeout().is_some_and(|t| t <= deadline));
    b.ua.handle_timeout(deadline - Duration::from_secs(1));
    assert!(b.sent().is_empty(), "still ringing");
    b.ua.handle_timeout(deadline);
    relay(&mut a, &mut b, deadline);
    let (state, reason) = a.states().last().cloned().unwrap();
    assert_eq!(state, CallState::Ended);
    assert!(reason.unwrap().starts_with("480"));
    assert_eq!(
        b.states().last(),
        Some(&(
            CallState::Ended,
            Some("not answered (480 Temporarily Unavailable)".into())
        ))
    );
}

#[test]
fn a_2xx_over_udp_is_retransmitted_until_the_ack() {
    let t0 = Instant::now();
    let mut cfg = config("bob", Encryption::Optional);
    cfg.trusted_hosts = vec!["127.0.0.1".parse().unwrap()];
    let mut ua = UserAgent::new(cfg, provider()).unwrap();
    ua.set_flow("127.0.0.1:40002".parse().unwrap(), Some(ConnectionId(2)));
    let udp = Flow {
        transport: TransportKind::Udp,
        remote: "127.0.0.1:5099".parse().unwrap(),
        local: "127.0.0.1:5070".parse().unwrap(),
        connection: None,
        tls: None,
    };
    let mut buf = Vec::new();
    direct_invite(5070).write_to(&mut buf);
    ua.handle_incoming(Bytes::from(buf), &udp, t0);
    let mut call = None;
    while let Some(e) = ua.poll_event() {
        if let UaEvent::IncomingCall { call: c, .. } = e {
            call = Some(c);
        }
    }
    let statuses = |ua: &mut UserAgent| -> Vec<u16> {
        let mut v = Vec::new();
        while let Some(o) = ua.poll_transmit() {
            assert_eq!(o.destination.remote, udp.remote);
            let m = parse_message(o.bytes, &Limits::default()).unwrap();
            v.push(response(&m).status().as_u16());
        }
        v
    };
    assert_eq!(statuses(&mut ua), [180]);
    ua.answer(call.unwrap(), "127.0.0.1:7002".parse().unwrap(), t0)
        .unwrap();
    assert_eq!(statuses(&mut ua), [200]);
    ua.handle_timeout(t0 + Duration::from_millis(499));
    assert_eq!(statuses(&mut ua), Vec::<u16>::new());
    ua.handle_timeout(t0 + Duration::from_millis(500));
    assert_eq!(statuses(&mut ua), [200], "T1");
    ua.handle_timeout(t0 + Duration::from_millis(1500));
    assert_eq!(statuses(&mut ua), [200], "2·T1 later");
    let ack = "ACK sip:bob@127.0.0.1:5070 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bKack\r\n\
               Max-Forwards: 70\r\nFrom: <sip:100@127.0.0.1>;tag=g\r\nTo: <sip:bob@127.0.0.1>;tag=x\r\n\
               Call-ID: ghost\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n";
    ua.handle_incoming(
        Bytes::from_static(ack.as_bytes()),
        &udp,
        t0 + Duration::from_millis(1600),
    );
    ua.handle_timeout(t0 + Duration::from_secs(10));
    assert_eq!(
        statuses(&mut ua),
        Vec::<u16>::new(),
        "acknowledged: no more 200s"
    );
}

/// Parses every message the agent queued, with its destination; events are returned too.
fn drain(ua: &mut UserAgent) -> (Vec<(Destination, Message)>, Vec<UaEvent>) {
    let mut out = Vec::new();
    while let Some(o) = ua.poll_transmit() {
        out.push((
            o.destination.clone(),
            parse_message(o.bytes, &Limits::default()).unwrap(),
        ));
    }
    let mut evs = Vec::new();
    while let Some(e) = ua.poll_event() {
        evs.push(e);
    }
    (out, evs)
}

fn wire(m: &Message) -> Bytes {
    let mut buf = Vec::new();
    m.write_to(&mut buf);
    Bytes::from(buf)
}

#[test]
fn direct_destination_needs_tls_and_an_ip_address() {
    use sotto_agent::ua::direct_destination;
    let d = direct_destination(&Uri::parse("sips:bob@127.0.0.1:5072").unwrap()).unwrap();
    assert_eq!(d.transport, TransportKind::Tls);
    assert_eq!(d.remote, "127.0.0.1:5072".parse::<SocketAddr>().unwrap());
    let d = direct_destination(&Uri::parse("sip:bob@[::1];transport=tls").unwrap()).unwrap();
    assert_eq!(d.remote, "[::1]:5061".parse::<SocketAddr>().unwrap());
    assert!(direct_destination(&Uri::parse("sip:bob@127.0.0.1:5072").unwrap()).is_none());
    assert!(direct_destination(&Uri::parse("sips:bob@example.test").unwrap()).is_none());
}

#[test]
fn direct_tls_call_skips_the_proxy_end_to_end() {
    let t0 = Instant::now();
    let alice_local: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    let mut acfg = config("alice", Encryption::Mandatory);
    acfg.tls_listen = Some("127.0.0.1:5071".parse().unwrap());
    let mut alice = UserAgent::new(acfg, provider()).unwrap();
    alice.set_flow(alice_local, Some(ConnectionId(1)));
    let mut bcfg = config("bob", Encryption::Mandatory);
    bcfg.tls_listen = Some("127.0.0.1:5072".parse().unwrap());
    bcfg.trusted_hosts = vec!["127.0.0.1".parse().unwrap()];
    let mut bob = UserAgent::new(bcfg, provider()).unwrap();
    bob.set_flow("127.0.0.1:40001".parse().unwrap(), Some(ConnectionId(2)));

    let target = Uri::parse("sips:bob@127.0.0.1:5072").unwrap();
    let call = alice
        .call(&target, "127.0.0.1:30000".parse().unwrap(), t0)
        .unwrap();
    let (out, _) = drain(&mut alice);
    assert_eq!(out.len(), 1);
    let (dest, invite) = &out[0];
    assert_eq!(dest.transport, TransportKind::Tls);
    assert_eq!(dest.remote, "127.0.0.1:5072".parse::<SocketAddr>().unwrap());
    assert_eq!(
        dest.connection, None,
        "a new connection, not the proxy flow"
    );
    let req = request(invite);
    assert!(
        req.headers()
            .get("Via")
            .unwrap()
            .starts_with("SIP/2.0/TLS ")
    );
    assert_eq!(
        req.headers().get("Contact").unwrap(),
        "<sip:alice@127.0.0.1:5071;transport=tls>"
    );
    assert!(
        String::from_utf8_lossy(req.body()).contains("a=crypto:"),
        "SDES is offered: the only hop is TLS"
    );

    // Bob receives it on his TLS listener (connection 9) from a trusted host.
    let bob_flow = Flow {
        transport: TransportKind::Tls,
        remote: "127.0.0.1:45000".parse().unwrap(),
        local: "127.0.0.1:5072".parse().unwrap(),
        connection: Some(ConnectionId(9)),
        tls: tls(),
    };
    bob.handle_incoming(wire(invite), &bob_flow, t0);
    let (out, evs) = drain(&mut bob);
    let incoming = evs
        .iter()
        .find_map(|e| match e {
            UaEvent::IncomingCall { call, .. } => Some(*call),
            _ => None,
        })
        .expect("bob rings");
    let ringing = &out
        .iter()
        .find(|(_, m)| response(m).status() == StatusCode::RINGING);
    let (rdest, r180) = ringing.expect("180");
    assert_eq!(
        rdest.connection,
        Some(ConnectionId(9)),
        "replies on the same connection"
    );
    assert_eq!(
        response(r180).headers().get("Contact").unwrap(),
        "<sip:bob@127.0.0.1:5072;transport=tls>"
    );
    bob.answer(incoming, "127.0.0.1:30002".parse().unwrap(), t0)
        .unwrap();
    let (out, evs) = drain(&mut bob);
    let report = evs
        .iter()
        .find_map(|e| match e {
            UaEvent::CallSecurity { report, .. } => Some(report.clone()),
            _ => None,
        })
        .expect("bob's report");
    let v = serde_json::to_value(&report).unwrap();
    assert_eq!(v["auth"], "trusted-host");
    assert_eq!(v["media_protection"], "srtp-sdes");
    assert_eq!(v["direct"], true);

    // Alice gets 180 and 200 over her direct connection (10), with its TLS parameters.
    let alice_flow = Flow {
        transport: TransportKind::Tls,
        remote: "127.0.0.1:5072".parse().unwrap(),
        local: "127.0.0.1:45000".parse().unwrap(),
        connection: Some(ConnectionId(10)),
        tls: Some(TlsSummary {
            version: "TLSv1.2".into(),
            cipher_suite: "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256".into(),
        }),
    };
    alice.handle_incoming(wire(r180), &alice_flow, t0);
    for (_, m) in &out {
        alice.handle_incoming(wire(m), &alice_flow, t0);
    }
    let (out, evs) = drain(&mut alice);
    assert_eq!(alice.call_state(call), Some(CallState::Connected));
    let report = evs
        .iter()
        .find_map(|e| match e {
            UaEvent::CallSecurity { report, .. } => Some(report.clone()),
            _ => None,
        })
        .expect("alice's report");
    let v = serde_json::to_value(&report).unwrap();
    assert_eq!(v["signalling_transport"], "tls");
    assert_eq!(
        v["tls_version"], "TLSv1.2",
        "the direct connection's, not the proxy's"
    );
    assert_eq!(v["media_protection"], "srtp-sdes");
    assert_eq!(v["direct"], true);
    assert_eq!(v["end_to_end"], false);
    assert_eq!(v["note"], sotto_agent::security::SDES_DIRECT_NOTE);
    let (adest, ack) = out
        .iter()
        .find(|(_, m)| matches!(m, Message::Request(r) if r.method().as_str() == "ACK"))
        .expect("ACK");
    assert_eq!(
        adest.remote,
        "127.0.0.1:5072".parse::<SocketAddr>().unwrap()
    );
    assert!(
        request(ack).uri().to_string().contains("127.0.0.1:5072"),
        "ACK to bob's Contact"
    );
}

#[test]
fn a_direct_call_fails_at_once_when_the_peer_cannot_be_reached() {
    let t0 = Instant::now();
    let mut ua = UserAgent::new(config("alice", Encryption::Mandatory), provider()).unwrap();
    ua.set_flow("127.0.0.1:40000".parse().unwrap(), Some(ConnectionId(1)));
    let target = Uri::parse("sip:bob@127.0.0.1:5072;transport=tls").unwrap();
    let call = ua
        .call(&target, "127.0.0.1:30000".parse().unwrap(), t0)
        .unwrap();
    let out = ua.poll_transmit().expect("the INVITE");
    assert_eq!(
        out.destination.remote,
        "127.0.0.1:5072".parse::<SocketAddr>().unwrap()
    );
    ua.transport_failed(&out, "connection refused", t0);
    let (_, evs) = drain(&mut ua);
    let ended = evs.iter().find_map(|e| match e {
        UaEvent::CallState {
            call: c,
            state: CallState::Ended,
            reason,
        } if *c == call => reason.clone(),
        _ => None,
    });
    assert_eq!(
        ended.as_deref(),
        Some("503 transport error: connection refused")
    );
    assert_eq!(ua.call_state(call), None);
}

#[test]
fn direct_udp_destination_needs_sip_an_ip_and_a_port() {
    use sotto_agent::ua::direct_udp_destination;
    let d = direct_udp_destination(&Uri::parse("sip:bob@127.0.0.1:5072").unwrap()).unwrap();
    assert_eq!(d.transport, TransportKind::Udp);
    assert_eq!(d.remote, "127.0.0.1:5072".parse::<SocketAddr>().unwrap());
    let d = direct_udp_destination(&Uri::parse("sip:bob@[::1]:5072;transport=udp").unwrap());
    assert_eq!(
        d.map(|d| d.remote),
        Some("[::1]:5072".parse::<SocketAddr>().unwrap())
    );
    for no in [
        "sip:bob@127.0.0.1",
        "sips:bob@127.0.0.1:5072",
        "sip:bob@127.0.0.1:5072;transport=tls",
        "sip:bob@127.0.0.1:5072;transport=tcp",
        "sip:bob@example.test:5072",
    ] {
        assert!(
            direct_udp_destination(&Uri::parse(no).unwrap()).is_none(),
            "{no}"
        );
    }
}

#[test]
fn direct_udp_call_with_sdes_is_refused_without_the_danger_switch() {
    let t0 = Instant::now();
    let mut cfg = config("alice", Encryption::Mandatory);
    cfg.udp_listen = Some("127.0.0.1:40010".parse().unwrap());
    let mut ua = UserAgent::new(cfg, provider()).unwrap();
    ua.set_flow("127.0.0.1:40000".parse().unwrap(), Some(ConnectionId(1)));
    let target = Uri::parse("sip:bob@127.0.0.1:5072").unwrap();
    let err = ua
        .call(&target, "127.0.0.1:30000".parse().unwrap(), t0)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("SDES") && err.contains("clear text") && err.contains("sdes_without_tls"),
        "{err}"
    );
    let (out, evs) = drain(&mut ua);
    assert!(out.is_empty(), "nothing is sent: {out:?}");
    assert!(evs.is_empty(), "{evs:?}");
    assert!(ua.call_ids().is_empty());
}

#[test]
fn direct_udp_call_with_sdes_under_the_danger_switch_is_reported_loudly() {
    let t0 = Instant::now();
    let mut acfg = config("alice", Encryption::Mandatory);
    acfg.udp_listen = Some("127.0.0.1:40010".parse().unwrap());
    acfg.sdes_without_tls = true;
    let mut alice = UserAgent::new(acfg, provider()).unwrap();
    alice.set_flow("127.0.0.1:40000".parse().unwrap(), Some(ConnectionId(1)));
    // Bob: direct UDP listener, alice's host trusted, and the switch too (to accept SDES).
    let mut bcfg = config("bob", Encryption::Mandatory);
    bcfg.udp_listen = Some("127.0.0.1:5072".parse().unwrap());
    bcfg.trusted_hosts = vec!["127.0.0.1".parse().unwrap()];
    bcfg.sdes_without_tls = true;
    let mut bob = UserAgent::new(bcfg.clone(), provider()).unwrap();
    bob.set_flow("127.0.0.1:40001".parse().unwrap(), Some(ConnectionId(2)));

    let target = Uri::parse("sip:bob@127.0.0.1:5072").unwrap();
    let call = alice
        .call(&target, "127.0.0.1:30000".parse().unwrap(), t0)
        .unwrap();
    let (out, _) = drain(&mut alice);
    assert_eq!(out.len(), 1);
    let (dest, invite) = &out[0];
    assert_eq!(dest.transport, TransportKind::Udp);
    assert_eq!(dest.remote, "127.0.0.1:5072".parse::<SocketAddr>().unwrap());
    let req = request(invite);
    assert_eq!(
        req.headers().get("Via").unwrap().split(';').next(),
        Some("SIP/2.0/UDP 127.0.0.1:40010"),
        "Via names the UDP socket, not the proxy flow"
    );
    assert_eq!(
        req.headers().get("Contact").unwrap(),
        "<sip:alice@127.0.0.1:40010;transport=udp>"
    );
    assert!(String::from_utf8_lossy(req.body()).contains("a=crypto:"));

    // Without the switch, bob refuses the same INVITE (488, SDES over a non-TLS hop).
    let mut strict_cfg = bcfg;
    strict_cfg.sdes_without_tls = false;
    let mut strict = UserAgent::new(strict_cfg, provider()).unwrap();
    strict.set_flow("127.0.0.1:40002".parse().unwrap(), Some(ConnectionId(3)));
    let bob_flow = Flow {
        transport: TransportKind::Udp,
        remote: "127.0.0.1:40010".parse().unwrap(),
        local: "127.0.0.1:5072".parse().unwrap(),
        connection: None,
        tls: None,
    };
    strict.handle_incoming(wire(invite), &bob_flow, t0);
    let (sout, _) = drain(&mut strict);
    assert!(
        sout.iter()
            .any(|(_, m)| m.as_response().is_some_and(|r| r.status().0 == 488)),
        "{sout:?}"
    );

    bob.handle_incoming(wire(invite), &bob_flow, t0);
    let (_, evs) = drain(&mut bob);
    let incoming = evs
        .iter()
        .find_map(|e| match e {
            UaEvent::IncomingCall { call, .. } => Some(*call),
            _ => None,
        })
        .expect("bob rings");
    bob.answer(incoming, "127.0.0.1:30002".parse().unwrap(), t0)
        .unwrap();
    let (out, evs) = drain(&mut bob);
    let report = evs
        .iter()
        .find_map(|e| match e {
            UaEvent::CallSecurity { report, .. } => Some(report.clone()),
            _ => None,
        })
        .expect("bob's report");
    assert_eq!(report.danger, vec!["sdes_without_tls".to_owned()]);
    assert_eq!(report.signalling_transport, "udp");

    let alice_flow = Flow {
        transport: TransportKind::Udp,
        remote: "127.0.0.1:5072".parse().unwrap(),
        local: "127.0.0.1:40010".parse().unwrap(),
        connection: None,
        tls: None,
    };
    for (_, m) in &out {
        alice.handle_incoming(wire(m), &alice_flow, t0);
    }
    let (out, evs) = drain(&mut alice);
    assert_eq!(alice.call_state(call), Some(CallState::Connected));
    let report = evs
        .iter()
        .find_map(|e| match e {
            UaEvent::CallSecurity { report, .. } => Some(report.clone()),
            _ => None,
        })
        .expect("alice's report");
    let v = serde_json::to_value(&report).unwrap();
    assert_eq!(v["signalling_transport"], "udp");
    assert_eq!(v["tls_version"], serde_json::Value::Null);
    assert_eq!(v["media_protection"], "srtp-sdes");
    assert_eq!(v["direct"], true);
    assert_eq!(v["end_to_end"], false);
    assert_eq!(v["danger"], serde_json::json!(["sdes_without_tls"]));
    assert_eq!(v["note"], sotto_agent::security::SDES_WITHOUT_TLS_NOTE);
    let (adest, ack) = out
        .iter()
        .find(|(_, m)| matches!(m, Message::Request(r) if r.method().as_str() == "ACK"))
        .expect("ACK");
    assert_eq!(adest.transport, TransportKind::Udp);
    assert!(
        request(ack)
            .headers()
            .get("Via")
            .unwrap()
            .starts_with("SIP/2.0/UDP 127.0.0.1:40010")
    );
    bob.handle_incoming(wire(ack), &bob_flow, t0);
    let _ = drain(&mut bob);

    // Bob hangs up: alice (who trusts no host) takes the BYE of her own direct dialog from
    // the host she called, and only that.
    bob.hangup(incoming, t0).unwrap();
    let (out, _) = drain(&mut bob);
    let (_, bye) = out
        .iter()
        .find(|(_, m)| matches!(m, Message::Request(r) if r.method().as_str() == "BYE"))
        .expect("BYE");
    let stranger = Flow {
        remote: "127.0.0.2:5072".parse().unwrap(),
        ..alice_flow.clone()
    };
    alice.handle_incoming(wire(bye), &stranger, t0);
    let (out, evs) = drain(&mut alice);
    assert!(
        evs.iter()
            .any(|e| matches!(e, UaEvent::Rejected { status: 403, .. })),
        "{evs:?}"
    );
    assert!(out.iter().all(|(_, m)| response(m).status().0 == 403));
    assert_eq!(alice.call_state(call), Some(CallState::Connected));
    alice.handle_incoming(wire(bye), &alice_flow, t0);
    let (out, _) = drain(&mut alice);
    assert!(
        out.iter().any(|(_, m)| m
            .as_response()
            .is_some_and(|r| r.status() == StatusCode::OK)),
        "{out:?}"
    );
    assert_eq!(alice.call_state(call), None, "the call ended");
}

#[test]
fn calls_through_the_proxy_ignore_the_danger_switch() {
    // The switch covers direct calls only: a UDP proxy hop still refuses SDES.
    let t0 = Instant::now();
    let mut cfg = config("alice", Encryption::Mandatory);
    cfg.proxy = Destination::new(TransportKind::Udp, "127.0.0.1:5060".parse().unwrap());
    cfg.udp_listen = Some("127.0.0.1:40010".parse().unwrap());
    cfg.sdes_without_tls = true;
    let mut ua = UserAgent::new(cfg, provider()).unwrap();
    ua.set_flow("127.0.0.1:40010".parse().unwrap(), None);
    let err = ua
        .call(
            &Uri::parse("sip:bob@example.test").unwrap(),
            "127.0.0.1:30000".parse().unwrap(),
            t0,
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("SDES needs TLS"), "{err}");
    let (out, _) = drain(&mut ua);
    assert!(out.is_empty());
}
