//! Test helper: the parts of a test SIP client that do not depend on how it frames its
//! requests — receiving and classifying what a `sotto_net` transport delivers, answering a
//! digest challenge (RFC 7616, with `sotto_sip::digest`), the ACK of a non-2xx
//! answer to an INVITE (RFC 3261 §17.1.1.3) and the response a UAS builds from a request.
//!
//! Included with `#[path = "common/sip_client.rs"] mod sip_client;`.

// Each integration test is its own crate and uses a different subset of these helpers: the
// ones a given test does not call would otherwise be reported as dead code there.
#![allow(dead_code)]

use std::time::Duration;

use sotto_net::{Incoming, IncomingReceiver};
use sotto_sip::digest::{Algorithm, Challenge, ClientSecret, DigestClient};
use sotto_sip::message::{Message, Request, Response, StatusCode};
use sotto_sip::parse::{Limits, parse_message};

/// The next message `rx` delivers, parsed (fails after `bound`, or on an unparsable one);
/// `who` names the receiver in failure messages.
pub(crate) async fn recv(
    rx: &mut IncomingReceiver,
    who: &str,
    bound: Duration,
) -> (Message, Incoming) {
    let m = tokio::time::timeout(bound, rx.recv())
        .await
        .unwrap_or_else(|_| panic!("{who}: nothing received"))
        .expect("transport running");
    let msg = parse_message(m.data.clone(), &Limits::default()).expect("parsable message");
    (msg, m)
}

/// The next final response `rx` delivers (1xx skipped; a request fails the test).
pub(crate) async fn final_response(
    rx: &mut IncomingReceiver,
    who: &str,
    bound: Duration,
) -> Response {
    loop {
        match recv(rx, who, bound).await.0 {
            Message::Response(r) if r.status().is_final() => return r,
            Message::Response(_) => {}
            Message::Request(r) => panic!("{who}: unexpected request {}", r.method()),
        }
    }
}

/// The next request `rx` delivers (a response fails the test).
pub(crate) async fn next_request(
    rx: &mut IncomingReceiver,
    who: &str,
    bound: Duration,
) -> (Request, Incoming) {
    match recv(rx, who, bound).await {
        (Message::Request(r), m) => (r, m),
        (Message::Response(r), _) => panic!("{who}: unexpected response {}", r.status().0),
    }
}

/// For a 401 or 407: the header holding its challenges and the one the answer goes in
/// (`WWW-Authenticate`/`Authorization`, `Proxy-Authenticate`/`Proxy-Authorization`).
pub(crate) fn challenge_headers(r: &Response) -> Option<(&'static str, &'static str)> {
    match r.status().0 {
        401 => Some(("WWW-Authenticate", "Authorization")),
        407 => Some(("Proxy-Authenticate", "Proxy-Authorization")),
        _ => None,
    }
}

/// The digest challenges a 401 or 407 carries (none for another response).
pub(crate) fn challenges(r: &Response) -> Vec<Challenge> {
    let Some((challenge_h, _)) = challenge_headers(r) else {
        return Vec::new();
    };
    r.headers()
        .get_all(challenge_h)
        .filter_map(|v| Challenge::parse(v).ok())
        .collect()
}

/// The credentials answering the `algorithm` challenge of the 401/407 `r`, for a request
/// `method ruri` of `user` with `password`: (header name, value).
pub(crate) fn credentials(
    digest: &mut DigestClient,
    r: &Response,
    algorithm: Algorithm,
    method: &str,
    ruri: &str,
    user: &str,
    password: &str,
) -> (&'static str, String) {
    let (_, creds_h) = challenge_headers(r)
        .unwrap_or_else(|| panic!("{user}: {method} got {}, not a challenge", r.status().0));
    let c = challenges(r)
        .into_iter()
        .find(|c| c.algorithm == algorithm)
        .unwrap_or_else(|| panic!("{user}: no {algorithm:?} challenge in the {}", r.status().0));
    let creds = digest
        .respond(&c, method, ruri, user, ClientSecret::Password(password))
        .expect("digest response");
    (creds_h, creds.to_string())
}

/// [`credentials`] for the request we sent as `request` (its method and Request-URI read
/// from its start line).
pub(crate) fn credentials_for(
    digest: &mut DigestClient,
    r: &Response,
    algorithm: Algorithm,
    request: &str,
    user: &str,
    password: &str,
) -> (&'static str, String) {
    let mut start = request.split(' ');
    let method = start.next().expect("method");
    let ruri = start.next().expect("request URI");
    credentials(digest, r, algorithm, method, ruri, user, password)
}

/// The ACK of the non-2xx final response `resp` to the INVITE we sent as `invite`: same
/// Via branch, From, Call-ID and CSeq number, `resp`'s To (RFC 3261 §17.1.1.3).
pub(crate) fn ack_for_error(invite: &str, resp: &Response) -> String {
    let header = |name: &str| {
        invite
            .split("\r\n")
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .expect("header of our INVITE")
            .to_owned()
    };
    let ruri = invite.split(' ').nth(1).expect("request URI");
    let to = resp.headers().get("To").expect("To").to_owned();
    let cseq = header("CSeq").replace("INVITE", "ACK");
    format!(
        "ACK {ruri} SIP/2.0\r\nVia: {}\r\nMax-Forwards: 70\r\nFrom: {}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {cseq}\r\nContent-Length: 0\r\n\r\n",
        header("Via"),
        header("From"),
        header("Call-ID"),
    )
}

/// A UAS's response `status` to `req`: To tag `tag`, and the Record-Route copied (RFC 3261
/// §12.1.1: the UAS copies it into its dialog-forming responses).
pub(crate) fn response_to(req: &Request, status: u16, tag: &str) -> Response {
    let mut r = Response::from_request(req, StatusCode(status));
    r.set_to_tag(tag);
    for rr in req.headers().get_all("Record-Route") {
        r.headers_mut().push("Record-Route", rr);
    }
    r
}
