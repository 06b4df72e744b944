//! Two agents with ZRTP through the proxy core, on virtual time: the offer and answer carry
//! `a=zrtp-hash` and no keys, the keys are agreed on the media path through loss and jitter,
//! both ends show the same SAS, the tones cross, and the report says end to end.

use std::net::SocketAddr;
use std::time::Duration;

use sotto_agent::config::{Encryption, KeyExchange};
use sotto_agent::{CallId, CallState, UaEvent};
use sotto_media::audio::ToneReport;
use sotto_media::call::MediaEvent;
use sotto_media::keyx::{MediaKeyExchange, MediaProtection};
use sotto_sdp::NegotiatedMedia;
use sotto_sip::message::Uri;
use sotto_testkit::{AgentId, LinkConfig, MediaLink, Network, Side};

fn state(net: &Network, id: AgentId, call: CallId) -> Option<CallState> {
    net.events(id).iter().rev().find_map(|e| match e {
        UaEvent::CallState { call: c, state, .. } if *c == call => Some(*state),
        _ => None,
    })
}

fn media(net: &mut Network, id: AgentId) -> (NegotiatedMedia, Box<dyn MediaKeyExchange>) {
    let (call, neg) = net
        .events(id)
        .iter()
        .find_map(|e| match e {
            UaEvent::MediaReady { call, media, .. } => Some((*call, (**media).clone())),
            _ => None,
        })
        .expect("media ready");
    let keyx = net
        .ua(id)
        .take_key_exchange(call)
        .expect("its key exchange");
    (neg, keyx)
}

fn sas_of(events: &[MediaEvent]) -> Option<String> {
    events.iter().rev().find_map(|e| match e {
        MediaEvent::Protection(MediaProtection::Zrtp { sas: Some(s), .. }) => Some(s.clone()),
        _ => None,
    })
}

#[test]
fn two_agents_agree_zrtp_keys_end_to_end_through_loss() {
    let mut net = Network::new("example.test");
    let link = LinkConfig {
        delay: Duration::from_millis(5),
        ..LinkConfig::default()
    };
    let mut ids = Vec::new();
    for user in ["alice", "bob"] {
        let mut config = net.agent_config(user, Encryption::Mandatory);
        config.methods = vec![KeyExchange::Zrtp];
        net.add_user(user, &format!("{user}-pw"));
        ids.push(net.add_agent_with(config, link));
    }
    let (alice, bob) = (ids[0], ids[1]);
    assert!(net.run_until(Duration::from_secs(5), |n| {
        n.ua_registered(alice) && n.ua_registered(bob)
    }));
    let now = net.clock.now();
    let a_media: SocketAddr = "127.0.0.10:7000".parse().unwrap();
    let target = Uri::parse("sip:bob@example.test").unwrap();
    let a_call = net.ua(alice).call(&target, a_media, now).unwrap();
    assert!(net.run_until(Duration::from_secs(10), |n| {
        n.events(bob)
            .iter()
            .any(|e| matches!(e, UaEvent::IncomingCall { .. }))
    }));
    let b_call = net
        .events(bob)
        .iter()
        .find_map(|e| match e {
            UaEvent::IncomingCall { call, .. } => Some(*call),
            _ => None,
        })
        .unwrap();
    let now = net.clock.now();
    net.ua(bob)
        .answer(b_call, "127.0.0.11:7002".parse().unwrap(), now)
        .unwrap();
    assert!(net.run_until(Duration::from_secs(10), |n| {
        state(n, alice, a_call) == Some(CallState::Connected)
    }));

    let (ma, mb) = (media(&mut net, alice), media(&mut net, bob));
    assert_eq!(ma.0.profile, "RTP/AVP", "ZRTP runs over RTP/AVP");
    for m in [&ma, &mb] {
        let names: Vec<&str> =
            m.0.remote_attributes
                .iter()
                .map(|a| a.name.as_str())
                .collect();
        assert!(names.contains(&"zrtp-hash"), "{names:?}");
        assert!(!names.contains(&"crypto"), "no keys in the SDP: {names:?}");
    }
    let lossy = LinkConfig {
        delay: Duration::from_millis(20),
        jitter: Duration::from_millis(10),
        loss: 0.05,
        ..LinkConfig::default()
    };
    let mut m = MediaLink::new(&net.clock, ma, mb, (1000.0, 600.0), lossy, 7).expect("media");
    m.run(&mut net.clock, Duration::from_secs(10));
    for side in [Side::A, Side::B] {
        assert!(
            m.events(side).contains(&MediaEvent::Secured),
            "{side:?} keyed"
        );
    }
    let (sa, sb) = (sas_of(m.events(Side::A)), sas_of(m.events(Side::B)));
    assert!(
        sa.is_some() && sa == sb,
        "the same SAS on both ends: {sa:?} {sb:?}"
    );
    for (side, tone) in [(Side::B, 1000.0), (Side::A, 600.0)] {
        let heard = ToneReport::analyze(m.heard(side), 8000, tone, 800);
        assert!(
            heard.dominant_windows >= 6 && heard.median_fraction > 0.5,
            "{side:?} hears the other's tone: {heard:?}"
        );
    }
}
