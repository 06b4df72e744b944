//! Store operations of the pipeline's modules ([`crate::store_ops`]): run here at once
//! (memory stores: nothing to wait for), or handed to the IO edge, which runs them on a store
//! thread. A request waiting for its answer is parked with its server transaction already
//! created (its retransmissions are absorbed, not run through the pipeline again); nothing
//! else waits for it.

use std::time::Instant;

use sotto_sip::transaction::TransactionId;

use super::{Packet, Proxy};
use crate::pipeline::{RequestContext, Verdict};
use crate::store_ops::{StoreAnswer, StoreRequest, StoreTicket};

/// Most times one request's modules may ask the store (a module that keeps asking is a bug:
/// the request gets a 500).
const MAX_FETCHES: usize = 8;

/// A request waiting for a store answer.
#[derive(Debug)]
pub(super) enum Parked {
    /// A request with its server transaction.
    Request {
        id: TransactionId,
        original: Box<sotto_sip::message::Request>,
        ctx: Box<RequestContext>,
        packet: Packet,
        resume: usize,
        fetches: usize,
    },
    /// An ACK (no transaction), and its loop-detection hash.
    Ack {
        ctx: Box<RequestContext>,
        hash: String,
        resume: usize,
        fetches: usize,
    },
}

impl Parked {
    /// The context, where the pipeline starts again, and the fetches so far.
    fn state(&mut self) -> (&mut RequestContext, &mut usize, &mut usize) {
        match self {
            Parked::Request {
                ctx,
                resume,
                fetches,
                ..
            }
            | Parked::Ack {
                ctx,
                resume,
                fetches,
                ..
            } => (ctx, resume, fetches),
        }
    }

    fn ctx(&self) -> &RequestContext {
        match self {
            Parked::Request { ctx, .. } | Parked::Ack { ctx, .. } => ctx,
        }
    }
}

/// The pipeline's verdict on a request, after any store operations run here.
pub(super) struct Decision {
    pub(super) verdict: Verdict,
    pub(super) module: &'static str,
    /// Where the pipeline starts again for a [`Verdict::Fetch`].
    pub(super) resume: usize,
    /// Store operations asked so far.
    pub(super) fetches: usize,
}

impl Proxy {
    /// Store operations go to the IO edge ([`Proxy::poll_store`]) instead of running here.
    /// The drivers of SQLite and Redis stores turn this on; with memory stores (tests) the
    /// proxy runs them itself.
    pub fn defer_store_operations(&mut self, on: bool) {
        self.defer_stores = on;
    }

    /// The next store operation to run, when they are deferred; run it
    /// ([`StoreRequest::run`]) and give the answer to [`Proxy::handle_store`].
    pub fn poll_store(&mut self) -> Option<StoreRequest> {
        self.store_queue.pop_front()
    }

    /// Requests waiting for the store.
    pub fn parked(&self) -> usize {
        self.parked.len()
    }

    /// The answer to a deferred store operation: its request goes on from the module that
    /// asked (and waits again if the next module asks the store too).
    pub fn handle_store(&mut self, ticket: StoreTicket, answer: StoreAnswer, now: Instant) {
        let Some(mut parked) = self.parked.remove(&ticket) else {
            tracing::debug!(ticket = ticket.0, "store answer for no parked request");
            return;
        };
        let (ctx, resume, fetches) = parked.state();
        ctx.answer = Some(answer);
        let d = self.decide(ctx, *resume, *fetches, now);
        match d.verdict {
            Verdict::Fetch(op) => {
                let ticket = self.queue_store(op, parked.ctx());
                let (_, resume, fetches) = parked.state();
                (*resume, *fetches) = (d.resume, d.fetches);
                self.parked.insert(ticket, parked);
            }
            verdict => match parked {
                Parked::Request {
                    id,
                    original,
                    ctx,
                    packet,
                    ..
                } => self.conclude_accepted(id, *original, &ctx, &packet, verdict, d.module, now),
                Parked::Ack { ctx, hash, .. } => self.forward_ack(&ctx, hash, verdict, d.module),
            },
        }
        self.drain(now);
    }

    /// Runs the pipeline on `ctx` from module `start`. A store operation is run here unless
    /// they are deferred; a deferred one comes back as [`Verdict::Fetch`].
    pub(super) fn decide(
        &mut self,
        ctx: &mut RequestContext,
        start: usize,
        mut fetches: usize,
        now: Instant,
    ) -> Decision {
        let mut start = start;
        loop {
            let (verdict, module, resume) = self.pipeline.run_from(start, ctx, now);
            let Verdict::Fetch(op) = verdict else {
                return Decision {
                    verdict,
                    module,
                    resume,
                    fetches,
                };
            };
            fetches += 1;
            if fetches > MAX_FETCHES {
                tracing::error!(module, "a module kept asking the store: 500");
                return Decision {
                    verdict: crate::pipeline::Reply::new(
                        sotto_sip::message::StatusCode::SERVER_INTERNAL_ERROR,
                    )
                    .verdict(),
                    module,
                    resume,
                    fetches,
                };
            }
            if self.defer_stores {
                return Decision {
                    verdict: Verdict::Fetch(op),
                    module,
                    resume,
                    fetches,
                };
            }
            ctx.answer = Some(op.run(&*self.users, &*self.bindings, ctx.wall));
            start = resume;
        }
    }

    /// Queues `op` for the IO edge; returns its ticket.
    pub(super) fn queue_store(
        &mut self,
        op: crate::store_ops::StoreOp,
        ctx: &RequestContext,
    ) -> StoreTicket {
        self.next_ticket += 1;
        let ticket = StoreTicket(self.next_ticket);
        self.store_queue.push_back(StoreRequest {
            ticket,
            op,
            wall: ctx.wall,
        });
        ticket
    }
}
