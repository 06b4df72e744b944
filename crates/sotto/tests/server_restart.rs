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

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;
use sotto_sip::digest::{Algorithm, Challenge, ClientSecret, DigestClient};
use sotto_sip::message::{Message, Request, Response, StatusCode};
use sotto_sip::parse::{Limits, parse_message};

/// Failure bound for one wait.
const WAIT: Duration = Duration::from_secs(20);
const DOMAIN: &str = "example.test";

/// Kills (and reaps) a child process when dropped.
struct Guard(Option<Child>);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn sotto() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sotto"))
}

/// A running `sotto --json server`.
struct Server {
    guard: Guard,
    events: mpsc::Receiver<Value>,
}

impl Server {
    /// Starts the server and waits until its listeners are up (the metrics line is last).
    fn start(config: &Path) -> Server {
        let mut child = sotto()
            .args(["--json", "server", "--config"])
            .arg(config)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn sotto server");
        let stdout = child.stdout.take().expect("server stdout");
        let (tx, events) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let Ok(v) = serde_json::from_str::<Value>(&line) else {
                    continue;
                };
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        let server = Server {
            guard: Guard(Some(child)),
            events,
        };
        server.wait_for(|v| v["event"] == "metrics" || v["event"] == "metrics_unavailable");
        server
    }

    fn wait_for(&self, pred: impl Fn(&Value) -> bool) -> Value {
        loop {
            let v = self
                .events
                .recv_timeout(WAIT)
                .expect("an event from sotto server");
            assert!(v.get("error").is_none(), "server failed: {v}");
            if pred(&v) {
                return v;
            }
        }
    }

    /// SIGTERM: `stopped`, then exit status 0.
    fn stop(mut self) {
        let child = self.guard.0.as_mut().expect("server running");
        let ok = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(ok.success());
        self.wait_for(|v| v["event"] == "stopped");
        let mut child = self.guard.0.take().expect("server running");
        let status = child.wait().expect("wait for server");
        assert!(status.success(), "server exit status {status}");
    }
}

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
        let (challenge_h, creds_h) = match r.status().0 {
            401 => ("WWW-Authenticate", "Authorization"),
            407 => ("Proxy-Authenticate", "Proxy-Authorization"),
            _ => return r,
        };
        let c = r
            .headers()
            .get_all(challenge_h)
            .filter_map(|v| Challenge::parse(v).ok())
            .find(|c| c.algorithm == Algorithm::Sha256)
            .expect("SHA-256 challenge");
        let ruri = first.split(' ').nth(1).expect("request URI").to_owned();
        let creds = self
            .digest
            .respond(
                &c,
                method,
                &ruri,
                self.user,
                ClientSecret::Password(self.password),
            )
            .expect("digest");
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

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("free UDP port")
        .port()
}

/// `sotto init`, users alice and bob, UDP on `port`, TLS and metrics on free ports.
fn init(name: &str, port: u16) -> (PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!("sotto-restart-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let data = dir.join("data");
    let ok = sotto()
        .args(["init", "--dir"])
        .arg(&data)
        .args(["--domain", DOMAIN])
        .stdout(Stdio::null())
        .status()
        .expect("run sotto init");
    assert!(ok.success(), "sotto init failed");
    let config = data.join("sotto.toml");
    for (user, pw) in [("alice", "alicepw"), ("bob", "bobpw")] {
        let ok = sotto()
            .args(["user", "add", user, "--password", pw, "--config"])
            .arg(&config)
            .stdout(Stdio::null())
            .status()
            .expect("run sotto user add");
        assert!(ok.success(), "sotto user add {user} failed");
    }
    let text = std::fs::read_to_string(&config).expect("read config");
    let text: Vec<String> = text
        .lines()
        .map(|l| {
            if l.starts_with("udp = ") {
                format!("udp = [\"127.0.0.1:{port}\"]")
            } else if l.starts_with("tls = ") {
                "tls = [\"127.0.0.1:0\"]".to_owned()
            } else if l.starts_with("listen = ") {
                "listen = \"127.0.0.1:0\"".to_owned()
            } else {
                l.to_owned()
            }
        })
        .collect();
    assert!(text.iter().any(|l| l.starts_with("kind = \"sqlite\"")));
    std::fs::write(&config, text.join("\n")).expect("write config");
    (dir, config)
}

#[test]
fn registration_survives_a_restart() {
    let port = free_udp_port();
    let (dir, config) = init("udp", port);
    let server_addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");

    let server = Server::start(&config);
    let mut alice = Ua::new("alice", "alicepw", server_addr);
    let r = alice.authed("REGISTER", "alice", true);
    assert_eq!(r.status().0, 200, "alice REGISTER");
    server.stop();

    let server = Server::start(&config);
    // bob reaches alice through the new process: her binding came back from the file.
    let mut bob = Ua::new("bob", "bobpw", server_addr);
    let first = bob.request("MESSAGE", "alice", false, &[]);
    bob.send(&first);
    let r = bob.final_response();
    assert_eq!(r.status().0, 407, "MESSAGE is challenged");
    let c = r
        .headers()
        .get_all("Proxy-Authenticate")
        .filter_map(|v| Challenge::parse(v).ok())
        .find(|c| c.algorithm == Algorithm::Sha256)
        .expect("challenge");
    let creds = bob
        .digest
        .respond(
            &c,
            "MESSAGE",
            &format!("sip:alice@{DOMAIN}"),
            "bob",
            ClientSecret::Password("bobpw"),
        )
        .expect("digest");
    let m = bob.request(
        "MESSAGE",
        "alice",
        false,
        &[format!("Proxy-Authorization: {creds}")],
    );
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
    server.stop();
    let _ = std::fs::remove_dir_all(&dir);
}
