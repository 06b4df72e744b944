//! Response aggregation over parallel branches (RFC 3261 §16.7), CANCEL (§16.10), and the
//! next candidate of a branch whose server failed (RFC 3263 §4.3).
//!
//! - 100 is never forwarded; other 1xx are, until a final response was sent upstream.
//! - A 2xx is forwarded at once (every 2xx of an INVITE, forked ones included) and the other
//!   pending INVITE branches are cancelled.
//! - A 6xx to an INVITE cancels the other branches.
//! - A branch whose transport failed, that timed out or that got a 503 goes on to its next
//!   candidate address (DNS gave several), if it has one.
//! - Otherwise the best final response is sent once every branch (and every DNS lookup) has
//!   one: 6xx first, then 3xx, 4xx, 5xx. A 503 received from downstream becomes 500 (§16.7
//!   step 6). A branch that failed here gets a response made here, with a To tag, our
//!   `received`/`rport` stamp and a Warning saying what failed: 408 for a time-out, 503 with
//!   Retry-After when no server could be reached, 430 Flow Failed for an in-dialog request
//!   whose flow (RFC 5626 §5.3) is gone, 482 for a next hop that is this server itself, and
//!   404/604/503 when DNS found nothing.

use std::collections::VecDeque;
use std::time::Instant;

use sotto_sip::message::{Method, Request, Response, StatusCode};
use sotto_sip::transaction::{ClientEvent, LayerEvent, ServerEvent, TransactionId};
use sotto_sip::transport::Destination;

use super::build::Inbound;
use super::{Outcome, Proxy, ProxyEvent, Transmit, build};
use crate::modules::forward::DOWNGRADE_WARNING;
use crate::pipeline::{Reply, Target};

/// 430 Flow Failed (RFC 5626 §11.5).
const FLOW_FAILED: StatusCode = StatusCode(430);
/// 604 Does Not Exist Anywhere (RFC 3261 §21.6.4).
pub(super) const DOES_NOT_EXIST_ANYWHERE: StatusCode = StatusCode(604);
/// 482 Loop Detected (RFC 3261 §21.4.20).
pub(super) const LOOP_DETECTED: StatusCode = StatusCode(482);
/// Seconds a client is asked to wait after a 503 made here.
const RETRY_AFTER_SECS: &str = "30";

/// Why a branch failed here (not a response from downstream).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Failure {
    pub(super) status: StatusCode,
    pub(super) reason: String,
}

impl Failure {
    pub(super) fn new(status: StatusCode, reason: impl Into<String>) -> Self {
        Failure {
            status,
            reason: reason.into(),
        }
    }
}

#[derive(Debug)]
pub(super) struct Branch {
    pub(super) client: TransactionId,
    pub(super) request: Request,
    final_status: Option<StatusCode>,
    /// What the branch was built for (its next candidate is built the same way).
    target: Target,
    /// The far side is another domain's server.
    peer: bool,
    /// Addresses still to try if this one fails.
    candidates: VecDeque<Destination>,
}

/// One proxied request and its branches.
#[derive(Debug)]
pub struct Fork {
    /// The request as received (responses are built from it).
    pub(super) original: Request,
    /// The request after the modules (branches are built from it).
    pub(super) forwarded: Request,
    pub(super) inbound: Inbound,
    /// The loop-detection hash of its branches (§16.6 step 8).
    pub(super) hash: String,
    branches: Vec<Branch>,
    /// DNS lookups not answered yet.
    pub(super) lookups: usize,
    best: Option<Response>,
    /// `best` was made here (a branch failure), not received.
    best_local: bool,
    /// What made the last local failure, for the request's event.
    last_failure: Option<Failure>,
    /// A final response was sent upstream.
    done: bool,
    /// The request was cancelled (CANCEL) while lookups were pending.
    cancelled: bool,
    insecure_hop: bool,
    /// The module that decided to forward (for the request's events).
    pub(super) module: &'static str,
}

/// Lower is better (§16.7 step 6).
fn rank(s: StatusCode) -> u16 {
    match s.class() {
        6 => 0,
        3 => 1,
        4 => 2,
        _ => 3,
    }
}

impl Fork {
    pub(super) fn new(
        original: Request,
        forwarded: Request,
        inbound: Inbound,
        hash: String,
        insecure_hop: bool,
        module: &'static str,
    ) -> Self {
        Fork {
            original,
            forwarded,
            inbound,
            hash,
            branches: Vec::new(),
            lookups: 0,
            best: None,
            best_local: false,
            last_failure: None,
            done: false,
            cancelled: false,
            insecure_hop,
            module,
        }
    }

    /// How many branches it has.
    pub fn branches(&self) -> usize {
        self.branches.len()
    }

    /// Whether a final response was sent upstream.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Whether the proxied request is inside a dialog (its To has a tag).
    fn is_in_dialog(&self) -> bool {
        self.original.to_tag().ok().flatten().is_some()
    }

    fn pending(&self) -> impl Iterator<Item = &Branch> {
        self.branches.iter().filter(|b| b.final_status.is_none())
    }

    /// Nothing is left to wait for: every branch answered and every lookup came back.
    fn settled(&self) -> bool {
        self.lookups == 0 && self.pending().next().is_none()
    }
}

impl Proxy {
    /// Moves the layer's output out, handling events until both queues are empty.
    pub(super) fn drain(&mut self, now: Instant) {
        loop {
            let mut progressed = false;
            while let Some((id, t)) = self.layer.poll_transmit() {
                progressed = true;
                let dest = self
                    .server_dest
                    .get(&id)
                    .or_else(|| self.client.get(&id).map(|(_, d)| d))
                    .or_else(|| self.cancels.get(&id));
                match dest {
                    Some(d) => self.transmits.push_back(Transmit {
                        destination: d.clone(),
                        data: t.bytes,
                        transaction: Some(id),
                    }),
                    None => tracing::debug!("transmit of an unknown transaction dropped"),
                }
            }
            // One event at a time, so that what it queued is sent before a later event
            // (e.g. the Terminated that follows a final response over TLS at once) forgets
            // where the transaction's messages go.
            if let Some(ev) = self.layer.poll_event() {
                progressed = true;
                self.on_layer_event(ev, now);
            }
            if !progressed {
                break;
            }
        }
    }

    fn on_layer_event(&mut self, ev: LayerEvent, now: Instant) {
        match ev {
            LayerEvent::Client(id, ClientEvent::Response(resp))
                if !self.cancels.contains_key(&id) =>
            {
                self.on_branch_response(id, resp, now);
            }
            LayerEvent::Client(id, ClientEvent::Timeout | ClientEvent::TransportError)
                if self.client.contains_key(&id) =>
            {
                let Some((server, dest)) = self.client.get(&id).cloned() else {
                    return;
                };
                let transport_error =
                    matches!(ev, LayerEvent::Client(_, ClientEvent::TransportError));
                if transport_error && dest.connection.is_none() {
                    self.mark_unreachable(dest.remote, now);
                }
                let Some(fork) = self.forks.get(&server) else {
                    return;
                };
                let sent_error = self.send_errors.remove(&id);
                let failure = match ev {
                    LayerEvent::Client(_, ClientEvent::Timeout) => Failure::new(
                        StatusCode::REQUEST_TIMEOUT,
                        format!("no answer from {} {}", dest.transport.as_str(), dest.remote),
                    ),
                    // An in-dialog request routed by a flow token whose connection is gone
                    // (RFC 5626 §5.3).
                    _ if dest.connection.is_some() && fork.is_in_dialog() => Failure::new(
                        FLOW_FAILED,
                        format!("the connection to {} is gone", dest.remote),
                    ),
                    _ => {
                        let at = format!("{} {}", dest.transport.as_str(), dest.remote);
                        let reason = match sent_error {
                            // The transport's text names the address already.
                            Some(e) if e.contains(&dest.remote.to_string()) => e,
                            Some(e) => format!("cannot reach {at}: {e}"),
                            None => format!("cannot reach {at}"),
                        };
                        Failure::new(StatusCode::SERVICE_UNAVAILABLE, reason)
                    }
                };
                self.on_branch_failure(server, Some(id), failure, now);
            }
            LayerEvent::Client(id, ClientEvent::Terminated) => {
                self.cancels.remove(&id);
                self.send_errors.remove(&id);
                if let Some((server, _)) = self.client.remove(&id) {
                    self.forget_fork_if_over(server);
                }
            }
            LayerEvent::Server(id, ServerEvent::Terminated) => {
                self.server_dest.remove(&id);
                self.forget_fork_if_over(id);
            }
            _ => {}
        }
    }

    pub(super) fn forget_fork_if_over(&mut self, server: TransactionId) {
        // The fork's own branches, not every client transaction: O(branches), not O(n).
        let live = self.server_dest.contains_key(&server)
            || self.forks.get(&server).is_some_and(|f| {
                f.lookups > 0
                    || f.branches
                        .iter()
                        .any(|b| self.client.contains_key(&b.client))
            });
        if !live
            && let Some(fork) = self.forks.remove(&server)
            && !fork.done
        {
            self.pending_forks = self.pending_forks.saturating_sub(1);
        }
    }

    /// Sends a branch of the fork of `server` to `dest` (the candidates after it kept for a
    /// failure) and returns it, or says why it cannot be sent.
    fn send_branch(
        &mut self,
        server: TransactionId,
        target: Target,
        dest: Destination,
        peer: bool,
        candidates: VecDeque<Destination>,
        now: Instant,
    ) -> Result<Branch, Failure> {
        let Some(fork) = self.forks.get(&server) else {
            return Err(Failure::new(
                StatusCode::SERVER_INTERNAL_ERROR,
                "request gone",
            ));
        };
        if self.locality.is_own_address(dest.transport, dest.remote) {
            tracing::warn!(
                dest = %dest.remote,
                transport = dest.transport.as_str(),
                uri = %target.uri,
                "loop: the next hop is this server itself; not sent"
            );
            return Err(Failure::new(
                LOOP_DETECTED,
                format!(
                    "loop: the next hop {} {} is this server itself",
                    dest.transport.as_str(),
                    dest.remote
                ),
            ));
        }
        let branch_id = crate::branch::new_branch(self.provider, &fork.hash);
        let outbound = build::Outbound {
            target: &target,
            destination: &dest,
            peer,
        };
        let Some(req) = build::branch_request(
            &self.locality,
            &self.flows,
            &fork.forwarded,
            &fork.inbound,
            outbound,
            &branch_id,
        ) else {
            return Err(Failure::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("no {} listener to send from", dest.transport.as_str()),
            ));
        };
        let reliable = dest.transport.is_stream();
        let client = self
            .layer
            .send_request(req.clone(), reliable, now)
            .map_err(|e| Failure::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
        self.client.insert(client, (server, dest));
        Ok(Branch {
            client,
            request: req,
            final_status: None,
            target,
            peer,
            candidates,
        })
    }

    /// Starts a new branch of the fork of `server` (see [`Proxy::send_branch`]).
    pub(super) fn start_branch(
        &mut self,
        server: TransactionId,
        target: Target,
        dest: Destination,
        peer: bool,
        candidates: VecDeque<Destination>,
        now: Instant,
    ) -> Result<(), Failure> {
        let branch = self.send_branch(server, target, dest, peer, candidates, now)?;
        if let Some(fork) = self.forks.get_mut(&server) {
            fork.branches.push(branch);
        }
        Ok(())
    }

    /// Moves branch `client` of the fork of `server` to its next candidate; false if it has
    /// none left that can be sent to.
    fn next_candidate(
        &mut self,
        server: TransactionId,
        client: TransactionId,
        now: Instant,
    ) -> bool {
        loop {
            let (target, peer, next, rest) = {
                let Some(fork) = self.forks.get_mut(&server) else {
                    return false;
                };
                let Some(b) = fork.branches.iter_mut().find(|b| b.client == client) else {
                    return false;
                };
                let Some(next) = b.candidates.pop_front() else {
                    return false;
                };
                (b.target.clone(), b.peer, next, b.candidates.clone())
            };
            tracing::info!(dest = %next.remote, "trying the next server for the request");
            let result = self.send_branch(server, target, next, peer, rest, now);
            let Some(fork) = self.forks.get_mut(&server) else {
                return false;
            };
            match result {
                Ok(new) => {
                    if let Some(b) = fork.branches.iter_mut().find(|b| b.client == client) {
                        *b = new;
                    }
                    return true;
                }
                Err(f) => {
                    tracing::info!(reason = %f.reason, "candidate skipped");
                    fork.last_failure = Some(f);
                }
            }
        }
    }

    /// A branch failed here (`client`), or a lookup found nowhere to send (`None`): the next
    /// candidate, else a response made here joins the aggregation.
    pub(super) fn on_branch_failure(
        &mut self,
        server: TransactionId,
        client: Option<TransactionId>,
        failure: Failure,
        now: Instant,
    ) {
        tracing::info!(reason = %failure.reason, status = failure.status.0, "branch failed");
        if let Some(c) = client
            && self.next_candidate(server, c, now)
        {
            return;
        }
        let Some(fork) = self.forks.get_mut(&server) else {
            return;
        };
        if let Some(c) = client
            && let Some(b) = fork.branches.iter_mut().find(|b| b.client == c)
        {
            if b.final_status.is_some() {
                return;
            }
            b.final_status = Some(failure.status);
        }
        let resp = self.local_response(server, &failure);
        if let Some(fork) = self.forks.get_mut(&server) {
            fork.last_failure = Some(failure);
        }
        if let Some(resp) = resp {
            self.aggregate(server, resp, true, now);
        }
    }

    /// The response made here for a failure of the fork of `server`: To tag, Via stamped for
    /// the sender, a Warning saying what failed, Retry-After on 503.
    fn local_response(&self, server: TransactionId, failure: &Failure) -> Option<Response> {
        let fork = self.forks.get(&server)?;
        let text = failure.reason.replace(['"', '\\'], "'");
        let mut reply = Reply::new(failure.status).with("Warning", format!("399 sotto \"{text}\""));
        if failure.status == StatusCode::SERVICE_UNAVAILABLE {
            reply = reply.with("Retry-After", RETRY_AFTER_SECS);
        }
        Some(Proxy::response(
            &fork.original,
            reply,
            &super::fresh_tag(self.provider),
            fork.inbound.source,
        ))
    }

    /// A response on branch `client` (it still carries our Via).
    fn on_branch_response(&mut self, client: TransactionId, mut resp: Response, now: Instant) {
        let Some(&(server, _)) = self.client.get(&client) else {
            return;
        };
        if !build::pop_via(&mut resp) {
            return;
        }
        let status = resp.status();
        // A server that is overloaded: its domain's next one (RFC 3263 §4.3).
        if status == StatusCode::SERVICE_UNAVAILABLE && self.next_candidate(server, client, now) {
            return;
        }
        let Some(fork) = self.forks.get_mut(&server) else {
            return;
        };
        if fork.insecure_hop {
            resp.headers_mut().push("Warning", DOWNGRADE_WARNING);
        }
        if status.is_provisional() {
            if status != StatusCode::TRYING && !fork.done {
                let _ = self.layer.send_response(server, resp, now);
            }
            return;
        }
        if let Some(b) = fork.branches.iter_mut().find(|b| b.client == client) {
            if b.final_status.is_some() && !status.is_success() {
                return;
            }
            b.final_status = Some(status);
        }
        self.aggregate(server, resp, false, now);
    }

    /// A final response of one branch (`local`: made here) joins the fork's aggregation.
    fn aggregate(&mut self, server: TransactionId, resp: Response, local: bool, now: Instant) {
        let status = resp.status();
        let Some(fork) = self.forks.get_mut(&server) else {
            return;
        };
        let invite = *fork.original.method() == Method::Invite;
        if status.is_success() {
            if !fork.done {
                fork.done = true;
                self.pending_forks = self.pending_forks.saturating_sub(1);
            }
            if self.layer.server(server).is_none() {
                // The server transaction ended (evicted from a full table): a 2xx is still
                // forwarded, statelessly, by its Via (§16.7 step 10, as a stray 2xx is).
                if let Some(destination) = build::response_destination(&resp) {
                    self.transmits.push_back(Transmit {
                        destination,
                        data: resp.to_bytes(),
                        transaction: None,
                    });
                }
            } else if let Err(e) = self.layer.send_response(server, resp, now) {
                tracing::debug!(error = %e, "2xx not forwarded upstream");
            }
            if invite {
                self.cancel_fork(server, now);
            }
            return;
        }
        if fork.done {
            return;
        }
        if fork
            .best
            .as_ref()
            .is_none_or(|b| rank(status) < rank(b.status()))
        {
            fork.best = Some(resp);
            fork.best_local = local;
        }
        let six = status.class() == 6;
        if fork.settled() || six {
            self.send_best(server, now);
            if six && invite {
                self.cancel_fork(server, now);
            }
        }
    }

    /// Sends the fork's best final response upstream (a 503 received becomes 500).
    fn send_best(&mut self, server: TransactionId, now: Instant) {
        let Some(fork) = self.forks.get_mut(&server) else {
            return;
        };
        fork.done = true;
        self.pending_forks = self.pending_forks.saturating_sub(1);
        let Some(mut best) = fork.best.take() else {
            return;
        };
        if !fork.best_local && best.status() == StatusCode::SERVICE_UNAVAILABLE {
            // §16.7 step 6: the 503 of a server downstream is not ours to pass on.
            let mut r = Response::from_request(&fork.original, StatusCode::SERVER_INTERNAL_ERROR);
            build::stamp_response_via(&mut r, fork.inbound.source);
            let tag = best
                .to_tag()
                .ok()
                .flatten()
                .map_or_else(|| super::fresh_tag(self.provider), str::to_owned);
            r.set_to_tag(&tag);
            best = r;
        } else if best.to_tag().ok().flatten().is_none() {
            best.set_to_tag(&super::fresh_tag(self.provider));
        }
        let status = best.status().0;
        let failure = fork.best_local.then(|| fork.last_failure.clone()).flatten();
        if let Err(e) = self.layer.send_response(server, best, now) {
            tracing::debug!(error = %e, "final response not forwarded upstream");
        }
        if let Some(f) = failure {
            self.report_failure(server, status, f.reason);
        }
    }

    /// The request's event when it failed here: replaces its `forwarded` event if that one
    /// is still queued (a branch that could not be sent is not "forwarded").
    fn report_failure(&mut self, server: TransactionId, status: u16, reason: String) {
        let outcome = Outcome::Failed { status, reason };
        if let Some(ev) = self
            .events
            .iter_mut()
            .find(|e| e.fork == Some(server) && matches!(e.outcome, Outcome::Forwarded(_)))
        {
            ev.outcome = outcome;
            return;
        }
        let Some(fork) = self.forks.get(&server) else {
            return;
        };
        self.events.push_back(ProxyEvent {
            method: fork.original.method().as_str().to_owned(),
            source: fork.inbound.source,
            transport: fork.inbound.transport,
            outcome,
            module: fork.module,
            auth_failure: false,
            connection: None,
            authenticated: false,
            fork: Some(server),
        });
    }

    /// Sends CANCEL on every pending branch of the fork of `server` (§16.10); with lookups
    /// still pending and no branch sent, answers 487 here.
    pub(super) fn cancel_fork(&mut self, server: TransactionId, now: Instant) {
        let Some(fork) = self.forks.get_mut(&server) else {
            return;
        };
        if *fork.original.method() != Method::Invite {
            return;
        }
        fork.cancelled = true;
        if !fork.done && fork.lookups > 0 && fork.pending().next().is_none() {
            let mut r = Response::from_request(&fork.original, StatusCode::REQUEST_TERMINATED);
            build::stamp_response_via(&mut r, fork.inbound.source);
            r.set_to_tag(&super::fresh_tag(self.provider));
            fork.done = true;
            self.pending_forks = self.pending_forks.saturating_sub(1);
            let _ = self.layer.send_response(server, r, now);
            return;
        }
        let pending: Vec<(TransactionId, Request)> = fork
            .pending()
            .map(|b| (b.client, build::cancel_for(&b.request)))
            .collect();
        for (client, cancel) in pending {
            let Some((_, dest)) = self.client.get(&client).cloned() else {
                continue;
            };
            let reliable = dest.transport.is_stream();
            match self.layer.send_request(cancel, reliable, now) {
                Ok(id) => {
                    self.cancels.insert(id, dest);
                }
                Err(e) => tracing::debug!(error = %e, "CANCEL not sent"),
            }
        }
    }

    /// Whether the fork of `server` still takes new branches (not answered, not cancelled).
    pub(super) fn fork_open(&self, server: TransactionId) -> bool {
        self.forks
            .get(&server)
            .is_some_and(|f| !f.done && !f.cancelled)
    }
}
