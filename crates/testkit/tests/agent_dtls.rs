//! Two agents with DTLS-SRTP through the proxy core, on virtual time: the offer says
//! `UDP/TLS/RTP/SAVP` with `a=setup:actpass` and a fingerprint, the answer `a=setup:active`;
//! no keys travel in the SDP; the handshake runs on the media path through loss (the
//! retransmissions on the test kit's clock), both ends check the fingerprint, the tones
//! cross, and the report says dtls-srtp with the profile.

use std::time::Duration;

use sotto_agent::config::{Encryption, KeyExchange};
use sotto_agent::{CallState, UaEvent};
use sotto_media::audio::ToneReport;
use sotto_media::call::MediaEvent;
use sotto_media::keyx::MediaProtection;
use sotto_sip::message::Uri;
use sotto_testkit::{LinkConfig, MediaHalf, MediaLink, Network, Side};

/// A connected DTLS call between alice and bob; their media halves.
fn dtls_call() -> (Network, MediaHalf, MediaHalf) {
    let mut net = Network::new("example.test");
    let link = LinkConfig {
        delay: Duration::from_millis(5),
        ..LinkConfig::default()
    };
    let pair = net
        .connected_pair(&[KeyExchange::Dtls], link)
        .expect("alice and bob connected");
    let ma = net.take_media(pair.alice).expect("alice's media");
    let mb = net.take_media(pair.bob).expect("bob's media");
    (net, ma, mb)
}

fn dtls_of(events: &[MediaEvent]) -> Option<MediaProtection> {
    events.iter().rev().find_map(|e| match e {
        MediaEvent::Protection(p @ MediaProtection::Dtls { .. }) => Some(p.clone()),
        _ => None,
    })
}

#[test]
fn two_agents_agree_dtls_srtp_keys_through_loss() {
    let (mut net, ma, mb) = dtls_call();
    assert_eq!(ma.0.profile, "UDP/TLS/RTP/SAVP");
    for (m, setup) in [(&ma, "active"), (&mb, "actpass")] {
        let attr = |n: &str| {
            m.0.remote_attributes
                .iter()
                .find(|a| a.name == n)
                .and_then(|a| a.value.clone())
        };
        assert_eq!(attr("setup").as_deref(), Some(setup));
        assert!(attr("fingerprint").is_some_and(|f| f.starts_with("sha-256 ")));
        assert!(attr("crypto").is_none(), "no keys in the SDP");
    }
    let lossy = LinkConfig {
        delay: Duration::from_millis(20),
        jitter: Duration::from_millis(10),
        loss: 0.2,
        ..LinkConfig::default()
    };
    let mut m = MediaLink::new(&net.clock, ma, mb, (1000.0, 600.0), lossy, 11).expect("media");
    m.run(&mut net.clock, Duration::from_secs(20));
    for side in [Side::A, Side::B] {
        assert!(
            m.events(side).contains(&MediaEvent::Secured),
            "{side:?} keyed: {:?}",
            m.events(side)
        );
        match dtls_of(m.events(side)) {
            Some(MediaProtection::Dtls {
                profile,
                fingerprint_verified,
                details,
            }) => {
                assert_eq!(profile.as_deref(), Some("AEAD_AES_128_GCM"));
                assert!(fingerprint_verified);
                assert_eq!(details.unwrap().handshakes, 1, "rtcp-mux: one handshake");
            }
            other => panic!("{side:?}: {other:?}"),
        }
    }
    for (side, tone) in [(Side::B, 1000.0), (Side::A, 600.0)] {
        let heard = ToneReport::analyze(m.heard(side), 8000, tone, 800);
        assert!(
            heard.dominant_windows >= 6 && heard.median_fraction > 0.5,
            "{side:?} hears the other's tone: {heard:?}"
        );
    }
}

#[test]
fn a_dtls_agent_refuses_an_sdes_offer_with_its_reason() {
    let mut net = Network::new("example.test");
    let link = LinkConfig::delay(Duration::from_millis(5));
    let mut alice = net.agent_config("alice", Encryption::Mandatory);
    alice.methods = vec![KeyExchange::Sdes];
    let mut bob = net.agent_config("bob", Encryption::Mandatory);
    bob.methods = vec![KeyExchange::Dtls];
    net.add_user("alice", "alice-pw");
    net.add_user("bob", "bob-pw");
    let (alice, bob) = (
        net.add_agent_with(alice, link),
        net.add_agent_with(bob, link),
    );
    assert!(net.run_until(Duration::from_secs(5), |n| {
        n.ua_registered(alice) && n.ua_registered(bob)
    }));
    let now = net.clock.now();
    let target = Uri::parse("sip:bob@example.test").unwrap();
    let call = net
        .ua(alice)
        .call(&target, "127.0.0.10:7000".parse().unwrap(), now)
        .unwrap();
    assert!(net.run_until(Duration::from_secs(10), |n| {
        n.call_state(alice, call) == Some(CallState::Ended)
    }));
    let ended = net.events(alice).iter().rev().find_map(|e| match e {
        UaEvent::CallState {
            state: CallState::Ended,
            reason,
            ..
        } => reason.clone(),
        _ => None,
    });
    let reason = ended.unwrap_or_default();
    assert!(reason.contains("488"), "{reason}");
    assert!(reason.contains("UDP/TLS/RTP/SAVP"), "{reason}");
}
