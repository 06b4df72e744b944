//! Interop with baresip (Debian `baresip` 1.0), set up the way its users set it up, on the
//! config `sotto init --domain example.test` writes (TLS on 0.0.0.0:5061; only the users and
//! MD5 added: baresip 1.0 answers MD5 digest challenges only, and gives up when a challenge
//! names another algorithm). baresip registers with an outbound proxy
//! `sip:127.0.0.1:5061;transport=tls` and mandatory SDES; `sotto agent` registers at
//! `sips:127.0.0.1:5061`.
//!
//! Asserted:
//! - agent → baresip: the call connects with SRTP (`AES_CM_128_HMAC_SHA1_80`, which baresip
//!   picks), each side's tone is in the other's recording, and the agent's hang-up ends the
//!   call on baresip's side too;
//! - baresip → agent: the same, and baresip's hang-up ends the call on the agent's side
//!   ("remote hangup"); in-dialog requests from baresip follow the server's
//!   `sip:…;transport=tls` Record-Route (baresip cannot route to a `sips:` hop);
//! - baresip vanishes mid-call (killed: no BYE): the agent ends the call by its RTP timeout,
//!   and says so.

#[path = "common/agent.rs"]
mod agent;
#[path = "common/baresip.rs"]
mod baresip;
#[path = "common/process.rs"]
mod process;
#[path = "common/sotto_server.rs"]
mod sotto_server;
#[path = "common/tone.rs"]
mod tone;

use std::time::Duration;

use agent::AgentAccount;
use baresip::{Baresip, Setup};
use process::DefaultPorts;
use sotto_server::{ALICE_BOB, DataDir, Server, addrs, replace};
use tone::assert_tone;

/// Bound of every wait (a failure bound, never a measurement).
const WAIT: Duration = Duration::from_secs(30);
/// How long each call carries audio.
const TALK: Duration = Duration::from_secs(4);

#[test]
fn baresip_and_sotto_agent_call_each_other_on_the_default_config() {
    process::require_tools(&[("baresip", "-h")], baresip::INSTALL);
    let _ports = DefaultPorts::lock();
    let (dir, data) = DataDir::fresh("baresip", "default", "example.test", &ALICE_BOB);
    data.edit_config(|t| {
        replace(t, "modules.authentication", "algorithms", addrs(&["MD5"]));
    });
    let server = Server::start_all("baresip", &data.config());
    let proxy = "127.0.0.1:5061".parse().unwrap();
    let (tone_a, tone_b) = (dir.join("tone1000.wav"), dir.join("tone440.wav"));
    tone::write_tone(&tone_a, 1000.0, 30);
    tone::write_tone(&tone_b, 440.0, 30);

    let bob = Baresip::start(
        &dir.join("bob"),
        &Setup {
            user: "bob",
            password: "bobpw",
            domain: "example.test",
            proxy,
            ca: &data.ca(),
            play: &tone_b,
            auto_answer: true,
            rtp_timeout_secs: 10,
        },
    );
    bob.wait_registered(WAIT);
    let alice = AgentAccount::init_with(
        &dir.join("alice"),
        "sip:alice@example.test",
        "alicepw",
        "sips:127.0.0.1:5061",
        &data.ca(),
        &[],
    );

    // 1. The agent calls baresip and hangs up.
    let rec1 = dir.join("alice-heard1.wav");
    let rec1_arg = rec1.to_string_lossy().into_owned();
    let mut call = alice.spawn(
        "alice-call",
        &[
            "call",
            "sip:bob@example.test",
            "--tone",
            "1000",
            "--record",
            &rec1_arg,
            "--duration",
            "4s",
        ],
    );
    call.wait_for("connected", WAIT, |v| {
        v["event"] == "call_state" && v["state"] == "connected"
    });
    let sec = call.wait_event("call_security", WAIT);
    assert_eq!(sec["media_protection"], "srtp-sdes", "{sec}");
    assert_eq!(sec["suite"], "AES_CM_128_HMAC_SHA1_80", "{sec}");
    assert_eq!(sec["signalling_transport"], "tls", "{sec}");
    let ended = call.wait_for("ended", WAIT, |v| {
        v["event"] == "call_state" && v["state"] == "ended"
    });
    assert_eq!(ended["reason"], "local hangup", "{ended}");
    assert!(call.exit_status(WAIT).success());
    bob.wait_log("terminated", 1, WAIT);
    assert_tone("alice (agent) hearing baresip", &rec1, 440.0);
    let bob_rec = bob.recordings();
    assert_tone(
        "baresip hearing alice",
        bob_rec.last().expect("baresip recorded the call"),
        1000.0,
    );

    // 2. baresip calls the agent and hangs up.
    let rec2 = dir.join("alice-heard2.wav");
    let rec2_arg = rec2.to_string_lossy().into_owned();
    let mut listen = alice.spawn(
        "alice-listen",
        &[
            "listen",
            "--auto-answer",
            "--tone",
            "1000",
            "--record",
            &rec2_arg,
        ],
    );
    listen.wait_event("registered", WAIT);
    bob.command("/dial sip:alice@example.test");
    listen.wait_for("connected", WAIT, |v| {
        v["event"] == "call_state" && v["state"] == "connected"
    });
    let sec = listen.wait_event("call_security", WAIT);
    assert_eq!(sec["media_protection"], "srtp-sdes", "{sec}");
    std::thread::sleep(TALK);
    bob.command("/hangup");
    let ended = listen.wait_for("ended", WAIT, |v| {
        v["event"] == "call_state" && v["state"] == "ended"
    });
    assert_eq!(ended["reason"], "remote hangup", "{ended}");
    bob.wait_log("terminated", 2, WAIT);
    listen.wait_event("recorded", WAIT);
    assert_tone("alice (agent) hearing baresip", &rec2, 440.0);
    let bob_rec = bob.recordings();
    assert!(bob_rec.len() >= 2, "{bob_rec:?}");
    assert_tone("baresip hearing alice", bob_rec.last().unwrap(), 1000.0);
    // baresip's ACK and BYE went by the server's Record-Route: sip:, transport=tls.
    let log = bob.log();
    assert!(
        log.contains("Record-Route: <sip:") && log.contains(";transport=tls;lr"),
        "baresip saw no sip:…;transport=tls Record-Route"
    );
    assert!(
        !log.contains("Record-Route: <sips:"),
        "a sips: Record-Route"
    );
    listen.stop(WAIT);

    // 3. baresip vanishes mid-call: the agent's RTP timeout ends the call.
    alice.edit(|t| {
        let media = t
            .entry("media")
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if let toml::Value::Table(m) = media {
            m.insert("rtp_timeout_secs".into(), toml::Value::Integer(3));
        }
    });
    let mut listen = alice.spawn(
        "alice-timeout",
        &["listen", "--auto-answer", "--tone", "1000"],
    );
    listen.wait_event("registered", WAIT);
    bob.command("/dial sip:alice@example.test");
    listen.wait_for("connected", WAIT, |v| {
        v["event"] == "call_state" && v["state"] == "connected"
    });
    std::thread::sleep(Duration::from_secs(1));
    bob.kill();
    let ended = listen.wait_for("ended", WAIT, |v| {
        v["event"] == "call_state" && v["state"] == "ended"
    });
    let reason = ended["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("RTP timeout"), "{ended}");
    listen.stop(WAIT);
    server.stop();
    let _ = std::fs::remove_dir_all(&dir);
}
