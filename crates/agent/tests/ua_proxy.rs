//! The sans-IO user agent on a virtual clock, with the test playing the proxy: registration
//! (digest SHA-256, RFC 5626 contact, refresh at half the granted lifetime, unregister),
//! calls between two agents through it (407 retry, ringing, offer/answer with SDES, ACK,
//! BYE, CANCEL), the media glue (SRTP keyed by the call's key exchange carries a tone end to
//! end), the mandatory-encryption refusal, ghost-call protection, 2xx retransmission.

// `Instant::now()` is read once per test as the origin of the virtual clock; time then only
// moves by the durations the tests add.
#![allow(clippy::disallowed_methods)]

mod common;
use common::*;

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
            UaEvent::CallSecurity { report, .. } => Some(report.as_ref().clone()),
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
            UaEvent::CallSecurity { report, .. } => Some(report.as_ref().clone()),
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
                UaEvent::CallSecurity { report, .. } => Some(report.as_ref().clone()),
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
