//! ZRTP between `sotto agent` and a real Linphone client (Debian `linphone-cli`, bzrtp 5.1),
//! issue 11's "Real peers the tests must use":
//!
//! - through `sotto server` on the config `sotto init --domain example.test` writes, and
//!   directly over UDP, both directions, once for each key agreement linphonec can be forced
//!   to (X255, X448, DH3k):
//!   the call connects, both sides show the same SAS, each side's tone is in the other's
//!   recording, the agent reports `zrtp_sas` and `call_security` (zrtp, end to end);
//! - a second call between the same peers reuses the cache (`cache: match`); a SAS confirmed
//!   on both sides (the agent by `sotto agent sas confirm`, linphonec by its
//!   `zrtp-set-verified`) is verified on the next call on both sides;
//! - tshark: ZRTP then SRTP on the media ports, never plain RTP;
//! - a man in the middle (`common/zrtp_relay.rs`: it rewrites the SDP and terminates ZRTP with
//!   each side, posing to the agent with linphonec's ZID): the two SASes differ, and the agent,
//!   which verified linphonec's SAS on an earlier call, raises the cache-mismatch alert and
//!   reports the peer unsafe.
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
#[path = "common/sotto_server.rs"]
mod sotto_server;
#[path = "common/tone.rs"]
mod tone;
#[path = "common/zrtp_relay.rs"]
mod zrtp_relay;

use agent_linphone::*;

use std::collections::BTreeSet;

use agent::{AgentAccount, AgentProc};
use capture::Capture;
use linphone::{LINPHONE_TOOLS, Linphonec, SdesSetup, require_as_root};
use process::free_udp_port;
use serde_json::Value;
use tone::assert_tone;

/// The agent `alice` with ZRTP (as `sotto agent init --media-encryption zrtp` writes it).
fn zrtp_agent(bench: &Bench) -> AgentAccount {
    AgentAccount::init_with(
        &bench.base().join("alice"),
        &bench.uri("alice"),
        "alicepw",
        &format!("sips:{}", bench.proxy),
        &bench.ca,
        &["--media-encryption", "zrtp"],
    )
}

/// The agent's `zrtp_sas` and `call_security` of a ZRTP call with `ka`; returns the SAS,
/// the `zrtp_sas` event and the report.
fn check_zrtp_events(alice: &mut AgentProc, ka: &str) -> (String, Value, Value) {
    let sas = alice.wait_event("zrtp_sas", WAIT);
    eprintln!("agent zrtp_sas: {sas}");
    assert_eq!(sas["key_agreement"], ka, "{sas}");
    assert_eq!(sas["hash"], "S256", "{sas}");
    assert_eq!(sas["sas_type"], "B32", "{sas}");
    let security = alice.wait_for("call_security with zrtp", WAIT, |v| {
        v["event"] == "call_security" && v["media_protection"] == "zrtp" && v["sas"].is_string()
    });
    assert_eq!(security["end_to_end"], true, "{security}");
    assert_eq!(security["sas"], sas["sas"], "{security}");
    assert_eq!(
        security["key_exchange"],
        format!(
            "{ka}/{}/S256/{}/B32",
            sas["cipher"].as_str().unwrap_or_default(),
            sas["auth_tag"].as_str().unwrap_or_default()
        ),
        "{security}"
    );
    (
        sas["sas"].as_str().unwrap_or_default().to_owned(),
        sas,
        security,
    )
}

/// How one call is set up.
struct Scenario<'a> {
    /// The key agreement linphonec is forced to.
    ka: &'a str,
    /// Who calls, over what, which call of the test.
    shape: CallShape,
    /// Both users confirm the SAS (linphonec's `zrtp-set-verified` during the call; the
    /// agent's `sotto agent sas confirm` after it).
    confirm: bool,
    /// Capture the media ports and check ZRTP then SRTP, never plain RTP.
    capture: bool,
}

/// One call between the agent and linphonec as `sc` says. Returns the agent's `zrtp_sas`
/// event and the `call_security` report.
fn zrtp_call(bench: &Bench, account: &AgentAccount, sc: &Scenario<'_>) -> (Value, Value) {
    let shape = sc.shape;
    let ports = CallPorts::free();
    let mut bob = Linphonec::start_zrtp(bench.base(), &bench.phone_setup(shape, ports), sc.ka);
    let stem = format!("zrtp{}", sc.shape.n);
    let mut call = connect_call(
        bench,
        account,
        &mut bob,
        shape,
        ports,
        sc.capture.then_some(&*stem),
    );
    let alice = &mut call.alice;
    let (sas, event, security) = check_zrtp_events(alice, sc.ka);
    assert_eq!(security["direct"], sc.shape.direct, "{security}");
    assert_eq!(
        security["signalling_transport"],
        if sc.shape.direct { "udp" } else { "tls" },
        "{security}"
    );
    assert_eq!(
        security["danger"],
        serde_json::json!([]),
        "no danger switch: {security}"
    );
    let phone_sas = bob.wait_sas(1, WAIT);
    assert_eq!(phone_sas, sas, "linphonec and the agent show the same SAS");
    if sc.confirm {
        bob.cmd("zrtp-set-verified");
    }
    let (log, agent_udp) = call.hang_up(&mut bob, shape);
    assert!(
        log.contains("Negotiated media encryption is LinphoneMediaEncryptionZRTP"),
        "linphonec did not negotiate ZRTP (see {})",
        bob.path("liblinphone.log").display()
    );
    let previously = if event["verified"] == true {
        "yes"
    } else {
        "no"
    };
    assert!(
        log.contains(&format!("SAS is {sas} previously verified {previously}")),
        "linphonec's log does not say `SAS is {sas} previously verified {previously}` (see {})",
        bob.path("liblinphone.log").display()
    );
    if sc.confirm {
        let out = process::sotto()
            .args(["--json", "agent", "-c"])
            .arg(&account.config)
            .args([
                "sas",
                "confirm",
                "--peer",
                event["peer_zid"].as_str().unwrap_or_default(),
            ])
            .output()
            .expect("run sotto agent sas confirm");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).expect("one JSON line");
        assert_eq!(v["event"], "sas_verified", "{v}");
        assert_eq!(v["verified"], true, "{v}");
    }
    if let Some(c) = call.capture.as_mut() {
        c.stop();
        check_zrtp_capture(c, ports.phone_rtp, &agent_udp);
    }
    assert_tone("linphonec's recording", &call.bob_heard, AGENT_TONE);
    assert_tone("the agent's recording", &call.alice_heard, PHONE_TONE);
    (event, security)
}

/// The media ports carry ZRTP (both ways) and then SRTP (both ways, every payload distinct,
/// G.711 frames plus an 80-bit tag), and no RTP before the first ZRTP packet.
fn check_zrtp_capture(capture: &Capture, rtp_phone: u16, agent_udp: &[u16]) {
    let rows = capture.fields(&[], "udp", &["udp.srcport", "udp.dstport", "udp.payload"]);
    let (mut zrtp, mut srtp) = ([0usize; 2], [0usize; 2]);
    let mut payloads = BTreeSet::new();
    let mut first_media: Option<usize> = None;
    let mut last_hello_before_media = true;
    for (i, row) in rows.iter().enumerate() {
        let dst = row.get(1).and_then(|p| p.parse::<u16>().ok()).unwrap_or(0);
        let hex = row.get(2).cloned().unwrap_or_default();
        let toward = usize::from(dst == rtp_phone || dst == rtp_phone + 1);
        if hex.len() >= 16 && hex.starts_with("10") && hex[8..16].eq_ignore_ascii_case("5a525450") {
            zrtp[toward] += 1;
            if first_media.is_some() && hex.get(32..48) == Some("48656c6c6f202020") {
                last_hello_before_media = false;
            }
            continue;
        }
        let b0 = u8::from_str_radix(hex.get(0..2).unwrap_or("00"), 16).unwrap_or(0);
        let pt = u8::from_str_radix(hex.get(2..4).unwrap_or("00"), 16).unwrap_or(0) & 0x7f;
        if b0 >> 6 != 2 || (72..=76).contains(&pt) {
            continue; // not RTP, or RTCP
        }
        first_media.get_or_insert(i);
        assert!(
            zrtp[0] + zrtp[1] > 0,
            "RTP before any ZRTP packet (row {i})"
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
    eprintln!("capture: ZRTP {zrtp:?} (from, toward linphonec), SRTP {srtp:?}");
    assert!(zrtp[0] >= 4 && zrtp[1] >= 4, "ZRTP both ways: {zrtp:?}");
    assert!(srtp[0] >= 50 && srtp[1] >= 50, "SRTP both ways: {srtp:?}");
    assert!(last_hello_before_media, "a Hello after media started");
    assert!(!agent_udp.is_empty(), "the agent held no UDP socket");
}

/// Each direction and key agreement through the server on the default config.
fn through_server(name: &str, ka: &str, agent_calls: bool) {
    require_as_root(&LINPHONE_TOOLS, INSTALL_ALL);
    let bench = Bench::start_with(name, true);
    let account = zrtp_agent(&bench);
    let sc = Scenario {
        ka,
        shape: CallShape {
            agent_calls,
            direct: false,
            n: 1,
        },
        confirm: false,
        capture: ka == "X255",
    };
    let (ev, _) = zrtp_call(&bench, &account, &sc);
    assert_eq!(ev["cache"], "new", "{ev}");
    assert_eq!(ev["verified"], false, "{ev}");
    bench.server.stop();
}

#[test]
fn linphonec_calls_agent_with_zrtp_x255() {
    through_server("zrtp-l2a-x255", "X255", false);
}

#[test]
fn linphonec_calls_agent_with_zrtp_x448() {
    through_server("zrtp-l2a-x448", "X448", false);
}

#[test]
fn linphonec_calls_agent_with_zrtp_dh3k() {
    through_server("zrtp-l2a-dh3k", "DH3k", false);
}

#[test]
fn agent_calls_linphonec_with_zrtp_x255() {
    through_server("zrtp-a2l-x255", "X255", true);
}

#[test]
fn agent_calls_linphonec_with_zrtp_x448() {
    through_server("zrtp-a2l-x448", "X448", true);
}

#[test]
fn agent_calls_linphonec_with_zrtp_dh3k() {
    through_server("zrtp-a2l-dh3k", "DH3k", true);
}

/// Direct calls over UDP, both ways, with `ka`: ZRTP needs no TLS and no danger switch to be
/// end to end; the report says direct, udp, zrtp, end to end.
fn direct_both_ways(name: &str, ka: &str) {
    require_as_root(&LINPHONE_TOOLS, INSTALL_ALL);
    let bench = Bench::start(name);
    let account = zrtp_agent(&bench);
    for (n, agent_calls) in [(1, true), (2, false)] {
        let sc = Scenario {
            ka,
            shape: CallShape {
                agent_calls,
                direct: true,
                n,
            },
            confirm: false,
            capture: false,
        };
        let (_, security) = zrtp_call(&bench, &account, &sc);
        assert_eq!(security["end_to_end"], true, "{security}");
    }
    bench.server.stop();
}

#[test]
fn direct_zrtp_calls_over_udp_both_ways_x255() {
    direct_both_ways("zrtp-direct-x255", "X255");
}

#[test]
fn direct_zrtp_calls_over_udp_both_ways_x448() {
    direct_both_ways("zrtp-direct-x448", "X448");
}

#[test]
fn direct_zrtp_calls_over_udp_both_ways_dh3k() {
    direct_both_ways("zrtp-direct-dh3k", "DH3k");
}

/// The second call reuses the cache; a SAS confirmed on both sides after the first call is
/// verified on both sides on the next.
#[test]
fn the_cache_carries_key_continuity_and_verification_to_the_next_call() {
    require_as_root(&LINPHONE_TOOLS, INSTALL_ALL);
    let bench = Bench::start_with("zrtp-cache", true);
    let account = zrtp_agent(&bench);
    let mut sc = Scenario {
        ka: "X255",
        shape: CallShape {
            agent_calls: true,
            direct: false,
            n: 1,
        },
        confirm: true,
        capture: false,
    };
    let (first, _) = zrtp_call(&bench, &account, &sc);
    assert_eq!(
        (first["cache"].as_str(), first["verified"].as_bool()),
        (Some("new"), Some(false))
    );
    sc.shape.n = 2;
    sc.confirm = false;
    sc.shape.agent_calls = false;
    let (second, security) = zrtp_call(&bench, &account, &sc);
    assert_eq!(second["cache"], "match", "{second}");
    assert_eq!(second["verified"], true, "{second}");
    assert_eq!(second["peer_zid"], first["peer_zid"], "{second}");
    assert_ne!(second["sas"], first["sas"], "new keys on every call");
    assert_eq!(security["peer_trust"], "verified", "{security}");
    bench.server.stop();
}

/// A man in the middle on a direct UDP call after a verified one.
#[test]
fn a_man_in_the_middle_shows_different_sases_and_a_cache_mismatch() {
    require_as_root(&LINPHONE_TOOLS, INSTALL_ALL);
    let bench = Bench::start("zrtp-mitm");
    let account = zrtp_agent(&bench);
    // 1. An honest direct call, its SAS confirmed on both sides.
    let honest = Scenario {
        ka: "X255",
        shape: CallShape {
            agent_calls: true,
            direct: true,
            n: 1,
        },
        confirm: true,
        capture: false,
    };
    let (first, _) = zrtp_call(&bench, &account, &honest);
    let bob_zid: Vec<u8> = (0..12)
        .map(|i| {
            let h = first["peer_zid"].as_str().unwrap_or_default();
            u8::from_str_radix(h.get(2 * i..2 * i + 2).unwrap_or("00"), 16).unwrap_or(0)
        })
        .collect();
    let bob_zid: [u8; 12] = bob_zid.try_into().expect("12 octets");

    // 2. The same call through the relay, which poses to the agent as linphonec (its ZID).
    let (phone_sip, rtp_b) = (free_udp_port(), linphone::free_rtp_port());
    let mut bob = Linphonec::start_zrtp(
        bench.base(),
        &SdesSetup {
            user: "bob",
            domain: "127.0.0.1",
            registrar: None,
            udp_port: Some(phone_sip),
            rtp_port: rtp_b,
            auto_answer: true,
        },
        "X255",
    );
    let relay = zrtp_relay::ZrtpRelay::start(phone_sip, bob_zid, [0x5a; 12]);
    let target = format!("sip:bob@127.0.0.1:{}", relay.sip);
    let tone = AGENT_TONE.to_string();
    let mut alice = account.spawn(
        "alice-mitm",
        &["call", &target, "--tone", &tone, "--duration", "4s"],
    );
    alice.wait_event("registered", WAIT);
    alice.wait_for("call_state connected", WAIT, |v| {
        v["event"] == "call_state" && v["state"] == "connected"
    });
    let sas = alice.wait_event("zrtp_sas", WAIT);
    eprintln!("agent zrtp_sas through the relay: {sas}");
    let alert = alice.wait_event("security_alert", WAIT);
    eprintln!("agent security_alert: {alert}");
    let security = alice.wait_for("call_security with zrtp", WAIT, |v| {
        v["event"] == "call_security" && v["media_protection"] == "zrtp" && v["sas"].is_string()
    });
    let phone_sas = bob.wait_sas(1, WAIT);
    let sases = relay.sases.lock().map(|s| s.clone()).unwrap_or_default();
    eprintln!(
        "SAS: agent {}, linphonec {phone_sas}, relay {sases:?}",
        sas["sas"]
    );
    assert_ne!(sas["sas"], phone_sas.as_str(), "the two SASes must differ");
    assert_eq!(
        sases.0.as_deref(),
        sas["sas"].as_str(),
        "the agent's SAS is the relay's"
    );
    assert_eq!(
        sases.1.as_deref(),
        Some(phone_sas.as_str()),
        "linphonec's SAS is the relay's"
    );
    assert_eq!(
        sas["peer_zid"], first["peer_zid"],
        "the relay posed as linphonec: {sas}"
    );
    assert_eq!(sas["cache"], "mismatch", "{sas}");
    assert_eq!(sas["verified"], false, "{sas}");
    assert!(
        alert["reason"]
            .as_str()
            .is_some_and(|r| r.contains("cache mismatch")),
        "{alert}"
    );
    assert_eq!(security["peer_trust"], "unsafe", "{security}");
    assert_eq!(security["cache"], "mismatch", "{security}");
    alice.wait_for("call_state ended", WAIT, |v| {
        v["event"] == "call_state" && v["state"] == "ended"
    });
    alice.stop(WAIT);
    bob.stop();
    drop(relay);
    bench.server.stop();
}
