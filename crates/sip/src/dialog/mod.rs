//! Dialogs (RFC 3261 §12), sans-IO: the state two user agents share once an INVITE is
//! answered — Call-ID, both tags, CSeq numbers, the remote target and the route set — and
//! what it takes to speak inside one: building in-dialog requests (§12.2.1.1) and the ACK of a
//! 2xx (§13.2.2.4), and retransmitting our 2xx until its ACK arrives (§13.3.1.4,
//! [`Retransmit2xx`]).
//!
//! A UAC holds a dialog from its INVITE on ([`Dialog::uac`]): the remote tag, target and
//! route set are learned from the 2xx ([`Dialog::confirm`]). A UAS makes one from the INVITE
//! it accepts ([`Dialog::uas`]). Requests come back without Via and Max-Forwards: the
//! transport layer's user adds its own.

mod retransmit;
#[cfg(test)]
mod tests;

use crate::message::{Method, NameAddr, Request, Response, Uri};

pub use retransmit::{Retransmit, Retransmit2xx};

/// One dialog (or, for a UAC before the answer, the dialog to be).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialog {
    /// The Call-ID.
    pub call_id: String,
    /// Our party as written in our From (UAC) or To (UAS), with our tag.
    pub local_party: String,
    /// The peer's party as in its To (UAC) or From (UAS), without its tag.
    pub remote_party: String,
    /// The peer's tag, once known.
    pub remote_tag: Option<String>,
    /// The CSeq number of our last request.
    pub local_cseq: u32,
    /// Where in-dialog requests go: the peer's Contact (the Request-URI before it is known).
    pub remote_target: Uri,
    /// The route set, in the order our requests carry it (§12.1.1, §12.1.2).
    pub route_set: Vec<String>,
}

/// A name-addr value without its `tag` parameter.
fn without_tag(party: &str) -> String {
    let party = party.trim();
    match party.find(";tag=") {
        Some(i) => {
            let rest = party.get(i + 5..).unwrap_or_default();
            let after = rest
                .find(';')
                .map_or("", |j| rest.get(j..).unwrap_or_default());
            format!("{}{after}", party.get(..i).unwrap_or_default())
        }
        None => party.to_owned(),
    }
}

/// The first Contact URI of a message, if any.
fn contact_uri(contacts: Option<Vec<crate::message::Contact>>) -> Option<Uri> {
    contacts?
        .into_iter()
        .next()
        .and_then(|c| c.addr().map(|a| a.uri.clone()))
}

impl Dialog {
    /// The dialog of an INVITE we send (RFC 3261 §12.1.2 once answered): `local_party` with
    /// our tag, `remote` the To, `target` the Request-URI, `cseq` the INVITE's.
    pub fn uac(call_id: &str, local_party: &str, remote: &str, target: Uri, cseq: u32) -> Self {
        Dialog {
            call_id: call_id.to_owned(),
            local_party: local_party.to_owned(),
            remote_party: without_tag(remote),
            remote_tag: None,
            local_cseq: cseq,
            remote_target: target,
            route_set: Vec::new(),
        }
    }

    /// The dialog of an INVITE we accept, with `local_tag` as our To tag (§12.1.1): the
    /// remote target is the INVITE's Contact, the route set its Record-Route in order.
    pub fn uas(invite: &Request, local_tag: &str) -> Option<Self> {
        let to = invite.headers().get("To")?.trim();
        let from = invite.headers().get("From")?.trim();
        Some(Dialog {
            call_id: invite.call_id().ok()?.to_owned(),
            local_party: format!("{};tag={local_tag}", without_tag(to)),
            remote_party: without_tag(from),
            remote_tag: invite.from_tag().ok().flatten().map(str::to_owned),
            local_cseq: 0,
            remote_target: contact_uri(invite.contacts().ok())
                .unwrap_or_else(|| invite.uri().clone()),
            route_set: invite
                .record_routes()
                .map(|rr| rr.iter().map(NameAddr::to_string).collect())
                .unwrap_or_default(),
        })
    }

    /// Takes the peer's tag, target and route set from its 2xx to our INVITE (§12.1.2: the
    /// Record-Route reversed).
    pub fn confirm(&mut self, response: &Response) {
        self.remote_tag = response.to_tag().ok().flatten().map(str::to_owned);
        if let Some(to) = response.headers().get("To") {
            self.remote_party = without_tag(to);
        }
        if let Some(target) = contact_uri(response.contacts().ok()) {
            self.remote_target = target;
        }
        self.route_set = response
            .record_routes()
            .map(|rr| rr.iter().rev().map(NameAddr::to_string).collect())
            .unwrap_or_default();
    }

    /// The peer's party with its tag.
    pub fn remote(&self) -> String {
        match &self.remote_tag {
            Some(t) => format!("{};tag={t}", self.remote_party),
            None => self.remote_party.clone(),
        }
    }

    /// Whether `req` belongs to this dialog (its Call-ID, and our tag as its To tag).
    pub fn matches(&self, req: &Request) -> bool {
        let ours = self
            .local_party
            .rsplit_once(";tag=")
            .map(|(_, t)| t.split(';').next().unwrap_or(t));
        req.call_id().is_ok_and(|c| c == self.call_id)
            && req.to_tag().ok().flatten().is_some_and(|t| Some(t) == ours)
    }

    /// A request inside the dialog (§12.2.1.1): Request-URI the remote target, From/To our
    /// and the peer's parties, the Call-ID, the route set, and a CSeq: the next of ours, or
    /// for ACK (and CANCEL) the INVITE's, `cseq`. Without Via and Max-Forwards.
    pub fn request(&mut self, method: Method, cseq: Option<u32>) -> Request {
        let seq = match cseq {
            Some(s) => s,
            None => {
                self.local_cseq = self.local_cseq.wrapping_add(1);
                self.local_cseq
            }
        };
        let mut req = Request::new(method.clone(), self.remote_target.clone());
        let h = req.headers_mut();
        h.push("From", self.local_party.clone());
        h.push("To", self.remote());
        h.push("Call-ID", self.call_id.clone());
        h.push("CSeq", format!("{seq} {}", method.as_str()));
        for r in &self.route_set {
            h.push("Route", r.clone());
        }
        req
    }
}
