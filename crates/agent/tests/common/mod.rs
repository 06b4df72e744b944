//! Helpers of the agent's tests: agents whose flow to a fake proxy is a list of messages,
//! digest challenges, relaying between two agents, media across the agreed keys.

// Each test binary uses some of them.
#![allow(dead_code, unreachable_pub)]
#![allow(clippy::disallowed_methods)]

pub use std::net::SocketAddr;
pub use std::time::{Duration, Instant, SystemTime};

pub use bytes::Bytes;
pub use sotto_agent::call::CallState;
pub use sotto_agent::config::Encryption;
pub use sotto_agent::{CallId, Flow, TlsSummary, UaConfig, UaEvent, UserAgent};
pub use sotto_media::audio::{Codec, FRAME_SAMPLES, Tone, ToneReport};
pub use sotto_media::call::{CallMedia, MediaEvent};
pub use sotto_media::keyx::MediaKeyExchange;
pub use sotto_media::session::{Channel, NoProtection, RtpSession};
pub use sotto_sdp::NegotiatedMedia;
pub use sotto_sip::digest::{Algorithm, Challenge, Credentials, Ha1, compute_response};
pub use sotto_sip::message::{Message, Request, Response, StatusCode, Uri};
pub use sotto_sip::parse::{Limits, parse_message};
pub use sotto_sip::transport::{ConnectionId, Destination, TransportKind};
pub use zeroize::Zeroizing;

pub const PROXY: &str = "127.0.0.1:5061";

pub fn provider() -> &'static sotto_crypto::CryptoProvider {
    sotto_crypto_rust::provider()
}

pub fn config(user: &str, encryption: Encryption) -> UaConfig {
    UaConfig {
        identity: Uri::parse(&format!("sip:{user}@example.test")).unwrap(),
        username: user.to_owned(),
        password: Zeroizing::new(format!("{user}pw")),
        instance: format!("urn:uuid:00000000-0000-4000-8000-00000000000{}", user.len()),
        register_expires: Duration::from_secs(600),
        proxy_uri: Uri::parse(&format!("sips:{PROXY}")).unwrap(),
        proxy: Destination::new(TransportKind::Tls, PROXY.parse().unwrap()),
        encryption,
        methods: vec![sotto_agent::config::KeyExchange::Sdes],
        zrtp_preferences: Default::default(),
        zrtp_cache: None,
        dtls_certificate: None,
        trusted_hosts: Vec::new(),
        user_agent: "test".into(),
        tls_listen: None,
        udp_listen: None,
        sdes_without_tls: false,
        client_certificate: false,
    }
}

pub fn tls() -> Option<TlsSummary> {
    Some(TlsSummary {
        version: "TLSv1.3".into(),
        cipher_suite: "TLS13_AES_128_GCM_SHA256".into(),
    })
}

/// An agent whose flow to the proxy is connection `conn` from `local`.
pub struct Side {
    pub ua: UserAgent,
    pub flow: Flow,
    pub events: Vec<UaEvent>,
}

impl Side {
    pub fn new(user: &str, port: u16, conn: u64, encryption: Encryption) -> Side {
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
    pub fn sent(&mut self) -> Vec<Message> {
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

    pub fn receive(&mut self, m: &Message, now: Instant) {
        let mut buf = Vec::new();
        m.write_to(&mut buf);
        let flow = self.flow.clone();
        self.ua.handle_incoming(Bytes::from(buf), &flow, now);
    }

    pub fn states(&self) -> Vec<(CallState, Option<String>)> {
        self.events
            .iter()
            .filter_map(|e| match e {
                UaEvent::CallState { state, reason, .. } => Some((*state, reason.clone())),
                _ => None,
            })
            .collect()
    }

    /// The negotiated stream and the key exchange of the call whose media is ready.
    pub fn media(&mut self) -> Option<(NegotiatedMedia, Box<dyn MediaKeyExchange>)> {
        let (call, neg) = self.events.iter().find_map(|e| match e {
            UaEvent::MediaReady { call, media, .. } => Some((*call, (**media).clone())),
            _ => None,
        })?;
        Some((neg, self.ua.take_key_exchange(call)?))
    }
}

pub fn request(m: &Message) -> &Request {
    m.as_request().expect("a request")
}

pub fn response(m: &Message) -> &Response {
    m.as_response().expect("a response")
}

pub fn challenge(req: &Request, status: StatusCode, header: &str) -> Message {
    let mut r = Response::from_request(req, status);
    r.set_to_tag("proxytag");
    let ch = Challenge::new("example.test", "nonce-1", Algorithm::Sha256);
    r.headers_mut().push(header, ch.to_string());
    Message::Response(r)
}

/// Checks the digest response of `value` against the password.
pub fn check_credentials(value: &str, method: &str, password: &str) -> Credentials {
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

pub fn ok_with(req: &Request, contact: Option<String>) -> Message {
    let mut r = Response::from_request(req, StatusCode::OK);
    r.set_to_tag("regtag");
    if let Some(c) = contact {
        r.headers_mut().push("Contact", c);
    }
    Message::Response(r)
}

/// Relays every message between the two sides (the test is the proxy) until both are quiet;
/// returns the messages relayed, in order.
pub fn relay(a: &mut Side, b: &mut Side, now: Instant) -> Vec<Message> {
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

pub fn incoming_call(s: &Side) -> CallId {
    s.events
        .iter()
        .find_map(|e| match e {
            UaEvent::IncomingCall { call, .. } => Some(*call),
            _ => None,
        })
        .expect("an incoming call")
}

/// Sends a second of 1000 Hz from `a`'s call media to `b`'s, on a virtual clock, protected
/// with the keys their key exchanges agreed (SDES: each side's key is the other's remote
/// key, or nothing would decrypt); `b` decodes it.
pub fn tone_crosses(
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

pub fn direct_invite(to_port: u16) -> Message {
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

/// Parses every message the agent queued, with its destination; events are returned too.
pub fn drain(ua: &mut UserAgent) -> (Vec<(Destination, Message)>, Vec<UaEvent>) {
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

pub fn wire(m: &Message) -> Bytes {
    let mut buf = Vec::new();
    m.write_to(&mut buf);
    Bytes::from(buf)
}
