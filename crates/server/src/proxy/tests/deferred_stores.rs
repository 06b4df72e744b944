//! Store operations deferred to the IO edge: a request waiting for its store answer holds up
//! nothing else, its retransmissions do not ask the store again, and it goes on from the
//! module that asked once the answer comes.

use super::*;
use crate::store_ops::{StoreAnswer, StoreRequest};

fn options(branch: &str) -> String {
    format!(
        "OPTIONS sip:127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9100;branch={branch}\r\n\
         Max-Forwards: 70\r\nTo: <sip:127.0.0.1:5060>\r\nFrom: <sip:probe@example.test>;tag=p\r\n\
         Call-ID: opt-{branch}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    )
}

fn register_msg(cseq: u32, auth: &str) -> String {
    format!(
        "REGISTER sip:127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9200;branch=z9hG4bKd{cseq}\r\n\
         Max-Forwards: 70\r\nTo: <sip:alice@example.test>\r\nFrom: <sip:alice@example.test>;tag=d\r\n\
         Call-ID: reg-d\r\nCSeq: {cseq} REGISTER\r\nContact: <sip:alice@127.0.0.1:9200>\r\n{auth}\
         Content-Length: 0\r\n\r\n"
    )
}

impl Harness {
    fn stores(&mut self) -> Vec<StoreRequest> {
        std::iter::from_fn(|| self.proxy.poll_store()).collect()
    }

    fn answer(&mut self, r: &StoreRequest) -> Vec<(SocketAddr, String)> {
        let a = r.run(&*self.store, &*self.store);
        self.proxy.handle_store(r.ticket, a, self.now);
        self.out()
    }
}

#[test]
fn a_request_waiting_for_the_store_holds_up_nothing_else() {
    let mut h = Harness::new(ServerConfig::for_domain("example.test"));
    h.proxy.defer_store_operations(true);
    // The challenge needs no store: answered at once.
    let out = h.send(&register_msg(1, ""), "127.0.0.1:9200");
    assert_eq!(status(&out[0].1), 401);
    assert!(h.stores().is_empty());
    let creds = credentials(
        &out[0].1,
        "WWW-Authenticate",
        "REGISTER",
        "sip:127.0.0.1:5060",
        "alice",
        "alicepw",
    );
    let authorized = register_msg(2, &format!("Authorization: {creds}\r\n"));
    // The authorized REGISTER waits for alice's digest record: nothing is sent yet.
    assert!(h.send(&authorized, "127.0.0.1:9200").is_empty());
    let pending = h.stores();
    assert_eq!(pending.len(), 1);
    assert!(matches!(pending[0].op, StoreOp::User { .. }));
    assert_eq!(h.proxy.parked(), 1);
    // Meanwhile another request is answered at once (its challenge needs no store)...
    let out = h.send(&options("z9hG4bKo1"), "127.0.0.1:9100");
    assert_eq!(status(&out[0].1), 407, "{}", out[0].1);
    assert!(h.stores().is_empty());
    // ...and a retransmission of the waiting one is absorbed by its transaction, without a
    // second store operation.
    assert!(h.send(&authorized, "127.0.0.1:9200").is_empty());
    assert!(h.stores().is_empty());
    // The digest record comes: authentication goes on, the registrar asks the store.
    assert!(h.answer(&pending[0]).is_empty());
    let pending = h.stores();
    assert_eq!(pending.len(), 1);
    assert!(matches!(pending[0].op, StoreOp::Register(_)));
    // The registration is applied: 200 with the contact; nothing left waiting.
    let out = h.answer(&pending[0]);
    assert_eq!(status(&out[0].1), 200, "{}", out[0].1);
    assert!(out[0].1.contains("Contact: <sip:alice@127.0.0.1:9200>"));
    assert_eq!(h.proxy.parked(), 0);
    let binding = h.store.bindings("sip:alice@example.test", h.wall).unwrap();
    assert_eq!(binding.len(), 1);
    // The retransmission after the answer gets the same 200 from the transaction.
    let again = h.send(&authorized, "127.0.0.1:9200");
    assert_eq!(status(&again[0].1), 200);
    assert!(h.stores().is_empty());
}

#[test]
fn a_failed_store_answers_503_and_deferred_calls_reach_the_callee() {
    let mut h = Harness::new(ServerConfig::for_domain("example.test"));
    register(&mut h, "bob", "bobpw", 7002);
    h.proxy.defer_store_operations(true);
    // A call to bob: authentication asks for alice's record, the router for bob's bindings.
    let out = h.send(&super::invite(1, "z9hG4bKx1", ""), "127.0.0.1:7000");
    assert_eq!(status(&out[0].1), 407);
    let creds = credentials(
        &out[0].1,
        "Proxy-Authenticate",
        "INVITE",
        "sip:bob@example.test",
        "alice",
        "alicepw",
    );
    let invite = super::invite(2, "z9hG4bKx2", &format!("Proxy-Authorization: {creds}\r\n"));
    assert!(h.send(&invite, "127.0.0.1:7000").is_empty());
    let user = h.stores().remove(0);
    assert!(h.answer(&user).is_empty());
    let lookup = h.stores().remove(0);
    assert!(matches!(lookup.op, StoreOp::Bindings { .. }));
    let out = h.answer(&lookup);
    let to_bob: Vec<_> = out.iter().filter(|(a, _)| a.port() == 7002).collect();
    assert_eq!(
        to_bob.len(),
        1,
        "forwarded to bob once the bindings came: {out:?}"
    );
    assert!(to_bob[0].1.starts_with("INVITE "));

    // A store that fails: the request gets a 503 with Retry-After (the phone comes back
    // later), the others go on.
    let out = h.send(&super::invite(1, "z9hG4bKy1", ""), "127.0.0.1:7000");
    let creds = credentials(
        &out[0].1,
        "Proxy-Authenticate",
        "INVITE",
        "sip:bob@example.test",
        "alice",
        "alicepw",
    );
    let invite = super::invite(2, "z9hG4bKy2", &format!("Proxy-Authorization: {creds}\r\n"));
    assert!(h.send(&invite, "127.0.0.1:7000").is_empty());
    let user = h.stores().remove(0);
    let failed = StoreAnswer::User(Err(crate::store_ops::StoreError("disk full".into())));
    h.proxy.handle_store(user.ticket, failed, h.now);
    let out = h.out();
    let unavailable = out.iter().find(|(_, m)| status(m) == 503);
    let text = &unavailable.expect("a 503").1;
    assert!(text.contains("Retry-After: 5\r\n"), "{text}");
    assert_eq!(h.proxy.parked(), 0);
}
