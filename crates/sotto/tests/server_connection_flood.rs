//! One source cannot take every connection slot: `sotto server` with `[connections]
//! per_source` small, flooded with idle TCP connections from 127.0.0.1, still answers a
//! client connecting from 127.0.0.2; the flood's connections beyond the per-source share are
//! closed at once. A connection that makes no authenticated request within
//! `[connections] unauthenticated_secs` is closed; a registered agent's is kept. On the TLS
//! listener with the default per-source share, a flood of connections that never start their
//! handshake cannot hold every handshake slot: another source still completes its handshake.
//! (Listeners on 0.0.0.0 as `sotto init` writes them, free ports; clients on loopback only;
//! bounded: 300 connections.)

#[path = "common/agent.rs"]
mod agent;
#[path = "common/process.rs"]
mod process;
#[path = "common/sotto_server.rs"]
mod sotto_server;
#[path = "common/tls_client.rs"]
mod tls_client;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use process::{closed_within, tcp_from};
use sotto_server::{DataDir, Server, set};

const PER_SOURCE: usize = 16;

/// Whether the server closed `s` (end of stream or a reset) within `wait`.
fn closed(s: &TcpStream, wait: Duration) -> bool {
    let mut r = s;
    closed_within(&mut r, |d| s.set_read_timeout(Some(d)).unwrap(), wait).0
}

/// Sends an OPTIONS over `stream` (transport `proto` in its Via, from `local`) and asserts
/// that a SIP response comes back.
fn assert_options_answered(
    stream: &mut (impl Read + Write),
    proto: &str,
    local: SocketAddr,
    call_id: &str,
) {
    let options = format!(
        "OPTIONS sip:example.test SIP/2.0\r\nVia: SIP/2.0/{proto} {local};branch=z9hG4bK{call_id}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:probe@example.test>;tag=1\r\nTo: <sip:example.test>\r\n\
         Call-ID: {call_id}@{}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
        local.ip()
    );
    stream
        .write_all(options.as_bytes())
        .expect("the other source can send (for TLS: its handshake completes)");
    let mut buf = vec![0u8; 2048];
    let n = stream
        .read(&mut buf)
        .expect("an answer to the other source");
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.starts_with("SIP/2.0 "), "{text}");
}

#[test]
fn idle_tls_connections_from_one_source_leave_handshakes_for_others() {
    let tmp = tempfile::tempdir().unwrap();
    let data = DataDir::init_for(&tmp.path().join("server"), "example.test", &[]);
    data.edit_config(|t| {
        set(t, "listen", "tls", sotto_server::addrs(&["0.0.0.0:0"]));
        set(t, "metrics", "enabled", toml::Value::Boolean(false));
    });
    let server = Server::start("tls-flood", &data.config(), 1);
    let addr = server.addr("tls");
    // 300 connections that never send a ClientHello: more than the listener's 256 handshakes
    // at once, all from one address (its per-source share of connections is 256).
    let flood: Vec<TcpStream> = (0..300).map(|_| tcp_from("127.0.0.1", addr)).collect();
    std::thread::sleep(Duration::from_millis(300));
    let tcp = tcp_from("127.0.0.2", addr);
    let local = tcp.local_addr().unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut other = tls_client::over(tcp, &tls_client::config(&data.ca()), "example.test");
    assert_options_answered(&mut other, "TLS", local, "flood-2");
    drop(flood);
    server.stop();
}

#[test]
fn a_flood_from_one_source_leaves_room_for_others() {
    let tmp = tempfile::tempdir().unwrap();
    let data = DataDir::init_for(
        &tmp.path().join("server"),
        "example.test",
        &[("alice", "alicepw")],
    );
    data.edit_config(|t| {
        set(t, "listen", "tls", sotto_server::addrs(&[]));
        set(t, "listen", "tcp", sotto_server::addrs(&["0.0.0.0:0"]));
        set(t, "metrics", "enabled", toml::Value::Boolean(false));
        set(
            t,
            "connections",
            "per_source",
            toml::Value::Integer(PER_SOURCE as i64),
        );
    });
    let server = Server::start("flood", &data.config(), 1);
    let addr = server.addr("tcp");
    // The flood: 200 idle connections from 127.0.0.1.
    let flood: Vec<TcpStream> = (0..200).map(|_| tcp_from("127.0.0.1", addr)).collect();
    std::thread::sleep(Duration::from_millis(300));
    let open = flood
        .iter()
        .filter(|s| !closed(s, Duration::from_millis(20)))
        .count();
    assert_eq!(
        open, PER_SOURCE,
        "the flood keeps only its share of connections"
    );
    // Another source is still served: OPTIONS over TCP from 127.0.0.2 gets an answer.
    let mut other = tcp_from("127.0.0.2", addr);
    let local = other.local_addr().unwrap();
    other
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    assert_options_answered(&mut other, "TCP", local, "flood-1");
    drop(flood);
    server.stop();
}

/// With `unauthenticated_secs = 1`: a TCP connection that only sends OPTIONS is closed after
/// about a second; an agent that registered (digest) over TLS keeps its connection (no
/// reconnection for 3 s).
#[test]
fn connections_that_never_authenticate_are_closed() {
    let tmp = tempfile::tempdir().unwrap();
    let data = DataDir::init_for(
        &tmp.path().join("server"),
        "example.test",
        &[("alice", "alicepw")],
    );
    data.edit_config(|t| {
        set(t, "listen", "tls", sotto_server::addrs(&["0.0.0.0:0"]));
        set(t, "listen", "tcp", sotto_server::addrs(&["0.0.0.0:0"]));
        set(t, "metrics", "enabled", toml::Value::Boolean(false));
        set(
            t,
            "connections",
            "unauthenticated_secs",
            toml::Value::Integer(1),
        );
    });
    let server = Server::start("unauth", &data.config(), 2);
    let mut idle = tcp_from("127.0.0.1", server.addr("tcp"));
    let local = idle.local_addr().unwrap();
    let options = format!(
        "OPTIONS sip:example.test SIP/2.0\r\nVia: SIP/2.0/TCP {local};branch=z9hG4bKun1\r\n\
         Max-Forwards: 70\r\nFrom: <sip:probe@example.test>;tag=1\r\nTo: <sip:example.test>\r\n\
         Call-ID: unauth-1@{}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
        local.ip()
    );
    idle.write_all(options.as_bytes()).unwrap();
    let started = std::time::Instant::now();
    idle.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = vec![0u8; 4096];
    // The answer to OPTIONS, then the close.
    let n = idle.read(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("SIP/2.0 "));
    loop {
        match idle.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
    let after = started.elapsed();
    assert!(
        after < Duration::from_secs(4),
        "the unauthenticated connection was closed ({after:?})"
    );
    let account = agent::AgentAccount::init(
        &tmp.path().join("alice"),
        "alice",
        "alicepw",
        server.addr("tls"),
        &data.ca(),
    );
    let mut alice = account.spawn("alice", &["register"]);
    alice.wait_event("registered", Duration::from_secs(15));
    std::thread::sleep(Duration::from_secs(3));
    alice.drain();
    assert_eq!(
        alice.count("reconnected"),
        0,
        "the registered agent kept its connection"
    );
    alice.stop(Duration::from_secs(10));
    server.stop();
}
