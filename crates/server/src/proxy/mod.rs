//! The stateful proxy core (RFC 3261 §16), sans-IO: bytes and time in, bytes to send and a
//! wake-up time out. It owns the [`TransactionLayer`] and the module [`Pipeline`].
//!
//! A new request runs through the pipeline; `Reply` is answered on a server transaction (a
//! plain authentication challenge statelessly, RFC 3261 §8.2.7), `Forward`
//! creates one client transaction per target (parallel forking) and a fork that
//! aggregates their responses (§16.7, [`Fork`]). ACKs for 2xx go through the pipeline and
//! are forwarded statelessly, end to end. A CANCEL is answered by the transaction layer and
//! cancels the pending branches. Bodies are forwarded byte for byte: media is never touched.
//!
//! The Record-Route of a dialog-creating request carries a flow token ([`flow`], RFC 5626
//! §5.3) for each side reached over a TCP/TLS connection (the caller's connection, the
//! callee's registration flow), so that in-dialog requests in both directions go back over
//! those connections instead of to Contacts a NAT makes unreachable.
//!
//! A next hop named by a host name is located by DNS (RFC 3263) at the IO edge: the proxy
//! queues a [`LookupRequest`] ([`Proxy::poll_lookup`]) and goes on; the answer comes back
//! through [`Proxy::handle_lookup`], and the branch is sent to the first candidate, the
//! others kept for failover. A next hop that is this server itself is never sent to (482).
//!
//! ## Driving contract
//! After each `handle_*` call, drain [`Proxy::poll_transmit`], [`Proxy::poll_lookup`] and
//! [`Proxy::poll_event`] (send first: a send that fails at once, reported with
//! [`Proxy::handle_send_error`], turns the request's queued `forwarded` event into a
//! `failed` one), then wake up at [`Proxy::poll_timeout`] and call
//! [`Proxy::handle_timeout`].

mod ack;
mod build;
pub mod flow;
mod fork;
mod lookup;
mod overload;
mod salvage;
mod stores;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use sotto_crypto::CryptoProvider;
use sotto_sip::message::{Message, Method, Request, Response, StatusCode};
use sotto_sip::parse::{Limits, parse_message};
use sotto_sip::transaction::{Incoming, LayerConfig, Received, TransactionId, TransactionLayer};
use sotto_sip::transport::{ConnectionId, Destination, TransportKind};
use sotto_store::{BindingStore, UserStore};

use crate::config::{DowngradePolicy, ServerConfig};
use crate::modules::{AntiFlood, Authentication, Federation, Forward, Registrar, Router, Sanity};
use crate::pipeline::{Locality, NextHop, Pipeline, Reply, RequestContext, Target, Verdict};
use crate::store_ops::{StoreOp, StoreRequest, StoreTicket};
use crate::{Error, branch};

pub use flow::{Flow, FlowTokenError, FlowTokens};
pub use fork::Fork;
pub use lookup::LookupRequest;

/// A received message and where it came from.
#[derive(Debug, Clone)]
pub struct Packet {
    /// One message's bytes.
    pub data: Bytes,
    /// The peer.
    pub source: SocketAddr,
    /// Our address it arrived on (what our Record-Route and Via name toward the sender).
    pub local: SocketAddr,
    /// The transport.
    pub transport: TransportKind,
    /// The TCP/TLS connection.
    pub connection: Option<ConnectionId>,
    /// Identities of the verified TLS client certificate (SAN URIs, then CN), if any.
    pub client_identities: Vec<String>,
    /// Domains the verified TLS client certificate is valid for (a peer server's, RFC 5922).
    pub client_domains: Vec<String>,
}

/// Bytes to send.
#[derive(Debug, Clone)]
pub struct Transmit {
    /// Where.
    pub destination: Destination,
    /// What.
    pub data: Bytes,
    /// The transaction it belongs to (report a send failure with
    /// [`Proxy::handle_send_error`]).
    pub transaction: Option<TransactionId>,
}

/// What happened to a request (for logs and metrics).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Answered here with this status.
    Replied(u16),
    /// Forwarded to this many branches.
    Forwarded(usize),
    /// Dropped silently.
    Dropped,
    /// Could not be forwarded (the next hop unreachable, not found in DNS, a loop): answered
    /// here with this status, for this reason.
    Failed {
        /// The status answered.
        status: u16,
        /// What failed.
        reason: String,
    },
}

/// An event for logs and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyEvent {
    /// The request method.
    pub method: String,
    /// Where it came from.
    pub source: SocketAddr,
    /// Over what.
    pub transport: TransportKind,
    /// What became of it.
    pub outcome: Outcome,
    /// The module that decided.
    pub module: &'static str,
    /// Whether it failed authentication.
    pub auth_failure: bool,
    /// The connection it came over (TCP/TLS), when that is known.
    pub connection: Option<sotto_sip::transport::ConnectionId>,
    /// Whether its sender proved who it is (digest, a TLS client certificate, a federated
    /// domain's certificate): its connection is then an authenticated one.
    pub authenticated: bool,
    /// The forwarded request's server transaction (to find its event again).
    pub(crate) fork: Option<TransactionId>,
}

/// The proxy/registrar core.
pub struct Proxy {
    locality: Arc<Locality>,
    provider: &'static CryptoProvider,
    /// Issues the flow tokens of our Record-Route (the router verifies them).
    flows: Arc<FlowTokens>,
    pipeline: Pipeline,
    layer: TransactionLayer,
    limits: Limits,
    /// Server transaction → where its responses go.
    server_dest: HashMap<TransactionId, Destination>,
    /// Client transaction → (fork's server transaction, destination).
    client: HashMap<TransactionId, (TransactionId, Destination)>,
    /// CANCEL client transactions → destination (their responses are ignored).
    cancels: HashMap<TransactionId, Destination>,
    forks: HashMap<TransactionId, Fork>,
    /// Why sending a client transaction's message failed (told by the driver).
    send_errors: HashMap<TransactionId, String>,
    /// DNS lookups under way, by id.
    lookups: HashMap<u64, lookup::PendingLookup>,
    /// Lookups to hand to the IO edge.
    lookup_queue: VecDeque<LookupRequest>,
    next_lookup: u64,
    /// TLS ↔ plain hops: what the forward module does with them (applied to DNS answers too).
    downgrade: DowngradePolicy,
    /// Servers that could not be reached lately, until when: tried last among a domain's
    /// candidates (so a stateless ACK, which has no failover, does not go to a dead one).
    unreachable: HashMap<SocketAddr, Instant>,
    /// Forks not done yet (kept as a count: [`Proxy::pending_forks`] is sampled often).
    pending_forks: usize,
    /// Random prefix of the To tags of stateless replies (so their ACKs are recognized).
    stateless_tag: String,
    /// Replies sent without a server transaction.
    stateless_replies: u64,
    /// Requests answered 503 because live transactions filled the table.
    transactions_refused: u64,
    /// Load shedding from the backlog the IO edge reports.
    overload: overload::Shedder,
    transmits: VecDeque<Transmit>,
    events: VecDeque<ProxyEvent>,
    /// The stores the modules' operations run on (here, unless deferred).
    users: Arc<dyn UserStore>,
    bindings: Arc<dyn BindingStore>,
    /// Store operations go to the IO edge ([`Proxy::defer_store_operations`]).
    defer_stores: bool,
    store_queue: VecDeque<StoreRequest>,
    /// Requests waiting for a store answer.
    parked: HashMap<StoreTicket, stores::Parked>,
    next_ticket: u64,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("pipeline", &self.pipeline)
            .field("transactions", &self.layer.len())
            .field("forks", &self.forks.len())
            .finish_non_exhaustive()
    }
}

impl Proxy {
    /// A proxy for `config`, listening on `listeners`, over the given stores.
    pub fn new(
        config: &ServerConfig,
        listeners: Vec<(TransportKind, SocketAddr)>,
        users: Arc<dyn UserStore>,
        bindings: Arc<dyn BindingStore>,
        provider: &'static CryptoProvider,
        now: Instant,
    ) -> Result<Self, Error> {
        let mut locality = Locality::new(config.domains.clone(), listeners);
        locality.aliases = config.aliases.clone();
        locality.public_host = config.public_host.clone();
        let locality = Arc::new(locality);
        let flows = Arc::new(FlowTokens::new(provider).map_err(|_| Error::Crypto)?);
        let mut pipeline = Pipeline::new();
        pipeline.push(Box::new(AntiFlood::new(config.anti_flood.clone())));
        pipeline.push(Box::new(Sanity::new(
            config.sanity.clone(),
            locality.clone(),
            provider,
        )));
        pipeline.push(Box::new(Federation::new(
            config.federation.clone(),
            locality.clone(),
        )));
        pipeline.push(Box::new(
            Authentication::new(
                config.authentication.clone(),
                &config.realm,
                locality.clone(),
                provider,
                now,
            )
            .map_err(|_| Error::Crypto)?,
        ));
        pipeline.push(Box::new(Registrar::new(
            config.registrar.clone(),
            locality.clone(),
            provider,
        )));
        pipeline.push(Box::new(
            Router::new(config.router.clone(), locality.clone())
                .with_flow_tokens(flows.clone())
                .with_federation(config.federation.clone()),
        ));
        pipeline.push(Box::new(Forward::new(config.forward.clone())));
        let layer = TransactionLayer::new(
            LayerConfig {
                timers: config.timers,
                detect_merged: false,
                max_transactions: config.max_transactions,
            },
            provider,
        );
        let mut raw = [0u8; 6];
        provider.rng.fill(&mut raw).map_err(|_| Error::Crypto)?;
        let stateless_tag = hex(&raw);
        Ok(Proxy {
            locality,
            provider,
            flows,
            pipeline,
            layer,
            limits: Limits::default(),
            server_dest: HashMap::new(),
            client: HashMap::new(),
            cancels: HashMap::new(),
            forks: HashMap::new(),
            send_errors: HashMap::new(),
            lookups: HashMap::new(),
            lookup_queue: VecDeque::new(),
            next_lookup: 0,
            downgrade: config.forward.downgrade,
            unreachable: HashMap::new(),
            pending_forks: 0,
            stateless_tag: format!("sl{stateless_tag}"),
            stateless_replies: 0,
            transactions_refused: 0,
            overload: overload::Shedder::new(config.overload.clone()),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            users,
            bindings,
            defer_stores: false,
            store_queue: VecDeque::new(),
            parked: HashMap::new(),
            next_ticket: 0,
        })
    }

    /// What "this server" means: the edge updates its interface addresses
    /// ([`Locality::set_interfaces`]).
    pub fn locality(&self) -> Arc<Locality> {
        self.locality.clone()
    }

    /// The module names, in chain order.
    pub fn modules(&self) -> Vec<&'static str> {
        self.pipeline.names()
    }

    /// How many transactions are alive.
    pub fn transactions(&self) -> usize {
        self.layer.len()
    }

    /// How many forwarded requests still wait for their final response.
    pub fn pending_forks(&self) -> usize {
        debug_assert_eq!(
            self.pending_forks,
            self.forks.values().filter(|f| !f.is_done()).count()
        );
        self.pending_forks
    }

    /// The modules' figures for metrics, as `(module, name, value)` (see
    /// [`crate::pipeline::Module::counters`]), then the transaction table's as module
    /// `transactions`: `evicted_total` (retransmission-absorbing transactions ended early to
    /// make room), `refused_total` (requests answered 503 because live transactions filled the
    /// table) and `stateless_replies_total` (challenges answered without a transaction), then
    /// `overload`'s: `shed_unauthenticated_total`, `shed_all_total` and `incoming_backlog`
    /// (the highest backlog since the last report).
    pub fn module_counters(&self, out: &mut dyn FnMut(&'static str, &'static str, u64)) {
        self.pipeline.counters(out);
        out("transactions", "evicted_total", self.layer.evicted());
        out("transactions", "refused_total", self.transactions_refused);
        self.overload.counters(out);
        out(
            "transactions",
            "stateless_replies_total",
            self.stateless_replies,
        );
    }

    /// What the modules hold against source addresses at `now` (bans, account lockouts).
    pub fn blocks(&self, now: Instant) -> Vec<crate::pipeline::Block> {
        self.pipeline.blocks(now)
    }

    /// Lifts every block on `source`; returns how many were lifted.
    pub fn lift_blocks(&mut self, source: std::net::IpAddr) -> usize {
        self.pipeline.lift(source)
    }

    /// Transactions evicted so far to make room in a full table.
    pub fn transactions_evicted(&self) -> u64 {
        self.layer.evicted()
    }

    /// Tells the proxy how far behind it is: how many received messages wait behind the
    /// next one, and how long that one waited since it arrived (in the kernel's buffer and
    /// in the queue). Past the thresholds of [`crate::config::OverloadConfig`], new requests
    /// are refused (503) before any work is done on them. The IO edge calls it before
    /// [`Proxy::handle_packet`].
    pub fn set_backlog(&mut self, waiting: usize, waited: std::time::Duration, now: Instant) {
        self.overload.set_backlog(waiting, waited, now);
    }

    /// Handles one received message.
    pub fn handle_packet(&mut self, packet: Packet, now: Instant, wall: SystemTime) {
        let reliable = packet.transport.is_stream();
        match parse_message(packet.data.clone(), &self.limits) {
            Ok(Message::Request(req)) => match self.layer.handle_request(req, reliable, now) {
                Received::Request(incoming) => self.on_new_request(incoming, &packet, now, wall),
                Received::Ack(ack) => self.on_ack(ack, &packet, now, wall),
                Received::Cancel { cancel, invite } => {
                    self.server_dest.insert(cancel, reply_dest(&packet));
                    if let Some(invite) = invite {
                        self.cancel_fork(invite, now);
                    }
                }
                Received::Merged(id) => {
                    self.server_dest.insert(id, reply_dest(&packet));
                }
                // Parsed, but without a usable Via or CSeq: no transaction can answer it.
                Received::Invalid(e) => self.answer_malformed(&packet, &e.to_string()),
                _ => {}
            },
            Ok(Message::Response(resp)) => {
                if let Received::StrayResponse(resp) = self.layer.handle_response(resp, now) {
                    self.forward_stray(resp);
                }
            }
            Err(e) => self.answer_malformed(&packet, &e.to_string()),
        }
        self.drain(now);
    }

    /// A request the parser or the transaction layer refused: answered statelessly from the
    /// headers that can still be read (see `salvage`), else dropped.
    fn answer_malformed(&mut self, packet: &Packet, error: &str) {
        match salvage::bad_request(&packet.data, packet.source.ip(), error) {
            Some(data) => {
                tracing::debug!(error, source = %packet.source, "malformed request answered");
                self.transmits.push_back(Transmit {
                    destination: reply_dest(packet),
                    data,
                    transaction: None,
                });
            }
            None => tracing::debug!(error, source = %packet.source, "unparsable message dropped"),
        }
    }

    /// Fires due timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.layer.handle_timeout(now);
        self.drain(now);
    }

    /// Reports that sending a transaction's message failed, and why (the reason goes into
    /// the Warning of the response it causes and into the request's event).
    pub fn handle_send_error(&mut self, transaction: TransactionId, reason: &str, now: Instant) {
        if self.client.contains_key(&transaction) {
            self.send_errors.insert(transaction, reason.to_owned());
        }
        self.layer.handle_transport_error(transaction, now);
        self.drain(now);
    }

    /// The next message to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<ProxyEvent> {
        self.events.pop_front()
    }

    /// When to call [`Proxy::handle_timeout`].
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.layer.poll_timeout()
    }

    fn context(&self, req: Request, packet: &Packet, wall: SystemTime) -> RequestContext {
        let mut ctx = RequestContext::new(req, packet.source, packet.transport, wall);
        ctx.local = packet.local;
        ctx.connection = packet.connection;
        ctx.client_identities = packet.client_identities.clone();
        ctx.client_domains = packet.client_domains.clone();
        ctx
    }

    fn event(&mut self, ctx: &RequestContext, outcome: Outcome, module: &'static str) {
        self.event_of(ctx, outcome, module, None);
    }

    fn event_of(
        &mut self,
        ctx: &RequestContext,
        outcome: Outcome,
        module: &'static str,
        fork: Option<TransactionId>,
    ) {
        self.events.push_back(ProxyEvent {
            method: ctx.request.method().as_str().to_owned(),
            source: ctx.source,
            transport: ctx.transport,
            outcome,
            module,
            auth_failure: ctx.auth_failure,
            connection: ctx.connection,
            authenticated: ctx.authenticated.is_some()
                || !ctx.client_identities.is_empty()
                || !ctx.client_domains.is_empty(),
            fork,
        });
    }

    fn on_new_request(
        &mut self,
        incoming: Incoming,
        packet: &Packet,
        now: Instant,
        wall: SystemTime,
    ) {
        let certified = !packet.client_identities.is_empty() || !packet.client_domains.is_empty();
        if let Some(reply) = self.overload.shed(incoming.request(), certified) {
            // Before the modules: the point is to spend nothing on it.
            self.reply_stateless(incoming.request(), reply, packet);
            let ctx = self.context(incoming.request().clone(), packet, wall);
            return self.event(&ctx, Outcome::Replied(503), "overload");
        }
        let mut ctx = self.context(incoming.request().clone(), packet, wall);
        let d = self.decide(&mut ctx, 0, 0, now);
        let module = d.module;
        // What the transaction's first message needs, taken before `accept` takes the request.
        let prepared = match d.verdict {
            Verdict::Drop => return self.event(&ctx, Outcome::Dropped, module),
            Verdict::Continue => return,
            Verdict::Reply(reply) if is_stateless(&reply, &ctx) => {
                let status = reply.status.0;
                self.reply_stateless(incoming.request(), reply, packet);
                self.stateless_replies += 1;
                return self.event(&ctx, Outcome::Replied(status), module);
            }
            Verdict::Reply(reply) => {
                let status = reply.status.0;
                let tag = self.tag();
                let r = Self::response(incoming.request(), reply, &tag, packet.source);
                Prepared::Response(status, r)
            }
            Verdict::Forward(targets) => Prepared::Forward(targets, incoming.request().clone()),
            Verdict::Fetch(op) => Prepared::Fetch(op, incoming.request().clone()),
        };
        let id = match self.layer.accept(incoming, now) {
            Ok(id) => id,
            Err(e) => {
                tracing::warn!(error = %e, "cannot create a server transaction: 503");
                self.transactions_refused += 1;
                let reply = Reply::new(StatusCode::SERVICE_UNAVAILABLE).with("Retry-After", "5");
                // The modules leave Via, From, To, Call-ID and CSeq alone: what a response copies.
                self.reply_stateless(&ctx.request, reply, packet);
                return self.event(&ctx, Outcome::Replied(503), module);
            }
        };
        self.server_dest.insert(id, reply_dest(packet));
        match prepared {
            Prepared::Response(status, r) => {
                if let Err(e) = self.layer.send_response(id, r, now) {
                    tracing::warn!(error = %e, "response not sent");
                }
                self.event(&ctx, Outcome::Replied(status), module);
            }
            Prepared::Forward(targets, original) => {
                self.fork_request(id, original, &ctx, packet, targets, module, now)
            }
            Prepared::Fetch(op, original) => {
                // Parked with its transaction: retransmissions are absorbed meanwhile.
                let ticket = self.queue_store(op, &ctx);
                let parked = stores::Parked::Request {
                    id,
                    original: Box::new(original),
                    ctx: Box::new(ctx),
                    packet: packet.clone(),
                    resume: d.resume,
                    fetches: d.fetches,
                };
                self.parked.insert(ticket, parked);
            }
        }
    }

    /// The end of a request whose transaction exists (its store answer came): a response,
    /// or its branches.
    // The request's parts as the parking kept them (transaction, original, context, packet).
    #[allow(clippy::too_many_arguments)]
    fn conclude_accepted(
        &mut self,
        id: TransactionId,
        original: Request,
        ctx: &RequestContext,
        packet: &Packet,
        verdict: Verdict,
        module: &'static str,
        now: Instant,
    ) {
        match verdict {
            Verdict::Reply(reply) => {
                let status = reply.status.0;
                let tag = self.tag();
                let r = Self::response(&original, reply, &tag, packet.source);
                if let Err(e) = self.layer.send_response(id, r, now) {
                    tracing::warn!(error = %e, "response not sent");
                }
                self.event(ctx, Outcome::Replied(status), module);
            }
            Verdict::Forward(targets) => {
                self.fork_request(id, original, ctx, packet, targets, module, now)
            }
            Verdict::Drop | Verdict::Continue | Verdict::Fetch(_) => {
                self.event(ctx, Outcome::Dropped, module)
            }
        }
    }

    /// Forwards a request on its server transaction `id` to `targets` (a fork).
    #[allow(clippy::too_many_arguments)]
    fn fork_request(
        &mut self,
        id: TransactionId,
        original: Request,
        ctx: &RequestContext,
        packet: &Packet,
        targets: Vec<Target>,
        module: &'static str,
        now: Instant,
    ) {
        if *original.method() == Method::Invite {
            let mut trying = Response::from_request(&original, StatusCode::TRYING);
            build::stamp_response_via(&mut trying, packet.source);
            let _ = self.layer.send_response(id, trying, now);
        }
        // Only forwarded requests need the loop-detection hash of their branches (§16.6 8).
        let hash = branch::loop_hash(self.provider, &original);
        let inbound = self.inbound(ctx);
        let fork = Fork::new(
            original,
            ctx.request.clone(),
            inbound,
            hash,
            ctx.insecure_hop,
            module,
        );
        self.forks.insert(id, fork);
        self.pending_forks += 1;
        let mut failure = None;
        for target in targets {
            match target.hop.clone() {
                NextHop::Address(dest) => {
                    if let Err(f) =
                        self.start_branch(id, target, dest, false, Default::default(), now)
                    {
                        failure = Some(f);
                    }
                }
                NextHop::Resolve {
                    uri,
                    tls_only,
                    peer,
                } => self.request_lookup(id, target, uri, tls_only, peer),
            }
        }
        let (branches, lookups) = self
            .forks
            .get(&id)
            .map_or((0, 0), |f| (f.branches(), f.lookups));
        if branches > 0 {
            return self.event_of(ctx, Outcome::Forwarded(branches), module, Some(id));
        }
        if lookups == 0 {
            // Nothing could be sent: answered here with what failed.
            let failure = failure.unwrap_or_else(|| {
                fork::Failure::new(StatusCode::SERVER_INTERNAL_ERROR, "no target")
            });
            self.on_branch_failure(id, None, failure, now);
        }
    }

    /// Where `ctx`'s request came from, as its branches need it.
    fn inbound(&self, ctx: &RequestContext) -> build::Inbound {
        build::Inbound {
            transport: ctx.transport,
            source: ctx.source,
            local: ctx.local,
            flow: Flow::arrived_on(ctx.transport, ctx.connection, ctx.source),
            peer: ctx.federated.is_some(),
        }
    }

    /// A fresh To tag for our own responses.
    fn tag(&self) -> String {
        fresh_tag(self.provider)
    }

    /// The response to `req` for `reply`, with `tag` as To tag (none for 100) and the top Via
    /// stamped with `source` (RFC 3581 §4: `rport`/`received`, so a UDP sender behind a NAT
    /// finds its response, which goes to `source` as well).
    fn response(req: &Request, reply: Reply, tag: &str, source: SocketAddr) -> Response {
        let mut r = Response::from_request(req, reply.status);
        if reply.status != StatusCode::TRYING {
            r.set_to_tag(tag);
        }
        build::stamp_response_via(&mut r, source);
        let h = r.headers_mut();
        for (name, value) in reply.headers {
            h.push(name, value);
        }
        h.push("Server", concat!("sotto/", env!("CARGO_PKG_VERSION")));
        r
    }

    /// Answers `req` without a server transaction (RFC 3261 §8.2.7, stateless UAS): sent once,
    /// never retransmitted; a retransmitted request is answered afresh. The To tag is the
    /// proxy's random `stateless_tag` prefix and a hash of the request's transaction
    /// identifiers, so the same request always gets the same tag (§8.2.7) and the ACK of an
    /// INVITE's challenge is recognized and absorbed (`on_ack`).
    fn reply_stateless(&mut self, req: &Request, reply: Reply, packet: &Packet) {
        let tag = format!("{}{:016x}", self.stateless_tag, request_hash(req));
        let r = Self::response(req, reply, &tag, packet.source);
        self.transmits.push_back(Transmit {
            destination: reply_dest(packet),
            data: r.to_bytes(),
            transaction: None,
        });
    }
}

/// What a new request's transaction starts with.
enum Prepared {
    /// This response (status, message).
    Response(u16, Response),
    /// Branches to these targets, of this original request.
    Forward(Vec<Target>, Request),
    /// A wait for this store operation.
    Fetch(StoreOp, Request),
}

/// Whether `reply` is sent without a server transaction: a challenge (401/407) of a request
/// that carried no credentials of ours or a stale nonce, as Kamailio's `sl_send_reply` does.
///
/// RFC 3261 §8.2.7 allows a stateless UAS and names unauthenticated challenges as its typical
/// use; a proxy challenging with 407 acts as a UAS (§16.1, §22.3). A retransmitted request just
/// gets a fresh challenge (our nonces are stateless HMACs), the ACK of an INVITE's challenge is
/// absorbed by its To tag, and the table keeps no transaction for 32 s (Timer J, §17.2.2) per
/// unauthenticated request. Challenges after wrong credentials stay stateful: a retransmission
/// must not count as one more authentication failure. Other rejections stay stateful too: they
/// are rare, and the modules count them.
fn is_stateless(reply: &Reply, ctx: &RequestContext) -> bool {
    matches!(reply.status.0, 401 | 407) && !ctx.auth_failure
}

/// A deterministic hash of the fields that identify a request's transaction (§8.2.7: the same
/// request gets the same To tag): top Via branch, From tag, Call-ID, CSeq.
fn request_hash(req: &Request) -> u64 {
    use std::hash::{Hash, Hasher};
    // Fixed keys: the same request hashes the same (no secret needed: tags are not secret).
    let mut h = std::hash::DefaultHasher::new();
    if let Ok(via) = req.via_top() {
        via.branch.hash(&mut h);
    }
    req.from_tag().ok().flatten().hash(&mut h);
    req.call_id().ok().hash(&mut h);
    if let Ok(cseq) = req.cseq() {
        cseq.seq.hash(&mut h);
        cseq.method.as_str().hash(&mut h);
    }
    h.finish()
}

/// A fresh random To tag.
fn fresh_tag(provider: &CryptoProvider) -> String {
    let mut r = [0u8; 8];
    let _ = provider.rng.fill(&mut r);
    hex(&r)
}

/// Lower-case hex of `bytes`.
fn hex(bytes: &[u8]) -> String {
    sotto_crypto::hex::encode(bytes)
}

fn reply_dest(packet: &Packet) -> Destination {
    Destination {
        transport: packet.transport,
        remote: packet.source,
        connection: packet.connection,
        server_name: None,
    }
}

#[cfg(test)]
mod tests;
