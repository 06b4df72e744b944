//! `sotto agent` against a real `sotto server` over TLS on 127.0.0.1 (processes, not
//! in-process): `agent init`, registration with digest (SHA-256) and refresh, unregistration
//! on Ctrl-C, a call from alice to bob through the server with SRTP keyed by SDES (the
//! 1000 Hz tone alice plays is found in bob's recording with a Goertzel filter), the
//! mandatory-encryption policy (488 + Warning on both sides), and ghost-call protection (a
//! direct INVITE or OPTIONS is answered 403 and never rings). Direct calls over TLS: alice
//! calls `sips:bob@127.0.0.1:PORT` straight to bob's TLS listener (bob's certificate issued
//! by a test CA in alice's CA bundle; 127.0.0.1 trusted by bob), SDES allowed, tones both
//! ways, RTCP received, and the server sees no INVITE; a peer certificate from an unknown
//! CA fails the call, and a direct TLS INVITE from a host bob does not trust is refused.
//!
//! Every child is killed on drop; every wait is bounded (never asserted on as a duration).

#[path = "common/agent.rs"]
mod agent;
#[path = "common/pki.rs"]
mod pki;
#[path = "common/process.rs"]
mod process;
#[path = "common/sotto_server.rs"]
mod sotto_server;

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use agent::AgentProc;
use pki::{TestPki, pem_bundle, test_pki};
use process::{free_tcp_port, free_udp_port, sotto};
use serde_json::Value;
use sotto_media::audio::{ToneReport, Wav};
use sotto_server::{ALICE_BOB, DataDir, Server, addrs, replace};

/// Failure bound for one wait.
const WAIT: Duration = Duration::from_secs(30);

/// A `sotto server` with users alice and bob, TLS only on a free port, and its directory.
struct Setup {
    server: Option<Server>,
    data: DataDir,
    dir: PathBuf,
    port: u16,
}

impl Setup {
    fn new(name: &str, min_expires: u32) -> Setup {
        let (dir, data) = DataDir::fresh("agent", name, "example.test", &ALICE_BOB);
        let port = free_tcp_port();
        data.edit_config(|t| {
            replace(t, "listen", "tls", addrs(&[&format!("127.0.0.1:{port}")]));
            replace(t, "listen", "udp", addrs(&[]));
            replace(t, "listen", "tcp", addrs(&[]));
            replace(t, "registrar", "min_expires", i64::from(min_expires).into());
            replace(t, "metrics", "enabled", false.into());
        });
        let server = Some(Server::start("server", &data.config(), 1));
        Setup {
            server,
            data,
            dir,
            port,
        }
    }

    /// Stops the server (Ctrl-C; `stopped`, exit status 0) and starts it again on the same
    /// port and database.
    fn restart_server(&mut self) {
        self.server.take().expect("server running").stop();
        self.server = Some(Server::start("server", &self.data.config(), 1));
    }

    /// `sotto agent init` for `user`; returns the agent.toml path.
    fn agent(&self, user: &str, media: &str) -> PathBuf {
        self.agent_with(user, media, &self.data.ca(), &[])
    }

    /// `sotto agent init` for `user` with CA file `ca` and `extra` arguments.
    fn agent_with(&self, user: &str, media: &str, ca: &Path, extra: &[String]) -> PathBuf {
        let dir = self.dir.join(user);
        let out = sotto()
            .args(["--json", "agent", "init", "--dir"])
            .arg(&dir)
            .args(["--identity", &format!("sip:{user}@example.test")])
            .args(["--password", &format!("{user}pw")])
            .args(["--proxy", &format!("sips:127.0.0.1:{}", self.port)])
            .arg("--ca")
            .arg(ca)
            .args(["--media-encryption", media])
            .args(extra)
            .output()
            .expect("run sotto agent init");
        assert!(
            out.status.success(),
            "agent init: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(out.stdout.trim_ascii()).expect("init JSON");
        assert_eq!(v["event"], "agent_initialized");
        let file = dir.join("agent.toml");
        assert!(dir.join("data").is_dir(), "data directory created");
        file
    }

    /// Starts `sotto --json agent -c <config> <args>` (stderr in `<dir>/<name>.stderr`).
    fn run_agent(&self, config: &Path, args: &[&str], name: &str) -> AgentProc {
        AgentProc::spawn(name, config, args, &self.dir)
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn edit(file: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(file).expect("read agent.toml");
    assert!(text.contains(from), "{from:?} in {}", file.display());
    std::fs::write(file, text.replacen(from, to, 1)).expect("write agent.toml");
}

#[test]
fn init_register_refresh_and_unregister_on_ctrl_c() {
    let s = Setup::new("register", 1);
    let file = s.agent("alice", "sdes");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&file).expect("stat").permissions().mode();
        assert_eq!(
            mode & 0o077,
            0,
            "agent.toml holds the password: mode {mode:o}"
        );
    }
    // A second init without --force refuses to overwrite.
    let again = sotto()
        .args(["agent", "init", "--dir"])
        .arg(file.parent().expect("dir"))
        .args(["--identity", "sip:alice@example.test", "--password", "x"])
        .args(["--proxy", &format!("sips:127.0.0.1:{}", s.port), "--ca"])
        .arg(s.data.ca())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run init");
    assert!(!again.success());
    // Ask for 2 s: the refresh comes at about half of it.
    edit(
        &file,
        "register_expires_secs = 600",
        "register_expires_secs = 2",
    );
    let mut a = s.run_agent(&file, &["register"], "alice");
    let first = a.wait_event("registered", WAIT);
    assert_eq!(first["auth"], "digest-SHA-256");
    assert_eq!(first["expires_s"], 2);
    let contact = first["contact"].as_str().expect("contact");
    assert!(contact.contains("+sip.instance=\"<urn:uuid:"), "{contact}");
    assert!(
        contact.contains("reg-id=1") && contact.contains(";ob>"),
        "{contact}"
    );
    // The refresh: a second `registered` without any action from us.
    a.wait_nth("registered", 2, WAIT);
    a.interrupt();
    let st = a.exit_status(WAIT);
    assert!(st.success(), "register exits 0 on Ctrl-C: {st:?}");
    assert_eq!(a.count("unregistered"), 1, "saw {:#?}", a.seen);
}

fn wav_samples(path: &Path) -> Vec<i16> {
    let bytes = std::fs::read(path).expect("read recording");
    Wav::parse(&bytes)
        .expect("parse recording")
        .to_8k_mono()
        .expect("8 kHz mono")
}

#[test]
fn call_through_server_with_srtp_sdes_carries_the_tone() {
    let s = Setup::new("call", 60);
    let alice = s.agent("alice", "sdes");
    let bob = s.agent("bob", "sdes");
    let rec = s.dir.join("bob.wav");
    let rec_arg = rec.to_str().expect("utf-8 path").to_owned();
    // Bob plays a 440 Hz WAV file (16 kHz, to exercise the conversion to 8 kHz).
    let play = s.dir.join("bob-440.wav");
    let mut tone = sotto_media::audio::Tone::new(440.0, 8000, 16_000);
    let wav = Wav::mono(16_000, tone.samples(16_000));
    std::fs::write(&play, wav.to_bytes().expect("WAV bytes")).expect("write WAV");
    let play_arg = play.to_str().expect("utf-8 path").to_owned();
    let mut b = s.run_agent(
        &bob,
        &[
            "listen",
            "--auto-answer",
            "--record",
            &rec_arg,
            "--play",
            &play_arg,
            "--stats-interval",
            "1",
        ],
        "bob",
    );
    b.wait_event("registered", WAIT);
    let alice_rec = s.dir.join("alice.wav");
    let alice_rec_arg = alice_rec.to_str().expect("utf-8 path").to_owned();
    let mut a = s.run_agent(
        &alice,
        &[
            "call",
            "sip:bob@example.test",
            "--tone",
            "1000",
            "--duration",
            "3s",
            "--record",
            &alice_rec_arg,
        ],
        "alice",
    );
    let st = a.exit_status(WAIT);
    assert!(st.success(), "alice: {st:?}; saw {:#?}", a.seen);
    // Alice's side.
    let states: Vec<&str> = a
        .seen
        .iter()
        .filter(|v| v["event"] == "call_state")
        .filter_map(|v| v["state"].as_str())
        .collect();
    assert_eq!(states, ["ringing", "connected", "ended"], "{:#?}", a.seen);
    let sec = a.wait_event("call_security", WAIT);
    assert_eq!(sec["signalling_transport"], "tls");
    assert!(
        sec["tls_version"]
            .as_str()
            .is_some_and(|v| v.starts_with("TLSv1.")),
        "{sec}"
    );
    assert_eq!(
        sec["auth"], "digest-SHA-256",
        "the server challenged the INVITE"
    );
    assert_eq!(sec["media_protection"], "srtp-sdes");
    assert_eq!(sec["suite"], "AES_CM_128_HMAC_SHA1_80");
    assert_eq!(sec["end_to_end"], false);
    assert_eq!(sec["direct"], false);
    assert!(
        sec["note"]
            .as_str()
            .is_some_and(|n| n.contains("visible to every proxy")),
        "{sec}"
    );
    let ended = a.wait_for("ended", WAIT, |v| {
        v["event"] == "call_state" && v["state"] == "ended"
    });
    assert_eq!(ended["reason"], "local hangup");
    let last = a.wait_for("final media_stats", WAIT, |v| {
        v["event"] == "media_stats" && v["final"] == true
    });
    assert!(
        last["packets_sent"].as_u64().is_some_and(|n| n >= 100),
        "{last}"
    );
    assert!(
        last["packets_received"].as_u64().is_some_and(|n| n >= 100),
        "{last}"
    );
    assert_eq!(last["packets_dropped"], 0, "{last}");
    assert_eq!(last["protection"], "srtp");
    assert_eq!(a.count("unregistered"), 1);
    // Bob's side.
    let inc = b.wait_event("incoming_call", WAIT);
    assert!(
        inc["from"]
            .as_str()
            .is_some_and(|f| f.contains("sip:alice@example.test"))
    );
    let bsec = b.wait_event("call_security", WAIT);
    assert_eq!(bsec["auth"], "registration-flow");
    assert_eq!(bsec["media_protection"], "srtp-sdes");
    let bend = b.wait_for("ended", WAIT, |v| {
        v["event"] == "call_state" && v["state"] == "ended"
    });
    assert_eq!(bend["reason"], "remote hangup");
    let recorded = b.wait_event("recorded", WAIT);
    assert!(
        recorded["samples"].as_u64().is_some_and(|n| n >= 8000),
        "{recorded}"
    );
    b.interrupt();
    assert!(
        b.exit_status(WAIT).success(),
        "bob exits 0; saw {:#?}",
        b.seen
    );
    // The audio: 1000 Hz dominates bob's recording, 440 Hz does not.
    let samples = wav_samples(&rec);
    let tone = ToneReport::analyze(&samples, 8000, 1000.0, 4000);
    assert!(tone.dominant_windows >= 3, "{tone:?}");
    assert!(tone.median_fraction > 0.5, "{tone:?}");
    let other = ToneReport::analyze(&samples, 8000, 440.0, 4000);
    assert!(other.median_fraction < 0.1, "{other:?}");
    // And the other way: bob's 440 Hz WAV is in alice's recording.
    let samples = wav_samples(&alice_rec);
    let tone = ToneReport::analyze(&samples, 8000, 440.0, 4000);
    assert!(
        tone.dominant_windows >= 3 && tone.median_fraction > 0.5,
        "{tone:?}"
    );
    let other = ToneReport::analyze(&samples, 8000, 1000.0, 4000);
    assert!(other.median_fraction < 0.1, "{other:?}");
}

#[test]
fn mandatory_encryption_fails_with_488_and_warning_on_both_sides() {
    let s = Setup::new("policy", 60);
    let alice = s.agent("alice", "sdes");
    let bob = s.agent("bob", "none");
    let mut b = s.run_agent(&bob, &["listen", "--auto-answer"], "bob");
    b.wait_event("registered", WAIT);
    let mut a = s.run_agent(
        &alice,
        &["call", "sip:bob@example.test", "--duration", "1s"],
        "alice",
    );
    let st = a.exit_status(WAIT);
    assert!(
        !st.success(),
        "a call that cannot be encrypted fails; saw {:#?}",
        a.seen
    );
    let ended = a.wait_for("ended", WAIT, |v| {
        v["event"] == "call_state" && v["state"] == "ended"
    });
    let reason = ended["reason"].as_str().expect("reason");
    assert!(reason.starts_with("488"), "{reason}");
    assert!(
        reason.contains("Warning:") && reason.contains("disabled"),
        "{reason}"
    );
    assert!(
        !a.seen
            .iter()
            .any(|v| v["event"] == "call_state" && v["state"] == "connected")
    );
    // Bob refused it without ringing, saying why.
    b.wait_event("incoming_call", WAIT);
    let bend = b.wait_for("ended", WAIT, |v| {
        v["event"] == "call_state" && v["state"] == "ended"
    });
    assert!(
        bend["reason"].as_str().is_some_and(|r| r.contains("488")),
        "{bend}"
    );
    assert!(
        !b.seen.iter().any(|v| v["state"] == "ringing"),
        "{:#?}",
        b.seen
    );
    b.interrupt();
    assert!(b.exit_status(WAIT).success());
}

#[test]
fn direct_requests_from_unknown_hosts_are_refused_without_ringing() {
    let s = Setup::new("ghost", 60);
    let bob = s.agent("bob", "sdes");
    let port = free_udp_port();
    edit(
        &bob,
        "listen_udp = []",
        &format!("listen_udp = [\"127.0.0.1:{port}\"]"),
    );
    let mut b = s.run_agent(&bob, &["listen", "--auto-answer"], "bob");
    b.wait_event("registered", WAIT);
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    sock.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let me = sock.local_addr().expect("addr");
    for (method, body) in [
        ("OPTIONS", ""),
        (
            "INVITE",
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n",
        ),
    ] {
        // What a scanner such as svmap sends: a request straight to the device.
        let msg = format!(
            "{method} sip:bob@127.0.0.1:{port} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {me};branch=z9hG4bKghost{method}\r\n\
             Max-Forwards: 70\r\nFrom: <sip:100@1.1.1.1>;tag=g1\r\nTo: <sip:bob@127.0.0.1>\r\n\
             Call-ID: ghost-{method}\r\nCSeq: 1 {method}\r\nContact: <sip:100@{me}>\r\n\
             Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        sock.send_to(msg.as_bytes(), ("127.0.0.1", port))
            .expect("send");
        let mut buf = [0u8; 4096];
        let (n, _) = sock.recv_from(&mut buf).expect("a response");
        let resp = String::from_utf8_lossy(&buf[..n]).into_owned();
        assert!(resp.starts_with("SIP/2.0 403 "), "{resp}");
        assert!(resp.contains("Warning: 399"), "{resp}");
        let ev = b.wait_for("rejected", WAIT, |v| {
            v["event"] == "rejected" && v["method"] == method
        });
        assert_eq!(ev["status"], 403);
        assert_eq!(ev["source"], me.to_string());
    }
    b.interrupt();
    assert!(b.exit_status(WAIT).success());
    assert_eq!(b.count("incoming_call"), 0, "{:#?}", b.seen);
    assert!(
        !b.seen.iter().any(|v| v["event"] == "call_state"),
        "{:#?}",
        b.seen
    );
}

#[test]
fn ctrl_c_during_a_call_hangs_up_then_unregisters() {
    let s = Setup::new("ctrlc", 60);
    let alice = s.agent("alice", "sdes");
    let bob = s.agent("bob", "sdes");
    let mut b = s.run_agent(&bob, &["listen", "--auto-answer"], "bob");
    b.wait_event("registered", WAIT);
    let mut a = s.run_agent(&alice, &["call", "sip:bob@example.test"], "alice");
    a.wait_for("connected", WAIT, |v| {
        v["event"] == "call_state" && v["state"] == "connected"
    });
    b.wait_for("connected", WAIT, |v| {
        v["event"] == "call_state" && v["state"] == "connected"
    });
    a.interrupt();
    let st = a.exit_status(WAIT);
    assert!(st.success(), "alice: {st:?}; saw {:#?}", a.seen);
    let pos = |name: &str, state: Option<&str>| {
        a.seen
            .iter()
            .position(|v| v["event"] == name && state.is_none_or(|s| v["state"] == s))
            .unwrap_or_else(|| panic!("no {name} in {:#?}", a.seen))
    };
    let ended = pos("call_state", Some("ended"));
    assert_eq!(a.seen[ended]["reason"], "local hangup");
    assert!(
        ended < pos("unregistered", None),
        "hang up first, then unregister"
    );
    let bend = b.wait_for("ended", WAIT, |v| {
        v["event"] == "call_state" && v["state"] == "ended"
    });
    assert_eq!(bend["reason"], "remote hangup");
    b.interrupt();
    assert!(b.exit_status(WAIT).success());
    assert_eq!(b.count("unregistered"), 1);
}

#[test]
fn a_broken_flow_is_reopened_and_registered_again() {
    let mut s = Setup::new("flow", 60);
    let bob = s.agent("bob", "sdes");
    edit(&bob, "keepalive_secs = 25", "keepalive_secs = 1");
    let mut b = s.run_agent(&bob, &["register"], "bob");
    let first = b.wait_event("registered", WAIT);
    s.restart_server();
    let re = b.wait_event("reconnected", WAIT);
    b.wait_nth("registered", 2, WAIT);
    let second = b
        .seen
        .iter()
        .filter(|v| v["event"] == "registered")
        .nth(1)
        .cloned();
    let second = second.expect("second registered");
    assert_ne!(
        first["contact"], second["contact"],
        "new flow, new local port: {re}"
    );
    b.interrupt();
    assert!(b.exit_status(WAIT).success(), "saw {:#?}", b.seen);
    assert_eq!(b.count("unregistered"), 1);
}

/// The server's CA followed by `extra`: an account CA file that verifies both.
fn ca_bundle(s: &Setup, extra: &Path, name: &str) -> PathBuf {
    pem_bundle(&s.dir.join(name), &[&s.data.ca(), extra])
}

fn tls_listener_args(port: u16, cert: &Path, key: &Path, trusted: &[&str]) -> Vec<String> {
    let mut v = vec![
        "--tls-listen".to_owned(),
        format!("127.0.0.1:{port}"),
        "--cert".to_owned(),
        cert.display().to_string(),
        "--key".to_owned(),
        key.display().to_string(),
    ];
    for t in trusted {
        v.push("--trusted-host".to_owned());
        v.push((*t).to_owned());
    }
    v
}

#[test]
fn direct_tls_call_between_agents_with_sdes_carries_tones_and_rtcp() {
    let mut s = Setup::new("direct-tls", 60);
    let TestPki {
        ca: test_ca,
        cert,
        key,
    } = test_pki(&s.dir.join("pki"), "direct");
    let port = free_tcp_port();
    let bob = s.agent_with(
        "bob",
        "sdes",
        &s.data.ca(),
        &tls_listener_args(port, &cert, &key, &["127.0.0.1"]),
    );
    let bundle = ca_bundle(&s, &test_ca, "alice-ca.pem");
    let alice = s.agent_with(
        "alice",
        "sdes",
        &bundle,
        &tls_listener_args(free_tcp_port(), &cert, &key, &[]),
    );
    let rec_b = s.dir.join("bob.wav");
    let rec_a = s.dir.join("alice.wav");
    let rec_b_arg = rec_b.to_str().expect("utf-8 path").to_owned();
    let rec_a_arg = rec_a.to_str().expect("utf-8 path").to_owned();
    let mut b = s.run_agent(
        &bob,
        &[
            "listen",
            "--auto-answer",
            "--tone",
            "440",
            "--record",
            &rec_b_arg,
        ],
        "bob",
    );
    let l = b.wait_for("listening tls", WAIT, |v| {
        v["event"] == "listening" && v["transport"] == "tls"
    });
    assert_eq!(l["local"], format!("127.0.0.1:{port}"));
    b.wait_event("registered", WAIT);
    let target = format!("sips:bob@127.0.0.1:{port}");
    let mut a = s.run_agent(
        &alice,
        &[
            "call",
            &target,
            "--tone",
            "1000",
            "--duration",
            "3s",
            "--record",
            &rec_a_arg,
        ],
        "alice",
    );
    let st = a.exit_status(WAIT);
    assert!(st.success(), "alice: {st:?}; saw {:#?}", a.seen);
    let states: Vec<&str> = a
        .seen
        .iter()
        .filter(|v| v["event"] == "call_state")
        .filter_map(|v| v["state"].as_str())
        .collect();
    assert_eq!(states, ["ringing", "connected", "ended"], "{:#?}", a.seen);
    let sec = a.wait_event("call_security", WAIT);
    assert_eq!(sec["signalling_transport"], "tls", "{sec}");
    assert_eq!(sec["tls_version"], "TLSv1.3", "{sec}");
    assert_eq!(
        sec["auth"], "none",
        "no proxy challenged this INVITE: {sec}"
    );
    assert_eq!(sec["direct"], true, "{sec}");
    assert!(
        sec["note"]
            .as_str()
            .is_some_and(|n| n.contains("direct TLS connection")),
        "{sec}"
    );
    assert_eq!(sec["media_protection"], "srtp-sdes", "{sec}");
    let last = a.wait_for("final media_stats", WAIT, |v| {
        v["event"] == "media_stats" && v["final"] == true
    });
    assert!(
        last["packets_received"].as_u64().is_some_and(|n| n >= 100),
        "{last}"
    );
    assert_eq!(last["protection"], "srtp", "{last}");
    assert!(last["rtcp_sent"].as_u64().is_some_and(|n| n >= 1), "{last}");
    // Bob: the call came over his TLS listener from a trusted host.
    let inc = b.wait_event("incoming_call", WAIT);
    assert!(
        inc["from"]
            .as_str()
            .is_some_and(|f| f.contains("sip:alice@example.test")),
        "{inc}"
    );
    let bsec = b.wait_event("call_security", WAIT);
    assert_eq!(bsec["auth"], "trusted-host", "{bsec}");
    assert_eq!(bsec["direct"], true, "{bsec}");
    assert_eq!(bsec["signalling_transport"], "tls", "{bsec}");
    assert_eq!(bsec["media_protection"], "srtp-sdes", "{bsec}");
    let bend = b.wait_for("ended", WAIT, |v| {
        v["event"] == "call_state" && v["state"] == "ended"
    });
    assert_eq!(bend["reason"], "remote hangup", "{bend}");
    let blast = b.wait_for("final media_stats", WAIT, |v| {
        v["event"] == "media_stats" && v["final"] == true
    });
    assert!(
        blast["rtcp_received"].as_u64().is_some_and(|n| n >= 1),
        "{blast}"
    );
    b.wait_event("recorded", WAIT);
    b.interrupt();
    assert!(
        b.exit_status(WAIT).success(),
        "bob exits 0; saw {:#?}",
        b.seen
    );
    // The server never saw the call.
    let server = s.server.as_mut().expect("server running");
    server.drain();
    let server_seen = server.seen.clone();
    assert!(
        server_seen.iter().any(|v| v["method"] == "REGISTER"),
        "the server logs requests: {server_seen:#?}"
    );
    assert!(
        !server_seen.iter().any(|v| v["method"] == "INVITE"),
        "the direct call went through the server: {server_seen:#?}"
    );
    for (rec, want, other) in [(&rec_b, 1000.0, 440.0), (&rec_a, 440.0, 1000.0)] {
        let samples = wav_samples(rec);
        let tone = ToneReport::analyze(&samples, 8000, want, 4000);
        assert!(
            tone.dominant_windows >= 3 && tone.median_fraction > 0.5,
            "{}: {tone:?}",
            rec.display()
        );
        let o = ToneReport::analyze(&samples, 8000, other, 4000);
        assert!(o.median_fraction < 0.1, "{}: {o:?}", rec.display());
    }
}

#[test]
fn direct_tls_calls_fail_on_an_unknown_ca_and_from_untrusted_hosts() {
    let s = Setup::new("direct-refused", 60);
    let TestPki {
        ca: test_ca,
        cert,
        key,
    } = test_pki(&s.dir.join("pki"), "direct");
    let port = free_tcp_port();
    // Bob listens on TLS but trusts no host.
    let bob = s.agent_with(
        "bob",
        "sdes",
        &s.data.ca(),
        &tls_listener_args(port, &cert, &key, &[]),
    );
    let mut b = s.run_agent(&bob, &["listen", "--auto-answer"], "bob");
    b.wait_event("registered", WAIT);
    let target = format!("sip:bob@127.0.0.1:{port};transport=tls");
    // Alice does not know bob's CA: the TLS handshake fails, no call.
    let alice = s.agent("alice", "sdes");
    let mut a = s.run_agent(&alice, &["call", &target, "--duration", "1s"], "alice");
    let st = a.exit_status(WAIT);
    assert!(
        !st.success(),
        "the call to an unverified peer must fail: {:#?}",
        a.seen
    );
    let ended = a.wait_for("ended", WAIT, |v| {
        v["event"] == "call_state" && v["state"] == "ended"
    });
    assert!(
        ended["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("503 transport error")),
        "{ended}"
    );
    assert!(
        !a.seen
            .iter()
            .any(|v| v["event"] == "call_state" && v["state"] == "connected"),
        "{:#?}",
        a.seen
    );
    // Alice again, now knowing the CA, but bob does not trust 127.0.0.1: 403, never rings.
    let bundle = ca_bundle(&s, &test_ca, "carol-ca.pem");
    let carol = s.agent_with("alice", "sdes", &bundle, &["--force".to_owned()]);
    let mut c = s.run_agent(&carol, &["call", &target, "--duration", "1s"], "carol");
    let st = c.exit_status(WAIT);
    assert!(!st.success(), "carol: {:#?}", c.seen);
    let ended = c.wait_for("ended", WAIT, |v| {
        v["event"] == "call_state" && v["state"] == "ended"
    });
    assert!(
        ended["reason"].as_str().is_some_and(|r| r.contains("403")),
        "{ended}"
    );
    let rej = b.wait_for("rejected", WAIT, |v| v["event"] == "rejected");
    assert_eq!(rej["method"], "INVITE", "{rej}");
    assert_eq!(rej["status"], 403, "{rej}");
    b.interrupt();
    assert!(b.exit_status(WAIT).success());
    assert_eq!(b.count("incoming_call"), 0, "{:#?}", b.seen);
}

/// A client certificate for `uri` issued by the server's `sotto init` CA (its DN rebuilt as
/// init writes it, its key read from the data directory's `ca.key`), written as `<name>-cert.pem` and
/// `<name>-key.pem` under the test directory.
fn init_ca_client_cert(s: &Setup, uri: &str, name: &str) -> (PathBuf, PathBuf) {
    let (cert, key) = pki::init_ca_client_cert(
        &s.data.ca_key(),
        "example.test",
        uri,
        &format!("{name}'s phone"),
    );
    let paths = (
        s.dir.join(format!("{name}-cert.pem")),
        s.dir.join(format!("{name}-key.pem")),
    );
    std::fs::write(&paths.0, cert).expect("write client cert");
    std::fs::write(&paths.1, key).expect("write client key");
    paths
}

/// `sotto agent init` for identity `sip:alice@example.test` in `<dir>/<name>` with a client
/// certificate and no password; returns the agent.toml path.
fn cert_agent(s: &Setup, name: &str, cert: &Path, key: &Path) -> PathBuf {
    let dir = s.dir.join(name);
    let out = sotto()
        .args(["--json", "agent", "init", "--dir"])
        .arg(&dir)
        .args(["--identity", "sip:alice@example.test"])
        .args(["--proxy", &format!("sips:127.0.0.1:{}", s.port)])
        .arg("--ca")
        .arg(s.data.ca())
        .arg("--client-cert")
        .arg(cert)
        .arg("--client-key")
        .arg(key)
        .output()
        .expect("run sotto agent init");
    assert!(
        out.status.success(),
        "agent init: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let file = dir.join("agent.toml");
    let text = std::fs::read_to_string(&file).expect("read agent.toml");
    assert!(!text.contains("password"), "{text}");
    assert!(text.contains("client_certificate = "), "{text}");
    file
}

#[test]
fn client_certificate_login_without_password() {
    let mut s = Setup::new("client-cert", 60);
    s.data
        .edit_config(|t| replace(t, "tls", "client_auth", "optional".into()));
    s.restart_server();
    // init needs a password or a client certificate (with its key).
    let (alice_cert, alice_key) = init_ca_client_cert(&s, "sip:alice@example.test", "alice");
    for extra in [
        &[][..],
        &["--client-cert".into(), alice_cert.display().to_string()][..],
    ] {
        let st = sotto()
            .args(["agent", "init", "--dir"])
            .arg(s.dir.join("nothing"))
            .args(["--identity", "sip:alice@example.test"])
            .args(["--proxy", &format!("sips:127.0.0.1:{}", s.port), "--ca"])
            .arg(s.data.ca())
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run init");
        assert!(!st.success(), "init with {extra:?} must fail");
    }
    // alice's certificate (SAN URI sip:alice@example.test), no password: registered on it.
    let alice = cert_agent(&s, "alice", &alice_cert, &alice_key);
    let mut a = s.run_agent(&alice, &["register"], "alice");
    let reg = a.wait_event("registered", WAIT);
    assert_eq!(reg["auth"], "tls-client-certificate", "{reg}");
    a.interrupt();
    let st = a.exit_status(WAIT);
    assert!(st.success(), "alice exits 0: {st:?} {:#?}", a.seen);
    assert_eq!(a.count("unregistered"), 1, "{:#?}", a.seen);
    // bob's certificate for identity alice, no password: challenged, cannot answer, fails.
    let (bob_cert, bob_key) = init_ca_client_cert(&s, "sip:bob@example.test", "bob");
    let mallory = cert_agent(&s, "mallory", &bob_cert, &bob_key);
    let mut m = s.run_agent(&mallory, &["register"], "mallory");
    let st = m.exit_status(WAIT);
    assert!(!st.success(), "mallory must not register: {:#?}", m.seen);
    let failed = m.wait_event("registration_failed", WAIT);
    assert_eq!(failed["status"], 401, "{failed}");
    assert!(
        failed["reason"]
            .as_str()
            .is_some_and(|r| r.contains("no password")),
        "{failed}"
    );
    assert_eq!(m.count("registered"), 0, "{:#?}", m.seen);
}
