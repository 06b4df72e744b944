//! Calls between agents through the proxy core, on virtual time: set-up over a slow
//! signalling path, the security report, SDES-keyed media through loss, jitter, reordering
//! and duplication, hang-up; media news coming back into the call; a mid-call downgrade
//! refused loudly; mandatory encryption refusing a plain caller.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use sotto_agent::config::Encryption;
use sotto_agent::{CallId, CallState, SecurityReport, UaEvent};
use sotto_media::audio::ToneReport;
use sotto_media::call::MediaEvent;
use sotto_media::keyx::MediaProtection;
use sotto_sip::message::Uri;
use sotto_testkit::{AgentId, LinkConfig, MediaLink, Network, Side};

const A_TONE: f64 = 1000.0;
const B_TONE: f64 = 600.0;

fn signalling() -> LinkConfig {
    LinkConfig::delay(Duration::from_millis(60)).with_jitter(Duration::from_millis(40))
}

fn media_path() -> LinkConfig {
    LinkConfig::delay(Duration::from_millis(30))
        .with_jitter(Duration::from_millis(25))
        .with_loss(0.05)
        .with_reordering(0.02, Duration::from_millis(30))
        .with_duplication(0.01)
}

fn reason(net: &Network, id: AgentId, wanted: CallState) -> Option<String> {
    net.events(id).iter().find_map(|e| match e {
        UaEvent::CallState { state, reason, .. } if *state == wanted => reason.clone(),
        _ => None,
    })
}

fn reports(net: &Network, id: AgentId) -> Vec<SecurityReport> {
    net.events(id)
        .iter()
        .filter_map(|e| match e {
            UaEvent::CallSecurity { report, .. } => Some(report.as_ref().clone()),
            _ => None,
        })
        .collect()
}

/// A call from Alice to Bob, both registered on `example.test`.
struct Call {
    net: Network,
    alice: AgentId,
    bob: AgentId,
    a_call: CallId,
    b_call: CallId,
    /// Bob refused the call before ringing.
    refused: bool,
}

/// Alice calls Bob, Bob answers (unless he refused it before ringing); returns once the
/// call is connected or ended.
fn call(alice_enc: Encryption, bob_enc: Encryption) -> Call {
    let mut net = Network::new("example.test");
    let alice = net.add_agent("alice", alice_enc, signalling());
    let bob = net.add_agent("bob", bob_enc, signalling());
    assert!(net.run_until(Duration::from_secs(5), |n| {
        n.ua_registered(alice) && n.ua_registered(bob)
    }));
    let now = net.clock.now();
    let a_media: SocketAddr = "127.0.0.10:7000".parse().unwrap();
    let target = Uri::parse("sip:bob@example.test").unwrap();
    let a_call = net.ua(alice).call(&target, a_media, now).unwrap();
    let rang = net.run_until(Duration::from_secs(10), |n| {
        n.incoming_call(bob).is_some() || n.call_state(alice, a_call) == Some(CallState::Ended)
    });
    assert!(rang);
    // A call refused before ringing is still shown to the callee, already ended.
    let b_call = net.incoming_call(bob).expect("Bob is told of the call");
    if net.call_state(bob, b_call) == Some(CallState::Ended) {
        net.run_until(Duration::from_secs(10), |n| {
            n.call_state(alice, a_call) == Some(CallState::Ended)
        });
        return Call {
            net,
            alice,
            bob,
            a_call,
            b_call,
            refused: true,
        };
    }
    let now = net.clock.now();
    net.ua(bob)
        .answer(b_call, "127.0.0.11:7002".parse().unwrap(), now)
        .unwrap();
    net.run_until(Duration::from_secs(10), |n| {
        n.call_state(alice, a_call) == Some(CallState::Connected)
            || n.call_state(alice, a_call) == Some(CallState::Ended)
    });
    Call {
        net,
        alice,
        bob,
        a_call,
        b_call,
        refused: false,
    }
}

#[test]
fn a_call_through_the_proxy_carries_sdes_keyed_media_through_loss_and_jitter() {
    let mut c = call(Encryption::Mandatory, Encryption::Mandatory);
    assert!(!c.refused);
    let (alice, bob) = (c.alice, c.bob);
    assert_eq!(
        c.net.call_state(alice, c.a_call),
        Some(CallState::Connected)
    );
    assert_eq!(c.net.call_state(bob, c.b_call), Some(CallState::Connected));
    for id in [alice, bob] {
        let r = reports(&c.net, id);
        assert_eq!(r.len(), 1, "one report per call");
        assert_eq!(r[0].media_protection, "srtp-sdes");
        assert_eq!(r[0].signalling_transport, "tls");
        assert!(!r[0].end_to_end && r[0].danger.is_empty());
    }
    assert_eq!(reports(&c.net, alice)[0].auth, "digest-SHA-256");
    assert_eq!(reports(&c.net, bob)[0].auth, "registration-flow");

    // Ten seconds of tones each way across a lossy, jittery, reordering path.
    let (ma, mb) = (
        c.net.take_media(alice).expect("media ready"),
        c.net.take_media(bob).expect("media ready"),
    );
    let mut m =
        MediaLink::new(&c.net.clock, ma, mb, (A_TONE, B_TONE), media_path(), 42).expect("media");
    assert!(m.events(Side::A).contains(&MediaEvent::Secured));
    m.run(&mut c.net.clock, Duration::from_secs(10));
    for (side, tone) in [(Side::B, A_TONE), (Side::A, B_TONE)] {
        let s = m.stats(side);
        // 500 frames sent; about 5 % lost on the way; SRTP replay protection drops copies.
        assert!(
            (430..=495).contains(&s.packets_received),
            "{side:?}: {}",
            s.packets_received
        );
        assert!(
            s.packets_lost > 5,
            "{side:?}: loss is seen: {}",
            s.packets_lost
        );
        let heard = ToneReport::analyze(m.heard(side), 8000, tone, 800);
        assert!(
            heard.dominant_windows >= 8 && heard.median_fraction > 0.5,
            "{side:?} hears the other's tone through the loss: {heard:?}"
        );
        assert!(m.refused(side) < 20, "only replayed copies are refused");
    }

    // Alice hangs up: both ends end.
    let now = c.net.clock.now();
    c.net.ua(alice).hangup(c.a_call, now).unwrap();
    assert!(c.net.run_until(Duration::from_secs(10), |n| {
        n.call_state(bob, c.b_call) == Some(CallState::Ended)
            && n.call_state(alice, c.a_call) == Some(CallState::Ended)
    }));
    assert_eq!(
        reason(&c.net, bob, CallState::Ended).as_deref(),
        Some("remote hangup")
    );
}

#[test]
fn media_news_updates_the_report_and_a_downgrade_or_failure_hangs_up_loudly() {
    let mut c = call(Encryption::Mandatory, Encryption::Mandatory);
    assert!(!c.refused);
    let (alice, bob) = (c.alice, c.bob);
    let now = c.net.clock.now();
    // A key exchange that reports a SAS: the report is issued again, with it.
    let zrtp = MediaProtection::Zrtp {
        suite: Some("AES_CM_128_HMAC_SHA1_80".into()),
        sas: Some("cafe".into()),
        verified: false,
        details: None,
    };
    c.net
        .ua(alice)
        .handle_media_event(c.a_call, MediaEvent::Protection(zrtp.clone()), now);
    c.net.settle();
    let r = reports(&c.net, alice);
    assert_eq!(r.len(), 2);
    assert_eq!(
        (r[1].sas.as_deref(), r[1].verified),
        (Some("cafe"), Some(false))
    );
    // The same news again changes nothing.
    c.net
        .ua(alice)
        .handle_media_event(c.a_call, MediaEvent::Protection(zrtp), now);
    c.net.settle();
    assert_eq!(reports(&c.net, alice).len(), 2);
    // Encryption dropped mid-call: an alert, and the call ends with the reason.
    c.net.ua(alice).handle_media_event(
        c.a_call,
        MediaEvent::Protection(MediaProtection::None),
        now,
    );
    assert!(c.net.run_until(Duration::from_secs(10), |n| {
        n.call_state(bob, c.b_call) == Some(CallState::Ended)
            && n.call_state(alice, c.a_call) == Some(CallState::Ended)
    }));
    assert!(
        c.net
            .saw(alice, |e| matches!(e, UaEvent::SecurityAlert { .. }))
    );
    let why = reason(&c.net, alice, CallState::Ended).unwrap_or_default();
    assert!(why.contains("media encryption dropped mid-call"), "{why}");

    // A key exchange that fails ends the call the same way.
    let mut c = call(Encryption::Mandatory, Encryption::Mandatory);
    assert!(!c.refused);
    let now = c.net.clock.now();
    let failed = MediaEvent::Failed {
        reason: "ZRTP hello timed out".into(),
    };
    c.net.ua(c.bob).handle_media_event(c.b_call, failed, now);
    assert!(c.net.run_until(Duration::from_secs(10), |n| {
        n.call_state(c.alice, c.a_call) == Some(CallState::Ended)
            && n.call_state(c.bob, c.b_call) == Some(CallState::Ended)
    }));
    let why = reason(&c.net, c.bob, CallState::Ended).unwrap_or_default();
    assert!(why.contains("ZRTP hello timed out"), "{why}");
}

/// A re-INVITE that Alice's agent has no verb for: built from the dialog as Alice saw it
/// (Bob's 200), with a plain RTP offer.
fn plain_reinvite(net: &Network, alice: AgentId) -> Bytes {
    let ok = net
        .inbox(alice)
        .iter()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .find(|m| m.starts_with("SIP/2.0 200") && m.contains("INVITE"))
        .expect("Bob's 200 to the INVITE");
    let header = |name: &str| -> Vec<String> {
        ok.split("\r\n")
            .filter_map(|l| l.split_once(':'))
            .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_owned())
            .collect()
    };
    let contact = header("Contact")[0].clone();
    let target = contact
        .trim_start_matches('<')
        .split('>')
        .next()
        .unwrap()
        .to_owned();
    let routes: Vec<String> = header("Record-Route").into_iter().rev().collect();
    let sdp = "v=0\r\no=alice 1 2 IN IP4 127.0.0.10\r\ns=-\r\nc=IN IP4 127.0.0.10\r\nt=0 0\r\n\
               m=audio 7000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";
    let mut m = format!(
        "INVITE {target} SIP/2.0\r\n\
         Via: SIP/2.0/TLS 127.0.0.10:40000;branch=z9hG4bK-downgrade;rport\r\n\
         Max-Forwards: 70\r\n"
    );
    for r in routes {
        m.push_str(&format!("Route: {r}\r\n"));
    }
    m.push_str(&format!(
        "From: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: 9 INVITE\r\n\
         Contact: <sip:alice@127.0.0.10:40000;transport=tls>\r\n\
         Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        header("From")[0],
        header("To")[0],
        header("Call-ID")[0],
        sdp.len()
    ));
    Bytes::from(m)
}

#[test]
fn a_reinvite_that_drops_encryption_is_refused_with_488_and_an_alert() {
    let mut c = call(Encryption::Mandatory, Encryption::Mandatory);
    assert!(!c.refused);
    let reinvite = plain_reinvite(&c.net, c.alice);
    c.net.send_raw(c.alice, reinvite);
    let refused = |n: &Network| {
        n.inbox(c.alice).iter().any(|b| {
            b.starts_with(b"SIP/2.0 488") && String::from_utf8_lossy(b).contains("9 INVITE")
        })
    };
    assert!(c.net.run_until(Duration::from_secs(5), refused));
    let resp = c
        .net
        .inbox(c.alice)
        .iter()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .find(|m| m.starts_with("SIP/2.0 488"))
        .unwrap();
    assert!(resp.contains("Warning: 399"), "{resp}");
    assert!(resp.contains("drop media encryption"), "{resp}");
    let alert = c.net.events(c.bob).iter().find_map(|e| match e {
        UaEvent::SecurityAlert { reason, .. } => Some(reason.clone()),
        _ => None,
    });
    assert!(alert.unwrap_or_default().contains("srtp-sdes to none"));
    // The call goes on, still encrypted.
    assert_eq!(
        c.net.call_state(c.bob, c.b_call),
        Some(CallState::Connected)
    );
}

#[test]
fn mandatory_encryption_refuses_a_plain_caller_before_ringing() {
    let c = call(Encryption::None, Encryption::Mandatory);
    assert!(c.refused, "a plain offer reached a mandatory callee");
    let (net, alice, a_call) = (c.net, c.alice, c.a_call);
    assert_eq!(net.call_state(alice, a_call), Some(CallState::Ended));
    let why = reason(&net, alice, CallState::Ended).unwrap_or_default();
    assert!(why.starts_with("488"), "{why}");
    let r = reports(&net, alice);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].media_protection, "none");
    assert!(
        r[0].note
            .as_deref()
            .unwrap_or_default()
            .contains("not established")
    );
}
