//! Incoming requests (RFC 3261 §13.3, §15.1.2): a new INVITE checked against our policy
//! before it rings, answered with our SDP (its 2xx sent again until the ACK over UDP,
//! §13.3.1.4); a re-INVITE answered with the same session; BYE, CANCEL and OPTIONS; a ringing
//! call refused after [`RING_TIMEOUT`]; and ghost calls refused without ringing.

use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use sotto_sdp::Session;
use sotto_sip::dialog::{Dialog, Retransmit, Retransmit2xx};
use sotto_sip::message::{Method, Request, Response, StatusCode};
use sotto_sip::transaction::{Received, TimerConfig, TransactionId};

use sotto_sdp::Refusal;

use super::wire::{
    ALLOW, contact_value, copy_record_route, random_token, refusal_reason, refusal_response, set_to,
};
use super::{Flow, MAX_CALLS, Outgoing, RING_TIMEOUT, UaError, UaEvent, UserAgent};
use crate::call::{Call, CallId, CallState, Role};
use crate::keying;
use crate::policy::{self, Trust};
use crate::security::SecurityReport;

impl UserAgent {
    /// Answers a ringing incoming call with our RTP at `media` (200 OK with the SDP answer).
    pub fn answer(&mut self, id: CallId, media: SocketAddr, now: Instant) -> Result<(), UaError> {
        let caps = self.caps(media)?;
        let (offer, peer) = match self.calls.get(&id) {
            Some(c) => (c.offer.clone(), policy::party_uri(&c.dialog.remote_party)),
            None => return Err(UaError::NoSuchCall),
        };
        let offer = offer.ok_or(UaError::NoSuchCall)?;
        let mut keyx = policy::answer_key_exchange(&self.config, &offer, self.provider, &peer)?;
        let contact = self
            .calls
            .get(&id)
            .and_then(|c| self.contact_for(c.direct, c.dest.transport));
        let call = self.calls.get_mut(&id).ok_or(UaError::NoSuchCall)?;
        if call.role != Role::Uas || call.state != CallState::Ringing {
            return Err(UaError::NoSuchCall);
        }
        let (Some(tx), Some(invite), Some(offer)) = (call.invite_tx, &call.invite, &call.offer)
        else {
            return Err(UaError::NoSuchCall);
        };
        let (sdp, neg) = match keying::answer_offer(offer, &caps, keyx.as_mut(), self.provider.rng)
        {
            Ok(x) => x,
            Err(refusal) => {
                let resp = refusal_response(invite, &refusal, &call.dialog.local_party);
                self.layer.send_response(tx, resp, now)?;
                let reason = refusal_reason(&refusal);
                self.end_call(id, reason);
                self.pump(now);
                return Ok(());
            }
        };
        let body = Bytes::from(sdp.to_sdp().map_err(|e| UaError::Policy(e.to_string()))?);
        let mut resp = Response::from_request(invite, StatusCode::OK);
        set_to(&mut resp, &call.dialog.local_party);
        copy_record_route(invite, &mut resp);
        let h = resp.headers_mut();
        if let Some(c) = contact {
            h.push("Contact", c);
        }
        h.push("Allow", ALLOW);
        h.push("Supported", "outbound");
        h.push("Content-Type", "application/sdp");
        resp.set_body(body.clone());
        call.local_sdp = Some(body);
        call.negotiated = Some(neg);
        call.keyx = Some(keyx);
        call.state = CallState::Connected;
        call.ring_deadline = None;
        if !call.dest.transport.is_stream() {
            call.ok_retransmit = Some(Retransmit2xx::new(
                resp.to_bytes(),
                now,
                &TimerConfig::default(),
            ));
        }
        self.layer.send_response(tx, resp, now)?;
        self.announce_connected(id);
        self.pump(now);
        Ok(())
    }

    /// Refuses a ringing incoming call with `status`.
    pub(super) fn refuse_ringing(&mut self, id: CallId, status: StatusCode, now: Instant) {
        if let Some(c) = self.calls.get(&id)
            && let (Some(tx), Some(inv)) = (c.invite_tx, &c.invite)
        {
            let mut resp = Response::from_request(inv, status);
            set_to(&mut resp, &c.dialog.local_party);
            let _ = self.layer.send_response(tx, resp, now);
        }
    }

    /// Incoming calls nobody answered in time: refused with 480.
    pub(super) fn ring_timeouts(&mut self, now: Instant) {
        let unanswered: Vec<CallId> = self
            .calls
            .iter()
            .filter(|(_, c)| c.ring_deadline.is_some_and(|at| at <= now))
            .map(|(id, _)| *id)
            .collect();
        for id in unanswered {
            self.refuse_ringing(id, StatusCode::TEMPORARILY_UNAVAILABLE, now);
            self.end_call(id, "not answered (480 Temporarily Unavailable)".into());
        }
    }

    pub(super) fn reject_ghost(&mut self, req: &Request, flow: &Flow) {
        let reason = "request not received over the registration flow nor from a trusted host";
        if *req.method() != Method::Ack {
            let mut resp = Response::from_request(req, StatusCode::FORBIDDEN);
            if let Ok(tag) = random_token(self.provider, 8) {
                resp.set_to_tag(&tag);
            }
            resp.headers_mut()
                .push("Warning", format!("399 sotto \"{reason}\""));
            self.out.push_back(Outgoing {
                destination: flow.reply_destination(),
                bytes: resp.to_bytes(),
                transaction: None,
            });
        }
        self.events.push_back(UaEvent::Rejected {
            source: flow.remote,
            method: req.method().as_str().to_owned(),
            status: 403,
            reason: reason.into(),
        });
    }

    pub(super) fn handle_request(&mut self, req: Request, flow: &Flow, trust: Trust, now: Instant) {
        let reliable = flow.transport.is_stream();
        let dest = flow.reply_destination();
        match self.layer.handle_request(req, reliable, now) {
            Received::Request(inc) => {
                let method = inc.request().method().clone();
                let Ok(tx) = self.layer.accept(inc, now) else {
                    return;
                };
                self.dests.insert(tx, dest.clone());
                let Some(req) = self.layer.server(tx).and_then(|t| t.request().cloned()) else {
                    return;
                };
                match method {
                    Method::Invite => self.incoming_invite(tx, req, flow, trust, now),
                    Method::Bye => self.incoming_bye(tx, &req, now),
                    Method::Options => {
                        let mut resp = Response::from_request(&req, StatusCode::OK);
                        if let Ok(tag) = random_token(self.provider, 8) {
                            resp.set_to_tag(&tag);
                        }
                        resp.headers_mut().push("Allow", ALLOW);
                        let _ = self.layer.send_response(tx, resp, now);
                    }
                    _ => {
                        let mut resp = Response::from_request(&req, StatusCode::METHOD_NOT_ALLOWED);
                        resp.headers_mut().push("Allow", ALLOW);
                        let _ = self.layer.send_response(tx, resp, now);
                    }
                }
            }
            Received::Cancel { cancel, invite } => {
                self.dests.insert(cancel, dest);
                let ringing = invite.and_then(|inv| {
                    self.calls
                        .iter()
                        .find(|(_, c)| {
                            c.invite_tx == Some(inv)
                                && c.role == Role::Uas
                                && matches!(c.state, CallState::Calling | CallState::Ringing)
                        })
                        .map(|(k, _)| *k)
                });
                if let Some(cid) = ringing {
                    self.refuse_ringing(cid, StatusCode::REQUEST_TERMINATED, now);
                    self.end_call(cid, "cancelled by the caller".into());
                }
            }
            Received::Merged(id) | Received::Absorbed(id) => {
                self.dests.entry(id).or_insert(dest);
            }
            Received::Ack(ack) => self.ack_received(&ack),
            _ => {}
        }
    }

    /// Refuses an incoming INVITE on `tx` with `status` and a Warning, and reports the
    /// refused call (incoming, security, ended).
    fn refuse_incoming(
        &mut self,
        (tx, req, id): (TransactionId, &Request, CallId),
        (flow, trust, local_party): (&Flow, Trust, &str),
        (status, warning_code, text): (u16, u16, String),
        now: Instant,
    ) {
        let mut resp = Response::from_request(req, StatusCode(status));
        set_to(&mut resp, local_party);
        resp.headers_mut().push(
            "Warning",
            format!("{warning_code} sotto \"{}\"", text.replace('"', "'")),
        );
        let _ = self.layer.send_response(tx, resp, now);
        self.events.push_back(UaEvent::IncomingCall {
            call: id,
            from: header(req, "From"),
            to: header(req, "To"),
        });
        let reason = format!("refused: {status} {text}");
        let report = SecurityReport::not_established(
            flow.transport.as_str(),
            flow.tls.as_ref(),
            trust.as_str(),
            &reason,
        )
        .direct(trust.is_direct());
        self.report_end(id, Some(report), reason);
    }

    fn incoming_invite(
        &mut self,
        tx: TransactionId,
        req: Request,
        flow: &Flow,
        trust: Trust,
        now: Instant,
    ) {
        if req.to_tag().ok().flatten().is_some() {
            self.incoming_reinvite(tx, &req, now);
            return;
        }
        let local_tag = random_token(self.provider, 8).unwrap_or_else(|_| "t".into());
        let Some(dialog) = Dialog::uas(&req, &local_tag) else {
            let _ = self.layer.send_response(
                tx,
                Response::from_request(&req, StatusCode::BAD_REQUEST),
                now,
            );
            return;
        };
        let id = self.alloc_call();
        let local_party = dialog.local_party.clone();
        let refuse = |ua: &mut Self, status: u16, code: u16, text: String| {
            ua.refuse_incoming(
                (tx, &req, id),
                (flow, trust, &local_party),
                (status, code, text),
                now,
            );
        };
        if self.calls.len() >= MAX_CALLS {
            return refuse(self, 486, 399, "too many calls".into());
        }
        let body = req.body().clone();
        if body.is_empty() {
            return refuse(
                self,
                488,
                399,
                "an INVITE without an SDP offer is not supported".into(),
            );
        }
        // SDES over a non-TLS hop: only on a direct call, and only with the insecure override.
        if sotto_sdp::sdes_present(&body)
            && !policy::sdes_allowed(&self.config, flow.transport, trust)
        {
            return refuse(
                self,
                488,
                399,
                "SDES keys are never accepted over a non-TLS hop".into(),
            );
        }
        let offer = match Session::parse(&body) {
            Ok(s) => s,
            Err(e) => return refuse(self, 488, 399, format!("malformed SDP: {e}")),
        };
        // Check the offer against our policy before ringing (no ringing for a call that
        // cannot be set up): a throw-away answer with the discard port.
        let Ok(probe_caps) = self.caps(SocketAddr::new(flow.local.ip(), 9)) else {
            return;
        };
        let peer = policy::party_uri(&dialog.remote_party);
        let Ok(mut probe) = policy::answer_key_exchange(&self.config, &offer, self.provider, &peer)
        else {
            return refuse(self, 500, 399, "the key exchange could not start".into());
        };
        if let Err(refusal) =
            keying::answer_offer(&offer, &probe_caps, probe.as_mut(), self.provider.rng)
        {
            return refuse(
                self,
                refusal.status_code(),
                refusal.warning_code(),
                refusal.warning_text(),
            );
        }
        let from_proxy = !trust.is_direct();
        let dest = if from_proxy {
            self.proxy_destination()
        } else {
            flow.reply_destination()
        };
        let (from, to) = (header(&req, "From"), header(&req, "To"));
        let call = Call {
            role: Role::Uas,
            state: CallState::Ringing,
            dialog,
            target: req.uri().clone(),
            dest,
            direct: !from_proxy,
            invite_tx: Some(tx),
            invite: Some(req.clone()),
            offer: Some(offer),
            local_sdp: None,
            negotiated: None,
            keyx: None,
            protection: None,
            ack: None,
            auth: trust.as_str().to_owned(),
            auth_tries: 0,
            got_provisional: true,
            cancel_pending: false,
            ring_deadline: Some(now + RING_TIMEOUT),
            ok_retransmit: None,
            transport: flow.transport,
            tls: flow.tls.clone(),
            end_reason: None,
        };
        self.calls.insert(id, call);
        let mut ringing = Response::from_request(&req, StatusCode::RINGING);
        set_to(&mut ringing, &local_party);
        copy_record_route(&req, &mut ringing);
        if let Some(c) = self.contact_for(!from_proxy, flow.transport) {
            ringing.headers_mut().push("Contact", c);
        }
        let _ = self.layer.send_response(tx, ringing, now);
        self.events
            .push_back(UaEvent::IncomingCall { call: id, from, to });
        self.events.push_back(UaEvent::CallState {
            call: id,
            state: CallState::Ringing,
            reason: None,
        });
    }

    /// The ACK of our 2xx: stop retransmitting it.
    pub(super) fn ack_received(&mut self, ack: &Request) {
        let cid = ack.call_id().unwrap_or_default();
        if let Some(c) = self.calls.values_mut().find(|c| c.dialog.call_id == cid) {
            c.ok_retransmit = None;
        }
    }

    /// Retransmits unacknowledged 2xx responses (§13.3.1.4); a call whose 2xx is never
    /// acknowledged within 64·T1 is ended with a BYE.
    pub(super) fn retransmit_2xx(&mut self, now: Instant) {
        let mut give_up = Vec::new();
        for (id, c) in self.calls.iter_mut() {
            let Some(r) = c.ok_retransmit.as_mut() else {
                continue;
            };
            match r.handle_timeout(now) {
                Retransmit::Wait => {}
                Retransmit::Send(bytes) => self.out.push_back(Outgoing {
                    destination: c.dest.clone(),
                    bytes,
                    transaction: None,
                }),
                Retransmit::GiveUp => give_up.push(*id),
            }
        }
        for id in give_up {
            if let Some(c) = self.calls.get_mut(&id) {
                c.ok_retransmit = None;
                c.state = CallState::Ending;
            }
            if self.send_bye(id, now).is_err() {
                self.end_call(id, "no ACK received".into());
            }
        }
    }

    fn incoming_reinvite(&mut self, tx: TransactionId, req: &Request, now: Instant) {
        let cid = req.call_id().unwrap_or_default();
        let found = self
            .calls
            .iter()
            .find(|(_, c)| c.dialog.call_id == cid && c.state == CallState::Connected);
        if let Some((&id, c)) = found
            && let Some(reason) = self.reoffer_downgrade(c, req)
        {
            // No silent downgrade: media that is encrypted stays so, or the call says why not.
            let refusal = Refusal::KeyExchange {
                status: 488,
                warning_code: 399,
                reason: reason.clone(),
            };
            let resp = refusal_response(req, &refusal, &c.dialog.local_party);
            let _ = self.layer.send_response(tx, resp, now);
            self.events
                .push_back(UaEvent::SecurityAlert { call: id, reason });
            return;
        }
        let resp = match found.map(|(_, c)| c) {
            Some(c) => {
                // Session refresh or hold: we keep our media as it is and repeat our answer.
                let mut resp = Response::from_request(req, StatusCode::OK);
                if let Some(l) = self.local {
                    resp.headers_mut()
                        .push("Contact", contact_value(&self.config, l, false));
                }
                if let Some(sdp) = &c.local_sdp {
                    resp.headers_mut().push("Content-Type", "application/sdp");
                    resp.set_body(sdp.clone());
                }
                resp
            }
            None => Response::from_request(req, StatusCode::CALL_TRANSACTION_DOES_NOT_EXIST),
        };
        let _ = self.layer.send_response(tx, resp, now);
    }

    /// Why a re-INVITE's offer would drop the call's media encryption, if it would.
    fn reoffer_downgrade(&self, call: &Call, req: &Request) -> Option<String> {
        let current = call.protection.as_ref()?;
        if req.body().is_empty() || !current.is_encrypted() {
            return None;
        }
        let offer = Session::parse(req.body()).ok()?;
        let caps = self.caps(SocketAddr::new(self.local?.ip(), 9)).ok()?;
        let after = policy::reoffer_protection(current, &offer, &caps, self.provider.rng)?;
        policy::is_downgrade(current, &after).then(|| {
            format!(
                "the peer's re-INVITE would drop media encryption ({} to {}) mid-call; refused",
                current.name(),
                after.name()
            )
        })
    }

    fn incoming_bye(&mut self, tx: TransactionId, req: &Request, now: Instant) {
        let cid = req.call_id().unwrap_or_default();
        let found = self
            .calls
            .iter()
            .find(|(_, c)| c.dialog.call_id == cid)
            .map(|(k, _)| *k);
        let status = if found.is_some() {
            StatusCode::OK
        } else {
            StatusCode::CALL_TRANSACTION_DOES_NOT_EXIST
        };
        let resp = Response::from_request(req, status);
        let _ = self.layer.send_response(tx, resp, now);
        if let Some(c) = found {
            self.end_call(c, "remote hangup".into());
        }
    }
}

/// A header's value, trimmed (empty when absent).
fn header(req: &Request, name: &str) -> String {
    req.headers()
        .get(name)
        .unwrap_or_default()
        .trim()
        .to_owned()
}
