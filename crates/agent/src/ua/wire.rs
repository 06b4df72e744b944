//! How the agent writes its messages: Via of new requests, Contact values, tags and
//! branches, the registrar's URI, responses made from a refusal, and reasons read from
//! responses.

use std::net::{IpAddr, SocketAddr};

use sotto_crypto::CryptoProvider;
use sotto_sdp::Refusal;
use sotto_sip::message::{Method, Request, Response, StatusCode, Uri, Via};
use sotto_sip::transport::TransportKind;

use super::{UaConfig, UaError};

/// What we allow in dialogs and say in `Allow`.
pub(crate) const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS";

/// A request with our Via (from `local` over `transport`, with `branch`) and Max-Forwards.
pub(crate) fn new_request(
    method: Method,
    uri: Uri,
    (local, transport): (SocketAddr, TransportKind),
    branch: &str,
) -> Request {
    let mut req = Request::new(method, uri);
    add_via(&mut req, (local, transport), branch);
    req
}

/// Puts our Via (and Max-Forwards, when missing) on top of a request built elsewhere (an
/// in-dialog request from `sotto_sip::dialog`).
pub(crate) fn add_via(
    req: &mut Request,
    (local, transport): (SocketAddr, TransportKind),
    branch: &str,
) {
    let via = Via::new(
        transport.via_token(),
        &host_of(local),
        Some(local.port()),
        branch,
    );
    let h = req.headers_mut();
    h.insert_first("Via", via.to_string());
    if h.get("Max-Forwards").is_none() {
        h.push("Max-Forwards", "70");
    }
}

/// A refusal as a final response to `invite` with a Warning (RFC 3261 §20.43).
pub(crate) fn refusal_response(invite: &Request, refusal: &Refusal, local_party: &str) -> Response {
    let mut resp = Response::from_request(invite, StatusCode(refusal.status_code()));
    set_to(&mut resp, local_party);
    resp.headers_mut().push(
        "Warning",
        format!(
            "{} sotto \"{}\"",
            refusal.warning_code(),
            refusal.warning_text().replace('"', "'")
        ),
    );
    resp
}

/// `status text` of a refusal, for a call's end reason.
pub(crate) fn refusal_reason(refusal: &Refusal) -> String {
    format!("{} {}", refusal.status_code(), refusal.warning_text())
}

/// Copies the request's Record-Route values into a dialog-creating response (RFC 3261
/// §12.1.1).
pub(crate) fn copy_record_route(req: &Request, resp: &mut Response) {
    let rr: Vec<String> = req
        .headers()
        .get_all("Record-Route")
        .map(str::to_owned)
        .collect();
    for v in rr {
        resp.headers_mut().push("Record-Route", v);
    }
}

/// Replaces the To header of a response with our party (with our tag).
pub(crate) fn set_to(resp: &mut Response, local_party: &str) {
    resp.headers_mut().set_first("To", local_party.to_owned());
}

/// `status reason` plus the Warning text, if any.
pub(crate) fn with_warning(r: &Response) -> String {
    let mut s = format!("{} {}", r.status().as_u16(), r.reason());
    if let Some(w) = r.headers().get("Warning") {
        s.push_str(" (Warning: ");
        s.push_str(w.trim());
        s.push(')');
    }
    s
}

/// The registrar's URI: the identity's domain (RFC 3261 §10.2).
pub(crate) fn registrar_uri(identity: &Uri) -> Uri {
    let scheme = identity.scheme_str();
    let host = identity.host();
    let s = match identity.port() {
        Some(p) => format!("{scheme}:{host}:{p}"),
        None => format!("{scheme}:{host}"),
    };
    Uri::parse(&s).unwrap_or_else(|_| identity.clone())
}

/// Our Contact: `<sip:user@addr;transport=..;ob>`, with `+sip.instance` and `reg-id` for
/// REGISTER (RFC 5626 §4.2).
pub(crate) fn contact_value(c: &UaConfig, local: SocketAddr, register: bool) -> String {
    let user = c.identity.user().unwrap_or("anonymous");
    let transport = c.proxy.transport.as_str();
    let mut v = format!(
        "<sip:{user}@{}:{};transport={transport};ob>",
        host_of(local),
        local.port()
    );
    if register {
        v.push_str(&format!(";+sip.instance=\"<{}>\";reg-id=1", c.instance));
    }
    v
}

/// A dialog Contact at `addr` over `transport` (no `ob`: not the registration flow).
pub(crate) fn contact_at(c: &UaConfig, addr: SocketAddr, transport: &str) -> String {
    let user = c.identity.user().unwrap_or("anonymous");
    format!(
        "<sip:{user}@{}:{};transport={transport}>",
        host_of(addr),
        addr.port()
    )
}

pub(crate) fn host_of(a: SocketAddr) -> String {
    match a.ip() {
        IpAddr::V4(ip) => ip.to_string(),
        IpAddr::V6(ip) => format!("[{ip}]"),
    }
}

/// `bytes` random bytes (at most 32) in hex: tags and Call-IDs.
pub(crate) fn random_token(p: &CryptoProvider, bytes: usize) -> Result<String, UaError> {
    let mut b = vec![0u8; bytes.min(32)];
    p.rng.fill(&mut b).map_err(|_| UaError::Rng)?;
    Ok(sotto_crypto::hex::encode(&b))
}

/// A fresh RFC 3261 branch.
pub(crate) fn branch(p: &CryptoProvider) -> Result<String, UaError> {
    Ok(format!("z9hG4bK{}", random_token(p, 12)?))
}
