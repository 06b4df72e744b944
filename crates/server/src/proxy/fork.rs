//! Response aggregation over parallel branches (RFC 3261 §16.7) and CANCEL (§16.10).
//!
//! - 100 is never forwarded; other 1xx are, until a final response was sent upstream.
//! - A 2xx is forwarded at once (every 2xx of an INVITE, forked ones included) and the other
//!   pending INVITE branches are cancelled.
//! - A 6xx to an INVITE cancels the other branches.
//! - Otherwise the best final response is sent once every branch has one: 6xx first, then
//!   3xx, 4xx, 5xx (a 503 becomes 500, §16.7 step 6). A branch that times out counts as 408,
//!   one whose transport failed as 503: so nobody answering gives 408. An in-dialog request
//!   sent over a flow (RFC 5626 §5.3) whose connection failed gets 430 Flow Failed.

use std::time::Instant;

use sotto_sip::message::{Method, Request, Response, StatusCode};
use sotto_sip::transaction::{ClientEvent, LayerEvent, ServerEvent, TransactionId};

use super::{Proxy, Transmit, build};
use crate::modules::forward::DOWNGRADE_WARNING;

/// 430 Flow Failed (RFC 5626 §11.5).
const FLOW_FAILED: StatusCode = StatusCode(430);

#[derive(Debug)]
struct Branch {
    client: TransactionId,
    request: Request,
    final_status: Option<StatusCode>,
}

/// One proxied request and its branches.
#[derive(Debug)]
pub struct Fork {
    pub(super) original: Request,
    branches: Vec<Branch>,
    best: Option<Response>,
    /// A final response was sent upstream.
    done: bool,
    insecure_hop: bool,
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
    pub(super) fn new(original: Request, insecure_hop: bool) -> Self {
        Fork {
            original,
            branches: Vec::new(),
            best: None,
            done: false,
            insecure_hop,
        }
    }

    pub(super) fn add_branch(&mut self, client: TransactionId, request: Request) {
        self.branches.push(Branch {
            client,
            request,
            final_status: None,
        });
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
                self.on_branch_response(id, resp, true, now);
            }
            LayerEvent::Client(id, ClientEvent::Timeout | ClientEvent::TransportError)
                if self.client.contains_key(&id) =>
            {
                let Some((server, dest)) = self.client.get(&id) else {
                    return;
                };
                let Some(fork) = self.forks.get(server) else {
                    return;
                };
                let status = match ev {
                    LayerEvent::Client(_, ClientEvent::Timeout) => StatusCode::REQUEST_TIMEOUT,
                    // An in-dialog request routed by a flow token whose connection is gone
                    // (RFC 5626 §5.3).
                    _ if dest.connection.is_some() && fork.is_in_dialog() => FLOW_FAILED,
                    _ => StatusCode::SERVICE_UNAVAILABLE,
                };
                let resp = Response::from_request(&fork.original, status);
                self.on_branch_response(id, resp, false, now);
            }
            LayerEvent::Client(id, ClientEvent::Terminated) => {
                self.cancels.remove(&id);
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

    fn forget_fork_if_over(&mut self, server: TransactionId) {
        // The fork's own branches, not every client transaction: O(branches), not O(n).
        let live = self.server_dest.contains_key(&server)
            || self.forks.get(&server).is_some_and(|f| {
                f.branches
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

    /// A response on branch `client` (`ours_on_top`: it still carries our Via).
    fn on_branch_response(
        &mut self,
        client: TransactionId,
        mut resp: Response,
        ours_on_top: bool,
        now: Instant,
    ) {
        let Some(&(server, _)) = self.client.get(&client) else {
            return;
        };
        if ours_on_top && !build::pop_via(&mut resp) {
            return;
        }
        let status = resp.status();
        let Some(fork) = self.forks.get_mut(&server) else {
            return;
        };
        if fork.insecure_hop {
            resp.headers_mut().push("Warning", DOWNGRADE_WARNING);
        }
        let invite = *fork.original.method() == Method::Invite;
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
        }
        let six = status.class() == 6;
        if fork.pending().next().is_none() || six {
            fork.done = true;
            self.pending_forks = self.pending_forks.saturating_sub(1);
            if let Some(mut best) = fork.best.take() {
                if best.status() == StatusCode::SERVICE_UNAVAILABLE {
                    let mut r =
                        Response::from_request(&fork.original, StatusCode::SERVER_INTERNAL_ERROR);
                    if let Some(t) = best.to_tag().ok().flatten().map(str::to_owned) {
                        r.set_to_tag(&t);
                    }
                    best = r;
                } else if best.to_tag().ok().flatten().is_none() {
                    best.set_to_tag(&super::fresh_tag(self.provider));
                }
                if let Err(e) = self.layer.send_response(server, best, now) {
                    tracing::debug!(error = %e, "final response not forwarded upstream");
                }
            }
            if six && invite {
                self.cancel_fork(server, now);
            }
        }
    }

    /// Sends CANCEL on every pending branch of the fork of server transaction `server`.
    pub(super) fn cancel_fork(&mut self, server: TransactionId, now: Instant) {
        let Some(fork) = self.forks.get(&server) else {
            return;
        };
        if *fork.original.method() != Method::Invite {
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
}
