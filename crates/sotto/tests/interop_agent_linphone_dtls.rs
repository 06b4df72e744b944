//! DTLS-SRTP between `sotto agent` and a real Linphone client (Debian `linphone-cli` 5.1,
//! `media_encryption=dtls`), issue 12's "Real peers the tests must use":
//!
//! - through `sotto server` on the config `sotto init --domain example.test` writes, both
//!   directions, and directly over UDP, both directions: the call connects, each side's tone
//!   is in the other's recording, the agent reports `call_security` (dtls-srtp, the profile,
//!   the fingerprint checked, two handshakes since linphonec does not multiplex RTCP), and
//!   linphonec logs DTLS as negotiated with the agent's certificate fingerprint;
//! - tshark: DTLS handshakes on the RTP and the RTCP ports, then SRTP only, never plain RTP;
//! - a relay on the signalling path (`common/sdp_tamper_relay.rs`) puts another fingerprint
//!   in linphonec's answer: the agent meets linphonec's real certificate on the media path,
//!   refuses it, and ends the call with the reason; no media leaves it.
//!
//! Needs root (one uid per linphonec; tshark on `lo`).

#[path = "common/agent.rs"]
mod agent;
#[path = "common/agent_linphone.rs"]
mod agent_linphone;
#[path = "common/capture.rs"]
mod capture;
#[path = "common/linphone.rs"]
mod linphone;
#[path = "common/pki.rs"]
mod pki;
#[path = "common/process.rs"]
mod process;
#[path = "common/sdp_tamper_relay.rs"]
mod sdp_tamper_relay;
#[path = "common/sotto_server.rs"]
mod sotto_server;
#[path = "common/tone.rs"]
mod tone;

use agent_linphone::*;

use std::collections::BTreeSet;

use agent::AgentAccount;
use capture::Capture;
use linphone::{LINPHONE_TOOLS, Linphonec, SdesSetup, require_as_root};
use process::free_udp_port;
use serde_json::Value;
use sotto_crypto::hash::HashAlgorithm;
use sotto_media::dtls::Fingerprint;
use tone::assert_tone;

/// The agent `alice` with DTLS-SRTP (as `sotto agent init --media-encryption dtls` writes it).
fn dtls_agent(bench: &Bench) -> AgentAccount {
    AgentAccount::init_with(
        &bench.base().join("alice"),
        &bench.uri("alice"),
        "alicepw",
        &format!("sips:{}", bench.proxy),
        &bench.ca,
        &["--media-encryption", "dtls"],
    )
}

/// The fingerprint of the agent's certificate (made in its data directory on first use).
fn agent_fingerprint(account: &AgentAccount) -> String {
    let der = std::fs::read(account.dir.join("data").join("dtls-certificate.der"))
        .expect("the agent keeps its DTLS certificate in its data directory");
    Fingerprint::of(sotto_crypto_rust::provider(), HashAlgorithm::Sha256, &der)
        .expect("sha-256")
        .to_string()
}

/// How one call is set up.
struct Scenario {
    /// Who calls, over what, which call of the test.
    shape: CallShape,
    /// Capture the media ports and check DTLS then SRTP, never plain RTP.
    capture: bool,
}

/// One call between the agent and linphonec as `sc` says; returns the `call_security` report.
fn dtls_call(bench: &Bench, account: &AgentAccount, sc: &Scenario) -> Value {
    let shape = sc.shape;
    let ports = CallPorts::free();
    let mut bob = Linphonec::start_dtls(bench.base(), &bench.phone_setup(shape, ports));
    let stem = format!("dtls{}", sc.shape.n);
    let mut call = connect_call(
        bench,
        account,
        &mut bob,
        shape,
        ports,
        sc.capture.then_some(&*stem),
    );
    let alice = &mut call.alice;
    let security = alice.wait_for("call_security with dtls-srtp keys", WAIT, |v| {
        v["event"] == "call_security"
            && v["media_protection"] == "dtls-srtp"
            && v["suite"].is_string()
    });
    eprintln!("agent call_security: {security}");
    assert_eq!(
        security["verified"], true,
        "fingerprint checked: {security}"
    );
    assert_eq!(security["end_to_end"], true, "{security}");
    assert_eq!(security["suite"], "AES_CM_128_HMAC_SHA1_80", "{security}");
    let kx = security["key_exchange"].as_str().unwrap_or_default();
    assert!(
        kx.starts_with("DTLS1.2/") && kx.ends_with("(2 handshakes)"),
        "linphonec does not multiplex RTCP: a handshake per port: {security}"
    );
    assert!(
        kx.contains(if sc.shape.agent_calls {
            "/server"
        } else {
            "/client"
        }),
        "the answerer is active (the client): {security}"
    );
    assert!(
        security["note"]
            .as_str()
            .is_some_and(|n| n.contains("every proxy on the path could change")),
        "{security}"
    );
    assert_eq!(security["direct"], sc.shape.direct, "{security}");
    assert_eq!(security["danger"], serde_json::json!([]), "{security}");
    let (log, agent_udp) = call.hang_up(&mut bob, shape);
    let log_path = bob.path("liblinphone.log");
    assert!(
        log.contains("Negotiated media encryption is LinphoneMediaEncryptionDTLS"),
        "linphonec did not negotiate DTLS (see {})",
        log_path.display()
    );
    let ours = format!(
        "dtls-srtp peer fingerprint is {}",
        agent_fingerprint(account)
    )
    .to_ascii_lowercase();
    assert!(
        log.to_ascii_lowercase().contains(&ours),
        "linphonec's log does not say `{ours}` (see {})",
        log_path.display()
    );
    if let Some(c) = call.capture.as_mut() {
        c.stop();
        check_dtls_capture(c, ports.phone_rtp, &agent_udp);
    }
    assert_tone("linphonec's recording", &call.bob_heard, AGENT_TONE);
    assert_tone("the agent's recording", &call.alice_heard, PHONE_TONE);
    security
}

/// A DTLS record's first octet (content type 20–23) and version (DTLS 1.0 or 1.2).
fn is_dtls(hex: &str) -> bool {
    let b0 = u8::from_str_radix(hex.get(0..2).unwrap_or("00"), 16).unwrap_or(0);
    (20..=23).contains(&b0) && matches!(hex.get(2..6), Some("fefd" | "feff"))
}

/// The media ports carry DTLS on both the RTP and the RTCP port (both ways), then SRTP
/// (both ways, every payload distinct, G.711 frames plus an 80-bit tag), and no RTP before
/// the first DTLS record.
fn check_dtls_capture(capture: &Capture, rtp_phone: u16, agent_udp: &[u16]) {
    let rows = capture.fields(
        &[],
        "udp",
        &[
            "frame.time_relative",
            "udp.srcport",
            "udp.dstport",
            "udp.payload",
        ],
    );
    // [RTP port, RTCP port] × [from linphonec, toward linphonec].
    let mut dtls = [[0usize; 2]; 2];
    // First and last DTLS datagram on the RTP port, seconds into the capture.
    let mut span: Option<(f64, f64)> = None;
    let mut srtp = [0usize; 2];
    let mut payloads = BTreeSet::new();
    for (i, row) in rows.iter().enumerate() {
        let t = row
            .first()
            .and_then(|p| p.parse::<f64>().ok())
            .unwrap_or(0.0);
        let src = row.get(1).and_then(|p| p.parse::<u16>().ok()).unwrap_or(0);
        let dst = row.get(2).and_then(|p| p.parse::<u16>().ok()).unwrap_or(0);
        let hex = row.get(3).cloned().unwrap_or_default().to_ascii_lowercase();
        let toward = usize::from(dst == rtp_phone || dst == rtp_phone + 1);
        let port = usize::from(src == rtp_phone + 1 || dst == rtp_phone + 1);
        if is_dtls(&hex) {
            dtls[port][toward] += 1;
            if port == 0 {
                span = Some(span.map_or((t, t), |(a, _)| (a, t)));
            }
            continue;
        }
        let b0 = u8::from_str_radix(hex.get(0..2).unwrap_or("00"), 16).unwrap_or(0);
        let pt = u8::from_str_radix(hex.get(2..4).unwrap_or("00"), 16).unwrap_or(0) & 0x7f;
        if b0 >> 6 != 2 || (72..=76).contains(&pt) {
            continue; // not RTP, or RTCP
        }
        assert!(
            dtls[0][0] > 0 && dtls[0][1] > 0,
            "RTP before the DTLS handshake (row {i})"
        );
        srtp[toward] += 1;
        let len = hex.len() / 2 - 12;
        assert!(
            len > 10 && (len - 10).is_multiple_of(80),
            "media payload of {len} bytes is not G.711 frames plus a 10-byte SRTP tag"
        );
        assert!(
            payloads.insert(hex[24..].to_owned()),
            "a repeated RTP payload: cleartext"
        );
    }
    eprintln!(
        "capture: DTLS RTP port {:?}, RTCP port {:?} (from, toward linphonec); SRTP {srtp:?}",
        dtls[0], dtls[1]
    );
    if let Some((first, last)) = span {
        // The handshake's time on loopback, first to last datagram (a figure, not a bound).
        println!(
            "{}",
            serde_json::json!({"figure": "dtls_handshake_loopback_ms",
                "value": ((last - first) * 1e3 * 100.0).round() / 100.0})
        );
    }
    for (port, name) in [(0, "RTP"), (1, "RTCP")] {
        assert!(
            dtls[port][0] >= 2 && dtls[port][1] >= 2,
            "a DTLS handshake both ways on the {name} port: {:?}",
            dtls[port]
        );
    }
    assert!(srtp[0] >= 50 && srtp[1] >= 50, "SRTP both ways: {srtp:?}");
    assert!(!agent_udp.is_empty(), "the agent held no UDP socket");
}

#[test]
fn linphonec_calls_agent_with_dtls_srtp_through_the_server() {
    require_as_root(&LINPHONE_TOOLS, INSTALL_ALL);
    let bench = Bench::start_with("dtls-l2a", true);
    let account = dtls_agent(&bench);
    let sc = Scenario {
        shape: CallShape {
            agent_calls: false,
            direct: false,
            n: 1,
        },
        capture: true,
    };
    let security = dtls_call(&bench, &account, &sc);
    assert_eq!(security["signalling_transport"], "tls", "{security}");
    bench.server.stop();
}

#[test]
fn agent_calls_linphonec_with_dtls_srtp_through_the_server() {
    require_as_root(&LINPHONE_TOOLS, INSTALL_ALL);
    let bench = Bench::start_with("dtls-a2l", true);
    let account = dtls_agent(&bench);
    let sc = Scenario {
        shape: CallShape {
            agent_calls: true,
            direct: false,
            n: 1,
        },
        capture: true,
    };
    dtls_call(&bench, &account, &sc);
    // The same certificate on the next call: the fingerprint a peer sees stays.
    let before = agent_fingerprint(&account);
    let sc = Scenario {
        shape: CallShape {
            agent_calls: true,
            direct: false,
            n: 2,
        },
        capture: false,
    };
    dtls_call(&bench, &account, &sc);
    assert_eq!(agent_fingerprint(&account), before);
    bench.server.stop();
}

/// Direct calls over UDP, both ways: DTLS-SRTP needs no TLS hop and no danger switch.
#[test]
fn direct_dtls_srtp_calls_over_udp_both_ways() {
    require_as_root(&LINPHONE_TOOLS, INSTALL_ALL);
    let bench = Bench::start("dtls-direct");
    let account = dtls_agent(&bench);
    for (n, agent_calls) in [(1, true), (2, false)] {
        let sc = Scenario {
            shape: CallShape {
                agent_calls,
                direct: true,
                n,
            },
            capture: false,
        };
        let security = dtls_call(&bench, &account, &sc);
        assert_eq!(security["signalling_transport"], "udp", "{security}");
    }
    bench.server.stop();
}

/// A relay swaps linphonec's fingerprint in its answer for another: the agent's handshake
/// meets linphonec's real certificate, the agent refuses it and ends the call.
#[test]
fn a_tampered_fingerprint_fails_the_call_on_our_side() {
    require_as_root(&LINPHONE_TOOLS, INSTALL_ALL);
    let bench = Bench::start("dtls-tamper");
    let account = dtls_agent(&bench);
    let (phone_sip, rtp_b) = (free_udp_port(), linphone::free_rtp_port());
    let mut bob = Linphonec::start_dtls(
        bench.base(),
        &SdesSetup {
            user: "bob",
            domain: "127.0.0.1",
            registrar: None,
            udp_port: Some(phone_sip),
            rtp_port: rtp_b,
            auto_answer: true,
        },
    );
    let p = sotto_crypto_rust::provider();
    let mallory = p.dtls.generate_certificate("mallory").expect("certificate");
    let fake = Fingerprint::of(p, HashAlgorithm::Sha256, &mallory.certificate_der)
        .expect("sha-256")
        .to_string();
    let relay = sdp_tamper_relay::SdpTamperRelay::start(phone_sip, fake.clone());
    let mut capture = Capture::start(
        &bench.base().join("tamper.pcap"),
        &format!("udp port {rtp_b} or udp port {}", rtp_b + 1),
    );
    let target = format!("sip:bob@127.0.0.1:{}", relay.sip);
    let tone = AGENT_TONE.to_string();
    let mut alice = account.spawn(
        "alice-tamper",
        &["call", &target, "--tone", &tone, "--duration", "6s"],
    );
    alice.wait_event("registered", WAIT);
    let ended = alice.wait_for("call_state ended", WAIT, |v| {
        v["event"] == "call_state" && v["state"] == "ended"
    });
    eprintln!("agent: {ended}");
    let reason = ended["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("does not match the fingerprint"),
        "the call ends with the reason: {ended}"
    );
    let alert = alice
        .events_named("security_alert")
        .into_iter()
        .next()
        .expect("a security_alert event");
    assert!(
        alert["reason"]
            .as_str()
            .is_some_and(|r| r.contains("does not match the fingerprint")),
        "{alert}"
    );
    assert!(
        !alice.seen.iter().any(|v| v["event"] == "call_security"
            && v["media_protection"] == "dtls-srtp"
            && v["verified"] == true),
        "never reported as verified"
    );
    alice.stop(WAIT);
    bob.stop();
    drop(relay);
    capture.stop();
    let rows = capture.fields(&[], "udp", &["udp.dstport", "udp.payload"]);
    let rtp_to_phone = rows
        .iter()
        .filter(|r| r.first().and_then(|p| p.parse::<u16>().ok()) == Some(rtp_b))
        .filter(|r| {
            let hex = r.get(1).cloned().unwrap_or_default();
            let b0 = u8::from_str_radix(hex.get(0..2).unwrap_or("00"), 16).unwrap_or(0);
            !is_dtls(&hex) && b0 >> 6 == 2
        })
        .count();
    assert_eq!(rtp_to_phone, 0, "no media left the agent");
    bench.server.stop();
}
