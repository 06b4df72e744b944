//! DNS lookups of next hops (RFC 3263), sans-IO: the proxy queues what it needs to know
//! ([`Proxy::poll_lookup`]); the IO edge resolves it and hands back the candidates
//! ([`Proxy::handle_lookup`]). The proxy's loop never waits on DNS: other requests go on
//! meanwhile, and the request whose next hop was looked up is sent when the answer comes.

use std::collections::VecDeque;
use std::time::Instant;

use sotto_sip::message::{Request, StatusCode, Uri};
use sotto_sip::resolve::{Candidate, Policy, ResolveError};
use sotto_sip::transaction::TransactionId;
use sotto_sip::transport::Destination;

use super::build::{self, Inbound};
use super::fork::{DOES_NOT_EXIST_ANYWHERE, Failure, LOOP_DETECTED};
use super::{Outcome, Proxy, ProxyEvent, Transmit};
use crate::config::DowngradePolicy;
use crate::modules::forward::downgrades;
use crate::pipeline::Target;

/// A DNS lookup the proxy needs: resolve `uri` under `policy` and answer with
/// [`Proxy::handle_lookup`] and the same `id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupRequest {
    /// Names the lookup in the answer.
    pub id: u64,
    /// The URI to locate (its host, port and transport).
    pub uri: Uri,
    /// Which transports may be used.
    pub policy: Policy,
}

/// What waits for a lookup.
#[derive(Debug)]
pub(super) enum Waiting {
    /// A branch of the fork of this server transaction.
    Branch {
        server: TransactionId,
        target: Box<Target>,
        peer: bool,
    },
    /// An ACK for a 2xx, forwarded statelessly once the address is known.
    Ack(Box<AckWaiting>),
}

/// An ACK waiting for its next hop's address.
#[derive(Debug)]
pub(super) struct AckWaiting {
    request: Request,
    inbound: Inbound,
    target: Target,
    hash: String,
}

#[derive(Debug)]
pub(super) struct PendingLookup {
    waiting: Waiting,
}

/// How long a server that could not be reached is tried last.
const UNREACHABLE_FOR: std::time::Duration = std::time::Duration::from_secs(60);
/// Most unreachable servers remembered (a flood of bad names cannot grow it without bound).
const UNREACHABLE_MAX: usize = 1024;

/// The response owed when a lookup found nowhere to send.
fn failure_of(e: &ResolveError) -> Failure {
    let status = match e {
        ResolveError::NoSuchDomain(_) => DOES_NOT_EXIST_ANYWHERE,
        ResolveError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::NOT_FOUND,
    };
    Failure::new(status, format!("DNS: {e}"))
}

impl Proxy {
    /// The next DNS lookup to run, if any.
    pub fn poll_lookup(&mut self) -> Option<LookupRequest> {
        self.lookup_queue.pop_front()
    }

    /// How many lookups are under way (asked and not answered).
    pub fn pending_lookups(&self) -> usize {
        self.lookups.len()
    }

    fn queue_lookup(&mut self, uri: Uri, tls_only: bool, waiting: Waiting) {
        let id = self.next_lookup;
        self.next_lookup = self.next_lookup.wrapping_add(1);
        self.lookups.insert(id, PendingLookup { waiting });
        self.lookup_queue.push_back(LookupRequest {
            id,
            uri,
            policy: Policy { tls_only },
        });
    }

    /// Asks for the location of a branch's next hop.
    pub(super) fn request_lookup(
        &mut self,
        server: TransactionId,
        target: Target,
        uri: Uri,
        tls_only: bool,
        peer: bool,
    ) {
        if let Some(f) = self.forks.get_mut(&server) {
            f.lookups += 1;
        }
        self.queue_lookup(
            uri,
            tls_only,
            Waiting::Branch {
                server,
                target: Box::new(target),
                peer,
            },
        );
    }

    /// Asks for the location of the next hop of a 2xx ACK (`request` after the modules).
    pub(super) fn request_ack_lookup(
        &mut self,
        request: Request,
        inbound: Inbound,
        target: Target,
        uri: Uri,
        tls_only: bool,
    ) {
        let hash = crate::branch::loop_hash(self.provider, &request);
        self.queue_lookup(
            uri,
            tls_only,
            Waiting::Ack(Box::new(AckWaiting {
                request,
                inbound,
                target,
                hash,
            })),
        );
    }

    /// The answer to lookup `id`: the candidates in the order to try them, or why there are
    /// none.
    pub fn handle_lookup(
        &mut self,
        id: u64,
        result: Result<Vec<Candidate>, ResolveError>,
        now: Instant,
    ) {
        let Some(pending) = self.lookups.remove(&id) else {
            return;
        };
        match pending.waiting {
            Waiting::Branch {
                server,
                target,
                peer,
            } => self.lookup_for_branch(server, *target, peer, result, now),
            Waiting::Ack(ack) => self.lookup_for_ack(*ack, result, now),
        }
        self.drain(now);
    }

    /// Remembers that `addr` could not be reached (RFC 3263 §4.3: its domain's next server is
    /// tried first for a while).
    pub(super) fn mark_unreachable(&mut self, addr: std::net::SocketAddr, now: Instant) {
        if self.unreachable.len() >= UNREACHABLE_MAX {
            self.unreachable.retain(|_, until| *until > now);
            if self.unreachable.len() >= UNREACHABLE_MAX {
                self.unreachable.clear();
            }
        }
        self.unreachable.insert(addr, now + UNREACHABLE_FOR);
    }

    /// The destinations of `candidates` this request may go to (no downgrade from the hop it
    /// came over unless the policy flags instead of refusing), servers found unreachable
    /// lately last; `Err` when none is left.
    fn destinations(
        &self,
        inbound: &Inbound,
        target: &Target,
        mut candidates: Vec<Candidate>,
        now: Instant,
    ) -> Result<VecDeque<Destination>, Failure> {
        let found = candidates.len();
        // A stable sort: the DNS order stays among the reachable and among the others.
        candidates.sort_by_key(|c| self.unreachable.get(&c.addr).is_some_and(|u| *u > now));
        let out: VecDeque<Destination> = candidates
            .into_iter()
            .filter(|c| {
                self.downgrade == DowngradePolicy::Flag
                    || !downgrades(inbound.transport, c.transport, target.registered_over)
            })
            .map(|c| Destination {
                transport: c.transport,
                remote: c.addr,
                connection: None,
                server_name: c.server_name,
            })
            .collect();
        if out.is_empty() {
            return Err(Failure::new(
                StatusCode::FORBIDDEN,
                format!(
                    "the {found} server(s) found for {} would change the hop's TLS protection",
                    target.uri
                ),
            ));
        }
        Ok(out)
    }

    fn lookup_for_branch(
        &mut self,
        server: TransactionId,
        target: Target,
        peer: bool,
        result: Result<Vec<Candidate>, ResolveError>,
        now: Instant,
    ) {
        let Some(fork) = self.forks.get_mut(&server) else {
            return;
        };
        fork.lookups = fork.lookups.saturating_sub(1);
        let inbound = fork.inbound;
        if !self.fork_open(server) {
            // Answered meanwhile (cancelled, or another branch's 2xx/6xx).
            self.forget_fork_if_over(server);
            return;
        }
        let mut dests = match result
            .map_err(|e| failure_of(&e))
            .and_then(|c| self.destinations(&inbound, &target, c, now))
        {
            Ok(d) => d,
            Err(f) => return self.on_branch_failure(server, None, f, now),
        };
        let mut last = Failure::new(LOOP_DETECTED, "no candidate");
        while let Some(dest) = dests.pop_front() {
            match self.start_branch(server, target.clone(), dest, peer, dests.clone(), now) {
                Ok(()) => return self.announce_forwarded(server),
                Err(f) => last = f,
            }
        }
        self.on_branch_failure(server, None, last, now);
    }

    fn lookup_for_ack(
        &mut self,
        ack: AckWaiting,
        result: Result<Vec<Candidate>, ResolveError>,
        now: Instant,
    ) {
        let AckWaiting {
            request,
            inbound,
            target,
            hash,
        } = ack;
        let dests = match result
            .map_err(|e| failure_of(&e))
            .and_then(|c| self.destinations(&inbound, &target, c, now))
        {
            Ok(d) => d,
            Err(f) => {
                tracing::info!(reason = %f.reason, "ACK not forwarded");
                return;
            }
        };
        let Some(dest) = dests
            .into_iter()
            .find(|d| !self.locality.is_own_address(d.transport, d.remote))
        else {
            return;
        };
        let branch = crate::branch::new_branch(self.provider, &hash);
        let outbound = build::Outbound {
            target: &target,
            destination: &dest,
            peer: false,
        };
        if let Some(req) = build::branch_request(
            &self.locality,
            &self.flows,
            &request,
            &inbound,
            outbound,
            &branch,
        ) {
            self.transmits.push_back(Transmit {
                destination: dest,
                data: req.to_bytes(),
                transaction: None,
            });
        }
    }

    /// The `forwarded` event of a request whose first branch went out after a lookup.
    fn announce_forwarded(&mut self, server: TransactionId) {
        let Some(fork) = self.forks.get(&server) else {
            return;
        };
        if self
            .events
            .iter()
            .any(|e| e.fork == Some(server) && matches!(e.outcome, Outcome::Forwarded(_)))
        {
            return;
        }
        self.events.push_back(ProxyEvent {
            method: fork.original.method().as_str().to_owned(),
            source: fork.inbound.source,
            transport: fork.inbound.transport,
            outcome: Outcome::Forwarded(fork.branches()),
            module: fork.module,
            auth_failure: false,
            connection: None,
            authenticated: false,
            fork: Some(server),
        });
    }
}
