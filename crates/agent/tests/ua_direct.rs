//! The sans-IO user agent's direct calls (no proxy): over TLS to an IP address, over UDP only
//! under the `[danger] sdes_without_tls` switch and then loudly, failures at once when the
//! peer cannot be reached.

// `Instant::now()` is read once per test as the origin of the virtual clock; time then only
// moves by the durations the tests add.
#![allow(clippy::disallowed_methods)]

mod common;
use common::*;

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
            UaEvent::CallSecurity { report, .. } => Some(report.as_ref().clone()),
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
            UaEvent::CallSecurity { report, .. } => Some(report.as_ref().clone()),
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
            UaEvent::CallSecurity { report, .. } => Some(report.as_ref().clone()),
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
            UaEvent::CallSecurity { report, .. } => Some(report.as_ref().clone()),
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
