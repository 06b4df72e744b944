//! Two `sotto server` processes sharing one Redis (Debian package `redis-server`): a
//! registration made through one is routed by the other, and the survivor keeps routing
//! after the first is killed (SIGKILL, no goodbye).
//!
//! The test starts its own `redis-server` on a free loopback port in a temp dir (no
//! persistence) and stops it. The SIP peers are SIPp (Debian package `sip-tester`) over UDP:
//! alice registers through server A with digest, her contact being a SIPp UAS on its own UDP
//! port. Alice's contact is therefore reachable without A (a UDP address, not a flow on a
//! connection to A), which is what makes "the other still routes" meaningful; a TLS/TCP
//! registration's flow dies with the server holding the connection.
//!
//! Then bob (a SIPp UAC) calls alice through server B: B finds her binding in Redis and forwards
//! the INVITE; the call completes (INVITE, 407 + digest, 200, ACK, BYE). A is killed, and a
//! second call through B completes the same way. A never sees an INVITE.
//!
//! Every child is killed on every path (drop guards, on SIPp itself, not on a wrapper); SIPp
//! is bounded by `-m` and interrupted after 30 s; every wait is bounded.

#[path = "common/process.rs"]
mod process;
#[path = "common/redis_server.rs"]
mod redis_server;
#[path = "common/sipp.rs"]
mod sipp;
#[path = "common/sotto_server.rs"]
mod sotto_server;

use std::path::Path;
use std::time::Duration;

use process::{free_udp_port, require_tools};
use redis_server::Redis;
use sipp::{auth, finish, injection, register, scenario, sipp};
use sotto_server::{DataDir, Server, addrs, is_request, set};

const INSTALL: &str = "install with: apt-get install -y redis-server sip-tester";

fn require_peers() {
    require_tools(&[("redis-server", "--version"), ("sipp", "-v")], INSTALL);
}

/// One server of the pair: its own data dir (users alice and bob), UDP only, Redis bindings.
fn start_server(base: &Path, name: &str, redis_url: &str) -> Server {
    let data = DataDir::init(&base.join(name), &[("alice", "alicepw"), ("bob", "bobpw")]);
    data.edit_config(|t| {
        set(t, "listen", "tls", addrs(&[]));
        set(t, "listen", "tcp", addrs(&[]));
        set(t, "listen", "udp", addrs(&["127.0.0.1:0"]));
        // SIPp's digest knows only MD5 and answers the first challenge.
        set(
            t,
            "modules.authentication",
            "algorithms",
            toml::Value::Array(vec!["MD5".into(), "SHA-256".into()]),
        );
        set(t, "storage", "kind", "redis".into());
        set(t, "storage", "url", redis_url.into());
        set(t, "metrics", "enabled", false.into());
    });
    Server::start(name, &data.config(), 1)
}

/// bob calls alice through `server_port` (one call: INVITE, 407, INVITE, 200, ACK, BYE).
fn call_alice(dir: &Path, server_port: u16, what: &str) {
    let inf = injection(dir, "bob.csv", &[&format!("bob;{}", auth("bob", "bobpw"))]);
    let xml = scenario("uac_call.xml");
    let port = free_udp_port().to_string();
    let uac = sipp(
        dir,
        server_port,
        &[
            "-sf",
            xml.to_str().expect("path"),
            "-inf",
            &inf,
            "-s",
            "alice",
            "-p",
            &port,
            "-m",
            "1",
        ],
    );
    finish(uac, what, dir);
}

#[test]
fn two_servers_on_one_redis_route_each_others_registrations() {
    require_peers();
    let tmp = tempfile::Builder::new()
        .prefix("sotto-redis-pair-")
        .tempdir()
        .expect("temp dir");
    let base = tmp.path();
    let redis = Redis::start(base);
    let mut a = start_server(base, "a", &redis.url());
    let mut b = start_server(base, "b", &redis.url());
    let (port_a, port_b) = (a.addr("udp").port(), b.addr("udp").port());
    let sipp_dir = base.join("sipp");
    std::fs::create_dir_all(&sipp_dir).expect("mkdir sipp");

    // alice registers through A; her contact is the UAS's UDP address.
    let uas_port = free_udp_port().to_string();
    register(
        &sipp_dir,
        port_a,
        ("alice", "alicepw"),
        &uas_port,
        "1",
        "register alice via A",
    );
    a.wait_for(1, "REGISTER 200 at A", |v| {
        is_request(v, "REGISTER", "replied") && v["status"] == 200 && v["module"] == "registrar"
    });
    let aors = redis.count("KEYS *:aor:*alice*");
    assert_eq!(
        aors, 1,
        "alice's address-of-record key in Redis after the registration"
    );

    // alice's UAS answers two calls; both reach it through B.
    let uas_xml = scenario("uas.xml");
    let uas = sipp(
        &sipp_dir,
        port_b,
        &[
            "-sf",
            uas_xml.to_str().expect("path"),
            "-p",
            &uas_port,
            "-m",
            "2",
        ],
    );
    // The UAS must be listening before the first INVITE reaches it.
    std::thread::sleep(Duration::from_millis(500));
    call_alice(&sipp_dir, port_b, "call 1 via B");
    b.wait_for(1, "INVITE forwarded by B", |v| {
        is_request(v, "INVITE", "forwarded")
    });

    // A dies without a goodbye; B still routes to alice.
    a.drain();
    let invites_at_a = a.count(|v| v["event"] == "request" && v["method"] == "INVITE");
    assert_eq!(
        invites_at_a, 0,
        "server A must not have seen the INVITEs sent to B"
    );
    a.kill();
    call_alice(&sipp_dir, port_b, "call 2 via B, A killed");
    finish(uas, "alice's UAS (2 calls)", &sipp_dir);
    b.wait_for(2, "INVITE forwarded by B", |v| {
        is_request(v, "INVITE", "forwarded")
    });
    b.wait_for(2, "BYE forwarded by B", |v| {
        is_request(v, "BYE", "forwarded")
    });
    eprintln!(
        "alice registered via A (port {port_a}); B (port {port_b}) forwarded {} INVITEs to her, \
         the second after A was killed",
        b.count(|v| is_request(v, "INVITE", "forwarded"))
    );
    b.stop();
    drop(redis);
}
