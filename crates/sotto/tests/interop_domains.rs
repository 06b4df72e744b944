//! Named domains as people run them: a real DNS server (dnsmasq on a loopback port) serves
//! NAPTR, SRV and A records; `sotto agent` finds its server by its domain; servers of
//! different domains find each other by DNS and authenticate each other with their domain
//! certificates over mutual TLS (RFC 3263, RFC 5922), never touching the media.
//!
//! 1. The config `sotto init --domain example.test` writes, unchanged but for the users (TLS
//!    on 0.0.0.0:5061): agents set up with `--proxy sips:example.test` find it through SRV,
//!    check its certificate for `example.test`, and call each other (SDES over TLS, tones
//!    both ways).
//! 2. Domain calling: a.example and b.example each have a `sotto server` (their `sotto init`
//!    config with federation on, a certificate for their domain from one CA, and a port of
//!    their own: the SRV records carry it); b.example's first SRV target is down.
//!    alice@a.example calls bob@b.example and back: the first server of b.example fails, the
//!    second takes the call; SDES over TLS on every hop; tones both ways.
//! 3. A third server whose certificate is for c.example, sending as a.example, is refused by
//!    b.example's server with 403, and its user is told why.
//! 4. A domain that does not exist gives 604, one whose only server is down 503 with
//!    Retry-After; each time the caller's events say what failed.

#[path = "common/agent.rs"]
mod agent;
#[path = "common/dnsmasq.rs"]
mod dnsmasq;
#[path = "common/pki.rs"]
mod pki;
#[path = "common/process.rs"]
mod process;
#[path = "common/sotto_server.rs"]
mod sotto_server;
#[path = "common/tone.rs"]
mod tone;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use agent::{AgentAccount, AgentProc};
use dnsmasq::{Dnsmasq, Zone};
use pki::DomainCa;
use process::{DefaultPorts, free_tcp_port};
use serde_json::Value;
use sotto_server::{DataDir, Server, addrs, replace};
use tone::assert_tone;

/// Bound of every wait (a failure bound, never a measurement).
const WAIT: Duration = Duration::from_secs(30);

fn is_state(v: &Value, state: &str) -> bool {
    v["event"] == "call_state" && v["state"] == state
}

/// An agent `user@domain` found through DNS: `--proxy sips:<proxy_domain> --dns <dns>`.
fn agent_at(
    dir: &Path,
    user: &str,
    domain: &str,
    proxy_domain: &str,
    ca: &Path,
    dns: SocketAddr,
) -> AgentAccount {
    AgentAccount::init_with(
        &dir.join(format!("{user}@{domain}")),
        &format!("sip:{user}@{domain}"),
        &format!("{user}pw"),
        &format!("sips:{proxy_domain}"),
        ca,
        &["--dns", &dns.to_string()],
    )
}

/// `caller` calls `target` for 4 s with a 1000 Hz tone while `callee` (listening, auto
/// answer, 440 Hz) records; both recordings are checked. Returns the caller's events.
fn call_with_tones(
    dir: &Path,
    caller: &AgentAccount,
    callee: &AgentAccount,
    target: &str,
    tag: &str,
) -> Vec<Value> {
    let heard_by_callee = dir.join(format!("{tag}-callee.wav"));
    let heard_by_caller = dir.join(format!("{tag}-caller.wav"));
    let callee_rec = heard_by_callee.to_string_lossy().into_owned();
    let caller_rec = heard_by_caller.to_string_lossy().into_owned();
    let mut listen = callee.spawn(
        &format!("{tag}-listen"),
        &[
            "listen",
            "--auto-answer",
            "--tone",
            "440",
            "--record",
            &callee_rec,
        ],
    );
    listen.wait_event("registered", WAIT);
    let mut call = caller.spawn(
        &format!("{tag}-call"),
        &[
            "call",
            target,
            "--tone",
            "1000",
            "--record",
            &caller_rec,
            "--duration",
            "4s",
        ],
    );
    call.wait_for("connected", WAIT, |v| is_state(v, "connected"));
    let sec = call.wait_event("call_security", WAIT);
    assert_eq!(sec["media_protection"], "srtp-sdes", "{sec}");
    assert_eq!(sec["signalling_transport"], "tls", "{sec}");
    let ended = call.wait_for("ended", WAIT, |v| is_state(v, "ended"));
    assert_eq!(ended["reason"], "local hangup", "{ended}");
    assert!(call.exit_status(WAIT).success());
    listen.wait_for("ended", WAIT, |v| is_state(v, "ended"));
    listen.wait_event("recorded", WAIT);
    listen.stop(WAIT);
    assert_tone(&format!("{tag}: callee"), &heard_by_callee, 1000.0);
    assert_tone(&format!("{tag}: caller"), &heard_by_caller, 440.0);
    call.seen.clone()
}

/// A call from `caller` to `target` that fails: returns the reason of its end.
fn failed_call(caller: &AgentAccount, target: &str, tag: &str) -> String {
    let mut call: AgentProc = caller.spawn(tag, &["call", target, "--duration", "2s"]);
    let ended = call.wait_for("ended", WAIT, |v| is_state(v, "ended"));
    let status = call.exit_status(WAIT);
    assert!(!status.success(), "{tag}: a failed call exits non-zero");
    ended["reason"].as_str().unwrap_or_default().to_owned()
}

#[test]
fn agents_find_the_default_server_of_their_domain_by_dns() {
    let _ports = DefaultPorts::lock();
    let (dir, data) = DataDir::fresh(
        "domains",
        "default",
        "example.test",
        &[("alice", "alicepw"), ("bob", "bobpw")],
    );
    let dns = Dnsmasq::start(
        &dir,
        &Zone::default()
            .domain("example.test")
            .srv("_sips._tcp.example.test", "sip.example.test", 5061, 10, 0)
            .host("sip.example.test", "127.0.0.1"),
        60,
    );
    let mut server = Server::start_all("default", &data.config());
    let alice = agent_at(
        &dir,
        "alice",
        "example.test",
        "example.test",
        &data.ca(),
        dns.addr,
    );
    let bob = agent_at(
        &dir,
        "bob",
        "example.test",
        "example.test",
        &data.ca(),
        dns.addr,
    );
    call_with_tones(&dir, &alice, &bob, "sip:bob@example.test", "default");
    server.wait_for(1, "INVITE forwarded", |v| {
        sotto_server::is_request(v, "INVITE", "forwarded")
    });
    server.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

/// One domain's server: the config `sotto init --domain <domain>` writes, with what the
/// scenario must add: its users, a TLS port of its own (0.0.0.0:<port>, published in SRV),
/// its domain certificate (`cert_for`'s, from the shared CA), the test's name server,
/// federation on with that CA, and a metrics port of its own.
fn domain_server(
    dir: &Path,
    domain: &str,
    cert_for: &str,
    port: u16,
    ca: &DomainCa,
    dns: SocketAddr,
    users: &[(&str, &str)],
) -> (DataDir, Server) {
    let data = DataDir::init_for(&dir.join(format!("server-{domain}-{port}")), domain, users);
    let (cert, key) = ca.issue(cert_for);
    data.edit_config(|t| {
        replace(t, "listen", "tls", addrs(&[&format!("0.0.0.0:{port}")]));
        replace(t, "metrics", "listen", "127.0.0.1:0".into());
        replace(t, "tls", "certificate", path_value(&cert));
        replace(t, "tls", "key", path_value(&key));
        replace(t, "dns", "servers", addrs(&[&dns.to_string()]));
        replace(t, "federation", "enabled", true.into());
        replace(t, "federation", "ca", path_value(&ca.ca));
    });
    let server = Server::start_all(&format!("{domain}:{port}"), &data.config());
    (data, server)
}

fn path_value(p: &Path) -> toml::Value {
    toml::Value::String(p.to_string_lossy().into_owned())
}

#[test]
fn calls_between_domains_found_by_dns_over_mutual_tls() {
    let dir = process::scratch("domains", "federation");
    let ca = DomainCa::new(&dir.join("pki"), "federation");
    let (port_a, port_b, port_c) = (free_tcp_port(), free_tcp_port(), free_tcp_port());
    let dead = free_tcp_port(); // nothing listens there
    let zone = Zone::default()
        .domain("a.example")
        .domain("b.example")
        .domain("c.example")
        .domain("down.example")
        .domain("nowhere.example")
        .naptr("a.example", 10, 10, "SIPS+D2T", "_sips._tcp.a.example")
        .srv("_sips._tcp.a.example", "sip.a.example", port_a, 10, 0)
        .host("sip.a.example", "127.0.0.1")
        .naptr("b.example", 10, 10, "SIPS+D2T", "_sips._tcp.b.example")
        .srv("_sips._tcp.b.example", "sip1.b.example", dead, 10, 0)
        .srv("_sips._tcp.b.example", "sip2.b.example", port_b, 20, 0)
        .host("sip1.b.example", "127.0.0.1")
        .host("sip2.b.example", "127.0.0.1")
        .srv("_sips._tcp.c.example", "sip.c.example", port_c, 10, 0)
        .host("sip.c.example", "127.0.0.1")
        .srv("_sips._tcp.down.example", "sip.down.example", dead, 10, 0)
        .host("sip.down.example", "127.0.0.1");
    let dns = Dnsmasq::start(&dir, &zone, 60);
    let users = |u: &'static str| [(u, if u == "alice" { "alicepw" } else { "bobpw" })];
    let (_a_data, mut server_a) = domain_server(
        &dir,
        "a.example",
        "a.example",
        port_a,
        &ca,
        dns.addr,
        &users("alice"),
    );
    let (_b_data, mut server_b) = domain_server(
        &dir,
        "b.example",
        "b.example",
        port_b,
        &ca,
        dns.addr,
        &users("bob"),
    );
    let alice = agent_at(&dir, "alice", "a.example", "a.example", &ca.ca, dns.addr);
    let bob = agent_at(&dir, "bob", "b.example", "b.example", &ca.ca, dns.addr);

    // alice@a.example → bob@b.example: b.example's first server is down, the second answers.
    call_with_tones(&dir, &alice, &bob, "sip:bob@b.example", "a-to-b");
    // The media never touched either server: each forwarded signalling only.
    server_a.wait_for(1, "INVITE forwarded to b.example", |v| {
        sotto_server::is_request(v, "INVITE", "forwarded")
    });
    server_b.wait_for(1, "INVITE from a.example's server", |v| {
        sotto_server::is_request(v, "INVITE", "forwarded") && v["transport"] == "tls"
    });
    // bob@b.example → alice@a.example.
    call_with_tones(&dir, &bob, &alice, "sip:alice@a.example", "b-to-a");
    for s in [&server_a, &server_b] {
        assert!(
            !s.seen.iter().any(|v| v["status"] == 500),
            "{}: {:#?}",
            s.name,
            s.seen
        );
    }

    // A server with c.example's certificate sending as a.example: refused by b.example's.
    let (_c_data, server_c) = domain_server(
        &dir,
        "a.example",
        "c.example",
        port_c,
        &ca,
        dns.addr,
        &[("mallory", "mallorypw")],
    );
    let mallory = AgentAccount::init_with(
        &dir.join("mallory"),
        "sip:mallory@a.example",
        "mallorypw",
        "sips:c.example",
        &ca.ca,
        &["--dns", &dns.addr.to_string()],
    );
    let mut listen = bob.spawn("bob-listen-mallory", &["listen", "--auto-answer"]);
    listen.wait_event("registered", WAIT);
    let reason = failed_call(&mallory, "sip:bob@b.example", "mallory");
    assert!(
        reason.contains("403") && reason.contains("c.example") && reason.contains("a.example"),
        "mallory is told why: {reason}"
    );
    server_b.wait_for(1, "INVITE refused by federation", |v| {
        sotto_server::is_request(v, "INVITE", "replied")
            && v["status"] == 403
            && v["module"] == "federation"
    });
    assert_eq!(
        listen.count("incoming_call"),
        0,
        "bob never rang for the impostor"
    );
    listen.stop(WAIT);
    server_c.stop();

    // A domain that does not exist, and one whose server is down.
    let reason = failed_call(&alice, "sip:bob@nowhere.example", "nowhere");
    assert!(
        reason.contains("604") && reason.contains("nowhere.example"),
        "{reason}"
    );
    let reason = failed_call(&alice, "sip:bob@down.example", "down");
    assert!(reason.contains("503"), "{reason}");
    server_a.wait_for(1, "604 logged as a failure", |v| {
        v["outcome"] == "failed" && v["status"] == 604
    });
    server_a.wait_for(1, "503 logged as a failure", |v| {
        v["outcome"] == "failed" && v["status"] == 503
    });

    server_a.stop();
    server_b.stop();
    let _ = std::fs::remove_dir_all(&dir);
}
