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

#[path = "common/process.rs"]
mod process;
#[path = "common/sip_client.rs"]
mod sip_client;
#[path = "common/sotto_server.rs"]
mod sotto_server;

use std::path::PathBuf;
use std::time::Duration;

use process::free_tcp_port;
use serde_json::Value;
use sotto_net::tls;
use sotto_net::{
    Destination, Incoming, IncomingReceiver, Transport, TransportConfig, TransportKind,
};
use sotto_server::{ALICE_BOB, DataDir, Server, addrs, replace};
use sotto_sip::digest::{Algorithm, DigestClient};
use sotto_sip::message::{Request, Response};

/// Failure bound for one wait.
const WAIT: Duration = Duration::from_secs(20);
const DOMAIN: &str = "example.test";
const CALLS: u32 = 3;

/// `sotto init` + users alice and bob, then the bench's settings: TLS and UDP listeners on
/// free loopback ports, `downgrade = "warn"`, MD5 only (as SIPp), metrics on a free port;
/// returns (scratch dir, data dir).
fn init() -> (PathBuf, DataDir) {
    let (dir, data) = DataDir::fresh("tls2udp", "call", DOMAIN, &ALICE_BOB);
    data.edit_config(|t| {
        replace(t, "listen", "tls", addrs(&["127.0.0.1:0"]));
        replace(t, "listen", "udp", addrs(&["127.0.0.1:0"]));
        replace(t, "security", "downgrade", "warn".into());
        replace(t, "modules.authentication", "algorithms", addrs(&["MD5"]));
        replace(t, "metrics", "listen", "127.0.0.1:0".into());
    });
    (dir, data)
}

/// Every `request` event the server printed so far, as (method, outcome, transport).
fn requests(server: &mut Server) -> Vec<(String, String, String)> {
    let s = |v: &Value, k: &str| v[k].as_str().unwrap_or_default().to_owned();
    server.drain();
    server
        .seen
        .iter()
        .filter(|v| v["event"] == "request")
        .map(|v| (s(v, "method"), s(v, "outcome"), s(v, "transport")))
        .collect()
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
    /// The next final response (1xx skipped; a request here is a failure).
    async fn final_response(&mut self) -> Response {
        sip_client::final_response(&mut self.rx, self.user, WAIT).await
    }

    /// The next request (a response here is a failure).
    async fn next_request(&mut self) -> (Request, Incoming) {
        sip_client::next_request(&mut self.rx, self.user, WAIT).await
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

    /// Digest credentials (MD5) answering the challenge in `resp`, as a header line.
    fn credentials(&self, resp: &Response, method: &str, ruri: &str) -> String {
        let (creds_h, creds) = sip_client::credentials(
            &mut DigestClient::new(sotto_crypto_rust::provider()),
            resp,
            Algorithm::Md5,
            method,
            ruri,
            self.user,
            self.password,
        );
        format!("{creds_h}: {creds}")
    }

    /// Answers `req` with `status` (To tag, Record-Route copied, Contact, `body`).
    async fn answer(&self, req: &Request, incoming: &Incoming, status: u16, body: &str) {
        let mut r = sip_client::response_to(req, status, "bobtag");
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
    let (dir, data) = init();
    let mut server = Server::start_all("tls2udp", &data.config());

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
        server: Destination::new(TransportKind::Udp, server.addr("udp")),
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
    let ca = data.ca();
    let client = tls::client_config_from_ca_file(&ca).expect("client config");
    let (transport, rx) = Transport::new(TransportConfig {
        tls_client: Some(client),
        ..TransportConfig::default()
    });
    let port = free_tcp_port();
    let mut alice = Ua {
        user: "alice",
        password: "alicepw",
        transport,
        rx,
        server: Destination::new(TransportKind::Tls, server.addr("tls")),
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
        let ack = sip_client::ack_for_error(&invite, &r);
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
    let forwarded = requests(&mut server)
        .into_iter()
        .filter(|(m, o, t)| o == "forwarded" && t == "tls" && (m == "BYE" || m == "INVITE"))
        .count();
    assert_eq!(forwarded, 2 * CALLS as usize, "INVITE and BYE of each call");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
