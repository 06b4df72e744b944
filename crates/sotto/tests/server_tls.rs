//! `sotto server` end to end over TLS, with clients built on `sotto_net` (no real peer needed):
//!
//! 1. `sotto init` + `sotto user add`; the server listens on TLS (and, for the downgrade
//!    checks, UDP) on free loopback ports; metrics on a free loopback port.
//! 2. alice registers over TLS with digest, answering the SHA-256 challenge, then refreshes
//!    answering the MD5 one; bob registers over TLS with a Contact nobody listens on, so a
//!    request reaches him only over the connection he registered on (RFC 5626 flow reuse).
//! 3. alice sends MESSAGE and INVITE to bob through the server (407 + digest); bob receives
//!    both on his connection and answers; the INVITE (a `sip:` request over TLS) carries a
//!    `sip:…;transport=tls` Record-Route, which every client can follow (never `sips:` for a
//!    `sip:` request).
//! 4. No silent downgrade: from UDP, an INVITE with `a=crypto` to bob is refused with 488 +
//!    Warning, and a MESSAGE with 403 + Warning (`downgrade = "refuse"`); bob receives neither.
//! 5. A client that does not trust the init CA fails the handshake.
//! 6. `client_auth = "optional"`: a client certificate from the init CA with the SAN URI
//!    `sip:alice@example.test` registers alice without digest; as bob it is challenged.
//! 7. `/metrics` reports the registrations, requests and auth failures; repeated wrong
//!    passwords for `ban_after_accounts` accounts get a source banned; SIGTERM stops the server
//!    with status 0.
//!
//! Every wait is bounded by [`WAIT`] (a failure bound, never asserted on as a duration), and the
//! server process is killed on every path.

#[path = "common/pki.rs"]
mod pki;
#[path = "common/process.rs"]
mod process;
#[path = "common/sip_client.rs"]
mod sip_client;
#[path = "common/sotto_server.rs"]
mod sotto_server;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use pki::init_ca_client_cert;
use process::free_tcp_port;
use serde_json::{Value, json};
use sotto_net::tls;
use sotto_net::{
    Destination, Incoming, IncomingReceiver, Transport, TransportConfig, TransportKind,
};
use sotto_server::{ALICE_BOB, DataDir, Server, addrs, replace, sample, scrape};
use sotto_sip::digest::{Algorithm, DigestClient};
use sotto_sip::message::{Request, Response};

/// Failure bound for one wait.
const WAIT: Duration = Duration::from_secs(20);
const DOMAIN: &str = "example.test";

/// `sotto init` into a fresh directory, users alice and bob, TLS on a free port, metrics on
/// a free loopback port, then `edit` applied to the config; returns (scratch dir, data dir).
fn init(name: &str, edit: impl FnOnce(&mut toml::Table)) -> (PathBuf, DataDir) {
    let (dir, data) = DataDir::fresh("srv-tls", name, DOMAIN, &ALICE_BOB);
    data.edit_config(|t| {
        replace(t, "listen", "tls", addrs(&["127.0.0.1:0"]));
        replace(t, "metrics", "listen", "127.0.0.1:0".into());
        edit(t);
    });
    (dir, data)
}

const SDP: &str = "v=0\r\no=alice 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";
const SDP_SDES: &str = "v=0\r\no=alice 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/SAVP 0\r\na=rtpmap:0 PCMU/8000\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\n";

/// A SIP user agent on its own `sotto_net::Transport` (its own connection to the server).
struct Ua {
    user: &'static str,
    password: &'static str,
    transport: Transport,
    rx: IncomingReceiver,
    server: Destination,
    /// The Contact URI this UA registers.
    contact: String,
    digest: DigestClient,
    cseq: u32,
    branches: u32,
    call_id: String,
}

impl Ua {
    /// A TLS UA trusting `ca`, optionally presenting a client certificate.
    fn tls(
        user: &'static str,
        password: &'static str,
        ca: &Path,
        server: SocketAddr,
        client_cert: Option<(
            Vec<rustls_pki_types::CertificateDer<'static>>,
            rustls_pki_types::PrivateKeyDer<'static>,
        )>,
    ) -> Ua {
        let roots = tls::read_certs(ca).expect("read CA");
        let client = match client_cert {
            None => tls::client_config_from_ca_file(ca).expect("client config"),
            Some(c) => tls::client_config(roots, Some(c)).expect("client config with cert"),
        };
        let (transport, rx) = Transport::new(TransportConfig {
            tls_client: Some(client),
            ..TransportConfig::default()
        });
        Ua::new(user, password, transport, rx, TransportKind::Tls, server)
    }

    /// A UDP UA.
    async fn udp(user: &'static str, password: &'static str, server: SocketAddr) -> Ua {
        let (transport, rx) = Transport::new(TransportConfig::default());
        transport
            .bind_udp("127.0.0.1:0".parse().expect("addr"))
            .await
            .expect("bind UDP");
        Ua::new(user, password, transport, rx, TransportKind::Udp, server)
    }

    fn new(
        user: &'static str,
        password: &'static str,
        transport: Transport,
        rx: IncomingReceiver,
        kind: TransportKind,
        server: SocketAddr,
    ) -> Ua {
        // Nobody listens there: only the registration's connection reaches this UA.
        let contact = format!(
            "sip:{user}@127.0.0.1:{};transport={}",
            free_tcp_port(),
            kind.as_str()
        );
        Ua {
            user,
            password,
            transport,
            rx,
            server: Destination::new(kind, server),
            contact,
            digest: DigestClient::new(sotto_crypto_rust::provider()),
            cseq: 0,
            branches: 0,
            call_id: String::new(),
        }
    }

    fn via(&mut self) -> String {
        self.branches += 1;
        format!(
            "SIP/2.0/{} 127.0.0.1:{};branch=z9hG4bK-{}-{}-{};rport",
            self.server.transport.via_token(),
            self.contact_port(),
            self.user,
            std::process::id(),
            self.branches
        )
    }

    fn contact_port(&self) -> u16 {
        self.contact
            .rsplit_once(':')
            .and_then(|(_, p)| p.split(';').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or(5060)
    }

    /// A new out-of-dialog request (new Call-ID unless `same_call`).
    fn request(
        &mut self,
        method: &str,
        to_user: &str,
        same_call: bool,
        headers: &[(&str, String)],
        body: &str,
    ) -> String {
        if !same_call || self.call_id.is_empty() {
            self.call_id = format!("{}-{}-{}@test", self.user, std::process::id(), self.cseq);
        }
        self.cseq += 1;
        let ruri = if method == "REGISTER" {
            format!("sip:{DOMAIN}")
        } else {
            format!("sip:{to_user}@{DOMAIN}")
        };
        let mut m = format!(
            "{method} {ruri} SIP/2.0\r\nVia: {}\r\nMax-Forwards: 70\r\nFrom: <sip:{}@{DOMAIN}>;tag=t{}\r\nTo: <sip:{to_user}@{DOMAIN}>\r\nCall-ID: {}\r\nCSeq: {} {method}\r\nContact: <{}>\r\n",
            self.via(),
            self.user,
            self.user,
            self.call_id,
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

    async fn send(&self, text: String) -> Result<(), sotto_net::Error> {
        self.transport
            .send(&self.server, bytes::Bytes::from(text))
            .await
            .map(|_| ())
    }

    /// The next final response (1xx skipped).
    async fn final_response(&mut self) -> Response {
        sip_client::final_response(&mut self.rx, self.user, WAIT).await
    }

    /// The next request received (a response here is a failure).
    async fn next_request(&mut self) -> (Request, Incoming) {
        sip_client::next_request(&mut self.rx, self.user, WAIT).await
    }

    /// Sends a request, answers a 401/407 with the challenge of `algorithm`, and returns the
    /// final response to the authenticated request.
    async fn authed(
        &mut self,
        method: &str,
        to_user: &str,
        headers: &[(&str, String)],
        body: &str,
        algorithm: Algorithm,
    ) -> Response {
        match self
            .authed_send(method, to_user, headers, body, algorithm)
            .await
        {
            Some(unchallenged) => unchallenged,
            None => self.final_response().await,
        }
    }

    /// The first half of [`Ua::authed`]: sends the request and, once challenged, the
    /// authenticated one, without waiting for its answer. Returns the first final response
    /// if it was not a challenge.
    async fn authed_send(
        &mut self,
        method: &str,
        to_user: &str,
        headers: &[(&str, String)],
        body: &str,
        algorithm: Algorithm,
    ) -> Option<Response> {
        let first = self.request(method, to_user, false, headers, body);
        self.send(first.clone()).await.expect("send");
        let r = self.final_response().await;
        let status = r.status().0;
        if sip_client::challenge_headers(&r).is_none() {
            return Some(r);
        }
        let offered: Vec<Algorithm> = sip_client::challenges(&r)
            .iter()
            .map(|c| c.algorithm)
            .collect();
        assert!(
            offered.contains(&Algorithm::Sha256) && offered.contains(&Algorithm::Md5),
            "{status}: both SHA-256 and MD5 are offered, got {offered:?}"
        );
        if method == "INVITE" {
            self.ack_error(&first, &r).await;
        }
        let creds = sip_client::credentials_for(
            &mut self.digest,
            &r,
            algorithm,
            &first,
            self.user,
            self.password,
        );
        let mut hs = headers.to_vec();
        hs.push(creds);
        let again = self.request(method, to_user, true, &hs, body);
        self.send(again).await.expect("send");
        None
    }

    /// The ACK for a non-2xx final response to `invite` (same branch, RFC 3261 §17.1.1.3).
    async fn ack_error(&self, invite: &str, resp: &Response) {
        let ack = sip_client::ack_for_error(invite, resp);
        self.send(ack).await.expect("send ACK");
    }

    /// Answers a received request with `status` (a To tag, and `body` if any).
    async fn answer(&self, req: &Request, incoming: &Incoming, status: u16, body: &str) {
        let mut r = sip_client::response_to(req, status, "bobtag");
        if !body.is_empty() {
            r.headers_mut()
                .push("Contact", format!("<{}>", self.contact));
            r.headers_mut().push("Content-Type", "application/sdp");
            r.set_body(body.as_bytes().to_vec());
        }
        self.transport
            .reply(incoming, r.to_bytes())
            .await
            .expect("send response");
    }
}

fn warning(r: &Response) -> String {
    r.headers().get("Warning").unwrap_or("").to_owned()
}

/// A client certificate for `uri`, issued by the init CA (see [`init_ca_client_cert`]).
fn client_cert(
    data: &DataDir,
    uri: &str,
) -> (
    Vec<rustls_pki_types::CertificateDer<'static>>,
    rustls_pki_types::PrivateKeyDer<'static>,
) {
    let (cert, key) = init_ca_client_cert(&data.ca_key(), DOMAIN, uri, "alice's phone");
    let chain = tls::certs_from_pem(cert.as_bytes()).expect("cert PEM");
    let key = tls::private_key_from_pem(key.as_bytes()).expect("key PEM");
    (chain, key)
}

#[tokio::test]
async fn tls_register_message_invite_and_no_downgrade() {
    let (dir, data) = init("main", |t| {
        replace(t, "listen", "udp", addrs(&["127.0.0.1:0"]));
        replace(t, "tls", "client_auth", "optional".into());
    });
    let ca = data.ca();
    let server = Server::start_all("main", &data.config());
    let tls_addr = server.addr("tls");
    let udp_addr = server.addr("udp");
    let metrics = server.metrics.expect("metrics endpoint");

    // alice: SHA-256, then a refresh with MD5.
    let mut alice = Ua::tls("alice", "alicepw", &ca, tls_addr, None);
    let r = alice
        .authed(
            "REGISTER",
            "alice",
            &[("Expires", "600".into())],
            "",
            Algorithm::Sha256,
        )
        .await;
    assert_eq!(r.status().0, 200, "alice REGISTER (SHA-256)");
    let r = alice
        .authed(
            "REGISTER",
            "alice",
            &[("Expires", "600".into())],
            "",
            Algorithm::Md5,
        )
        .await;
    assert_eq!(r.status().0, 200, "alice REGISTER (MD5)");
    assert!(
        r.headers()
            .get_all("Contact")
            .any(|c| c.contains(&alice.contact)),
        "the 200 lists alice's contact"
    );

    // bob, over his own TLS connection.
    let mut bob = Ua::tls("bob", "bobpw", &ca, tls_addr, None);
    let r = bob
        .authed(
            "REGISTER",
            "bob",
            &[("Expires", "600".into())],
            "",
            Algorithm::Sha256,
        )
        .await;
    assert_eq!(r.status().0, 200, "bob REGISTER");

    // MESSAGE alice → bob: reaches bob on his registration connection.
    let text = "hello bob, over TLS all the way";
    let message = {
        let first = alice.request("MESSAGE", "bob", false, &[], "");
        alice.send(first).await.expect("send");
        let r = alice.final_response().await;
        assert_eq!(r.status().0, 407, "MESSAGE is challenged");
        let creds = sip_client::credentials(
            &mut alice.digest,
            &r,
            Algorithm::Sha256,
            "MESSAGE",
            &format!("sip:bob@{DOMAIN}"),
            "alice",
            "alicepw",
        );
        let mut m = alice.request("MESSAGE", "bob", true, &[creds], "");
        // A text body instead of SDP.
        m = m.replace(
            "Content-Length: 0\r\n\r\n",
            &format!(
                "Content-Type: text/plain\r\nContent-Length: {}\r\n\r\n{text}",
                text.len()
            ),
        );
        m
    };
    alice.send(message).await.expect("send MESSAGE");
    let (req, incoming) = bob.next_request().await;
    assert_eq!(req.method().as_str(), "MESSAGE");
    assert_eq!(&req.body()[..], text.as_bytes());
    assert_eq!(incoming.transport, TransportKind::Tls);
    assert!(
        req.headers().get("Proxy-Authorization").is_none(),
        "our credentials are not forwarded"
    );
    bob.answer(&req, &incoming, 200, "").await;
    assert_eq!(
        alice.final_response().await.status().0,
        200,
        "MESSAGE answered"
    );

    // INVITE alice → bob, with a sip:…;transport=tls Record-Route; bob rings and answers.
    let invite_task = {
        let first = alice.request("INVITE", "bob", false, &[], SDP);
        alice.send(first.clone()).await.expect("send INVITE");
        let r = alice.final_response().await;
        assert_eq!(r.status().0, 407, "INVITE is challenged");
        alice.ack_error(&first, &r).await;
        let creds = sip_client::credentials(
            &mut alice.digest,
            &r,
            Algorithm::Md5,
            "INVITE",
            &format!("sip:bob@{DOMAIN}"),
            "alice",
            "alicepw",
        );
        alice.request("INVITE", "bob", true, &[creds], SDP)
    };
    alice.send(invite_task).await.expect("send INVITE");
    let (invite, incoming) = bob.next_request().await;
    assert_eq!(invite.method().as_str(), "INVITE");
    assert_eq!(
        &invite.body()[..],
        SDP.as_bytes(),
        "the SDP is forwarded untouched"
    );
    let rr = invite
        .headers()
        .get("Record-Route")
        .expect("Record-Route")
        .to_owned();
    assert!(
        rr.starts_with("<sip:") && rr.contains(";transport=tls;lr"),
        "Record-Route of a sip: request over TLS: {rr}"
    );
    bob.answer(&invite, &incoming, 180, "").await;
    let answer_sdp = SDP.replace("o=alice", "o=bob").replace("40000", "40002");
    bob.answer(&invite, &incoming, 200, &answer_sdp).await;
    let ok = alice.final_response().await;
    assert_eq!(ok.status().0, 200, "INVITE answered");
    assert_eq!(&ok.body()[..], answer_sdp.as_bytes());
    assert!(
        ok.headers()
            .get("Record-Route")
            .is_some_and(|v| v.contains(";transport=tls;lr")),
        "the 200 carries the Record-Route back"
    );

    // No silent downgrade from UDP: SDES → 488, plain MESSAGE → 403, both with a Warning.
    let mut alice_udp = Ua::udp("alice", "alicepw", udp_addr).await;
    let r = alice_udp
        .authed("INVITE", "bob", &[], SDP_SDES, Algorithm::Sha256)
        .await;
    assert_eq!(r.status().0, 488, "SDES over UDP to a TLS user");
    assert!(warning(&r).contains("SDES"), "Warning: {}", warning(&r));
    let r = alice_udp
        .authed("MESSAGE", "bob", &[], "", Algorithm::Sha256)
        .await;
    assert_eq!(r.status().0, 403, "plain UDP to a TLS user");
    assert!(warning(&r).contains("TLS"), "Warning: {}", warning(&r));
    // bob got neither: the next thing he receives is this TLS MESSAGE.
    let early = alice
        .authed_send(
            "MESSAGE",
            "bob",
            &[("Subject", "after the refusals".into())],
            "",
            Algorithm::Sha256,
        )
        .await;
    assert!(
        early.is_none(),
        "challenged first: {:?}",
        early.map(|r| r.status().0)
    );
    let (req, incoming) = bob.next_request().await;
    assert_eq!(req.headers().get("Subject"), Some("after the refusals"));
    bob.answer(&req, &incoming, 200, "").await;
    assert_eq!(alice.final_response().await.status().0, 200);

    // A client that does not trust our CA fails the handshake.
    let other = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("other CA");
    let stranger = tls::client_config(vec![other.cert.der().clone()], None).expect("config");
    let (t, _rx) = Transport::new(TransportConfig {
        tls_client: Some(stranger),
        ..TransportConfig::default()
    });
    let refused = t
        .send(
            &Destination::new(TransportKind::Tls, tls_addr),
            bytes::Bytes::from_static(b"OPTIONS sip:example.test SIP/2.0\r\n\r\n"),
        )
        .await;
    assert!(
        refused.is_err(),
        "handshake with an untrusted server certificate"
    );

    // Client certificate (client_auth = "optional"): alice without digest; not bob.
    let cert = client_cert(&data, &format!("sip:alice@{DOMAIN}"));
    let mut phone = Ua::tls("alice", "unused", &ca, tls_addr, Some(cert));
    let reg = phone.request("REGISTER", "alice", false, &[("Expires", "600".into())], "");
    phone.send(reg).await.expect("send");
    let r = phone.final_response().await;
    assert_eq!(r.status().0, 200, "certificate REGISTER as alice");
    let mut reg = phone.request("REGISTER", "bob", false, &[("Expires", "600".into())], "");
    reg = reg.replace("From: <sip:alice@", "From: <sip:bob@");
    phone.send(reg).await.expect("send");
    let r = phone.final_response().await;
    assert_eq!(r.status().0, 401, "certificate of alice, REGISTER as bob");

    // Metrics: 3 bindings (alice twice: TLS digest and certificate; bob), requests counted.
    let m = scrape(metrics);
    assert_eq!(sample(&m, "sotto_registrations"), Some(3), "{m}");
    assert!(
        sample(
            &m,
            "sotto_requests_total{method=\"REGISTER\",outcome=\"replied\",status=\"401\"}"
        )
        .is_some_and(|n| n >= 4),
        "{m}"
    );
    assert!(
        sample(
            &m,
            "sotto_requests_total{method=\"INVITE\",outcome=\"forwarded\",status=\"\"}"
        )
        .is_some_and(|n| n >= 1),
        "{m}"
    );
    assert_eq!(sample(&m, "sotto_auth_failures_total"), Some(0), "{m}");
    assert_eq!(sample(&m, "sotto_anti_flood_bans_total"), Some(0), "{m}");

    server.stop_term();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn wrong_passwords_get_banned_and_counted() {
    let (dir, data) = init("ban", |t| {
        replace(t, "modules.anti_flood", "ban_after_accounts", 2.into());
        replace(t, "log", "format", "json".into());
    });
    let ca = data.ca();
    let mut server = Server::start_all("ban", &data.config());
    let tls_addr = server.addr("tls");
    let metrics = server.metrics.expect("metrics endpoint");

    // Wrong passwords for two accounts from one address: each is challenged again, the
    // second account's failure bans the address (a guesser, not a typo).
    let mut mallory = Ua::tls("alice", "wrong", &ca, tls_addr, None);
    let mut mallory2 = Ua::tls("bob", "wrong", &ca, tls_addr, None);
    let r = mallory
        .authed("REGISTER", "alice", &[], "", Algorithm::Sha256)
        .await;
    assert_eq!(r.status().0, 401, "wrong password is challenged again");
    let r = mallory2
        .authed("REGISTER", "bob", &[], "", Algorithm::Sha256)
        .await;
    assert_eq!(r.status().0, 401, "wrong password is challenged again");
    let m = scrape(metrics);
    assert_eq!(sample(&m, "sotto_anti_flood_bans_total"), Some(1), "{m}");
    assert_eq!(sample(&m, "sotto_auth_failures_total"), Some(2), "{m}");
    // The first request from the banned source is told why, and when to come back (a user
    // behind the same address learns it); the next one is dropped (the event says so).
    let reg = mallory.request("REGISTER", "alice", false, &[], "");
    mallory.send(reg).await.expect("send");
    let r = mallory.final_response().await;
    assert_eq!(r.status().0, 403, "the ban is said once");
    let text = String::from_utf8_lossy(&r.to_bytes()).into_owned();
    assert!(
        text.contains("Retry-After: ") && text.contains("blocked"),
        "{text}"
    );
    let reg = mallory.request("REGISTER", "alice", false, &[], "");
    mallory.send(reg).await.expect("send");
    let ev = server
        .wait_match_async("a dropped request", |v| {
            v["event"] == "request" && v["outcome"] == "dropped"
        })
        .await;
    assert_eq!(ev["module"], "anti_flood", "{ev}");
    let m = scrape(metrics);
    assert_eq!(
        sample(
            &m,
            "sotto_requests_total{method=\"REGISTER\",outcome=\"dropped\",status=\"\"}"
        ),
        Some(1),
        "{m}"
    );

    // The operator sees the ban and its reason, and lifts it: the right password works again.
    let list = ban(&data, &["list"]);
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["source"], "127.0.0.1", "{list:?}");
    assert!(
        list[0]["account"].is_null(),
        "a ban of the address: {list:?}"
    );
    assert!(
        list[0]["reason"]
            .as_str()
            .unwrap()
            .contains("many accounts"),
        "{list:?}"
    );
    assert_eq!(
        ban(&data, &["lift", "127.0.0.1"]),
        [json!({"source": "127.0.0.1", "lifted": 1})]
    );
    assert!(ban(&data, &["list"]).is_empty());
    let mut alice = Ua::tls("alice", "alicepw", &ca, tls_addr, None);
    let r = alice
        .authed("REGISTER", "alice", &[], "", Algorithm::Sha256)
        .await;
    assert_eq!(r.status().0, 200, "alice after the lift");
    // Nothing left to lift: exit status 3.
    let out = process::sotto()
        .args(["ban", "lift", "127.0.0.1", "-c"])
        .arg(data.config())
        .output()
        .expect("run sotto ban");
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    server.stop_term();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Overload shedding on the wire, with thresholds at zero (every message counts as having
/// waited too long): a new request without credentials gets 503 with Retry-After at once,
/// counted on /metrics; a request with credentials is still handled at the first level.
#[tokio::test]
async fn shed_requests_get_503_with_retry_after() {
    let (dir, data) = init("shed", |t| {
        replace(t, "overload", "shed_unauthenticated_after_ms", 0.into());
        replace(t, "overload", "standing_ms", 0.into());
    });
    let ca = data.ca();
    let server = Server::start_all("shed", &data.config());
    let tls_addr = server.addr("tls");
    let metrics = server.metrics.expect("metrics endpoint");
    let mut alice = Ua::tls("alice", "alicepw", &ca, tls_addr, None);
    let reg = alice.request("REGISTER", "alice", false, &[], "");
    alice.send(reg).await.expect("send");
    let r = alice.final_response().await;
    assert_eq!(r.status().0, 503, "shed before the challenge");
    let text = String::from_utf8_lossy(&r.to_bytes()).into_owned();
    assert!(text.contains("Retry-After: 5\r\n"), "{text}");
    let m = scrape(metrics);
    assert_eq!(
        sample(&m, "sotto_overload_shed_unauthenticated_total"),
        Some(1),
        "{m}"
    );
    assert_eq!(sample(&m, "sotto_overload_shed_all_total"), Some(0), "{m}");
    server.stop_term();
    let _ = std::fs::remove_dir_all(&dir);
}

/// `sotto --json ban <args> -c <config>`: its JSON lines.
fn ban(data: &DataDir, args: &[&str]) -> Vec<Value> {
    let out = process::sotto()
        .args(["--json", "ban"])
        .args(args)
        .arg("-c")
        .arg(data.config())
        .output()
        .expect("run sotto ban");
    assert!(out.status.success(), "sotto ban {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

/// Connection ids restart with the process: a flow stored before a restart must not name
/// another peer's connection after it. bob registers over TLS (the first connection of the
/// first process), the server restarts on the same database, and alice (now the first
/// connection of the new process) sends bob a MESSAGE: it must not come back to her.
#[tokio::test]
async fn stored_flow_does_not_reach_another_peer_after_restart() {
    let (dir, data) = init("flow", |_| {});
    let ca = data.ca();
    let server = Server::start_all("flow", &data.config());
    let mut bob = Ua::tls("bob", "bobpw", &ca, server.addr("tls"), None);
    let r = bob
        .authed(
            "REGISTER",
            "bob",
            &[("Expires", "600".into())],
            "",
            Algorithm::Sha256,
        )
        .await;
    assert_eq!(r.status().0, 200, "bob REGISTER");
    server.stop_term();
    drop(bob);

    let server = Server::start_all("flow", &data.config());
    let mut alice = Ua::tls("alice", "alicepw", &ca, server.addr("tls"), None);
    // final_response fails the test if a request (bob's MESSAGE) arrives here instead.
    let r = alice
        .authed("MESSAGE", "bob", &[], "", Algorithm::Sha256)
        .await;
    assert!(
        !r.status().is_success(),
        "bob's old flow is gone; got {}",
        r.status().0
    );
    server.stop_term();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Graceful shutdown: a call ringing when SIGTERM arrives still gets its answer through.
#[tokio::test]
async fn sigterm_lets_a_ringing_call_finish() {
    let (dir, data) = init("drain", |_| {});
    let ca = data.ca();
    let mut server = Server::start_all("drain", &data.config());
    let tls_addr = server.addr("tls");
    let mut alice = Ua::tls("alice", "alicepw", &ca, tls_addr, None);
    let mut bob = Ua::tls("bob", "bobpw", &ca, tls_addr, None);
    for ua in [&mut alice, &mut bob] {
        let user = ua.user;
        let r = ua
            .authed(
                "REGISTER",
                user,
                &[("Expires", "600".into())],
                "",
                Algorithm::Sha256,
            )
            .await;
        assert_eq!(r.status().0, 200, "{user} REGISTER");
    }
    let early = alice
        .authed_send("INVITE", "bob", &[], SDP, Algorithm::Sha256)
        .await;
    assert!(early.is_none(), "INVITE is challenged first");
    let (invite, incoming) = bob.next_request().await;
    bob.answer(&invite, &incoming, 180, "").await;

    server.terminate();
    server
        .wait_match_async("stopping", |v| v["event"] == "stopping")
        .await;
    // The server is stopping; the call under way still gets bob's answer.
    bob.answer(&invite, &incoming, 200, SDP).await;
    let ok = alice.final_response().await;
    assert_eq!(ok.status().0, 200, "answer forwarded while stopping");
    server.exited().await;
    let _ = std::fs::remove_dir_all(&dir);
}
