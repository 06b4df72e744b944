//! Interop of the user agent (`sotto agent`) with a real Linphone client (Debian
//! `linphone-cli`, headless, file audio), Wireshark's `tshark` and SIPVicious' `svmap`
//! (issue 5, "Real peers the tests must use").
//!
//! - Through `sotto server` over TLS with digest, both directions (agent calls linphonec;
//!   linphonec calls the agent): SRTP keyed by SDES, mandatory on both ends. The tone each side
//!   plays (agent 1000 Hz generated, linphonec a 440 Hz WAV) is found in the other side's
//!   recording (Goertzel). The agent reports `call_security` (TLS, digest or registration
//!   flow, `srtp-sdes`, not end to end). A `tshark` capture on `lo` shows: TLS records only on
//!   the server's port (no `SIP/2.0`, no `a=crypto`, no `RTP/SAVP` anywhere in cleartext);
//!   RTP both ways whose payloads carry the SRTP authentication tag and never repeat (a
//!   cleartext G.711 tone repeats its payload every one to five packets); no UDP socket of the
//!   agent outside the captured media.
//!
//! The direct calls (no proxy) are in `interop_agent_linphone_direct.rs`.
//!
//! Needs root (one uid per linphonec via `setpriv`; tshark on `lo`); fails with the apt-get
//! line when a peer is missing. Every child is killed on every path (drop guards); every wait
//! is bounded; loopback only; ports, uids and directories are unique per test.

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

use agent_linphone::*;

use std::time::Duration;

use capture::Capture;
use linphone::{LINPHONE_TOOLS, require_as_root};
use process::udp_ports_of;
use tone::assert_tone;

#[test]
fn agent_calls_linphonec_through_sotto_server_with_sdes() {
    require_as_root(&LINPHONE_TOOLS, INSTALL_ALL);
    agent_calls_linphonec(Bench::start("a2l"));
}

#[test]
fn agent_calls_linphonec_on_the_config_sotto_init_writes() {
    require_as_root(&LINPHONE_TOOLS, INSTALL_ALL);
    agent_calls_linphonec(Bench::start_with("a2l-default", true));
}

/// The agent calls linphonec through the bench's server; SDES, tones both ways, the wire.
fn agent_calls_linphonec(mut bench: Bench) {
    let srv = bench.proxy.port();
    let rtp_b = linphone::free_rtp_port();
    let mut capture = Capture::start(
        &bench.base().join("lo.pcap"),
        &format!(
            "tcp port {srv} or udp port {rtp_b} or udp port {}",
            rtp_b + 1
        ),
    );
    let (mut bob, bob_heard) = bench.phone(rtp_b, true);
    bob.wait_registered(WAIT);

    let account = bench.agent_account();
    let alice_heard = account.dir.join("heard.wav");
    let duration = format!("{TALK_SECS}s");
    let tone = AGENT_TONE.to_string();
    let bob_uri = bench.uri("bob");
    let alice_uri = bench.uri("alice");
    let mut alice = account.spawn(
        "alice",
        &[
            "call",
            &bob_uri,
            "--tone",
            &tone,
            "--record",
            alice_heard.to_str().expect("utf-8 path"),
            "--duration",
            &duration,
            "--stats-interval",
            "1",
        ],
    );
    let reg = alice.wait_event("registered", WAIT);
    assert_eq!(reg["auth"], "digest-SHA-256", "{reg}");
    alice.wait_for("call_state connected", WAIT, |v| {
        v["event"] == "call_state" && v["state"] == "connected"
    });
    let security = alice.wait_event("call_security", WAIT);
    eprintln!("agent call_security: {security}");
    let suite = check_security(&security, "digest-SHA-256");
    bob.wait_line(&[&format!("Call 1 with {alice_uri} connected")], 1, WAIT);
    let agent_udp = udp_ports_of(alice.pid().expect("agent running"));

    // The agent hangs up after --duration, reports, unregisters and exits 0.
    alice.wait_for("call_state ended", WAIT, |v| {
        v["event"] == "call_state" && v["state"] == "ended"
    });
    check_agent_media(&mut alice);
    match alice.wait_exit(WAIT) {
        Some(s) => assert!(s.success(), "agent exit status {s}: {:?}", alice.seen),
        None => panic!("agent did not exit after its call: {:?}", alice.seen),
    }
    assert!(
        !alice.events_named("unregistered").is_empty(),
        "no unregistered event: {:?}",
        alice.seen
    );
    bob.wait_line(&[&format!("Call 1 with {alice_uri} ended")], 1, WAIT);
    assert!(
        bob.log()
            .contains("Negotiated media encryption is LinphoneMediaEncryptionSRTP"),
        "linphonec did not negotiate SRTP (see {})",
        bob.path("liblinphone.log").display()
    );
    capture.stop();
    bob.stop();
    bench.server.wait_for(1, "INVITE forwarded over TLS", |v| {
        sotto_server::is_request(v, "INVITE", "forwarded") && v["transport"] == "tls"
    });

    assert_tone("linphonec's recording", &bob_heard, AGENT_TONE);
    assert_tone("the agent's recording", &alice_heard, PHONE_TONE);
    check_capture(&capture, (srv, 2), rtp_b, &agent_udp, &suite);
    drop(bob);
    bench.server.stop();
}

#[test]
fn linphonec_calls_agent_through_sotto_server_with_sdes() {
    require_as_root(&LINPHONE_TOOLS, INSTALL_ALL);
    linphonec_calls_agent(Bench::start("l2a"));
}

#[test]
fn linphonec_calls_agent_on_the_config_sotto_init_writes() {
    require_as_root(&LINPHONE_TOOLS, INSTALL_ALL);
    linphonec_calls_agent(Bench::start_with("l2a-default", true));
}

/// linphonec calls the agent through the bench's server; SDES, tones both ways, the wire.
fn linphonec_calls_agent(bench: Bench) {
    let (alice_uri, bob_uri) = (bench.uri("alice"), bench.uri("bob"));
    let srv = bench.proxy.port();
    let rtp_b = linphone::free_rtp_port();
    let mut capture = Capture::start(
        &bench.base().join("lo.pcap"),
        &format!(
            "tcp port {srv} or udp port {rtp_b} or udp port {}",
            rtp_b + 1
        ),
    );
    let account = bench.agent_account();
    let alice_heard = account.dir.join("heard.wav");
    let tone = AGENT_TONE.to_string();
    let mut alice = account.spawn(
        "alice",
        &[
            "listen",
            "--auto-answer",
            "--tone",
            &tone,
            "--record",
            alice_heard.to_str().expect("utf-8 path"),
            "--stats-interval",
            "1",
        ],
    );
    alice.wait_event("registered", WAIT);
    let (mut bob, bob_heard) = bench.phone(rtp_b, false);
    bob.wait_registered(WAIT);

    bob.cmd(&format!("call {alice_uri}"));
    let incoming = alice.wait_event("incoming_call", WAIT);
    assert!(
        incoming["from"]
            .as_str()
            .is_some_and(|f| f.contains(&bob_uri)),
        "{incoming}"
    );
    alice.wait_for("call_state connected", WAIT, |v| {
        v["event"] == "call_state" && v["state"] == "connected"
    });
    let security = alice.wait_event("call_security", WAIT);
    eprintln!("agent call_security: {security}");
    let suite = check_security(&security, "registration-flow");
    bob.wait_line(&[&format!("Call 1 with {alice_uri} connected")], 1, WAIT);
    let agent_udp = udp_ports_of(alice.pid().expect("agent running"));

    std::thread::sleep(Duration::from_secs(TALK_SECS));
    bob.cmd("terminate");
    alice.wait_for("call_state ended", WAIT, |v| {
        v["event"] == "call_state" && v["state"] == "ended"
    });
    bob.wait_line(&[&format!("Call 1 with {alice_uri} ended")], 1, WAIT);
    check_agent_media(&mut alice);
    alice.stop(WAIT);
    assert!(
        !alice.events_named("unregistered").is_empty(),
        "no unregistered event after SIGINT: {:?}",
        alice.seen
    );
    assert!(
        bob.log()
            .contains("Negotiated media encryption is LinphoneMediaEncryptionSRTP"),
        "linphonec did not negotiate SRTP (see {})",
        bob.path("liblinphone.log").display()
    );
    capture.stop();
    bob.stop();

    assert_tone("linphonec's recording", &bob_heard, AGENT_TONE);
    assert_tone("the agent's recording", &alice_heard, PHONE_TONE);
    check_capture(&capture, (srv, 2), rtp_b, &agent_udp, &suite);
    drop(bob);
    bench.server.stop();
}
