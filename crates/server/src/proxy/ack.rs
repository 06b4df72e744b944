//! ACKs: the ACK of a stateless challenge absorbed, the ACK of a 2xx run through the pipeline
//! and forwarded statelessly, end to end (RFC 3261 §16.6, §17.2.1), and a 2xx retransmitted
//! after its client transaction ended forwarded the same way.

use std::time::{Instant, SystemTime};

use sotto_sip::message::{Request, Response};

use super::{Outcome, Packet, Proxy, Transmit, build, stores};
use crate::branch;
use crate::pipeline::{NextHop, RequestContext, Verdict};

impl Proxy {
    /// Whether `ack` acknowledges a stateless reply of ours (its To tag is one we made).
    pub(super) fn is_stateless_ack(&self, ack: &Request) -> bool {
        ack.to_tag()
            .ok()
            .flatten()
            .is_some_and(|t| t.starts_with(self.stateless_tag.as_str()))
    }

    pub(super) fn on_ack(&mut self, ack: Request, packet: &Packet, now: Instant, wall: SystemTime) {
        if self.is_stateless_ack(&ack) {
            // The ACK of a challenge sent statelessly (§8.2.7: a stateless UAS ignores ACK;
            // §17.2.1 would have absorbed it in the INVITE's transaction): not forwarded.
            return;
        }
        let hash = branch::loop_hash(self.provider, &ack);
        let mut ctx = self.context(ack, packet, wall);
        let d = self.decide(&mut ctx, 0, 0, now);
        if let Verdict::Fetch(op) = d.verdict {
            let ticket = self.queue_store(op, &ctx);
            let parked = stores::Parked::Ack {
                ctx: Box::new(ctx),
                hash,
                resume: d.resume,
                fetches: d.fetches,
            };
            self.parked.insert(ticket, parked);
            return;
        }
        self.forward_ack(&ctx, hash, d.verdict, d.module);
    }

    /// Forwards an ACK statelessly as the pipeline decided.
    pub(super) fn forward_ack(
        &mut self,
        ctx: &RequestContext,
        hash: String,
        verdict: Verdict,
        module: &'static str,
    ) {
        let Verdict::Forward(targets) = verdict else {
            return self.event(ctx, Outcome::Dropped, module);
        };
        let Some(target) = targets.first() else {
            return;
        };
        let inbound = self.inbound(ctx);
        let dest = match &target.hop {
            NextHop::Address(d) => d.clone(),
            NextHop::Resolve { uri, tls_only, .. } => {
                // Forwarded statelessly once DNS has answered.
                let (uri, tls_only, target) = (uri.clone(), *tls_only, target.clone());
                self.request_ack_lookup(ctx.request.clone(), inbound, target, uri, tls_only);
                return self.event(ctx, Outcome::Forwarded(1), module);
            }
        };
        if self.locality.is_own_address(dest.transport, dest.remote) {
            tracing::warn!(dest = %dest.remote, "loop: ACK to this server itself dropped");
            return self.event(ctx, Outcome::Dropped, module);
        }
        let b = branch::new_branch(self.provider, &hash);
        let outbound = build::Outbound {
            target,
            destination: &dest,
            peer: false,
        };
        if let Some(req) = build::branch_request(
            &self.locality,
            &self.flows,
            &ctx.request,
            &inbound,
            outbound,
            &b,
        ) {
            self.transmits.push_back(Transmit {
                destination: dest.clone(),
                data: req.to_bytes(),
                transaction: None,
            });
            self.event(ctx, Outcome::Forwarded(1), module);
        }
    }

    /// A 2xx retransmission after its client transaction ended: forwarded statelessly.
    pub(super) fn forward_stray(&mut self, mut resp: Response) {
        let ours = resp
            .via_top()
            .is_ok_and(|v| branch::is_our_via(&self.locality, &v));
        if !ours || !resp.status().is_success() || !build::pop_via(&mut resp) {
            return;
        }
        if let Some(destination) = build::response_destination(&resp) {
            self.transmits.push_back(Transmit {
                destination,
                data: resp.to_bytes(),
                transaction: None,
            });
        }
    }
}
