//! Building the messages the proxy sends (RFC 3261 §16.6, §16.7 step 3, §9.1, §18.2.1).

use std::net::SocketAddr;

use sotto_sip::transport::{Destination, TransportKind};
use sotto_sip::message::{Headers, Method, Request, Response, Via};

use super::flow::{Flow, FlowTokens};
use crate::pipeline::{Locality, Target};

/// `host:port` of a listener as written in Via and Record-Route.
pub(crate) fn advertised(locality: &Locality, addr: SocketAddr) -> String {
    if addr.ip().is_unspecified() {
        let host = locality.domains.first().map_or("localhost", String::as_str);
        return format!("{host}:{}", addr.port());
    }
    addr.to_string()
}

/// The Record-Route value naming our listener for `transport`, with a flow token (RFC 5626
/// §5.3, see [`super::flow`]) as its user part when given.
pub(crate) fn record_route(
    locality: &Locality,
    transport: TransportKind,
    token: Option<&str>,
) -> Option<String> {
    let addr = locality.listener(transport)?;
    let hp = advertised(locality, addr);
    let (user, ob) = match token {
        Some(t) => (format!("{t}@"), ";ob"),
        None => (String::new(), ""),
    };
    Some(match transport {
        TransportKind::Tls => format!("<sips:{user}{hp};lr{ob}>"),
        TransportKind::Tcp => format!("<sip:{user}{hp};transport=tcp;lr{ob}>"),
        TransportKind::Udp => format!("<sip:{user}{hp};lr{ob}>"),
    })
}

/// Where a request came from, as [`branch_request`] needs it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Inbound<'a> {
    /// The transport it came over.
    pub(crate) transport: TransportKind,
    /// The peer that sent it.
    pub(crate) source: SocketAddr,
    /// The connection it came on (TCP/TLS).
    pub(crate) flow: Option<Flow>,
    /// Issues the flow tokens of our Record-Route.
    pub(crate) tokens: &'a FlowTokens,
}

fn is_dialog_creating(m: &Method) -> bool {
    matches!(
        m,
        Method::Invite | Method::Subscribe | Method::Refer | Method::Notify
    )
}

/// Writes `received`/`rport` into the topmost Via of `headers` (§18.2.1, RFC 3581 §4):
/// `received` when the sent-by host is not the source address, or when `rport` is present;
/// `rport=<source port>` when `rport` is present. Left alone when nothing changes.
fn stamp_via(headers: &mut Headers, source: SocketAddr) {
    let Some(line) = headers.get("Via") else {
        return;
    };
    let Ok(mut vias) = Via::parse_list(line) else {
        return;
    };
    let Some(top) = vias.first_mut() else { return };
    let ip = source.ip().to_string();
    let differs = top.host.trim_start_matches('[').trim_end_matches(']') != ip;
    if !differs && top.rport.is_none() {
        return;
    }
    top.set_received(&ip);
    if top.rport.is_some() {
        top.set_rport(source.port());
    }
    let joined: Vec<String> = vias.iter().map(ToString::to_string).collect();
    headers.set_first("Via", joined.join(", "));
}

/// Stamps a request's topmost Via with where it came from (see [`stamp_via`]).
fn stamp_top_via(req: &mut Request, source: SocketAddr) {
    stamp_via(req.headers_mut(), source);
}

/// Stamps the topmost Via of a response the proxy generates itself for a request received
/// from `source` (RFC 3581 §4, RFC 3261 §18.2.1), as the sender expects to find it.
pub(crate) fn stamp_response_via(resp: &mut Response, source: SocketAddr) {
    stamp_via(resp.headers_mut(), source);
}

/// The request of one branch: retargeted, Route for the target's Path, Max-Forwards
/// decremented, Record-Route for dialog-creating requests, `received` stamped, and our Via on
/// top with `branch`. The body is not touched.
///
/// The Record-Route is doubled when the transport changes, and when either side is a flow
/// (the request came on a connection, or the target is reached over one): the value of
/// each side then carries that side's flow token, if any (RFC 5626 §5.3). The router tells
/// the sides apart by position: the last Route value naming us is the destination's side.
pub(crate) fn branch_request(
    locality: &Locality,
    original: &Request,
    target: &Target,
    inbound: Inbound<'_>,
    branch: &str,
) -> Option<Request> {
    let source = inbound.source;
    let mut r = original.clone();
    if r.uri() != &target.uri {
        r.set_uri(target.uri.clone());
    }
    stamp_top_via(&mut r, source);
    let out = target.destination.transport;
    let mf = r
        .max_forwards()
        .ok()
        .flatten()
        .unwrap_or(71)
        .saturating_sub(1);
    let h = r.headers_mut();
    h.set("Max-Forwards", mf.to_string());
    for route in target.route.iter().rev() {
        h.insert_first("Route", route.clone());
    }
    let in_dialog = original.to_tag().ok().flatten().is_some();
    if is_dialog_creating(original.method()) && !in_dialog {
        let tokens = inbound.tokens;
        let in_token = inbound.flow.map(|f| tokens.encode(&f));
        let out_token = Flow::of_destination(&target.destination).map(|f| tokens.encode(&f));
        let double = out != inbound.transport || in_token.is_some() || out_token.is_some();
        if let Some(rr) = record_route(locality, inbound.transport, in_token.as_deref()) {
            h.insert_first("Record-Route", rr);
        }
        if double && let Some(rr) = record_route(locality, out, out_token.as_deref()) {
            h.insert_first("Record-Route", rr);
        }
    }
    let listener = locality.listener(out)?;
    let hp = advertised(locality, listener);
    let (host, port) = match hp.rsplit_once(':') {
        Some((h, p)) => (h.to_owned(), p.parse().ok()),
        None => (hp.clone(), None),
    };
    let via = Via::new(out.via_token(), &host, port, branch).with_rport();
    h.insert_first("Via", via.to_string());
    Some(r)
}

/// A CANCEL for a branch request (§9.1): same Request-URI, top Via, Call-ID, From, To, Route
/// and CSeq number.
pub(crate) fn cancel_for(branch: &Request) -> Request {
    let mut c = Request::new(Method::Cancel, branch.uri().clone());
    let src = branch.headers();
    let h = c.headers_mut();
    if let Ok(via) = branch.via_top() {
        h.push("Via", via.to_string());
    }
    for name in ["Route", "From", "To", "Call-ID"] {
        for v in src.get_all(name) {
            h.push(name, v);
        }
    }
    if let Ok(cseq) = branch.cseq() {
        h.push("CSeq", format!("{} CANCEL", cseq.seq));
    }
    h.push("Max-Forwards", "70");
    c
}

/// Removes the topmost Via value (ours) from a response; false if none is left after it.
pub(crate) fn pop_via(resp: &mut Response) -> bool {
    let Some(line) = resp.headers().get("Via").map(str::to_owned) else {
        return false;
    };
    match Via::parse_list(&line) {
        Ok(vias) if vias.len() > 1 => {
            let rest: Vec<String> = vias.iter().skip(1).map(ToString::to_string).collect();
            resp.headers_mut().set_first("Via", rest.join(", "));
        }
        _ => {
            resp.headers_mut().remove_first("Via");
        }
    }
    resp.headers().get("Via").is_some()
}

/// Where a response goes by its (new) topmost Via (stateless forwarding, §18.2.2).
pub(crate) fn response_destination(resp: &Response) -> Option<Destination> {
    let via = resp.via_top().ok()?;
    let transport = match via.transport.to_ascii_uppercase().as_str() {
        "UDP" => TransportKind::Udp,
        "TCP" => TransportKind::Tcp,
        "TLS" => TransportKind::Tls,
        _ => return None,
    };
    let host = via.received.clone().unwrap_or_else(|| via.host.clone());
    let ip = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()?;
    let port = via.rport.flatten().unwrap_or_else(|| via.port_or_default());
    Some(Destination::new(transport, SocketAddr::new(ip, port)))
}
