//! Interop with a real peer: SIPp (Debian package `sip-tester`) against `sotto server` over
//! UDP on 127.0.0.1, with users created by `sotto user add`:
//!
//! 1. REGISTER with digest (SIPp's `[authentication]`): 401, then 200.
//! 2. A SIPp UAS registers as bob; a SIPp UAC (alice) calls bob through the server:
//!    INVITE, 407 + digest, 100, 200, ACK and BYE along the Record-Route, 200.
//! 3. The same call on the config `sotto init --domain example.test` writes (TLS on
//!    0.0.0.0:5061, metrics on 127.0.0.1:9464), with only what SIPp needs added: a UDP
//!    listener on 0.0.0.0 and MD5 first. The Record-Route SIPp follows must name the address
//!    it reached (127.0.0.1), not the domain it could not resolve.
//!
//! SIPp's digest only knows MD5 and answers the first challenge it gets, so these servers
//! list MD5 first (`[modules.authentication] algorithms`); the default is SHA-256 first.
//! Every child is killed on every path; SIPp is bounded by `-m` and by `sipp::finish`
//! (SIGINT after `SIPP_BOUND`, then SIGKILL).

#[path = "common/process.rs"]
mod process;
#[path = "common/sipp.rs"]
mod sipp;
#[path = "common/sotto_server.rs"]
mod sotto_server;

use std::path::{Path, PathBuf};
use std::time::Duration;

use process::{free_udp_port, require_tools};
use sipp::{auth, finish, injection, register, scenario, sipp};
use sotto_server::{ALICE_BOB, DataDir, Server, addrs, is_request, replace};

const INSTALL: &str = "install with: apt-get install -y sip-tester";
/// Calls per SIPp run.
const CALLS: u32 = 3;

/// A `sotto server` with users alice and bob: UDP on a free port, TLS on another, MD5
/// offered first; returns it, its scratch directory and its UDP port.
fn start_server(name: &str) -> (Server, PathBuf, u16) {
    let (dir, data) = DataDir::fresh("srv-sipp", name, "example.test", &ALICE_BOB);
    let port = free_udp_port();
    data.edit_config(|t| {
        replace(t, "listen", "udp", addrs(&[&format!("127.0.0.1:{port}")]));
        replace(t, "listen", "tls", addrs(&["127.0.0.1:0"]));
        // Tests run side by side: the metrics port of each is its own.
        replace(t, "metrics", "listen", "127.0.0.1:0".into());
        md5_first(t);
    });
    (Server::start(name, &data.config(), 2), dir, port)
}

/// SIPp's digest knows MD5 only and answers the first challenge.
fn md5_first(t: &mut toml::Table) {
    replace(
        t,
        "modules.authentication",
        "algorithms",
        addrs(&["MD5", "SHA-256"]),
    );
}

/// Ctrl-C; the server must exit 0 after a `stopped` event; then its directory goes.
fn stop(server: Server, dir: &Path) {
    server.stop();
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn sipp_register_with_digest() {
    require_tools(&[("sipp", "-v")], INSTALL);
    let (mut server, dir, server_port) = start_server("register");
    let port = free_udp_port().to_string();
    register(
        &dir,
        server_port,
        ("alice", "alicepw"),
        &port,
        "2",
        "register",
    );
    server.wait_for(2, "REGISTER 401", |v| {
        is_request(v, "REGISTER", "replied")
            && v["status"] == 401
            && v["module"] == "authentication"
    });
    server.wait_for(2, "REGISTER 200", |v| {
        is_request(v, "REGISTER", "replied") && v["status"] == 200 && v["module"] == "registrar"
    });
    assert!(
        !server.seen.iter().any(|v| v["auth_failure"] == true),
        "no authentication failure expected: {:?}",
        server.seen
    );
    stop(server, &dir);
}

#[test]
fn sipp_call_through_the_proxy() {
    require_tools(&[("sipp", "-v")], INSTALL);
    let (server, dir, server_port) = start_server("call");
    calls(server, &dir, server_port);
}

#[test]
fn sipp_call_on_the_config_sotto_init_writes() {
    require_tools(&[("sipp", "-v")], INSTALL);
    let _ports = process::DefaultPorts::lock();
    let (dir, data) = DataDir::fresh("srv-sipp", "default", "example.test", &ALICE_BOB);
    let port = free_udp_port();
    data.edit_config(|t| {
        replace(t, "listen", "udp", addrs(&[&format!("0.0.0.0:{port}")]));
        md5_first(t);
    });
    let server = Server::start_all("default", &data.config());
    calls(server, &dir, port);
}

/// bob (a SIPp UAS) registers; alice (a SIPp UAC) calls him `CALLS` times through the server.
fn calls(mut server: Server, dir: &Path, server_port: u16) {
    let dir = dir.to_path_buf();
    let uas_port = free_udp_port().to_string();
    let uac_port = free_udp_port().to_string();
    // bob registers the UAS's address.
    register(
        &dir,
        server_port,
        ("bob", "bobpw"),
        &uas_port,
        "1",
        "register bob",
    );
    server.wait_for(1, "REGISTER 200", |v| {
        is_request(v, "REGISTER", "replied") && v["status"] == 200
    });
    let calls = CALLS.to_string();
    let uas_xml = scenario("uas.xml");
    let uas = sipp(
        &dir,
        server_port,
        &[
            "-sf",
            uas_xml.to_str().expect("path"),
            "-p",
            &uas_port,
            "-m",
            &calls,
        ],
    );
    // The UAS must be listening before the first INVITE reaches it.
    std::thread::sleep(Duration::from_millis(500));
    let inf = injection(
        &dir,
        "alice.csv",
        &[&format!("alice;{}", auth("alice", "alicepw"))],
    );
    let uac_xml = scenario("uac_call.xml");
    let uac = sipp(
        &dir,
        server_port,
        &[
            "-sf",
            uac_xml.to_str().expect("path"),
            "-inf",
            &inf,
            "-s",
            "bob",
            "-p",
            &uac_port,
            "-m",
            &calls,
            "-r",
            "5",
        ],
    );
    finish(uac, "uac", &dir);
    finish(uas, "uas", &dir);
    let n = CALLS as usize;
    server.wait_for(n, "INVITE 407", |v| {
        is_request(v, "INVITE", "replied") && v["status"] == 407
    });
    server.wait_for(n, "INVITE forwarded", |v| {
        is_request(v, "INVITE", "forwarded")
    });
    server.wait_for(n, "ACK forwarded", |v| is_request(v, "ACK", "forwarded"));
    server.wait_for(n, "BYE forwarded", |v| is_request(v, "BYE", "forwarded"));
    stop(server, &dir);
}
