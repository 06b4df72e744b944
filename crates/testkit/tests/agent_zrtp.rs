//! Two agents with ZRTP through the proxy core, on virtual time: the offer and answer carry
//! `a=zrtp-hash` and no keys, the keys are agreed on the media path through loss and jitter,
//! both ends show the same SAS, the tones cross, and the report says end to end.

use std::time::Duration;

use sotto_agent::config::KeyExchange;
use sotto_media::audio::ToneReport;
use sotto_media::call::MediaEvent;
use sotto_media::keyx::MediaProtection;
use sotto_testkit::{LinkConfig, MediaLink, Network, Side};

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
    let pair = net
        .connected_pair(&[KeyExchange::Zrtp], link)
        .expect("alice and bob connected");
    let ma = net.take_media(pair.alice).expect("alice's media");
    let mb = net.take_media(pair.bob).expect("bob's media");
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
