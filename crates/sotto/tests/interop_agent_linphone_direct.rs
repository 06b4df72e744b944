//! Interop of the user agent (`sotto agent`) with a real Linphone client on direct calls (no
//! proxy), and with SIPVicious' `svmap` (issue 5, "Real peers the tests must use").
//!
//! - Direct: linphonec (UDP, SDES mandatory) calls the agent's direct UDP listener from a
//!   trusted host: SDES keys over a non-TLS hop are refused (488 with a Warning on the wire,
//!   `call_state ended` with the reason at the agent, the call fails at linphonec, no media).
//! - Direct over UDP, agent → linphonec (linphonec on a UDP port, no account, SDES
//!   mandatory, auto-answering), `call sip:bob@127.0.0.1:PORT`: with the default account the
//!   agent refuses the call locally (error naming SDES, UDP, clear text and the switch; a
//!   capture of linphonec's SIP port stays empty). With the insecure override
//!   `[danger] sdes_without_tls = true` the call goes ahead: SRTP both ways, tones both ways,
//!   `call_security` with `danger: ["sdes_without_tls"]`, the clear-text note and
//!   `end_to_end: false`, warnings on stderr at start and for the call; the capture shows
//!   what the switch costs (the `a=crypto` keys in clear text); the server sees no INVITE.
//! - Direct over TLS, linphonec → agent: linphonec (no account, TLS transport, the agent's
//!   certificate verified against a test CA by name, `DNS:127.0.0.1`) calls
//!   `sip:alice@127.0.0.1:PORT;transport=tls`, the agent's direct TLS listener; 127.0.0.1 is
//!   a trusted host. SDES mandatory, tones both ways, the agent receives linphonec's SRTCP on
//!   its RTP port + 1 (`rtcp_received` in `media_stats`), the server sees no INVITE, and the
//!   capture shows TLS only on the agent's port and SRTP both ways.
//! - Direct over TLS, agent → linphonec: impossible because of linphonec. belle-sip 5.1
//!   (`libbellesip1` 5.1.64) binds its TLS listening point but closes every incoming
//!   connection (`tls_listeningpoint.c`: "New connection arriving on TLS, not handled !"), so
//!   no TLS client can reach it. The test proves it: the agent's direct call fails with
//!   `503 transport error` and linphonec's log holds that line.
//! - svmap (`-m OPTIONS` and `-m INVITE`) against a registered, auto-answering agent's direct
//!   UDP port: it never rings (no `incoming_call`); every request is refused with 403 and
//!   reported as a `rejected` event.
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

use agent::AgentAccount;
use capture::{Capture, occurrences};
use linphone::{LINPHONE_TOOLS, Linphonec, SdesSetup, require_as_root};
use process::{free_tcp_port, free_udp_port, require_tools, udp_ports_of};
use serde_json::Value;
use sotto_server::{DataDir, Server, addrs, set};
use tone::assert_tone;

#[test]
fn direct_sdes_offer_over_udp_is_refused_by_the_agent() {
    require_as_root(&LINPHONE_TOOLS, INSTALL_ALL);
    let bench = Bench::start("direct");
    let direct = free_udp_port();
    let (phone_sip, rtp_b) = (free_udp_port(), linphone::free_rtp_port());
    let mut capture = Capture::start(
        &bench.base().join("lo.pcap"),
        &format!(
            "udp port {direct} or udp port {phone_sip} or udp portrange {rtp_b}-{}",
            rtp_b + 1
        ),
    );
    // The agent: registered over TLS, plus a direct UDP listener; 127.0.0.1 is trusted, so
    // the request passes the ghost-call check and meets the SDES rule.
    let account = bench.agent_account();
    accept_direct_udp(&account, direct);
    let mut alice = account.spawn("alice", &["listen", "--auto-answer", "--tone", "1000"]);
    alice.wait_event("registered", WAIT);

    let bob = Linphonec::start_sdes(
        bench.base(),
        &SdesSetup {
            user: "bob",
            domain: "127.0.0.1",
            registrar: None,
            udp_port: Some(phone_sip),
            rtp_port: rtp_b,
            auto_answer: false,
        },
    );
    bob.cmd(&format!("play {}", bench.phone_tone.display()));
    bob.cmd(&format!("call sip:alice@127.0.0.1:{direct}"));

    let ended = alice.wait_for("call_state ended", WAIT, |v| {
        v["event"] == "call_state" && v["state"] == "ended"
    });
    eprintln!("agent: {ended}");
    let reason = ended["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("488") && reason.contains("non-TLS"),
        "the refusal must say 488 and why: {ended}"
    );
    let failed = bob.wait_any_line(
        &[
            &["Call 1", "error"],
            &["Call 1", "failed"],
            &["Call 1", "ended"],
            &["Call 1", "declined"],
        ],
        WAIT,
    );
    eprintln!("linphonec: {failed}");
    assert!(!failed.contains("connected"), "{failed}");
    // Let any stray media arrive, then look at everything.
    std::thread::sleep(Duration::from_secs(2));
    alice.drain();
    for state in ["ringing", "connected"] {
        assert!(
            !alice
                .seen
                .iter()
                .any(|v| v["event"] == "call_state" && v["state"] == state),
            "the refused call reached {state}: {:?}",
            alice.seen
        );
    }
    // Every call gets its report; a refused one says it never carried media, and why.
    let reports = alice.events_named("call_security");
    assert_eq!(reports.len(), 1, "{:?}", alice.seen);
    let report = &reports[0];
    assert_eq!(report["media_protection"], "none", "{report}");
    assert_eq!(report["signalling_transport"], "udp", "{report}");
    assert!(
        report["note"]
            .as_str()
            .is_some_and(|n| n.contains("call not established") && n.contains("488")),
        "{report}"
    );
    assert!(
        !bob.stdout().contains("connected"),
        "linphonec connected: {}",
        bob.stdout()
    );
    capture.stop();
    drop(bob);
    alice.stop(WAIT);

    // On the wire: the INVITE with SDES (linphonec's own choice over UDP), the 488 with a
    // Warning, and no media at all.
    let raw = std::fs::read(&capture.pcap).expect("read the pcap");
    assert!(
        occurrences(&raw, b"INVITE sip:alice@127.0.0.1") >= 1,
        "no INVITE captured"
    );
    assert!(occurrences(&raw, b"SIP/2.0 488") >= 1, "no 488 captured");
    assert!(
        occurrences(&raw, b"Warning: 399 sotto") >= 1,
        "the 488 carries no Warning"
    );
    let media = capture.fields(
        &[],
        &format!("udp.port=={rtp_b} || udp.port=={}", rtp_b + 1),
        &["udp.srcport", "udp.dstport"],
    );
    assert!(
        media.is_empty(),
        "{} datagrams on linphonec's media ports after a refused call",
        media.len()
    );
    bench.server.stop();
}

#[test]
fn svmap_does_not_ring_a_registered_agent() {
    require_tools(
        &[("svmap", "--version"), ("timeout", "--version")],
        INSTALL_ALL,
    );
    let bench = Bench::start("svmap");
    let direct = free_udp_port();
    // A direct UDP listener and no trusted host: the scanner's INVITE comes from an address
    // the agent never registered through.
    let account = bench.agent_account();
    account.edit(|t| {
        set(
            t,
            "security",
            "listen_udp",
            addrs(&[&format!("127.0.0.1:{direct}")]),
        );
        set(t, "security", "trusted_hosts", addrs(&[]));
    });
    let mut alice = account.spawn("alice", &["listen", "--auto-answer", "--tone", "1000"]);
    alice.wait_event("registered", WAIT);

    let home = bench.base().join("svmap-home");
    for method in ["OPTIONS", "INVITE"] {
        let out = svmap(&home, direct, method);
        eprintln!("svmap -m {method}:\n{out}");
        let rejected = alice.wait_for(&format!("rejected {method}"), WAIT, |v| {
            v["event"] == "rejected" && v["method"] == method
        });
        eprintln!("agent: {rejected}");
        assert_eq!(rejected["status"], 403, "{rejected}");
        assert!(
            rejected["source"]
                .as_str()
                .is_some_and(|s| s.starts_with("127.0.0.1:")),
            "{rejected}"
        );
    }
    std::thread::sleep(Duration::from_secs(1));
    alice.drain();
    assert!(
        alice.events_named("incoming_call").is_empty()
            && !alice.seen.iter().any(|v| v["event"] == "call_state"),
        "svmap made the agent ring: {:?}",
        alice.seen
    );
    assert!(
        alice.stderr().contains("rejected"),
        "the refusal is also logged on stderr: {}",
        alice.stderr()
    );
    // Still registered and well: a clean Ctrl-C unregisters.
    alice.stop(WAIT);
    assert!(
        !alice.events_named("unregistered").is_empty(),
        "no unregistered event after SIGINT: {:?}",
        alice.seen
    );
    bench.server.stop();
}

#[test]
fn agent_refuses_to_offer_sdes_over_a_udp_first_hop() {
    require_as_root(&[("tshark", "--version")], INSTALL_ALL);
    // A server that also listens on UDP (for this test only), and an agent whose first hop
    // is that UDP listener: it registers, but must not put SDES keys into an INVITE.
    let tmp = tempfile::Builder::new()
        .prefix("sotto-agent-udp-")
        .tempdir()
        .expect("temp dir");
    let base = tmp.path();
    let udp_port = free_udp_port();
    let data = DataDir::init(&base.join("server"), &[("alice", "alicepw")]);
    data.edit_config(|t| {
        set(t, "listen", "tls", addrs(&["127.0.0.1:0"]));
        set(t, "listen", "tcp", addrs(&[]));
        set(
            t,
            "listen",
            "udp",
            addrs(&[&format!("127.0.0.1:{udp_port}")]),
        );
        set(t, "metrics", "enabled", toml::Value::Boolean(false));
    });
    let mut server = Server::start("udp-hop", &data.config(), 2);
    let udp = server.addr("udp");
    let mut capture = Capture::start(&base.join("lo.pcap"), &format!("udp port {}", udp.port()));

    let dir = base.join("alice");
    let out = process::sotto()
        .args(["--json", "agent", "init", "--dir"])
        .arg(&dir)
        .args(["--identity", "sip:alice@127.0.0.1", "--password", "alicepw"])
        .args(["--proxy", &format!("sip:{udp}")])
        .arg("--ca")
        .arg(data.ca())
        .output()
        .expect("run sotto agent init");
    assert!(
        out.status.success(),
        "sotto agent init with a sip: proxy failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let account = AgentAccount {
        config: dir.join("agent.toml"),
        dir: dir.clone(),
    };
    account.edit(|t| set(t, "security", "listen_udp", addrs(&["127.0.0.1:0"])));
    let mut alice = account.spawn(
        "alice",
        &[
            "call",
            "sip:bob@127.0.0.1",
            "--tone",
            "1000",
            "--duration",
            "2s",
        ],
    );
    let reg = alice.wait_event("registered", WAIT);
    eprintln!("agent over UDP: {reg}");
    let status = alice
        .wait_exit(WAIT)
        .unwrap_or_else(|| panic!("the agent did not give up the call: {:?}", alice.seen));
    assert!(!status.success(), "the call must fail: {:?}", alice.seen);
    let error = alice
        .seen
        .iter()
        .find(|v| v.get("error").is_some())
        .cloned()
        .unwrap_or_else(|| panic!("no error object: {:?}", alice.seen));
    eprintln!("agent: {error}");
    let text = error["error"].as_str().unwrap_or_default();
    assert!(
        text.contains("SDES") && text.contains("TLS"),
        "the refusal must say SDES needs TLS: {error}"
    );
    assert!(
        !alice
            .seen
            .iter()
            .any(|v| v["event"] == "call_state" && v["state"] == "connected"),
        "{:?}",
        alice.seen
    );
    capture.stop();
    server.drain();
    assert_eq!(
        server.count(|v| v["event"] == "request" && v["method"] == "INVITE"),
        0,
        "an INVITE reached the server over UDP: {:?}",
        server.seen
    );
    let raw = std::fs::read(&capture.pcap).expect("read the pcap");
    assert!(
        occurrences(&raw, b"REGISTER sip:127.0.0.1") >= 1,
        "the capture saw the agent's UDP traffic"
    );
    for needle in ["INVITE ", "a=crypto"] {
        assert_eq!(
            occurrences(&raw, needle.as_bytes()),
            0,
            "{needle:?} sent over UDP"
        );
    }
    server.stop();
}

#[test]
fn linphonec_calls_agent_directly_over_tls_with_sdes() {
    require_as_root(&LINPHONE_TOOLS, INSTALL_ALL);
    let bench = Bench::start("l2a-direct");
    let pki = linphone::direct_pki(&bench.base().join("pki"));
    let direct = free_tcp_port();
    let rtp_b = linphone::free_rtp_port();
    let mut capture = Capture::start(
        &bench.base().join("lo.pcap"),
        &format!(
            "tcp port {direct} or udp port {rtp_b} or udp port {}",
            rtp_b + 1
        ),
    );
    // The agent: registered at the server, plus a direct TLS listener with a certificate from
    // the test CA; 127.0.0.1 is trusted.
    let account = bench.agent_account();
    account.edit(|t| {
        set(
            t,
            "security",
            "listen_tls",
            toml::Value::String(format!("127.0.0.1:{direct}")),
        );
        set(
            t,
            "security",
            "certificate",
            toml::Value::String(pki.cert.display().to_string()),
        );
        set(
            t,
            "security",
            "key",
            toml::Value::String(pki.key.display().to_string()),
        );
        set(t, "security", "trusted_hosts", addrs(&["127.0.0.1"]));
    });
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
    let listening = alice.wait_for("listening tls", WAIT, |v| {
        v["event"] == "listening" && v["transport"] == "tls"
    });
    assert_eq!(
        listening["local"],
        format!("127.0.0.1:{direct}"),
        "{listening}"
    );
    alice.wait_event("registered", WAIT);

    // linphonec: no account, a TLS transport on a random port, the test CA as root.
    let mut bob = Linphonec::start_direct_tls(bench.base(), "bob", rtp_b, -1, &pki.ca, false);
    let bob_heard = bob.path("rec/heard.wav");
    bob.cmd(&format!("play {}", bench.phone_tone.display()));
    bob.cmd(&format!("record {}", bob_heard.display()));
    bob.cmd(&format!("call sip:alice@127.0.0.1:{direct};transport=tls"));

    let incoming = alice.wait_event("incoming_call", WAIT);
    assert!(
        incoming["from"]
            .as_str()
            .is_some_and(|f| f.contains("sip:bob@127.0.0.1")),
        "{incoming}"
    );
    alice.wait_for("call_state connected", WAIT, |v| {
        v["event"] == "call_state" && v["state"] == "connected"
    });
    let security = alice.wait_event("call_security", WAIT);
    eprintln!("agent call_security: {security}");
    let suite = check_security(&security, "trusted-host");
    assert_eq!(security["direct"], true, "{security}");
    bob.wait_line(&["Call 1", "connected"], 1, WAIT);
    let agent_udp = udp_ports_of(alice.pid().expect("agent running"));

    std::thread::sleep(Duration::from_secs(TALK_SECS));
    bob.cmd("terminate");
    let ended = alice.wait_for("call_state ended", WAIT, |v| {
        v["event"] == "call_state" && v["state"] == "ended"
    });
    assert_eq!(ended["reason"], "remote hangup", "{ended}");
    bob.wait_line(&["Call 1", "ended"], 1, WAIT);
    check_agent_media(&mut alice);
    let stats = alice.wait_for("final media_stats", WAIT, |v| {
        v["event"] == "media_stats" && v["final"] == true
    });
    assert!(
        stats["rtcp_sent"].as_u64().is_some_and(|n| n >= 1),
        "{stats}"
    );
    alice.stop(WAIT);
    let log = bob.log();
    assert!(
        log.contains("Negotiated media encryption is LinphoneMediaEncryptionSRTP"),
        "linphonec did not negotiate SRTP (see {})",
        bob.path("liblinphone.log").display()
    );
    capture.stop();
    bob.stop();

    assert_tone("linphonec's recording", &bob_heard, AGENT_TONE);
    assert_tone("the agent's recording", &alice_heard, PHONE_TONE);
    // One TLS client (linphonec) on the agent's direct port.
    check_capture(&capture, (direct, 1), rtp_b, &agent_udp, &suite);
    drop(bob);
    let mut server = bench.server;
    server.drain();
    assert_eq!(
        server.count(|v| v["event"] == "request" && v["method"] == "INVITE"),
        0,
        "the direct call went through the server"
    );
    server.stop();
}

#[test]
fn agent_cannot_call_linphonec_directly_because_linphonec_accepts_no_tls_connection() {
    require_as_root(&LINPHONE_TOOLS, INSTALL_ALL);
    let bench = Bench::start("a2l-direct");
    let pki = linphone::direct_pki(&bench.base().join("pki"));
    let phone_tls = free_tcp_port();
    let rtp_b = linphone::free_rtp_port();
    // linphonec with a TLS listening point on a known port, auto-answering.
    let mut bob = Linphonec::start_direct_tls(
        bench.base(),
        "bob",
        rtp_b,
        i32::from(phone_tls),
        &pki.ca,
        true,
    );
    // The agent trusts the server's CA and the test CA.
    let bundle = pki::pem_bundle(&bench.base().join("bundle.pem"), &[&bench.ca, &pki.ca]);
    let account = bench.agent_account();
    account.edit(|t| {
        set(
            t,
            "proxy",
            "ca",
            toml::Value::String(bundle.display().to_string()),
        );
    });
    let mut alice = account.spawn(
        "alice",
        &[
            "call",
            &format!("sips:bob@127.0.0.1:{phone_tls}"),
            "--tone",
            "1000",
            "--duration",
            "2s",
        ],
    );
    alice.wait_event("registered", WAIT);
    let ended = alice.wait_for("call_state ended", WAIT, |v| {
        v["event"] == "call_state" && v["state"] == "ended"
    });
    eprintln!("agent: {ended}");
    assert!(
        ended["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("503 transport error")),
        "the direct call must fail at the transport: {ended}"
    );
    match alice.wait_exit(WAIT) {
        Some(s) => assert!(
            !s.success(),
            "a failed call exits non-zero: {:?}",
            alice.seen
        ),
        None => panic!("agent did not exit: {:?}", alice.seen),
    }
    // The reason is in linphonec: belle-sip accepts the TCP connection and closes it.
    let deadline = std::time::Instant::now() + WAIT;
    let evidence = "New connection arriving on TLS, not handled !";
    while !bob.log().contains(evidence) {
        assert!(
            std::time::Instant::now() < deadline,
            "linphonec's log has no {evidence:?} (see {})",
            bob.path("liblinphone.log").display()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let line = bob
        .log()
        .lines()
        .find(|l| l.contains(evidence))
        .map(str::to_owned)
        .unwrap_or_default();
    eprintln!("linphonec: {line}");
    assert!(
        !bob.stdout().contains("Call 1"),
        "linphonec saw a call: {}",
        bob.stdout()
    );
    bob.stop();
    drop(bob);
    bench.server.stop();
}

#[test]
fn agent_calls_linphonec_directly_over_udp_with_sdes_only_under_the_danger_switch() {
    require_as_root(&LINPHONE_TOOLS, INSTALL_ALL);
    let bench = Bench::start("a2l-udp");
    let (phone_sip, rtp_b) = (free_udp_port(), linphone::free_rtp_port());
    // linphonec: no account, SIP over UDP on a known port, SDES mandatory, auto-answering.
    let mut bob = Linphonec::start_sdes(
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
    let bob_heard = bob.path("rec/heard.wav");
    bob.cmd(&format!("play {}", bench.phone_tone.display()));
    bob.cmd(&format!("record {}", bob_heard.display()));
    let target = format!("sip:bob@127.0.0.1:{phone_sip}");
    let tone = AGENT_TONE.to_string();
    let account = bench.agent_account();

    // 1. Without the switch (the default written by `init`): refused locally, with the
    //    reason; nothing reaches linphonec's SIP port.
    let text = std::fs::read_to_string(&account.config).expect("read agent.toml");
    assert!(
        text.contains("[danger]") && text.contains("sdes_without_tls = false"),
        "init writes the switch off: {text}"
    );
    let mut refused_capture = Capture::start(
        &bench.base().join("refused.pcap"),
        &format!("udp port {phone_sip}"),
    );
    let mut refused = account.spawn(
        "alice-refused",
        &["call", &target, "--tone", &tone, "--duration", "2s"],
    );
    refused.wait_event("registered", WAIT);
    let status = refused
        .wait_exit(WAIT)
        .unwrap_or_else(|| panic!("the agent did not give up the call: {:?}", refused.seen));
    assert!(!status.success(), "the call must fail: {:?}", refused.seen);
    let error = refused
        .seen
        .iter()
        .find(|v| v.get("error").is_some())
        .cloned()
        .unwrap_or_else(|| panic!("no error object: {:?}", refused.seen));
    eprintln!("agent without the switch: {error}");
    let reason = error["error"].as_str().unwrap_or_default();
    for needle in ["SDES", "udp", "clear text", "sdes_without_tls"] {
        assert!(
            reason.contains(needle),
            "{needle:?} not in the refusal: {error}"
        );
    }
    assert!(
        refused.events_named("call_state").is_empty()
            && refused.events_named("call_security").is_empty(),
        "no call was set up: {:?}",
        refused.seen
    );
    assert!(
        !refused.stderr().contains("WARNING"),
        "no danger warning without the switch: {}",
        refused.stderr()
    );
    refused_capture.stop();
    let raw = std::fs::read(&refused_capture.pcap).expect("read the pcap");
    for needle in ["INVITE ", "a=crypto", "SIP/2.0"] {
        assert_eq!(
            occurrences(&raw, needle.as_bytes()),
            0,
            "{needle:?} reached linphonec's SIP port without the switch"
        );
    }
    assert!(
        !bob.stdout().contains("Call 1"),
        "linphonec saw a call: {}",
        bob.stdout()
    );

    // 2. With `[danger] sdes_without_tls = true`: the call goes ahead, SRTP both ways, and
    //    it is loud (stderr at start and for the call, the danger entry in call_security).
    account.edit(|t| {
        set(t, "danger", "sdes_without_tls", toml::Value::Boolean(true));
    });
    let mut capture = Capture::start(
        &bench.base().join("danger.pcap"),
        &format!(
            "udp port {phone_sip} or udp port {rtp_b} or udp port {}",
            rtp_b + 1
        ),
    );
    let alice_heard = account.dir.join("heard.wav");
    let duration = format!("{TALK_SECS}s");
    let mut alice = account.spawn(
        "alice",
        &[
            "call",
            &target,
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
    alice.wait_event("registered", WAIT);
    alice.wait_for("call_state connected", WAIT, |v| {
        v["event"] == "call_state" && v["state"] == "connected"
    });
    let security = alice.wait_event("call_security", WAIT);
    eprintln!("agent call_security: {security}");
    assert_eq!(security["signalling_transport"], "udp", "{security}");
    assert_eq!(security["tls_version"], Value::Null, "{security}");
    assert_eq!(security["media_protection"], "srtp-sdes", "{security}");
    assert_eq!(security["direct"], true, "{security}");
    assert_eq!(security["end_to_end"], false, "{security}");
    assert_eq!(
        security["danger"],
        serde_json::json!(["sdes_without_tls"]),
        "{security}"
    );
    assert!(
        security["note"]
            .as_str()
            .is_some_and(|n| n.contains("clear text") && n.contains("decrypt")),
        "{security}"
    );
    assert!(
        security["suite"]
            .as_str()
            .is_some_and(|s| s.starts_with("AES_")),
        "{security}"
    );
    bob.wait_any_line(&[&["Call 1", "connected"]], WAIT);
    alice.wait_for("call_state ended", WAIT, |v| {
        v["event"] == "call_state" && v["state"] == "ended"
    });
    check_agent_media(&mut alice);
    match alice.wait_exit(WAIT) {
        Some(s) => assert!(s.success(), "agent exit status {s}: {:?}", alice.seen),
        None => panic!("agent did not exit after its call: {:?}", alice.seen),
    }
    let stderr = alice.stderr();
    eprintln!("agent stderr:\n{stderr}");
    assert!(
        stderr.contains("WARNING: insecure override [danger] sdes_without_tls = true is on"),
        "no warning at start: {stderr}"
    );
    assert!(
        stderr.contains("WARNING: call 1 uses the insecure override [danger] sdes_without_tls")
            && stderr.contains("clear text"),
        "no warning for the call: {stderr}"
    );
    bob.wait_any_line(&[&["Call 1", "ended"]], WAIT);
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
    // What the switch costs, on the wire: the INVITE and its SDES keys in clear text.
    let raw = std::fs::read(&capture.pcap).expect("read the pcap");
    assert!(
        occurrences(&raw, format!("INVITE {target}").as_bytes()) >= 1,
        "no direct INVITE captured"
    );
    assert!(
        occurrences(&raw, b"a=crypto") >= 2,
        "the SDES keys (offer and answer) are in the clear UDP capture"
    );
    drop(bob);
    let mut server = bench.server;
    server.drain();
    assert_eq!(
        server.count(|v| v["event"] == "request" && v["method"] == "INVITE"),
        0,
        "the direct call went through the server"
    );
    server.stop();
}
