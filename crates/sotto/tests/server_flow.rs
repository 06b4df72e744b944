//! Issue 4, end to end: in-dialog requests reach a device over the TLS connection it
//! registered (or called) on, not at its Contact (RFC 5626 §5.3 flow tokens in the
//! Record-Route of `sotto server`).
//!
//! alice and bob are `sotto_net` TLS clients with no listening socket at all: each registers
//! with digest and a Contact on a port nobody listens on, so the only way anything reaches
//! them is their own connection to the server.
//!
//! 1. alice calls bob; bob answers 200 over his connection; alice's ACK and BYE, sent to bob's
//!    (unreachable) Contact along the route set, reach bob over his connection, and the 200
//!    to the BYE reaches alice.
//! 2. A second call: bob's re-INVITE, his ACK and then his BYE reach alice over her
//!    connection.
//! 3. A Route whose flow token was altered is refused with 403.
//!
//! Every wait is bounded by [`WAIT`] (a failure bound, never asserted on as a duration); the
//! server process is killed on every path.

#[path = "common/process.rs"]
mod process;
#[path = "common/sip_client.rs"]
mod sip_client;
#[path = "common/sotto_server.rs"]
mod sotto_server;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use process::free_tcp_port;
use sotto_net::{
    ConnectionId, Destination, Incoming, IncomingReceiver, Transport, TransportConfig,
    TransportKind, tls,
};
use sotto_server::{DataDir, Server, addrs, is_request, set};
use sotto_sip::digest::{Algorithm, DigestClient};
use sotto_sip::message::{Message, Request, Response, StatusCode};

/// Failure bound of one wait.
const WAIT: Duration = Duration::from_secs(20);
/// The domain `DataDir::init` sets up.
const DOMAIN: &str = "127.0.0.1";
const SDP: &str = "v=0\r\no=x 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";

/// One side of a dialog, as its UA keeps it (RFC 3261 §12.1).
#[derive(Debug, Clone)]
struct Dialog {
    call_id: String,
    local: String,
    remote: String,
    /// The remote target (the peer's Contact URI).
    target: String,
    /// Route values, in the order to send them.
    routes: Vec<String>,
}

/// A TLS user agent on its own `sotto_net::Transport`, with no listening socket.
struct Ua {
    user: &'static str,
    password: &'static str,
    transport: Transport,
    rx: IncomingReceiver,
    server: Destination,
    /// The Contact URI it registers: nobody listens there.
    contact: String,
    digest: DigestClient,
    cseq: u32,
    branches: u32,
}

impl Ua {
    fn new(user: &'static str, password: &'static str, ca: &Path, server: SocketAddr) -> Ua {
        let client = tls::client_config_from_ca_file(ca).expect("client config");
        let (transport, rx) = Transport::new(TransportConfig {
            tls_client: Some(client),
            ..TransportConfig::default()
        });
        Ua {
            user,
            password,
            transport,
            rx,
            server: Destination::new(TransportKind::Tls, server),
            contact: format!("sips:{user}@127.0.0.1:{}", free_tcp_port()),
            digest: DigestClient::new(sotto_crypto_rust::provider()),
            cseq: 0,
            branches: 0,
        }
    }

    fn via(&mut self) -> String {
        self.branches += 1;
        format!(
            "SIP/2.0/TLS 127.0.0.1:{};branch=z9hG4bK-flow-{}-{}-{};rport",
            self.contact.rsplit(':').next().unwrap_or("5061"),
            self.user,
            std::process::id(),
            self.branches
        )
    }

    /// The one connection this UA has: the one it opened to the server.
    fn connection(&self) -> ConnectionId {
        let conns = self.transport.connections();
        assert_eq!(conns.len(), 1, "{}: one connection: {conns:?}", self.user);
        conns[0].0
    }

    /// An out-of-dialog request (`call_id` fixed by the caller).
    fn request(
        &mut self,
        method: &str,
        to_user: &str,
        call_id: &str,
        headers: &[(&str, String)],
        body: &str,
    ) -> String {
        self.cseq += 1;
        let ruri = if method == "REGISTER" {
            format!("sip:{DOMAIN}")
        } else {
            format!("sip:{to_user}@{DOMAIN}")
        };
        let mut m = format!(
            "{method} {ruri} SIP/2.0\r\nVia: {}\r\nMax-Forwards: 70\r\nFrom: <sip:{}@{DOMAIN}>;tag=t{}\r\n\
             To: <sip:{to_user}@{DOMAIN}>\r\nCall-ID: {call_id}\r\nCSeq: {} {method}\r\nContact: <{}>\r\n",
            self.via(),
            self.user,
            self.user,
            self.cseq,
            self.contact,
        );
        for (n, v) in headers {
            m.push_str(&format!("{n}: {v}\r\n"));
        }
        if !body.is_empty() {
            m.push_str("Content-Type: application/sdp\r\n");
        }
        m.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        m
    }

    /// A request inside `d` (CSeq `cseq`): to the remote target, along the route set.
    fn in_dialog(&mut self, d: &Dialog, method: &str, cseq: u32) -> String {
        let mut m = format!(
            "{method} {} SIP/2.0\r\nVia: {}\r\nMax-Forwards: 70\r\n",
            d.target,
            self.via()
        );
        for r in &d.routes {
            m.push_str(&format!("Route: {r}\r\n"));
        }
        m.push_str(&format!(
            "From: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {cseq} {method}\r\nContact: <{}>\r\nContent-Length: 0\r\n\r\n",
            d.local, d.remote, d.call_id, self.contact
        ));
        m
    }

    async fn send(&self, text: String) {
        self.transport
            .send(&self.server, bytes::Bytes::from(text))
            .await
            .expect("send to the server");
    }

    /// The next final response (1xx skipped; a request here fails the test).
    async fn final_response(&mut self) -> Response {
        sip_client::final_response(&mut self.rx, self.user, WAIT).await
    }

    /// The next request; it must have come over this UA's own connection to the server.
    async fn next_request(&mut self) -> (Request, Incoming) {
        let own = self.connection();
        match sip_client::recv(&mut self.rx, self.user, WAIT).await {
            (Message::Request(r), m) => {
                assert_eq!(
                    m.connection,
                    Some(own),
                    "{}: over its connection",
                    self.user
                );
                assert_eq!(
                    m.source, self.server.remote,
                    "{}: from the server",
                    self.user
                );
                assert_eq!(m.transport, TransportKind::Tls);
                (r, m)
            }
            (Message::Response(r), _) => {
                panic!("{}: unexpected response {}", self.user, r.status().0)
            }
        }
    }

    /// Sends `method` with digest (answering the SHA-256 challenge) and returns the final
    /// response, or `None` after sending the authenticated INVITE (its answer comes later).
    async fn authed(
        &mut self,
        method: &str,
        to_user: &str,
        call_id: &str,
        headers: &[(&str, String)],
        body: &str,
    ) -> Option<Response> {
        let first = self.request(method, to_user, call_id, headers, body);
        self.send(first.clone()).await;
        let r = self.final_response().await;
        if sip_client::challenge_headers(&r).is_none() {
            panic!("{}: {method} not challenged: {}", self.user, r.status().0);
        }
        if method == "INVITE" {
            self.ack_error(&first, &r).await;
        }
        let creds = sip_client::credentials_for(
            &mut self.digest,
            &r,
            Algorithm::Sha256,
            &first,
            self.user,
            self.password,
        );
        let mut hs = headers.to_vec();
        hs.push(creds);
        let again = self.request(method, to_user, call_id, &hs, body);
        self.send(again).await;
        if method == "INVITE" {
            None
        } else {
            Some(self.final_response().await)
        }
    }

    /// The ACK for a non-2xx final response (same branch, RFC 3261 §17.1.1.3).
    async fn ack_error(&self, invite: &str, resp: &Response) {
        self.send(sip_client::ack_for_error(invite, resp)).await;
    }

    async fn register(&mut self) {
        let call_id = format!("reg-{}-{}", self.user, std::process::id());
        let r = self
            .authed(
                "REGISTER",
                self.user,
                &call_id,
                &[("Expires", "600".into())],
                "",
            )
            .await
            .expect("REGISTER answered");
        assert_eq!(r.status().0, 200, "{} REGISTER", self.user);
    }

    /// Answers `req` with `status` (To tag `tag`; Record-Route copied; Contact and SDP on a
    /// 2xx to INVITE).
    async fn answer(&self, req: &Request, incoming: &Incoming, status: u16, tag: &str) {
        let mut r = Response::from_request(req, StatusCode(status));
        r.set_to_tag(tag);
        if req.method().as_str() == "INVITE" {
            for rr in req.headers().get_all("Record-Route") {
                r.headers_mut().push("Record-Route", rr);
            }
            r.headers_mut()
                .push("Contact", format!("<{}>", self.contact));
            if status == 200 {
                r.headers_mut().push("Content-Type", "application/sdp");
                r.set_body(SDP.as_bytes().to_vec());
            }
        }
        self.transport
            .reply(incoming, r.to_bytes())
            .await
            .expect("send response");
    }
}

/// Record-Route values of a message, one per element, in order.
fn record_route(headers: &sotto_sip::message::Headers) -> Vec<String> {
    headers
        .get_all("Record-Route")
        .flat_map(|v| v.split(','))
        .map(|v| v.trim().to_owned())
        .collect()
}

/// The URI inside `<…>` of a Contact value.
fn contact_uri(v: &str) -> String {
    v.trim()
        .strip_prefix('<')
        .and_then(|s| s.split_once('>'))
        .map_or(v.trim(), |(u, _)| u)
        .to_owned()
}

/// alice calls bob, bob answers 200; returns (alice's dialog, bob's dialog). Both dialogs
/// name the other's unreachable Contact as remote target.
async fn call(alice: &mut Ua, bob: &mut Ua, call_id: &str) -> (Dialog, Dialog) {
    assert!(
        alice
            .authed("INVITE", "bob", call_id, &[], SDP)
            .await
            .is_none()
    );
    let (invite, incoming) = bob.next_request().await;
    assert_eq!(invite.method().as_str(), "INVITE");
    let rr = record_route(invite.headers());
    // Both parties are flows: one Record-Route value per side, each with its flow token.
    assert_eq!(rr.len(), 2, "{rr:?}");
    for v in &rr {
        assert!(
            v.starts_with("<sip:") && v.contains('@') && v.ends_with(";transport=tls;lr;ob>"),
            "{v}"
        );
    }
    let bob_dialog = Dialog {
        call_id: call_id.to_owned(),
        local: format!("<sip:bob@{DOMAIN}>;tag=bobtag"),
        remote: invite.headers().get("From").expect("From").to_owned(),
        target: contact_uri(invite.headers().get("Contact").expect("Contact")),
        routes: rr.clone(),
    };
    assert_eq!(bob_dialog.target, alice.contact);
    bob.answer(&invite, &incoming, 180, "bobtag").await;
    bob.answer(&invite, &incoming, 200, "bobtag").await;
    let ok = alice.final_response().await;
    assert_eq!(ok.status().0, 200, "INVITE answered");
    let mut routes = record_route(ok.headers());
    assert_eq!(routes, rr, "the 200 carries the Record-Route back");
    routes.reverse();
    let alice_dialog = Dialog {
        call_id: call_id.to_owned(),
        local: ok.headers().get("From").expect("From").to_owned(),
        remote: ok.headers().get("To").expect("To").to_owned(),
        target: contact_uri(ok.headers().get("Contact").expect("Contact")),
        routes,
    };
    assert_eq!(alice_dialog.target, bob.contact);
    (alice_dialog, bob_dialog)
}

#[tokio::test]
async fn in_dialog_requests_reach_both_parties_over_their_flows() {
    let tmp = tempfile::Builder::new()
        .prefix("sotto-flow-")
        .tempdir()
        .expect("temp dir");
    let data = DataDir::init(
        &tmp.path().join("data"),
        &[("alice", "alicepw"), ("bob", "bobpw")],
    );
    data.edit_config(|t| {
        set(t, "listen", "tls", addrs(&["127.0.0.1:0"]));
        set(t, "listen", "tcp", addrs(&[]));
        set(t, "listen", "udp", addrs(&[]));
        set(t, "metrics", "enabled", toml::Value::Boolean(false));
    });
    let mut server = Server::start("flow", &data.config(), 1);
    let tls_addr = server.addr("tls");

    let mut alice = Ua::new("alice", "alicepw", &data.ca(), tls_addr);
    let mut bob = Ua::new("bob", "bobpw", &data.ca(), tls_addr);
    alice.register().await;
    bob.register().await;

    // 1. alice calls; her ACK and BYE go to bob's unreachable Contact along the route set.
    let (a, _) = call(&mut alice, &mut bob, "flow-call-1").await;
    let ack = alice.in_dialog(&a, "ACK", 2);
    alice.send(ack).await;
    let (req, _) = bob.next_request().await;
    assert_eq!(req.method().as_str(), "ACK");
    assert_eq!(req.uri().as_str(), bob.contact, "Request-URI kept");
    assert!(
        req.headers().get("Route").is_none(),
        "our Route values consumed"
    );
    let bye = alice.in_dialog(&a, "BYE", 3);
    alice.send(bye).await;
    let (req, incoming) = bob.next_request().await;
    assert_eq!(req.method().as_str(), "BYE");
    assert_eq!(req.call_id().ok(), Some("flow-call-1"));
    bob.answer(&req, &incoming, 200, "bobtag").await;
    assert_eq!(alice.final_response().await.status().0, 200, "BYE answered");

    // 2. A second call; bob hangs up: his BYE reaches alice over her connection.
    let (a, b) = call(&mut alice, &mut bob, "flow-call-2").await;
    let ack = alice.in_dialog(&a, "ACK", 2);
    alice.send(ack).await;
    let (req, _) = bob.next_request().await;
    assert_eq!(req.method().as_str(), "ACK");
    // bob's re-INVITE and its ACK reach alice over her connection too.
    let reinvite = bob.in_dialog(&b, "INVITE", 1);
    bob.send(reinvite).await;
    let (req, incoming) = alice.next_request().await;
    assert_eq!(req.method().as_str(), "INVITE");
    assert_eq!(req.uri().as_str(), alice.contact);
    assert!(
        req.headers().get("Record-Route").is_none(),
        "no Record-Route inside a dialog"
    );
    alice.answer(&req, &incoming, 200, "ignored").await;
    assert_eq!(
        bob.final_response().await.status().0,
        200,
        "re-INVITE answered"
    );
    let ack = bob.in_dialog(&b, "ACK", 1);
    bob.send(ack).await;
    let (req, _) = alice.next_request().await;
    assert_eq!(req.method().as_str(), "ACK");
    let bye = bob.in_dialog(&b, "BYE", 2);
    bob.send(bye).await;
    let (req, incoming) = alice.next_request().await;
    assert_eq!(req.method().as_str(), "BYE");
    assert_eq!(req.uri().as_str(), alice.contact);
    assert_eq!(req.call_id().ok(), Some("flow-call-2"));
    alice.answer(&req, &incoming, 200, "ignored").await;
    assert_eq!(
        bob.final_response().await.status().0,
        200,
        "bob's BYE answered"
    );

    // 3. An altered flow token: refused, nothing reaches bob.
    let mut forged = a.clone();
    forged.routes = a
        .routes
        .iter()
        .map(|r| {
            // Flip the last hex digit of the tag (just before '@').
            let at = r.find('@').expect("token@host");
            let (head, tail) = r.split_at(at);
            let (rest, last) = head.split_at(head.len() - 1);
            let flipped = if last == "0" { "1" } else { "0" };
            format!("{rest}{flipped}{tail}")
        })
        .collect();
    let bye = alice.in_dialog(&forged, "BYE", 4);
    alice.send(bye).await;
    let r = alice.final_response().await;
    assert_eq!(r.status().0, 403, "altered flow token");
    assert!(
        r.headers()
            .get("Warning")
            .is_some_and(|w| w.contains("flow token")),
        "{:?}",
        r.headers().get("Warning")
    );

    // The server forwarded every in-dialog request (ACKs for 2xx statelessly).
    server.wait_for(2, "BYE forwarded", |v| is_request(v, "BYE", "forwarded"));
    server.wait_for(3, "ACK forwarded", |v| is_request(v, "ACK", "forwarded"));
    server.wait_for(3, "INVITE forwarded", |v| {
        is_request(v, "INVITE", "forwarded")
    });
    server.wait_for(1, "BYE refused", |v| {
        is_request(v, "BYE", "replied") && v["status"] == 403
    });
    server.stop();
}
