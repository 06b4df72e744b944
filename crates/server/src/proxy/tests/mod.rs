//! The proxy driven on virtual time with real messages (no sockets).

use super::*;
use crate::config::ServerConfig;
use sotto_sip::digest::{Algorithm, ClientSecret, DigestClient, UserRecord, parse_challenges};
use sotto_sip::message::Via;
use sotto_store::MemoryStore;
use std::time::Duration;

const UDP: &str = "127.0.0.1:5060";

pub(crate) struct Harness {
    pub(crate) proxy: Proxy,
    pub(crate) now: Instant,
    pub(crate) wall: SystemTime,
    /// The proxy's users and bindings (to run deferred store operations on).
    pub(crate) store: Arc<MemoryStore>,
}

mod deferred_stores;
mod deployed;
mod flow_tokens;

impl Harness {
    pub(crate) fn new(config: ServerConfig) -> Self {
        Self::with_listeners(
            config,
            vec![
                (TransportKind::Udp, UDP.parse().unwrap()),
                (TransportKind::Tls, "127.0.0.1:5061".parse().unwrap()),
            ],
        )
    }

    pub(crate) fn with_listeners(
        config: ServerConfig,
        listeners: Vec<(TransportKind, SocketAddr)>,
    ) -> Self {
        let provider = sotto_crypto_rust::provider();
        let store = Arc::new(MemoryStore::new());
        for (user, pw) in [("alice", "alicepw"), ("bob", "bobpw")] {
            let mut r = UserRecord::new(user);
            r.set_password(
                provider,
                &config.realm,
                pw,
                &[Algorithm::Sha256, Algorithm::Md5],
            )
            .unwrap();
            store.put(&r).unwrap();
        }
        let now = Instant::now();
        let proxy = Proxy::new(
            &config,
            listeners,
            store.clone(),
            store.clone(),
            provider,
            now,
        )
        .unwrap();
        Harness {
            proxy,
            now,
            wall: SystemTime::now(),
            store,
        }
    }

    /// Feeds `text` from `source` over UDP; returns what the proxy sends.
    pub(crate) fn send(&mut self, text: &str, source: &str) -> Vec<(SocketAddr, String)> {
        self.send_bytes(Bytes::from(text.to_owned()), source)
    }

    pub(crate) fn send_bytes(&mut self, data: Bytes, source: &str) -> Vec<(SocketAddr, String)> {
        let packet = Packet {
            data,
            source: source.parse().unwrap(),
            transport: TransportKind::Udp,
            connection: None,
            client_identities: Vec::new(),
            client_domains: Vec::new(),
            local: std::net::SocketAddr::from(([127, 0, 0, 1], 5060)),
        };
        self.proxy.handle_packet(packet, self.now, self.wall);
        self.out()
    }

    pub(crate) fn out(&mut self) -> Vec<(SocketAddr, String)> {
        let mut v = Vec::new();
        while let Some(t) = self.proxy.poll_transmit() {
            v.push((
                t.destination.remote,
                String::from_utf8_lossy(&t.data).into_owned(),
            ));
        }
        v
    }

    /// Advances virtual time to the next timer (bounded) and returns what was sent.
    pub(crate) fn advance(&mut self, limit: Duration) -> Vec<(SocketAddr, String)> {
        let end = self.now + limit;
        let mut v = Vec::new();
        for _ in 0..1000 {
            match self.proxy.poll_timeout() {
                Some(t) if t <= end => {
                    self.now = self.now.max(t);
                    self.proxy.handle_timeout(self.now);
                    v.extend(self.out());
                }
                _ => break,
            }
        }
        self.now = end;
        v
    }
}

/// A transmitted message as text.
pub(crate) fn text(t: &Transmit) -> String {
    String::from_utf8_lossy(&t.data).into_owned()
}

pub(crate) fn status(msg: &str) -> u16 {
    msg.get(8..11).and_then(|s| s.parse().ok()).unwrap_or(0)
}

pub(crate) fn header<'a>(msg: &'a str, name: &str) -> Vec<&'a str> {
    msg.split("\r\n")
        .filter_map(|l| l.split_once(':'))
        .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
        .collect()
}

/// Credentials answering the MD5 challenge of `resp` for `method uri`.
pub(crate) fn credentials(
    resp: &str,
    header_name: &str,
    method: &str,
    uri: &str,
    user: &str,
    pw: &str,
) -> String {
    let c = header(resp, header_name)
        .into_iter()
        .flat_map(|v| parse_challenges(v).unwrap())
        .find(|c| c.algorithm == Algorithm::Md5)
        .unwrap();
    DigestClient::new(sotto_crypto_rust::provider())
        .respond(&c, method, uri, user, ClientSecret::Password(pw))
        .unwrap()
        .to_string()
}

pub(crate) fn register(h: &mut Harness, user: &str, pw: &str, port: u16) {
    let msg = |cseq: u32, auth: &str| {
        format!(
            "REGISTER sip:127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKr{cseq}{port}\r\n\
             Max-Forwards: 70\r\nTo: <sip:{user}@example.test>\r\nFrom: <sip:{user}@example.test>;tag=r{port}\r\n\
             Call-ID: reg-{port}\r\nCSeq: {cseq} REGISTER\r\nContact: <sip:{user}@127.0.0.1:{port}>\r\n{auth}\
             Content-Length: 0\r\n\r\n"
        )
    };
    let src = format!("127.0.0.1:{port}");
    let out = h.send(&msg(1, ""), &src);
    assert_eq!(status(&out[0].1), 401);
    let creds = credentials(
        &out[0].1,
        "WWW-Authenticate",
        "REGISTER",
        "sip:127.0.0.1:5060",
        user,
        pw,
    );
    let out = h.send(&msg(2, &format!("Authorization: {creds}\r\n")), &src);
    assert_eq!(status(&out[0].1), 200, "{}", out[0].1);
}

const SDP: &str = "v=0\r\no=a 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";

fn invite(cseq: u32, branch: &str, auth: &str) -> String {
    format!(
        "INVITE sip:bob@example.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:7000;branch={branch}\r\n\
         Max-Forwards: 70\r\nTo: <sip:bob@example.test>\r\nFrom: <sip:alice@example.test>;tag=al\r\n\
         Call-ID: call-1\r\nCSeq: {cseq} INVITE\r\nContact: <sip:alice@127.0.0.1:7000>\r\n{auth}\
         Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{SDP}",
        SDP.len()
    )
}

/// INVITE with 407 and digest; returns the messages the proxy sent for the authenticated one.
fn authenticated_invite(h: &mut Harness) -> Vec<(SocketAddr, String)> {
    let out = h.send(&invite(1, "z9hG4bKi1", ""), "127.0.0.1:7000");
    assert_eq!(status(&out[0].1), 407);
    let ack = format!(
        "ACK sip:bob@example.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:7000;branch=z9hG4bKi1\r\n\
         Max-Forwards: 70\r\nTo: {}\r\nFrom: <sip:alice@example.test>;tag=al\r\nCall-ID: call-1\r\n\
         CSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n",
        header(&out[0].1, "To")[0]
    );
    assert!(
        h.send(&ack, "127.0.0.1:7000").is_empty(),
        "ACK of a 407 is absorbed"
    );
    let creds = credentials(
        &out[0].1,
        "Proxy-Authenticate",
        "INVITE",
        "sip:bob@example.test",
        "alice",
        "alicepw",
    );
    h.send(
        &invite(2, "z9hG4bKi2", &format!("Proxy-Authorization: {creds}\r\n")),
        "127.0.0.1:7000",
    )
}

#[test]
fn register_then_call_with_ack_and_bye() {
    let mut h = Harness::new(ServerConfig::for_domain("example.test"));
    register(&mut h, "bob", "bobpw", 8000);
    let out = authenticated_invite(&mut h);
    // 100 Trying upstream, the INVITE downstream.
    assert_eq!(out.len(), 2, "{out:#?}");
    assert_eq!(status(&out[0].1), 100);
    let (dest, fwd) = &out[1];
    assert_eq!(*dest, "127.0.0.1:8000".parse().unwrap());
    assert!(
        fwd.starts_with("INVITE sip:bob@127.0.0.1:8000 SIP/2.0\r\n"),
        "{fwd}"
    );
    assert_eq!(header(fwd, "Max-Forwards"), vec!["69"]);
    assert_eq!(header(fwd, "Record-Route"), vec!["<sip:127.0.0.1:5060;lr>"]);
    assert!(header(fwd, "Via")[0].starts_with("SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-sotto-"));
    assert!(header(fwd, "Proxy-Authorization").is_empty());
    assert!(fwd.ends_with(SDP), "body byte for byte");
    // The callee answers 200 (with the Record-Route echoed): forwarded upstream, our Via gone.
    let vias: Vec<&str> = header(fwd, "Via");
    let ok = format!(
        "SIP/2.0 200 OK\r\nVia: {}\r\nVia: {}\r\nRecord-Route: <sip:127.0.0.1:5060;lr>\r\n\
         To: <sip:bob@example.test>;tag=bb\r\nFrom: <sip:alice@example.test>;tag=al\r\nCall-ID: call-1\r\n\
         CSeq: 2 INVITE\r\nContact: <sip:bob@127.0.0.1:8000>\r\nContent-Type: application/sdp\r\n\
         Content-Length: {}\r\n\r\n{SDP}",
        vias[0],
        vias[1],
        SDP.len()
    );
    let out = h.send(&ok, "127.0.0.1:8000");
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0, "127.0.0.1:7000".parse().unwrap());
    assert_eq!(status(&out[0].1), 200);
    assert_eq!(header(&out[0].1, "Via").len(), 1);
    // ACK and BYE along the route set go to the callee's contact.
    for (method, cseq) in [("ACK", 2), ("BYE", 3)] {
        let req = format!(
            "{method} sip:bob@127.0.0.1:8000 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:7000;branch=z9hG4bK{method}\r\n\
             Route: <sip:127.0.0.1:5060;lr>\r\nMax-Forwards: 70\r\nTo: <sip:bob@example.test>;tag=bb\r\n\
             From: <sip:alice@example.test>;tag=al\r\nCall-ID: call-1\r\nCSeq: {cseq} {method}\r\n\
             Content-Length: 0\r\n\r\n"
        );
        let out = h.send(&req, "127.0.0.1:7000");
        assert_eq!(out.len(), 1, "{method}: {out:#?}");
        assert_eq!(out[0].0, "127.0.0.1:8000".parse().unwrap());
        assert!(
            out[0]
                .1
                .starts_with(&format!("{method} sip:bob@127.0.0.1:8000 "))
        );
        assert!(header(&out[0].1, "Route").is_empty());
    }
}

#[test]
fn nobody_answering_gives_408() {
    let mut h = Harness::new(ServerConfig::for_domain("example.test"));
    register(&mut h, "bob", "bobpw", 8000);
    let out = authenticated_invite(&mut h);
    assert_eq!(out.len(), 2);
    let later = h.advance(Duration::from_secs(40));
    let finals: Vec<_> = later
        .iter()
        .filter(|(d, m)| *d == "127.0.0.1:7000".parse().unwrap() && status(m) >= 200)
        .collect();
    // The 408 (and its Timer G retransmissions, until Timer H: nobody ACKs here).
    assert!(!finals.is_empty(), "{later:#?}");
    assert!(finals.iter().all(|(_, m)| status(m) == 408), "{finals:#?}");
}

#[test]
fn unregistered_callee_gives_480() {
    let mut h = Harness::new(ServerConfig::for_domain("example.test"));
    let out = authenticated_invite(&mut h);
    assert_eq!(status(&out[0].1), 480, "{out:#?}");
}

#[test]
fn forking_200_cancels_the_other_branch() {
    let mut h = Harness::new(ServerConfig::for_domain("example.test"));
    register(&mut h, "bob", "bobpw", 8000);
    register(&mut h, "bob", "bobpw", 8001);
    let out = authenticated_invite(&mut h);
    assert_eq!(out.len(), 3, "{out:#?}");
    let b1 = out
        .iter()
        .find(|(d, _)| d.port() == 8001)
        .unwrap()
        .1
        .clone();
    let vias: Vec<&str> = header(&b1, "Via");
    let ok = format!(
        "SIP/2.0 200 OK\r\nVia: {}\r\nVia: {}\r\nTo: <sip:bob@example.test>;tag=b1\r\n\
         From: <sip:alice@example.test>;tag=al\r\nCall-ID: call-1\r\nCSeq: 2 INVITE\r\n\
         Contact: <sip:bob@127.0.0.1:8001>\r\nContent-Length: 0\r\n\r\n",
        vias[0], vias[1]
    );
    let out = h.send(&ok, "127.0.0.1:8001");
    assert!(
        out.iter()
            .any(|(d, m)| d.port() == 7000 && status(m) == 200),
        "{out:#?}"
    );
    assert!(
        out.iter()
            .any(|(d, m)| d.port() == 8000 && m.starts_with("CANCEL sip:bob@127.0.0.1:8000 ")),
        "{out:#?}"
    );
}

/// A REGISTER of `user` from `src` answered with `password` (after the challenge); returns
/// the status of the answer to the credentials, or of the first request if that was refused.
fn guess(h: &mut Harness, user: &str, password: &str, src: &str, i: usize) -> Option<u16> {
    let msg = |auth: &str, b: &str| {
        format!(
            "REGISTER sip:127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {src};branch=z9hG4bK{b}{user}{i}\r\n\
             Max-Forwards: 70\r\nTo: <sip:{user}@example.test>\r\nFrom: <sip:{user}@example.test>;tag=x\r\n\
             Call-ID: crack-{user}-{i}\r\nCSeq: 1 REGISTER\r\nContact: <sip:{user}@{src}>\r\n{auth}\
             Content-Length: 0\r\n\r\n"
        )
    };
    let status =
        |out: &[(SocketAddr, String)]| out.first().and_then(|(_, r)| r.get(8..11)?.parse().ok());
    let out = h.send(&msg("", "a"), src);
    let (_, chal) = out.first()?;
    if !chal.starts_with("SIP/2.0 401") {
        return status(&out);
    }
    let creds = credentials(
        chal,
        "WWW-Authenticate",
        "REGISTER",
        "sip:127.0.0.1:5060",
        user,
        password,
    );
    status(&h.send(&msg(&format!("Authorization: {creds}\r\n"), "b"), src))
}

#[test]
fn four_wrong_passwords_lock_the_account_out_from_that_address_only() {
    let mut h = Harness::new(ServerConfig::for_domain("example.test"));
    for i in 0..4 {
        assert_eq!(
            guess(&mut h, "alice", &format!("guess{i}"), "127.0.0.1:9000", i),
            Some(401)
        );
    }
    // The fifth attempt is refused loudly, even with the right password, from any port of
    // that address; bob behind the same address is not touched.
    let out = h.send(
        "REGISTER sip:127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9001;branch=z9hG4bKz\r\n\
          Max-Forwards: 70\r\nTo: <sip:alice@example.test>\r\nFrom: <sip:alice@example.test>;tag=x\r\n\
          Call-ID: z\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n",
        "127.0.0.1:9001",
    );
    let (_, r) = out.first().expect("alice is told");
    assert!(r.starts_with("SIP/2.0 403"), "{r}");
    assert!(
        r.contains("Retry-After: ") && r.contains("too many failed authentications"),
        "{r}"
    );
    assert_eq!(
        guess(&mut h, "bob", "bobpw-wrong", "127.0.0.1:9002", 0),
        Some(401),
        "bob is answered"
    );
}

#[test]
fn wrong_passwords_for_three_accounts_ban_the_address() {
    let mut h = Harness::new(ServerConfig::for_domain("example.test"));
    for (i, user) in ["alice", "bob", "carol"].iter().enumerate() {
        assert_eq!(guess(&mut h, user, "guess", "127.0.0.1:9000", i), Some(401));
    }
    let options = |branch: &str| {
        format!(
            "OPTIONS sip:example.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9000;branch=z9hG4bK{branch}\r\nMax-Forwards: 70\r\n\
             To: <sip:example.test>\r\nFrom: <sip:x@example.test>;tag=o\r\nCall-ID: {branch}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        )
    };
    let out = h.send(&options("o1"), "127.0.0.1:9000");
    let (_, r) = out.first().expect("the ban is said once");
    assert!(
        r.starts_with("SIP/2.0 403") && r.contains("Retry-After: "),
        "{r}"
    );
    let out = h.send(&options("o2"), "127.0.0.1:9000");
    assert!(out.is_empty(), "then a banned address is ignored: {out:?}");
}

/// A REGISTER for `user` whose top Via names `via` (with `;rport` when asked), from Call-ID
/// `reg-{n}` and branch `z9hG4bKreg{n}-{cseq}`.
fn plain_register(user: &str, n: u32, cseq: u32, via: &str, rport: bool) -> String {
    let rport = if rport { ";rport" } else { "" };
    format!(
        "REGISTER sip:127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {via}{rport};branch=z9hG4bKreg{n}-{cseq}\r\n\
         Max-Forwards: 70\r\nTo: <sip:{user}@example.test>\r\nFrom: <sip:{user}@example.test>;tag=f{n}\r\n\
         Call-ID: reg-{n}\r\nCSeq: {cseq} REGISTER\r\nContact: <sip:{user}@{via}>\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

fn counter(h: &Harness, module: &str, name: &str) -> Option<u64> {
    let mut found = None;
    h.proxy.module_counters(&mut |m, n, v| {
        if m == module && n == name {
            found = Some(v);
        }
    });
    found
}

fn top_via(msg: &str) -> Via {
    let line = header(msg, "Via")[0];
    Via::parse_list(line).unwrap().remove(0)
}

#[test]
fn challenges_are_sent_without_a_transaction() {
    let mut h = Harness::new(ServerConfig::for_domain("example.test"));
    let reg = plain_register("alice", 1, 1, "127.0.0.1:7100", false);
    let first = h.send(&reg, "127.0.0.1:7100");
    assert_eq!(first.len(), 1);
    assert_eq!(status(&first[0].1), 401);
    assert_eq!(h.proxy.transactions(), 0, "no transaction for a challenge");
    // A retransmission gets a fresh challenge with the same To tag (RFC 3261 §8.2.7).
    let again = h.send(&reg, "127.0.0.1:7100");
    assert_eq!(again.len(), 1);
    assert_eq!(status(&again[0].1), 401);
    assert_eq!(header(&first[0].1, "To"), header(&again[0].1, "To"));
    assert!(header(&first[0].1, "To")[0].contains(";tag="));
    // Another request gets another tag.
    let other = h.send(
        &plain_register("alice", 2, 1, "127.0.0.1:7100", false),
        "127.0.0.1:7100",
    );
    assert_ne!(header(&first[0].1, "To"), header(&other[0].1, "To"));
    // INVITE: 407 without a transaction; its ACK is absorbed, not forwarded.
    register(&mut h, "bob", "bobpw", 8000);
    let before = h.proxy.transactions();
    let out = authenticated_invite(&mut h);
    assert_eq!(status(&out[0].1), 100);
    assert_eq!(
        h.proxy.transactions(),
        before + 2,
        "INVITE: server + client"
    );
    assert_eq!(
        counter(&h, "transactions", "stateless_replies_total"),
        Some(5),
        "3 + bob's 401 + the INVITE's 407"
    );
    // Wrong credentials: the challenge keeps its transaction (a retransmission must not count
    // as another failure), and a retransmission is absorbed.
    let bad = credentials(
        &first[0].1,
        "WWW-Authenticate",
        "REGISTER",
        "sip:127.0.0.1:5060",
        "alice",
        "wrong",
    );
    let reg = plain_register("alice", 3, 2, "127.0.0.1:7100", false).replace(
        "Content-Length",
        &format!("Authorization: {bad}\r\nContent-Length"),
    );
    let n = h.proxy.transactions();
    let out = h.send(&reg, "127.0.0.1:7100");
    assert_eq!(status(&out[0].1), 401);
    assert_eq!(h.proxy.transactions(), n + 1);
    let out = h.send(&reg, "127.0.0.1:7100");
    assert_eq!(out.len(), 1, "the same 401 again, from the transaction");
    let mut failures = 0;
    while let Some(ev) = h.proxy.poll_event() {
        failures += usize::from(ev.auth_failure);
    }
    assert_eq!(failures, 1);
}

#[test]
fn a_table_full_of_completed_transactions_still_takes_requests() {
    let mut config = ServerConfig::for_domain("example.test");
    config.authentication.enabled = false;
    config.max_transactions = 8;
    let mut h = Harness::new(config);
    // 20 REGISTERs answered 200: each leaves a Completed transaction (Timer J, 32 s).
    for n in 0..20 {
        let port = 7200 + n as u16;
        let reg = plain_register(&format!("u{n}"), n, 1, &format!("127.0.0.1:{port}"), false);
        let out = h.send(&reg, &format!("127.0.0.1:{port}"));
        assert_eq!(out.len(), 1);
        assert_eq!(status(&out[0].1), 200, "REGISTER {n}: {}", out[0].1);
    }
    assert_eq!(h.proxy.transactions(), 8);
    assert_eq!(h.proxy.transactions_evicted(), 12);
    assert_eq!(counter(&h, "transactions", "evicted_total"), Some(12));
    assert_eq!(counter(&h, "transactions", "refused_total"), Some(0));
    // An evicted transaction is gone: its retransmission is a new request for the registrar,
    // which refuses the same Call-ID and CSeq again (RFC 3261 §10.3 step 7: 500).
    let reg = plain_register("u0", 0, 1, "127.0.0.1:7200", false);
    assert_eq!(status(&h.send(&reg, "127.0.0.1:7200")[0].1), 500);
    // A kept one absorbs its retransmission (the same 200 again).
    let reg = plain_register("u19", 19, 1, "127.0.0.1:7219", false);
    let out = h.send(&reg, "127.0.0.1:7219");
    assert_eq!(status(&out[0].1), 200);
    assert_eq!(h.proxy.transactions_evicted(), 13);

    // Live transactions: unanswered INVITEs to u1 (server Proceeding + client Calling each).
    let mut replies = Vec::new();
    for n in 0..5 {
        let inv = invite(1, &format!("z9hG4bKlive{n}"), "")
            .replace("sip:bob@example.test", "sip:u1@example.test")
            .replace("call-1", &format!("live-{n}"));
        let out = h.send(&inv, "127.0.0.1:7000");
        replies.push(out);
    }
    for out in &replies[..4] {
        assert_eq!(status(&out[0].1), 100, "{out:#?}");
        assert_eq!(out[1].0, "127.0.0.1:7201".parse().unwrap());
    }
    assert_eq!(h.proxy.transactions(), 8);
    let refused = &replies[4];
    assert_eq!(refused.len(), 1);
    assert_eq!(status(&refused[0].1), 503);
    assert_eq!(header(&refused[0].1, "Retry-After"), vec!["5"]);
    assert_eq!(counter(&h, "transactions", "refused_total"), Some(1));
    // Once the live ones time out (Timer B, 32 s; no sleeping: virtual time), it takes
    // requests again.
    h.advance(Duration::from_secs(40));
    let reg = plain_register("u5", 50, 1, "127.0.0.1:7300", false);
    let out = h.send(&reg, "127.0.0.1:7300");
    assert_eq!(status(&out[0].1), 200, "{out:#?}");
}

#[test]
fn own_responses_carry_rport_and_received() {
    // Stateless (401) and stateful (200) responses alike.
    for auth in [true, false] {
        let mut config = ServerConfig::for_domain("example.test");
        config.authentication.enabled = auth;
        let mut h = Harness::new(config);
        let expect = if auth { 401 } else { 200 };
        // rport, sent-by a private address: both parameters, sent back to the source.
        let reg = plain_register("alice", 1, 1, "10.0.0.9:5062", true);
        let out = h.send(&reg, "127.0.0.1:40000");
        assert_eq!(out.len(), 1);
        assert_eq!(status(&out[0].1), expect);
        assert_eq!(out[0].0, "127.0.0.1:40000".parse().unwrap());
        let via = top_via(&out[0].1);
        assert_eq!(via.received.as_deref(), Some("127.0.0.1"), "{}", out[0].1);
        assert_eq!(via.rport, Some(Some(40000)), "{}", out[0].1);
        assert_eq!(via.host, "10.0.0.9");
        // rport, sent-by the source address itself: RFC 3581 §4 still wants received.
        let reg = plain_register("alice", 2, 1, "127.0.0.1:5062", true);
        let out = h.send(&reg, "127.0.0.1:40001");
        let via = top_via(&out[0].1);
        assert_eq!(via.received.as_deref(), Some("127.0.0.1"));
        assert_eq!(via.rport, Some(Some(40001)));
        // No rport, another host: received only (RFC 3261 §18.2.1).
        let reg = plain_register("alice", 3, 1, "10.0.0.9:5062", false);
        let out = h.send(&reg, "127.0.0.1:40002");
        let via = top_via(&out[0].1);
        assert_eq!(via.received.as_deref(), Some("127.0.0.1"));
        assert_eq!(via.rport, None);
        // No rport, the source's host: the Via is echoed unchanged.
        let reg = plain_register("alice", 4, 1, "127.0.0.1:40003", false);
        let out = h.send(&reg, "127.0.0.1:40003");
        assert_eq!(
            header(&out[0].1, "Via")[0],
            "SIP/2.0/UDP 127.0.0.1:40003;branch=z9hG4bKreg4-1"
        );
    }
}

#[test]
fn a_2xx_retransmission_is_forwarded_after_its_transactions_were_evicted() {
    let mut config = ServerConfig::for_domain("example.test");
    config.authentication.enabled = false;
    config.max_transactions = 4;
    let mut h = Harness::new(config);
    let out = h.send(
        &plain_register("bob", 1, 1, "127.0.0.1:8000", false),
        "127.0.0.1:8000",
    );
    assert_eq!(status(&out[0].1), 200);
    let out = h.send(&invite(1, "z9hG4bKev", ""), "127.0.0.1:7000");
    assert_eq!(out.len(), 2, "{out:#?}");
    let fwd = &out[1].1;
    let vias = header(fwd, "Via");
    let ok = format!(
        "SIP/2.0 200 OK\r\nVia: {}\r\nVia: {}\r\nTo: <sip:bob@example.test>;tag=bb\r\n\
         From: <sip:alice@example.test>;tag=al\r\nCall-ID: call-1\r\nCSeq: 1 INVITE\r\n\
         Contact: <sip:bob@127.0.0.1:8000>\r\nContent-Length: 0\r\n\r\n",
        vias[0], vias[1]
    );
    let out = h.send(&ok, "127.0.0.1:8000");
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0, "127.0.0.1:7000".parse().unwrap());
    // New requests evict the REGISTER's and the INVITE's accepted transactions (RFC 6026).
    for n in 2..6 {
        let port = 8000 + n as u16;
        let reg = plain_register(&format!("u{n}"), n, 1, &format!("127.0.0.1:{port}"), false);
        assert_eq!(
            status(&h.send(&reg, &format!("127.0.0.1:{port}"))[0].1),
            200
        );
    }
    assert!(
        h.proxy.transactions_evicted() >= 3,
        "{}",
        h.proxy.transactions_evicted()
    );
    // The callee retransmits its 2xx: still forwarded upstream (statelessly), once.
    let out = h.send(&ok, "127.0.0.1:8000");
    assert_eq!(out.len(), 1, "{out:#?}");
    assert_eq!(out[0].0, "127.0.0.1:7000".parse().unwrap());
    assert_eq!(status(&out[0].1), 200);
    assert_eq!(header(&out[0].1, "Via").len(), 1);
}
