//! Regression (issue 4, proxy bench `call_tls`): a call from a caller on TLS to a callee
//! registered over UDP, through `sotto server` with `downgrade = "warn"`. Every response of the
//! dialog must reach the caller on its TLS connection, the 200 to the BYE included (it used to
//! be relayed to the callee and its 200 never came back, so every call ended in a BYE timeout).
//!
//! The caller behaves like SIPp behind stunnel in the bench: digest with MD5 after 407, a Via
//! naming a port nobody listens on, the route set from the 200's Record-Route, and the ACK and
//! BYE sent back to back. The callee is a real UDP endpoint at its registered Contact. Three
//! calls run one after the other on one TLS connection.
//!
//! Every wait is bounded by [`WAIT`] (a failure bound, never asserted on as a duration), and the
//! server process is killed on every path.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;
use sotto_net::tls;
use sotto_net::{
    Destination, Incoming, IncomingReceiver, Transport, TransportConfig, TransportKind,
};
use sotto_sip::digest::{Algorithm, Challenge, ClientSecret, DigestClient};
use sotto_sip::message::{Message, Request, Response, StatusCode};
use sotto_sip::parse::{Limits, parse_message};

/// Failure bound for one wait.
const WAIT: Duration = Duration::from_secs(20);
const DOMAIN: &str = "example.test";
const CALLS: u32 = 3;

/// Kills (and reaps) the server process when dropped.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn sotto() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sotto"))
}

/// `sotto init` + users alice and bob, then the bench's settings: TLS and UDP listeners on
/// free loopback ports, `downgrade = "warn"`, MD5 only (as SIPp), metrics on a free port.
fn init() -> (PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!("sotto-tls2udp-{}", std::process::id()));
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
    let mut changed = 0;
    let out: Vec<String> = text
        .lines()
        .map(|l| {
            let new = if l.starts_with("tls = ") {
                "tls = [\"127.0.0.1:0\"]"
            } else if l.starts_with("udp = ") {
                "udp = [\"127.0.0.1:0\"]"
            } else if l.starts_with("downgrade = ") {
                "downgrade = \"warn\""
            } else if l.starts_with("algorithms = ") {
                "algorithms = [\"MD5\"]"
            } else if l.starts_with("listen = ") {
                "listen = \"127.0.0.1:0\""
            } else {
                return l.to_owned();
            };
            changed += 1;
            new.to_owned()
        })
        .collect();
    assert_eq!(changed, 5, "the config template changed");
    std::fs::write(&config, out.join("\n")).expect("write config");
    (dir, config)
}

/// A running `sotto --json server`: its listeners and event lines.
struct Server {
    _guard: Guard,
    events: mpsc::Receiver<Value>,
    tls: SocketAddr,
    udp: SocketAddr,
}

impl Server {
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
        let guard = Guard(child);
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
        let (mut tls, mut udp) = (None, None);
        // The metrics line comes after every listener's.
        loop {
            let v = events
                .recv_timeout(WAIT)
                .expect("an event from sotto server");
            assert!(v.get("error").is_none(), "server failed: {v}");
            let addr = || v["addr"].as_str().and_then(|a| a.parse().ok());
            match (v["event"].as_str(), v["transport"].as_str()) {
                (Some("listening"), Some("tls")) => tls = addr(),
                (Some("listening"), Some("udp")) => udp = addr(),
                (Some("metrics" | "metrics_unavailable"), _) => break,
                _ => {}
            }
        }
        Server {
            _guard: guard,
            events,
            tls: tls.expect("a TLS listener"),
            udp: udp.expect("a UDP listener"),
        }
    }

    /// Every `request` event printed so far, as (method, outcome, transport).
    fn requests(&self) -> Vec<(String, String, String)> {
        let s = |v: &Value, k: &str| v[k].as_str().unwrap_or_default().to_owned();
        self.events
            .try_iter()
            .filter(|v| v["event"] == "request")
            .map(|v| (s(&v, "method"), s(&v, "outcome"), s(&v, "transport")))
            .collect()
    }
}

/// A port nothing listens on (bound, then released).
fn dead_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

const SDP: &str = "v=0\r\no=alice 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";

/// One side of the call on its own `sotto_net::Transport`.
struct Ua {
    user: &'static str,
    password: &'static str,
    transport: Transport,
    rx: IncomingReceiver,
    server: Destination,
    /// What the Via says (SIPp behind stunnel says TCP, and a port of its own).
    via_transport: &'static str,
    via_port: u16,
    contact: String,
    branches: u32,
}

impl Ua {
    async fn next(&mut self) -> (Message, Incoming) {
        let m = tokio::time::timeout(WAIT, self.rx.recv())
            .await
            .unwrap_or_else(|_| panic!("{}: nothing received", self.user))
            .expect("transport running");
        let msg = parse_message(m.data.clone(), &Limits::default()).expect("parsable message");
        (msg, m)
    }

    /// The next final response (1xx skipped; a request here is a failure).
    async fn final_response(&mut self) -> Response {
        loop {
            match self.next().await.0 {
                Message::Response(r) if r.status().is_final() => return r,
                Message::Response(_) => {}
                Message::Request(r) => panic!("{}: unexpected request {}", self.user, r.method()),
            }
        }
    }

    /// The next request (a response here is a failure).
    async fn next_request(&mut self) -> (Request, Incoming) {
        match self.next().await {
            (Message::Request(r), m) => (r, m),
            (Message::Response(r), _) => {
                panic!("{}: unexpected response {}", self.user, r.status().0)
            }
        }
    }

    async fn send(&self, text: String) {
        self.transport
            .send(&self.server, bytes::Bytes::from(text))
            .await
            .expect("send");
    }

    fn via(&mut self) -> String {
        self.branches += 1;
        format!(
            "SIP/2.0/{} 127.0.0.1:{};branch=z9hG4bK-{}-{}-{}",
            self.via_transport,
            self.via_port,
            self.user,
            std::process::id(),
            self.branches
        )
    }

    /// A request of dialog `call` (`to_tag` and `route` once the dialog exists).
    #[allow(clippy::too_many_arguments)]
    fn request(
        &mut self,
        method: &str,
        ruri: &str,
        call: &str,
        cseq: u32,
        to_tag: Option<&str>,
        route: &[String],
        extra: &[String],
        body: &str,
    ) -> String {
        let to_user = if method == "REGISTER" {
            self.user
        } else {
            "bob"
        };
        let to_tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
        let mut m = format!(
            "{method} {ruri} SIP/2.0\r\nVia: {}\r\nMax-Forwards: 70\r\nFrom: <sip:{}@{DOMAIN}>;tag=f-{call}\r\n\
             To: <sip:{to_user}@{DOMAIN}>{to_tag}\r\nCall-ID: {call}\r\nCSeq: {cseq} {method}\r\nContact: <{}>\r\n",
            self.via(),
            self.user,
            self.contact,
        );
        for r in route {
            m.push_str(&format!("Route: {r}\r\n"));
        }
        for h in extra {
            m.push_str(&format!("{h}\r\n"));
        }
        if !body.is_empty() {
            m.push_str("Content-Type: application/sdp\r\n");
        }
        m.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        m
    }

    /// Digest credentials (MD5) answering the challenge in `resp`.
    fn credentials(&self, resp: &Response, method: &str, ruri: &str) -> String {
        let (challenge_h, creds_h) = if resp.status().0 == 401 {
            ("WWW-Authenticate", "Authorization")
        } else {
            ("Proxy-Authenticate", "Proxy-Authorization")
        };
        let c = resp
            .headers()
            .get_all(challenge_h)
            .filter_map(|v| Challenge::parse(v).ok())
            .find(|c| c.algorithm == Algorithm::Md5)
            .expect("an MD5 challenge");
        let creds = DigestClient::new(sotto_crypto_rust::provider())
            .respond(
                &c,
                method,
                ruri,
                self.user,
                ClientSecret::Password(self.password),
            )
            .expect("digest response");
        format!("{creds_h}: {creds}")
    }

    /// Answers `req` with `status` (To tag, Record-Route copied, Contact, `body`).
    async fn answer(&self, req: &Request, incoming: &Incoming, status: u16, body: &str) {
        let mut r = Response::from_request(req, StatusCode(status));
        r.set_to_tag("bobtag");
        for rr in req.headers().get_all("Record-Route") {
            r.headers_mut().push("Record-Route", rr);
        }
        r.headers_mut()
            .push("Contact", format!("<{}>", self.contact));
        if !body.is_empty() {
            r.headers_mut().push("Content-Type", "application/sdp");
            r.set_body(body.as_bytes().to_vec());
        }
        self.transport
            .reply(incoming, r.to_bytes())
            .await
            .expect("send response");
    }
}

fn cseq_of(r: &Response) -> String {
    r.headers().get("CSeq").unwrap_or_default().to_owned()
}

#[tokio::test]
async fn bye_from_a_tls_caller_to_a_udp_callee_is_answered() {
    let (dir, config) = init();
    let server = Server::start(&config);

    // bob: a UDP endpoint, registered at its own address.
    let (transport, rx) = Transport::new(TransportConfig::default());
    let bob_addr = transport
        .bind_udp("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("bind UDP");
    let mut bob = Ua {
        user: "bob",
        password: "bobpw",
        transport,
        rx,
        server: Destination::new(TransportKind::Udp, server.udp),
        via_transport: "UDP",
        via_port: bob_addr.port(),
        contact: format!("sip:bob@{bob_addr}"),
        branches: 0,
    };
    let ruri = format!("sip:{DOMAIN}");
    let reg = bob.request("REGISTER", &ruri, "reg-bob", 1, None, &[], &[], "");
    bob.send(reg).await;
    let r = bob.final_response().await;
    assert_eq!(r.status().0, 401, "REGISTER challenged");
    let creds = bob.credentials(&r, "REGISTER", &ruri);
    let reg = bob.request("REGISTER", &ruri, "reg-bob", 2, None, &[], &[creds], "");
    bob.send(reg).await;
    assert_eq!(bob.final_response().await.status().0, 200, "bob registered");

    // alice: TLS, a Via like SIPp's behind stunnel (TCP, a port nobody listens on).
    let ca = config.parent().expect("data dir").join("ca.pem");
    let client = tls::client_config_from_ca_file(&ca).expect("client config");
    let (transport, rx) = Transport::new(TransportConfig {
        tls_client: Some(client),
        ..TransportConfig::default()
    });
    let port = dead_port();
    let mut alice = Ua {
        user: "alice",
        password: "alicepw",
        transport,
        rx,
        server: Destination::new(TransportKind::Tls, server.tls),
        via_transport: "TCP",
        via_port: port,
        contact: format!("sip:alice@127.0.0.1:{port};transport=tcp"),
        branches: 0,
    };

    for n in 1..=CALLS {
        let call = format!("call-{n}-{}", std::process::id());
        let ruri = format!("sip:bob@{DOMAIN}");
        // INVITE → 407 → ACK, INVITE with credentials.
        let invite = alice.request("INVITE", &ruri, &call, 1, None, &[], &[], SDP);
        alice.send(invite.clone()).await;
        let r = alice.final_response().await;
        assert_eq!(r.status().0, 407, "call {n}: INVITE challenged");
        let via = invite
            .split("\r\n")
            .find_map(|l| l.strip_prefix("Via: "))
            .expect("our Via");
        let to = r.headers().get("To").expect("To").to_owned();
        let ack = format!(
            "ACK {ruri} SIP/2.0\r\nVia: {via}\r\nMax-Forwards: 70\r\nFrom: <sip:alice@{DOMAIN}>;tag=f-{call}\r\n\
             To: {to}\r\nCall-ID: {call}\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
        );
        alice.send(ack).await;
        let creds = alice.credentials(&r, "INVITE", &ruri);
        let invite = alice.request("INVITE", &ruri, &call, 2, None, &[], &[creds], SDP);
        alice.send(invite).await;

        // bob gets the INVITE over UDP and answers 200.
        let (inv, incoming) = bob.next_request().await;
        assert_eq!(inv.method().as_str(), "INVITE", "call {n}");
        bob.answer(&inv, &incoming, 200, SDP).await;
        let ok = alice.final_response().await;
        assert_eq!(ok.status().0, 200, "call {n}: INVITE answered");
        assert_eq!(cseq_of(&ok), "2 INVITE");

        // The route set: the Record-Route reversed (RFC 3261 §12.1.2).
        let mut route: Vec<String> = ok
            .headers()
            .get_all("Record-Route")
            .flat_map(|v| {
                v.split(',')
                    .map(|s| s.trim().to_owned())
                    .collect::<Vec<_>>()
            })
            .collect();
        assert!(!route.is_empty(), "call {n}: the 200 has no Record-Route");
        route.reverse();
        let target = format!("sip:bob@{bob_addr}");

        // ACK and BYE back to back, as SIPp does with no hold time.
        let ack = alice.request("ACK", &target, &call, 2, Some("bobtag"), &route, &[], "");
        let bye = alice.request("BYE", &target, &call, 3, Some("bobtag"), &route, &[], "");
        alice.send(ack).await;
        alice.send(bye).await;
        let (ack, _) = bob.next_request().await;
        assert_eq!(ack.method().as_str(), "ACK", "call {n}");
        let (bye, incoming) = bob.next_request().await;
        assert_eq!(bye.method().as_str(), "BYE", "call {n}");
        bob.answer(&bye, &incoming, 200, "").await;

        // The regression: the BYE's 200 reaches the caller on its TLS connection.
        let done = alice.final_response().await;
        assert_eq!(done.status().0, 200, "call {n}: BYE answered");
        assert_eq!(cseq_of(&done), "3 BYE", "call {n}");
        assert_eq!(
            done.headers().get("Call-ID"),
            Some(call.as_str()),
            "call {n}"
        );
    }

    // The server saw every call's requests over TLS and forwarded them.
    let forwarded = server
        .requests()
        .into_iter()
        .filter(|(m, o, t)| o == "forwarded" && t == "tls" && (m == "BYE" || m == "INVITE"))
        .count();
    assert_eq!(forwarded, 2 * CALLS as usize, "INVITE and BYE of each call");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
