//! The bench of the agent ↔ linphonec interop tests: a `sotto server`, the files the peers
//! read, and the checks of the security report, the media statistics and the capture.

// Each test binary uses part of it.
#![allow(dead_code, unreachable_pub)]

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::agent::{AgentAccount, AgentProc};
use crate::capture::{Capture, occurrences};
use crate::linphone::{Linphonec, SdesSetup};
use crate::process::free_udp_port;
use crate::sotto_server::{DataDir, Server, addrs, set};
use crate::{linphone, process, tone};
use serde_json::Value;

/// The apt-get line printed when a peer is missing.
pub const INSTALL_ALL: &str = "install with: apt-get install -y linphone-cli tshark sipvicious";
/// Bound of registration, call-setup and teardown waits (failure bounds, not measurements).
pub const WAIT: Duration = Duration::from_secs(30);
/// How long a call carries audio.
pub const TALK_SECS: u64 = 5;
/// What the agent plays.
pub const AGENT_TONE: f64 = 1000.0;
/// What linphonec plays.
pub const PHONE_TONE: f64 = 440.0;

/// One `sotto server` (TLS only, on 127.0.0.1, users alice and bob) and the files the peers
/// read, in a temp dir readable by the linphonec uids.
pub struct Bench {
    pub tmp: tempfile::TempDir,
    pub server: Server,
    pub proxy: SocketAddr,
    pub ca: PathBuf,
    pub phone_tone: PathBuf,
    /// The users' SIP domain.
    pub domain: &'static str,
    /// Held while the server runs on the default ports (the config `sotto init` writes).
    pub _ports: Option<process::DefaultPorts>,
}

impl Bench {
    pub fn start(name: &str) -> Bench {
        Self::start_with(name, false)
    }

    /// `default_config`: the config `sotto init --domain example.test` writes, unchanged but
    /// for the users (TLS on 0.0.0.0:5061, metrics on 127.0.0.1:9464), as people run it;
    /// else TLS only on a port of its own on 127.0.0.1, domain 127.0.0.1.
    pub fn start_with(name: &str, default_config: bool) -> Bench {
        let ports = default_config.then(process::DefaultPorts::lock);
        let domain = if default_config {
            "example.test"
        } else {
            "127.0.0.1"
        };
        let tmp = tempfile::Builder::new()
            .prefix(&format!("sotto-agent-{name}-"))
            // SOTTO_KEEP_TEST_DIRS=1 keeps configs, logs, recordings and pcaps for a look.
            .disable_cleanup(std::env::var_os("SOTTO_KEEP_TEST_DIRS").is_some())
            .tempdir()
            .expect("temp dir");
        let base = tmp.path().to_path_buf();
        linphone::open_up(&base);
        let data = DataDir::init_for(
            &base.join("server"),
            domain,
            &[("alice", "alicepw"), ("bob", "bobpw")],
        );
        let (server, proxy) = if default_config {
            let server = Server::start_all(name, &data.config());
            (server, SocketAddr::from(([127, 0, 0, 1], 5061)))
        } else {
            data.edit_config(|t| {
                set(t, "listen", "tls", addrs(&["127.0.0.1:0"]));
                set(t, "listen", "tcp", addrs(&[]));
                set(t, "listen", "udp", addrs(&[]));
                set(t, "metrics", "enabled", toml::Value::Boolean(false));
            });
            let server = Server::start(name, &data.config(), 1);
            let proxy = server.addr("tls");
            (server, proxy)
        };
        let ca = base.join("ca.pem");
        std::fs::copy(data.ca(), &ca).expect("copy ca.pem");
        std::fs::set_permissions(&ca, std::fs::Permissions::from_mode(0o644)).expect("chmod ca");
        let phone_tone = base.join("tone440.wav");
        tone::write_tone(&phone_tone, PHONE_TONE, 30);
        Bench {
            tmp,
            server,
            proxy,
            ca,
            phone_tone,
            domain,
            _ports: ports,
        }
    }

    /// `sip:<user>@<domain>`.
    pub fn uri(&self, user: &str) -> String {
        format!("sip:{user}@{}", self.domain)
    }

    pub fn base(&self) -> &Path {
        self.tmp.path()
    }

    /// The agent's account `alice` at this server.
    pub fn agent_account(&self) -> AgentAccount {
        AgentAccount::init_with(
            &self.base().join("alice"),
            &self.uri("alice"),
            "alicepw",
            &format!("sips:{}", self.proxy),
            &self.ca,
            &[],
        )
    }

    /// linphonec `bob`, registered over TLS, SDES mandatory, playing the 440 Hz WAV and
    /// recording into `rec/heard.wav`.
    pub fn phone(&self, rtp_port: u16, auto_answer: bool) -> (Linphonec, PathBuf) {
        let bob = Linphonec::start_sdes(
            self.base(),
            &SdesSetup {
                user: "bob",
                domain: self.domain,
                registrar: Some((self.proxy, "bobpw", &self.ca)),
                udp_port: None,
                rtp_port,
                auto_answer,
            },
        );
        let heard = bob.path("rec/heard.wav");
        bob.cmd(&format!("play {}", self.phone_tone.display()));
        bob.cmd(&format!("record {}", heard.display()));
        (bob, heard)
    }
}

/// The `call_security` event must say: TLS first hop with its version, SRTP keyed by SDES
/// with a suite, not end to end, and why (the proxies see the keys). Returns the suite.
pub fn check_security(v: &Value, auth: &str) -> String {
    assert_eq!(v["signalling_transport"], "tls", "{v}");
    assert!(
        v["tls_version"]
            .as_str()
            .is_some_and(|t| t.starts_with("TLSv1.")),
        "no TLS version in {v}"
    );
    assert_eq!(v["auth"], auth, "{v}");
    assert_eq!(v["media_protection"], "srtp-sdes", "{v}");
    assert_eq!(v["end_to_end"], false, "SDES is never end to end: {v}");
    assert!(
        v["note"].as_str().is_some_and(|n| n.contains("prox")),
        "the report must say the proxies see SDES keys: {v}"
    );
    let suite = v["suite"].as_str().unwrap_or_default().to_owned();
    assert!(suite.starts_with("AES_"), "SRTP suite in {v}");
    suite
}

/// The final `media_stats` of the call: SRTP, audio both ways; and the `recorded` event.
pub fn check_agent_media(agent: &mut AgentProc) {
    let stats = agent.wait_for("final media_stats", WAIT, |v| {
        v["event"] == "media_stats" && v["final"] == true
    });
    eprintln!("agent final media_stats: {stats}");
    assert_eq!(stats["protection"], "srtp", "{stats}");
    for key in ["packets_sent", "packets_received"] {
        assert!(
            stats[key].as_u64().is_some_and(|n| n >= 50),
            "{key} below 50 packets in {TALK_SECS} s: {stats}"
        );
    }
    // linphonec refuses rtcp-mux and sends SRTCP to the agent's RTP port + 1.
    assert!(
        stats["rtcp_received"].as_u64().is_some_and(|n| n >= 1),
        "no RTCP received from linphonec on the agent's RTCP port: {stats}"
    );
    let rec = agent.wait_event("recorded", WAIT);
    assert!(
        rec["samples"].as_u64().is_some_and(|n| n >= 8000),
        "recorded less than a second: {rec}"
    );
}

/// The authentication tag length of an SRTP suite (RFC 4568 names).
pub fn tag_len(suite: &str) -> usize {
    if suite.ends_with("_32") { 4 } else { 10 }
}

/// What the capture must show: TLS only on the server's port, no cleartext SIP or SDES key
/// anywhere, SRTP both ways between the agent and linphonec's media ports, and no agent UDP
/// socket outside the captured media.
pub fn check_capture(
    capture: &Capture,
    (srv, min_hellos): (u16, usize),
    rtp_phone: u16,
    agent_udp: &[u16],
    suite: &str,
) {
    // Cleartext anywhere in the captured frames (server port and linphonec's media ports):
    // the pcap file holds the frames' bytes as they were on the wire.
    let raw = std::fs::read(&capture.pcap).expect("read the pcap");
    for needle in ["a=crypto", "SIP/2.0", "RTP/SAVP", "inline:"] {
        let n = occurrences(&raw, needle.as_bytes());
        assert_eq!(n, 0, "{needle:?} in cleartext {n} times in the capture");
    }

    // TLS on the server's port.
    let decode = [
        format!("tcp.port=={srv},tls"),
        format!("udp.port=={rtp_phone},rtp"),
        format!("udp.port=={},rtcp", rtp_phone + 1),
    ];
    let tcp = capture.fields(
        &decode,
        // Kernel retransmissions on lo (spurious, D-SACKed) are not dissected again.
        &format!("tcp.port=={srv} && tcp.len > 0 && !tcp.analysis.retransmission"),
        &[
            "tls.handshake.type",
            "tls.record.content_type",
            "frame.protocols",
            "tcp.srcport",
        ],
    );
    let has = |cell: Option<&String>, v: &str| cell.is_some_and(|c| c.split(',').any(|x| x == v));
    let hellos = tcp.iter().filter(|r| has(r.first(), "1")).count();
    let app = tcp.iter().filter(|r| has(r.get(1), "23")).count();
    let not_tls = tcp
        .iter()
        .filter(|r| !r.get(2).is_some_and(|p| p.contains(":tls")))
        .count();
    eprintln!(
        "capture: {} TCP frames with payload on {srv}: {hellos} ClientHello, {app} with \
         application data, {not_tls} not TLS",
        tcp.len()
    );
    assert!(
        hellos >= min_hellos,
        "{min_hellos} TLS ClientHello expected (one per client), saw {hellos}"
    );
    // Both directions carry SIP inside TLS records: requests one way, responses the other, at
    // least two each (INVITE and ACK/BYE; the provisional/final responses and the BYE's 200).
    // Several messages queued at once may share one TLS write, so frames are not messages.
    let srv_port = srv.to_string();
    let from_srv = tcp
        .iter()
        .filter(|r| has(r.get(1), "23") && r.get(3) == Some(&srv_port))
        .count();
    let to_srv = app - from_srv;
    assert!(
        from_srv >= 2 && to_srv >= 2,
        "TLS application data frames: {from_srv} from port {srv}, {to_srv} to it"
    );
    assert_eq!(
        not_tls, 0,
        "{not_tls} TCP frames with payload on {srv} are not TLS"
    );

    // Media: RTP between linphonec's port and the agent, both ways, encrypted.
    let udp = capture.fields(
        &decode,
        "udp",
        &[
            "udp.srcport",
            "udp.dstport",
            "rtp.p_type",
            "rtp.payload",
            "frame.protocols",
        ],
    );
    let port = |s: Option<&String>| s.and_then(|p| p.parse::<u16>().ok()).unwrap_or(0);
    let mut to_phone: Vec<String> = Vec::new();
    let mut from_phone: Vec<String> = Vec::new();
    let mut peers = BTreeSet::new();
    let mut sizes: HashMap<(bool, usize), usize> = HashMap::new();
    let tag = tag_len(suite);
    for row in &udp {
        let (src, dst) = (port(row.first()), port(row.get(1)));
        let protocols = row.get(4).map(String::as_str).unwrap_or_default();
        assert!(
            !protocols.contains("sip") && !protocols.contains("sdp"),
            "SIP over UDP {src} -> {dst} ({protocols})"
        );
        let media = [rtp_phone, rtp_phone + 1];
        let peer = if media.contains(&src) { dst } else { src };
        peers.insert(peer);
        if !protocols.ends_with(":rtp") {
            continue;
        }
        let payload = row.get(3).cloned().unwrap_or_default();
        let pt = row.get(2).map(String::as_str).unwrap_or_default();
        // telephone-event or comfort noise would be other types; the audio is PCMU/PCMA.
        assert!(
            matches!(pt, "0" | "8"),
            "RTP payload type {pt} ({src} -> {dst})"
        );
        let len = payload.len() / 2;
        let toward = dst == rtp_phone;
        *sizes.entry((toward, len)).or_default() += 1;
        // An SRTP packet is the codec frame plus the tag: frames of 10 ms (80 bytes) each.
        assert!(
            len > tag && (len - tag).is_multiple_of(80),
            "RTP payload of {len} bytes ({src} -> {dst}) is not G.711 frames plus a \
             {tag}-byte SRTP tag"
        );
        if toward {
            to_phone.push(payload);
        } else if src == rtp_phone {
            from_phone.push(payload);
        }
    }
    eprintln!(
        "capture: RTP agent->linphonec {}, linphonec->agent {}; payload sizes (toward \
         linphonec, bytes) -> count {sizes:?}; peers of linphonec's media ports {peers:?}; \
         agent UDP sockets {agent_udp:?}",
        to_phone.len(),
        from_phone.len()
    );
    assert!(
        to_phone.len() >= 50 && from_phone.len() >= 50,
        "RTP agent->linphonec {}, linphonec->agent {}",
        to_phone.len(),
        from_phone.len()
    );
    for (what, list) in [
        ("agent->linphonec", &to_phone),
        ("linphonec->agent", &from_phone),
    ] {
        let distinct: BTreeSet<&String> = list.iter().collect();
        assert_eq!(
            distinct.len(),
            list.len(),
            "{what}: {} of {} RTP payloads repeat: a cleartext tone, not SRTP",
            list.len() - distinct.len(),
            list.len()
        );
    }
    assert!(
        !agent_udp.is_empty(),
        "the agent held no UDP socket during the call"
    );
    for p in agent_udp {
        assert!(
            peers.contains(p),
            "the agent's UDP socket {p} never exchanged media with linphonec (captured peers \
             {peers:?}): it is outside the capture"
        );
    }
}

/// Runs `svmap` (safe flags only: bound to 127.0.0.1, never -A/--srv/-R/--randomscan) with
/// HOME in `home`, bounded by `timeout 60`; returns its output.
pub fn svmap(home: &Path, target_port: u16, method: &str) -> String {
    std::fs::create_dir_all(home).expect("mkdir svmap home");
    let local = free_udp_port().to_string();
    let out = Command::new("timeout")
        .args([
            "60",
            "svmap",
            "-b",
            "127.0.0.1",
            "-x",
            "127.0.0.1",
            "-P",
            &local,
        ])
        .args(["-p", &target_port.to_string(), "-m", method, "127.0.0.1"])
        .env("HOME", home)
        .stdin(Stdio::null())
        .output()
        .expect("run svmap");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.code() != Some(124),
        "svmap did not finish within 60 s: {text}"
    );
    text
}

/// Gives the agent a direct UDP listener on 127.0.0.1:`port` and trusts 127.0.0.1 (where
/// linphonec calls from), so a direct call passes the ghost-call check.
pub fn accept_direct_udp(account: &AgentAccount, port: u16) {
    account.edit(|t| {
        set(
            t,
            "security",
            "listen_udp",
            addrs(&[&format!("127.0.0.1:{port}")]),
        );
        set(t, "security", "trusted_hosts", addrs(&["127.0.0.1"]));
    });
}

/// Which side places one call between the agent and linphonec, and over what.
#[derive(Debug, Clone, Copy)]
pub struct CallShape {
    /// The agent calls (else linphonec does).
    pub agent_calls: bool,
    /// A direct call over UDP (no server, no TLS anywhere), else through the server.
    pub direct: bool,
    /// Which call of the test this is (names files).
    pub n: usize,
}

/// The free ports of one call.
#[derive(Debug, Clone, Copy)]
pub struct CallPorts {
    /// linphonec's RTP port (RTCP is the next one).
    pub phone_rtp: u16,
    /// linphonec's UDP SIP listener (direct calls).
    pub phone_sip: u16,
    /// The agent's UDP SIP listener (direct calls placed by linphonec).
    pub agent_sip: u16,
}

impl CallPorts {
    /// Free ports for one call.
    pub fn free() -> CallPorts {
        CallPorts {
            phone_rtp: linphone::free_rtp_port(),
            phone_sip: free_udp_port(),
            agent_sip: free_udp_port(),
        }
    }
}

impl Bench {
    /// linphonec `bob`'s setup for a call of `shape`: registered at the server, or with a
    /// UDP listener of its own for a direct call.
    pub fn phone_setup(&self, shape: CallShape, ports: CallPorts) -> SdesSetup<'_> {
        SdesSetup {
            user: "bob",
            domain: if shape.direct {
                "127.0.0.1"
            } else {
                self.domain
            },
            registrar: (!shape.direct).then_some((self.proxy, "bobpw", self.ca.as_path())),
            udp_port: shape.direct.then_some(ports.phone_sip),
            rtp_port: ports.phone_rtp,
            auto_answer: shape.agent_calls,
        }
    }
}

/// A call between the agent `alice` and linphonec `bob`, connected on the agent's side.
pub struct ConnectedCall {
    /// The running `sotto agent` (`call` or `listen`).
    pub alice: AgentProc,
    /// What the agent records.
    pub alice_heard: PathBuf,
    /// What linphonec records.
    pub bob_heard: PathBuf,
    /// The capture of linphonec's media ports, when asked for.
    pub capture: Option<Capture>,
}

/// Places one call of `shape` between the agent of `account` and the started linphonec `bob`
/// (each playing its tone and recording the other's), capturing linphonec's media ports into
/// `<capture>.pcap` when asked, and waits until the agent reports it connected.
pub fn connect_call(
    bench: &Bench,
    account: &AgentAccount,
    bob: &mut Linphonec,
    shape: CallShape,
    ports: CallPorts,
    capture: Option<&str>,
) -> ConnectedCall {
    let n = shape.n;
    let bob_heard = bob.path(&format!("rec/heard{n}.wav"));
    bob.cmd(&format!("play {}", bench.phone_tone.display()));
    bob.cmd(&format!("record {}", bob_heard.display()));
    if !shape.direct {
        bob.wait_registered(WAIT);
    }
    let agent_sip = ports.agent_sip;
    if shape.direct && !shape.agent_calls {
        accept_direct_udp(account, agent_sip);
    }
    let rtp = ports.phone_rtp;
    let capture = capture.map(|stem| {
        Capture::start(
            &bench.base().join(format!("{stem}.pcap")),
            &format!("udp port {rtp} or udp port {}", rtp + 1),
        )
    });
    let alice_heard = account.dir.join(format!("heard{n}.wav"));
    let tone = AGENT_TONE.to_string();
    let rec = alice_heard.to_str().expect("utf-8 path").to_owned();
    let target = if shape.direct {
        format!("sip:bob@127.0.0.1:{}", ports.phone_sip)
    } else {
        bench.uri("bob")
    };
    let duration = format!("{TALK_SECS}s");
    let media = ["--tone", &tone, "--record", &rec, "--stats-interval", "1"];
    let mut alice = if shape.agent_calls {
        let mut a = vec!["call", target.as_str(), "--duration", &duration];
        a.extend(media);
        account.spawn("alice", &a)
    } else {
        let mut a = vec!["listen", "--auto-answer"];
        a.extend(media);
        account.spawn("alice", &a)
    };
    alice.wait_event("registered", WAIT);
    if !shape.agent_calls {
        let callee = if shape.direct {
            format!("sip:alice@127.0.0.1:{agent_sip}")
        } else {
            bench.uri("alice")
        };
        bob.cmd(&format!("call {callee}"));
    }
    alice.wait_for("call_state connected", WAIT, |v| {
        v["event"] == "call_state" && v["state"] == "connected"
    });
    ConnectedCall {
        alice,
        alice_heard,
        bob_heard,
        capture,
    }
}

impl ConnectedCall {
    /// Ends the call after its talk time: the agent's `call` ends it by itself, else linphonec
    /// hangs up. Stops both; returns linphonec's log and the agent's UDP ports (read while it
    /// ran, for the capture check).
    pub fn hang_up(&mut self, bob: &mut Linphonec, shape: CallShape) -> (String, Vec<u16>) {
        let alice = &mut self.alice;
        let agent_udp = process::udp_ports_of(alice.pid().expect("agent running"));
        if !shape.agent_calls {
            std::thread::sleep(Duration::from_secs(TALK_SECS));
            bob.cmd("terminate");
        }
        alice.wait_for("call_state ended", WAIT, |v| {
            v["event"] == "call_state" && v["state"] == "ended"
        });
        bob.wait_line(&["Call 1 with", "ended"], 1, WAIT);
        alice.stop(WAIT);
        let log = bob.log();
        bob.stop();
        (log, agent_udp)
    }
}
