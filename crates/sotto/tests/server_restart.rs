//! Registrations survive a restart of `sotto server` (SQLite storage, the default):
//!
//! 1. `sotto init`, users alice and bob; the server listens on UDP (a fixed free loopback
//!    port) besides its TLS listener.
//! 2. alice registers over UDP with digest (her Contact is her own UDP socket).
//! 3. The server is stopped with SIGTERM (it must print `stopped` and exit 0) and started
//!    again on the same config and database file.
//! 4. bob sends a MESSAGE to alice through the new process (407, digest): alice's socket
//!    receives it, so her binding was read back from the file; a REGISTER of alice without
//!    Contact (a query, RFC 3261 §10.2.3) lists her contact too.
//!
//! Every wait is bounded by [`WAIT`] (a failure bound, never asserted on as a duration).

#[path = "common/process.rs"]
mod process;
#[path = "common/sip_client.rs"]
mod sip_client;
#[path = "common/sotto_server.rs"]
mod sotto_server;

use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::time::Duration;

use process::free_udp_port;
use serde_json::Value;
use sotto_server::{ALICE_BOB, DataDir, Server, addrs, replace};
use sotto_sip::digest::{Algorithm, DigestClient};
use sotto_sip::message::{Message, Request, Response, StatusCode};
use sotto_sip::parse::{Limits, parse_message};

/// Failure bound for one wait.
const WAIT: Duration = Duration::from_secs(20);
const DOMAIN: &str = "example.test";

/// A UDP user agent on a std socket.
struct Ua {
    user: &'static str,
    password: &'static str,
    socket: UdpSocket,
    server: SocketAddr,
    digest: DigestClient,
    cseq: u32,
    call_id: String,
}

impl Ua {
    fn new(user: &'static str, password: &'static str, server: SocketAddr) -> Ua {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind UDP");
        socket.set_read_timeout(Some(WAIT)).expect("timeout");
        Ua {
            user,
            password,
            socket,
            server,
            digest: DigestClient::new(sotto_crypto_rust::provider()),
            cseq: 0,
            call_id: String::new(),
        }
    }

    fn addr(&self) -> SocketAddr {
        self.socket.local_addr().expect("local addr")
    }

    fn contact(&self) -> String {
        format!("sip:{}@{}", self.user, self.addr())
    }

    fn request(&mut self, method: &str, to_user: &str, contact: bool, extra: &[String]) -> String {
        if self.call_id.is_empty() {
            self.call_id = format!("{}-{}@restart.test", self.user, std::process::id());
        }
        self.cseq += 1;
        let ruri = if method == "REGISTER" {
            format!("sip:{DOMAIN}")
        } else {
            format!("sip:{to_user}@{DOMAIN}")
        };
        let mut m = format!(
            "{method} {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bK-{}-{}-{};rport\r\nMax-Forwards: 70\r\nFrom: <sip:{}@{DOMAIN}>;tag=f{}\r\nTo: <sip:{to_user}@{DOMAIN}>\r\nCall-ID: {}\r\nCSeq: {} {method}\r\n",
            self.addr(),
            self.user,
            std::process::id(),
            self.cseq,
            self.user,
            self.user,
            self.call_id,
            self.cseq,
        );
        if contact {
            m.push_str(&format!(
                "Contact: <{}>\r\nExpires: 600\r\n",
                self.contact()
            ));
        }
        for h in extra {
            m.push_str(h);
            m.push_str("\r\n");
        }
        m.push_str("Content-Length: 0\r\n\r\n");
        m
    }

    fn send(&self, text: &str) {
        self.socket
            .send_to(text.as_bytes(), self.server)
            .expect("send");
    }

    fn recv(&self) -> Message {
        let mut buf = vec![0u8; 65_536];
        let (n, _) = self
            .socket
            .recv_from(&mut buf)
            .unwrap_or_else(|e| panic!("{}: nothing received: {e}", self.user));
        buf.truncate(n);
        parse_message(buf.into(), &Limits::default()).expect("parsable message")
    }

    fn final_response(&self) -> Response {
        loop {
            match self.recv() {
                Message::Response(r) if r.status().is_final() => return r,
                Message::Response(_) => {}
                Message::Request(r) => panic!("{}: unexpected request {}", self.user, r.method()),
            }
        }
    }

    /// Sends `method`, answers the digest challenge (SHA-256), returns the final response.
    fn authed(&mut self, method: &str, to_user: &str, contact: bool) -> Response {
        let first = self.request(method, to_user, contact, &[]);
        self.send(&first);
        let r = self.final_response();
        if sip_client::challenge_headers(&r).is_none() {
            return r;
        }
        let (creds_h, creds) = sip_client::credentials_for(
            &mut self.digest,
            &r,
            Algorithm::Sha256,
            &first,
            self.user,
            self.password,
        );
        let again = self.request(method, to_user, contact, &[format!("{creds_h}: {creds}")]);
        self.send(&again);
        self.final_response()
    }

    /// Answers a request received on the socket with 200.
    fn ok(&self, req: &Request) {
        let mut r = Response::from_request(req, StatusCode::OK);
        r.set_to_tag("alicetag");
        let via = req.via_top().expect("Via");
        let to: SocketAddr = format!(
            "{}:{}",
            via.received.clone().unwrap_or(via.host.clone()),
            via.rport.flatten().unwrap_or_else(|| via.port_or_default())
        )
        .parse()
        .expect("Via address");
        self.socket.send_to(&r.to_bytes(), to).expect("send 200");
    }
}

/// `sotto init`, users alice and bob, UDP on `port`, TLS and metrics on free ports;
/// returns (scratch dir, data dir).
fn init(name: &str, port: u16) -> (PathBuf, DataDir) {
    let (dir, data) = DataDir::fresh("restart", name, DOMAIN, &ALICE_BOB);
    data.edit_config(|t| {
        replace(t, "listen", "udp", addrs(&[&format!("127.0.0.1:{port}")]));
        replace(t, "listen", "tls", addrs(&["127.0.0.1:0"]));
        replace(t, "metrics", "listen", "127.0.0.1:0".into());
        assert_eq!(
            t["storage"]["kind"].as_str(),
            Some("sqlite"),
            "SQLite is the default storage"
        );
    });
    (dir, data)
}

/// Stops the server with SIGTERM (`stopped`, exit status 0); no event may report an error.
fn stop(server: Server) {
    let events = server.stop_term();
    let errors: Vec<&Value> = events.iter().filter(|v| v.get("error").is_some()).collect();
    assert!(errors.is_empty(), "server errors: {errors:?}");
}

#[test]
fn registration_survives_a_restart() {
    let port = free_udp_port();
    let (dir, data) = init("udp", port);
    let server_addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");

    let server = Server::start_all("restart", &data.config());
    let mut alice = Ua::new("alice", "alicepw", server_addr);
    let r = alice.authed("REGISTER", "alice", true);
    assert_eq!(r.status().0, 200, "alice REGISTER");
    stop(server);

    let server = Server::start_all("restart", &data.config());
    // bob reaches alice through the new process: her binding came back from the file.
    let mut bob = Ua::new("bob", "bobpw", server_addr);
    let first = bob.request("MESSAGE", "alice", false, &[]);
    bob.send(&first);
    let r = bob.final_response();
    assert_eq!(r.status().0, 407, "MESSAGE is challenged");
    let (creds_h, creds) = sip_client::credentials(
        &mut bob.digest,
        &r,
        Algorithm::Sha256,
        "MESSAGE",
        &format!("sip:alice@{DOMAIN}"),
        "bob",
        "bobpw",
    );
    let m = bob.request("MESSAGE", "alice", false, &[format!("{creds_h}: {creds}")]);
    bob.send(&m);
    let req = match alice.recv() {
        Message::Request(r) => r,
        Message::Response(r) => panic!("alice: unexpected response {}", r.status().0),
    };
    assert_eq!(req.method().as_str(), "MESSAGE");
    assert_eq!(
        req.uri().as_str(),
        alice.contact(),
        "retargeted to her contact"
    );
    alice.ok(&req);
    assert_eq!(bob.final_response().status().0, 200, "MESSAGE answered");

    // A REGISTER without Contact lists the binding that was read back.
    let r = alice.authed("REGISTER", "alice", false);
    assert_eq!(r.status().0, 200);
    let contacts: Vec<&str> = r.headers().get_all("Contact").collect();
    assert!(
        contacts.iter().any(|c| c.contains(&alice.contact())),
        "{contacts:?}"
    );
    stop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
