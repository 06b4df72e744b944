//! Building the messages the proxy sends (RFC 3261 §16.6, §16.7 step 3, §9.1, §18.2.1).

use std::net::SocketAddr;

use sotto_sip::message::{Headers, Method, Request, Response, Scheme, Via};
use sotto_sip::transport::{Destination, TransportKind};

use super::flow::{Flow, FlowTokens};
use crate::pipeline::{Locality, Target};

/// The Record-Route value naming us at `host_port` on `transport`, with a flow token (RFC 5626
/// §5.3, see [`super::flow`]) as its user part when given. Its scheme follows the request's
/// (RFC 3261 §16.6 step 4): `sips:` only for a `sips:` request, else `sip:` with the transport
/// named (`transport=tls`), which every client can follow.
pub(crate) fn record_route(
    transport: TransportKind,
    host_port: &str,
    sips: bool,
    token: Option<&str>,
) -> String {
    let (user, ob) = match token {
        Some(t) => (format!("{t}@"), ";ob"),
        None => (String::new(), ""),
    };
    match transport {
        TransportKind::Tls if sips => format!("<sips:{user}{host_port};lr{ob}>"),
        TransportKind::Tls => format!("<sip:{user}{host_port};transport=tls;lr{ob}>"),
        TransportKind::Tcp => format!("<sip:{user}{host_port};transport=tcp;lr{ob}>"),
        TransportKind::Udp => format!("<sip:{user}{host_port};lr{ob}>"),
    }
}

/// Where a request came from, as [`branch_request`] needs it (kept with a fork, so that
/// branches can be built after a DNS lookup or for the next candidate).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Inbound {
    /// The transport it came over.
    pub(crate) transport: TransportKind,
    /// The peer that sent it.
    pub(crate) source: SocketAddr,
    /// Our address it arrived on.
    pub(crate) local: SocketAddr,
    /// The connection it came on (TCP/TLS).
    pub(crate) flow: Option<Flow>,
    /// It came from another domain's server (federation).
    pub(crate) peer: bool,
}

/// Where a branch goes, as [`branch_request`] needs it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Outbound<'a> {
    /// The target (Request-URI, Path, our address on its side).
    pub(crate) target: &'a Target,
    /// The address it is sent to.
    pub(crate) destination: &'a Destination,
    /// It goes to another domain's server (federation).
    pub(crate) peer: bool,
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
/// top with `branch`. The body is not touched. `None` when we have no listener for the
/// branch's transport (nothing could come back to us).
///
/// The Record-Route is doubled when the transport changes, and when either side is a flow
/// (the request came on a connection, or the target is reached over one) or another domain's
/// server: the value of each side names us as that side reaches us (the address its messages
/// arrive on, or our domain for a peer server, which resolves it by DNS and checks our
/// certificate for it) and carries that side's flow token, if any (RFC 5626 §5.3). The router
/// tells the sides apart by position: the last Route value naming us is the destination's
/// side.
pub(crate) fn branch_request(
    locality: &Locality,
    tokens: &FlowTokens,
    original: &Request,
    inbound: &Inbound,
    outbound: Outbound<'_>,
    branch: &str,
) -> Option<Request> {
    let (target, dest) = (outbound.target, outbound.destination);
    let source = inbound.source;
    let sips = original.uri().scheme() == Scheme::Sips;
    let mut r = original.clone();
    if r.uri() != &target.uri {
        r.set_uri(target.uri.clone());
    }
    stamp_top_via(&mut r, source);
    let out = dest.transport;
    // What the far side reaches us at: its registration's arrival address when known.
    let out_hp = locality.advertised(out, Some(dest.remote.ip()), target.local.map(|l| l.ip()))?;
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
        // A peer server is reached by its domain (DNS, its certificate), not by the
        // connection it opened to us.
        let in_token = inbound
            .flow
            .filter(|_| !inbound.peer)
            .map(|f| tokens.encode(&f));
        let out_token = Flow::of_destination(dest).map(|f| tokens.encode(&f));
        let double = out != inbound.transport
            || in_token.is_some()
            || out_token.is_some()
            || inbound.peer
            || outbound.peer;
        let in_hp = if inbound.peer {
            Some(locality.peer_host())
        } else {
            locality.advertised(
                inbound.transport,
                Some(source.ip()),
                Some(inbound.local.ip()),
            )
        };
        if let Some(hp) = in_hp {
            h.insert_first(
                "Record-Route",
                record_route(inbound.transport, &hp, sips, in_token.as_deref()),
            );
        }
        if double {
            let hp = if outbound.peer {
                locality.peer_host()
            } else {
                out_hp.clone()
            };
            h.insert_first(
                "Record-Route",
                record_route(out, &hp, sips, out_token.as_deref()),
            );
        }
    }
    let (host, port) = match out_hp.rsplit_once(':') {
        Some((h, p)) => (h.to_owned(), p.parse().ok()),
        None => (out_hp.clone(), None),
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
    let transport = TransportKind::from_token(&via.transport)?;
    let host = via.received.clone().unwrap_or_else(|| via.host.clone());
    let ip = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()?;
    let port = via.rport.flatten().unwrap_or_else(|| via.port_or_default());
    Some(Destination::new(transport, SocketAddr::new(ip, port)))
}
