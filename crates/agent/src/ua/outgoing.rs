//! Outgoing calls (RFC 3261 §13.2): the INVITE with our SDP offer, its digest retry, the
//! answer processed into media, the ACK of the 2xx (sent again for a retransmitted 2xx);
//! CANCEL while it rings (§9.1); and the BYE of any connected call (§15.1).

use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use sotto_sdp::{Refusal, Session};
use sotto_sip::dialog::Dialog;
use sotto_sip::message::{Method, Request, Response, StatusCode, Uri};
use sotto_sip::transport::TransportKind;

use super::wire::{
    ALLOW, add_via, branch, contact_value, new_request, random_token, refusal_reason, with_warning,
};
use super::{
    MAX_AUTH_TRIES, MAX_CALLS, Outgoing, Owner, UaError, UaEvent, UserAgent, direct_destination,
    direct_udp_destination, unchallenged_auth,
};
use crate::call::{Call, CallId, CallState, Role};
use crate::{keying, policy};

impl UserAgent {
    /// Places a call to `target`, with our RTP at `media`.
    pub fn call(
        &mut self,
        target: &Uri,
        media: SocketAddr,
        now: Instant,
    ) -> Result<CallId, UaError> {
        let local = self.local.ok_or(UaError::NoFlow)?;
        if self.calls.len() >= MAX_CALLS {
            return Err(UaError::TooManyCalls);
        }
        let (dest, direct) = match (direct_destination(target), direct_udp_destination(target)) {
            (Some(d), _) if d.remote != self.config.proxy.remote => (d, true),
            (None, Some(d)) if d.remote != self.config.proxy.remote => (d, true),
            _ => (self.proxy_destination(), false),
        };
        let mode = policy::offer_mode(&self.config, &dest, direct)?;
        let local = if direct && dest.transport == TransportKind::Udp {
            self.config.udp_listen.ok_or_else(|| {
                UaError::Policy("a direct UDP call needs a UDP socket (udp_listen)".into())
            })?
        } else {
            local
        };
        let transport = if direct {
            dest.transport
        } else {
            self.config.proxy.transport
        };
        let caps = self.caps(media)?;
        let mut keyx =
            policy::offer_key_exchange(&self.config, mode, self.provider, &target.to_string())?;
        let offer = keying::create_offer(&caps, keyx.as_mut(), self.provider.rng)
            .map_err(|e| UaError::Policy(e.reason))?;
        let body = offer.to_sdp().map_err(|e| UaError::Policy(e.to_string()))?;
        let tag = random_token(self.provider, 8)?;
        let call_id = random_token(self.provider, 16)?;
        let id = self.alloc_call();
        let dialog = Dialog::uac(
            &call_id,
            &format!("<{}>;tag={tag}", self.config.identity),
            &format!("<{target}>"),
            target.clone(),
            1,
        );
        let mut call = Call {
            role: Role::Uac,
            state: CallState::Calling,
            dialog,
            target: target.clone(),
            dest,
            direct,
            invite_tx: None,
            invite: None,
            offer: Some(offer),
            local_sdp: Some(Bytes::from(body)),
            negotiated: None,
            keyx: Some(keyx),
            protection: None,
            ack: None,
            auth: unchallenged_auth(&self.config, direct).into(),
            auth_tries: 0,
            got_provisional: false,
            cancel_pending: false,
            ring_deadline: None,
            ok_retransmit: None,
            transport,
            // A direct call learns its TLS parameters from the peer's first response.
            tls: if direct { None } else { self.proxy_tls.clone() },
            end_reason: None,
        };
        let req = self.build_invite(&call, local, None)?;
        let tx = self.send_request(req.clone(), call.dest.clone(), Owner::Invite(id), now)?;
        call.invite = Some(req);
        call.invite_tx = Some(tx);
        self.calls.insert(id, call);
        self.pump(now);
        Ok(id)
    }

    fn build_invite(
        &self,
        call: &Call,
        local: SocketAddr,
        auth: Option<(&'static str, String)>,
    ) -> Result<Request, UaError> {
        let branch = branch(self.provider)?;
        let mut req = new_request(
            Method::Invite,
            call.target.clone(),
            (local, call.dest.transport),
            &branch,
        );
        let contact = self
            .contact_for(call.direct, call.dest.transport)
            .unwrap_or_else(|| contact_value(&self.config, local, false));
        let h = req.headers_mut();
        h.push("From", call.dialog.local_party.clone());
        h.push("To", call.dialog.remote());
        h.push("Call-ID", call.dialog.call_id.clone());
        h.push("CSeq", format!("{} INVITE", call.dialog.local_cseq));
        h.push("Contact", contact);
        h.push("Allow", ALLOW);
        h.push("Supported", "outbound");
        h.push("User-Agent", self.config.user_agent.clone());
        if let Some((name, value)) = auth {
            h.push(name, value);
        }
        if let Some(body) = &call.local_sdp {
            h.push("Content-Type", "application/sdp");
            req.set_body(body.clone());
        }
        Ok(req)
    }

    /// An in-dialog request (BYE, ACK) of `call` with our Via (RFC 3261 §12.2.1.1); `cseq`
    /// for an ACK, else the dialog's next.
    fn dialog_request(
        &self,
        call: &mut Call,
        method: Method,
        cseq: Option<u32>,
    ) -> Result<Request, UaError> {
        let local = self.local_for(call).ok_or(UaError::NoFlow)?;
        let branch = branch(self.provider)?;
        let mut req = call.dialog.request(method, cseq);
        add_via(&mut req, (local, call.dest.transport), &branch);
        req.headers_mut()
            .push("User-Agent", self.config.user_agent.clone());
        Ok(req)
    }

    /// Sends the BYE of a connected call (either side, §15.1.1).
    pub(super) fn send_bye(&mut self, id: CallId, now: Instant) -> Result<(), UaError> {
        let mut call = self.calls.remove(&id).ok_or(UaError::NoSuchCall)?;
        let req = self.dialog_request(&mut call, Method::Bye, None);
        let dest = call.dest.clone();
        self.calls.insert(id, call);
        self.send_request(req?, dest, Owner::Bye(id), now)?;
        Ok(())
    }

    /// Cancels an outgoing call that rings (§9.1), or once it does (a CANCEL may only follow
    /// a provisional response).
    pub(super) fn cancel(&mut self, id: CallId, now: Instant) -> Result<(), UaError> {
        let call = self.calls.get_mut(&id).ok_or(UaError::NoSuchCall)?;
        if !call.got_provisional {
            call.cancel_pending = true;
            return Ok(());
        }
        call.state = CallState::Ending;
        let invite = call.invite.as_ref().ok_or(UaError::NoSuchCall)?;
        let mut cancel = Request::new(Method::Cancel, invite.uri().clone());
        let ih = invite.headers();
        let h = cancel.headers_mut();
        for name in ["Via", "Max-Forwards", "From", "To", "Call-ID"] {
            if let Some(v) = ih.get(name) {
                h.push(name, v.to_owned());
            }
        }
        for r in ih.get_all("Route") {
            h.push("Route", r.to_owned());
        }
        let seq = invite.cseq().map(|c| c.seq).unwrap_or(1);
        h.push("CSeq", format!("{seq} CANCEL"));
        let dest = call.dest.clone();
        self.send_request(cancel, dest, Owner::Cancel(id), now)?;
        Ok(())
    }

    pub(super) fn invite_response(&mut self, id: CallId, r: Response, now: Instant) {
        let status = r.status();
        let Some(call) = self.calls.get_mut(&id) else {
            // A 2xx for a call we already ended: nothing to ACK here (the stray path ACKs).
            return;
        };
        if status.is_provisional() {
            if status == StatusCode::TRYING {
                return;
            }
            call.got_provisional = true;
            if call.cancel_pending {
                call.cancel_pending = false;
                let _ = self.cancel(id, now);
                return;
            }
            if call.state == CallState::Calling {
                call.state = CallState::Ringing;
                self.events.push_back(UaEvent::CallState {
                    call: id,
                    state: CallState::Ringing,
                    reason: None,
                });
            }
            return;
        }
        if status.is_success() {
            self.invite_accepted(id, r, now);
            return;
        }
        if (status == StatusCode::UNAUTHORIZED
            || status == StatusCode::PROXY_AUTHENTICATION_REQUIRED)
            && call.auth_tries < MAX_AUTH_TRIES
            && call.state != CallState::Ending
            && self.retry_invite(id, &r, now)
        {
            return;
        }
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let reason = if call.state == CallState::Ending && status == StatusCode::REQUEST_TERMINATED
        {
            "cancelled".to_owned()
        } else {
            with_warning(&r)
        };
        self.end_call(id, reason);
    }

    /// Sends the INVITE again with credentials answering `r`'s challenge; false if it cannot.
    fn retry_invite(&mut self, id: CallId, r: &Response, now: Instant) -> bool {
        let Some(mut call) = self.calls.remove(&id) else {
            return false;
        };
        let Some(local) = self.local_for(&call) else {
            self.calls.insert(id, call);
            return false;
        };
        call.auth_tries += 1;
        let uri = call.target.to_string();
        let mut sent = false;
        if let Some((name, value, alg)) = self.credentials(r, "INVITE", &uri) {
            call.auth = alg;
            call.dialog.local_cseq += 1;
            if let Ok(req) = self.build_invite(&call, local, Some((name, value)))
                && let Ok(tx) =
                    self.send_request(req.clone(), call.dest.clone(), Owner::Invite(id), now)
            {
                call.invite = Some(req);
                call.invite_tx = Some(tx);
                sent = true;
            }
        }
        self.calls.insert(id, call);
        sent
    }

    fn invite_accepted(&mut self, id: CallId, r: Response, now: Instant) {
        let Some(mut call) = self.calls.remove(&id) else {
            return;
        };
        if call.state == CallState::Connected {
            if let Some(ack) = &call.ack {
                self.out.push_back(Outgoing {
                    destination: call.dest.clone(),
                    bytes: ack.clone(),
                    transaction: None,
                });
            }
            self.calls.insert(id, call);
            return;
        }
        call.dialog.confirm(&r);
        let seq = r.cseq().map(|c| c.seq).unwrap_or(call.dialog.local_cseq);
        if let Ok(ack) = self.dialog_request(&mut call, Method::Ack, Some(seq)) {
            let bytes = ack.to_bytes();
            self.out.push_back(Outgoing {
                destination: call.dest.clone(),
                bytes: bytes.clone(),
                transaction: None,
            });
            call.ack = Some(bytes);
        }
        call.state = CallState::Connected;
        let neg = match (&call.offer, Session::parse(r.body()), call.keyx.as_mut()) {
            (Some(offer), Ok(ans), Some(keyx)) => keying::check_answer(offer, &ans, keyx.as_mut()),
            _ => Err(Refusal::NoAudio),
        };
        match neg {
            Ok(neg) => {
                call.negotiated = Some(neg);
                self.calls.insert(id, call);
                self.announce_connected(id);
            }
            Err(refusal) => {
                // The dialog exists: end it at once, saying why.
                call.state = CallState::Ending;
                self.calls.insert(id, call);
                let reason = format!("answer refused: {}", refusal_reason(&refusal));
                if self.send_bye(id, now).is_err() {
                    self.end_call(id, reason);
                } else {
                    self.events.push_back(UaEvent::CallState {
                        call: id,
                        state: CallState::Ending,
                        reason: Some(reason),
                    });
                }
            }
        }
    }

    /// A 2xx retransmission after the INVITE transaction ended: ACK it again (§13.2.2.4).
    pub(super) fn stray_response(&mut self, r: &Response) {
        let is_invite_2xx = r.status().is_success()
            && r.cseq()
                .map(|c| c.method == Method::Invite)
                .unwrap_or(false);
        if !is_invite_2xx {
            return;
        }
        let Ok(cid) = r.call_id() else { return };
        if let Some(c) = self.calls.values().find(|c| c.dialog.call_id == cid)
            && let Some(ack) = &c.ack
        {
            self.out.push_back(Outgoing {
                destination: c.dest.clone(),
                bytes: ack.clone(),
                transaction: None,
            });
        }
    }
}
