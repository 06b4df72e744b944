//! The stateful proxy core (RFC 3261 §16), sans-IO: bytes and time in, bytes to send and a
//! wake-up time out. It owns the [`TransactionLayer`] and the module [`Pipeline`].
//!
//! A new request runs through the pipeline; `Reply` is answered on a server transaction,
//! `Forward` creates one client transaction per target (parallel forking) and a fork that
//! aggregates their responses (§16.7, [`Fork`]). ACKs for 2xx go through the pipeline and
//! are forwarded statelessly, end to end. A CANCEL is answered by the transaction layer and
//! cancels the pending branches. Bodies are forwarded byte for byte: media is never touched.
//!
//! The Record-Route of a dialog-creating request carries a flow token ([`flow`], RFC 5626
//! §5.3) for each side reached over a TCP/TLS connection (the caller's connection, the
//! callee's registration flow), so that in-dialog requests in both directions go back over
//! those connections instead of to Contacts a NAT makes unreachable.
//!
//! ## Driving contract
//! After each `handle_*` call, drain [`Proxy::poll_transmit`] and [`Proxy::poll_event`], then
//! wake up at [`Proxy::poll_timeout`] and call [`Proxy::handle_timeout`].

mod build;
pub mod flow;
mod fork;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use sotto_crypto::CryptoProvider;
use sotto_net::{ConnectionId, Destination, TransportKind};
use sotto_sip::message::{Message, Method, Request, Response, StatusCode};
use sotto_sip::parse::{Limits, parse_message};
use sotto_sip::transaction::{Incoming, LayerConfig, Received, TransactionId, TransactionLayer};
use sotto_store::{BindingStore, UserStore};

use crate::config::ServerConfig;
use crate::modules::{AntiFlood, Authentication, Forward, Registrar, Router, Sanity};
use crate::pipeline::{Locality, Pipeline, Reply, RequestContext, Verdict};
use crate::{Error, branch};

pub use flow::{Flow, FlowTokenError, FlowTokens};
pub use fork::Fork;

/// A received message and where it came from.
#[derive(Debug, Clone)]
pub struct Packet {
    /// One message's bytes.
    pub data: Bytes,
    /// The peer.
    pub source: SocketAddr,
    /// The transport.
    pub transport: TransportKind,
    /// The TCP/TLS connection.
    pub connection: Option<ConnectionId>,
    /// Identities of the verified TLS client certificate (SAN URIs, then CN), if any.
    pub client_identities: Vec<String>,
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
    transmits: VecDeque<Transmit>,
    events: VecDeque<ProxyEvent>,
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
        let locality = Arc::new(Locality {
            domains: config
                .domains
                .iter()
                .map(|d| d.to_ascii_lowercase())
                .collect(),
            listeners,
        });
        let flows = Arc::new(FlowTokens::new(provider).map_err(|_| Error::Crypto)?);
        let mut pipeline = Pipeline::new();
        pipeline.push(Box::new(AntiFlood::new(config.anti_flood.clone())));
        pipeline.push(Box::new(Sanity::new(
            config.sanity.clone(),
            locality.clone(),
            provider,
        )));
        pipeline.push(Box::new(
            Authentication::new(
                config.authentication.clone(),
                &config.realm,
                locality.clone(),
                users,
                provider,
                now,
            )
            .map_err(|_| Error::Crypto)?,
        ));
        pipeline.push(Box::new(Registrar::new(
            config.registrar.clone(),
            locality.clone(),
            bindings.clone(),
            provider,
        )));
        pipeline.push(Box::new(
            Router::new(config.router.clone(), locality.clone(), bindings)
                .with_flow_tokens(flows.clone()),
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
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        })
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
        self.forks.values().filter(|f| !f.is_done()).count()
    }

    /// The modules' figures for metrics, as `(module, name, value)` (see
    /// [`crate::pipeline::Module::counters`]).
    pub fn module_counters(&self, out: &mut dyn FnMut(&'static str, &'static str, u64)) {
        self.pipeline.counters(out);
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
                _ => {}
            },
            Ok(Message::Response(resp)) => {
                if let Received::StrayResponse(resp) = self.layer.handle_response(resp, now) {
                    self.forward_stray(resp);
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, source = %packet.source, "unparsable message dropped")
            }
        }
        self.drain(now);
    }

    /// Fires due timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.layer.handle_timeout(now);
        self.drain(now);
    }

    /// Reports that sending a transaction's message failed.
    pub fn handle_send_error(&mut self, transaction: TransactionId, now: Instant) {
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
        ctx.connection = packet.connection;
        ctx.client_identities = packet.client_identities.clone();
        ctx
    }

    fn event(&mut self, ctx: &RequestContext, outcome: Outcome, module: &'static str) {
        self.events.push_back(ProxyEvent {
            method: ctx.request.method().as_str().to_owned(),
            source: ctx.source,
            transport: ctx.transport,
            outcome,
            module,
            auth_failure: ctx.auth_failure,
        });
    }

    fn on_new_request(
        &mut self,
        incoming: Incoming,
        packet: &Packet,
        now: Instant,
        wall: SystemTime,
    ) {
        let original = incoming.request().clone();
        let hash = branch::loop_hash(self.provider, &original);
        let mut ctx = self.context(original.clone(), packet, wall);
        let (verdict, module) = self.pipeline.run(&mut ctx, now);
        let id = match verdict {
            Verdict::Drop => return self.event(&ctx, Outcome::Dropped, module),
            Verdict::Continue => return,
            _ => match self.layer.accept(incoming, now) {
                Ok(id) => id,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot create a server transaction: 503");
                    let mut r = Response::from_request(&original, StatusCode::SERVICE_UNAVAILABLE);
                    r.set_to_tag(&self.tag());
                    r.headers_mut().push("Retry-After", "5");
                    self.transmits.push_back(Transmit {
                        destination: reply_dest(packet),
                        data: r.to_bytes(),
                        transaction: None,
                    });
                    return self.event(&ctx, Outcome::Replied(503), module);
                }
            },
        };
        self.server_dest.insert(id, reply_dest(packet));
        match verdict {
            Verdict::Reply(reply) => {
                let status = reply.status.0;
                self.reply(id, &original, reply, now);
                self.event(&ctx, Outcome::Replied(status), module);
            }
            Verdict::Forward(targets) => {
                if *original.method() == Method::Invite {
                    let trying = Response::from_request(&original, StatusCode::TRYING);
                    let _ = self.layer.send_response(id, trying, now);
                }
                let mut fork = Fork::new(original.clone(), ctx.insecure_hop);
                for target in &targets {
                    let branch_id = branch::new_branch(self.provider, &hash);
                    let Some(req) = build::branch_request(
                        &self.locality,
                        &ctx.request,
                        target,
                        inbound(&ctx, &self.flows),
                        &branch_id,
                    ) else {
                        continue;
                    };
                    let reliable = target.destination.transport.is_stream();
                    match self.layer.send_request(req.clone(), reliable, now) {
                        Ok(cid) => {
                            self.client.insert(cid, (id, target.destination.clone()));
                            fork.add_branch(cid, req);
                        }
                        Err(e) => tracing::warn!(error = %e, "branch not created"),
                    }
                }
                let n = fork.branches();
                if n == 0 {
                    self.reply(
                        id,
                        &original,
                        Reply::new(StatusCode::SERVER_INTERNAL_ERROR),
                        now,
                    );
                    return self.event(&ctx, Outcome::Replied(500), module);
                }
                self.forks.insert(id, fork);
                self.event(&ctx, Outcome::Forwarded(n), module);
            }
            Verdict::Drop | Verdict::Continue => {}
        }
    }

    /// A fresh To tag for our own responses.
    fn tag(&self) -> String {
        let mut r = [0u8; 8];
        let _ = self.provider.rng.fill(&mut r);
        r.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn reply(&mut self, id: TransactionId, req: &Request, reply: Reply, now: Instant) {
        let mut r = Response::from_request(req, reply.status);
        if reply.status != StatusCode::TRYING {
            r.set_to_tag(&self.tag());
        }
        let h = r.headers_mut();
        for (name, value) in reply.headers {
            h.push(name, value);
        }
        h.push("Server", concat!("sotto/", env!("CARGO_PKG_VERSION")));
        if let Err(e) = self.layer.send_response(id, r, now) {
            tracing::warn!(error = %e, "response not sent");
        }
    }

    fn on_ack(&mut self, ack: Request, packet: &Packet, now: Instant, wall: SystemTime) {
        let hash = branch::loop_hash(self.provider, &ack);
        let mut ctx = self.context(ack, packet, wall);
        let (verdict, module) = self.pipeline.run(&mut ctx, now);
        let Verdict::Forward(targets) = verdict else {
            return self.event(&ctx, Outcome::Dropped, module);
        };
        let Some(target) = targets.first() else {
            return;
        };
        let b = branch::new_branch(self.provider, &hash);
        if let Some(req) = build::branch_request(
            &self.locality,
            &ctx.request,
            target,
            inbound(&ctx, &self.flows),
            &b,
        ) {
            self.transmits.push_back(Transmit {
                destination: target.destination.clone(),
                data: req.to_bytes(),
                transaction: None,
            });
            self.event(&ctx, Outcome::Forwarded(1), module);
        }
    }

    /// A 2xx retransmission after its client transaction ended: forwarded statelessly.
    fn forward_stray(&mut self, mut resp: Response) {
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

fn inbound<'a>(ctx: &RequestContext, tokens: &'a FlowTokens) -> build::Inbound<'a> {
    build::Inbound {
        transport: ctx.transport,
        source: ctx.source,
        flow: Flow::arrived_on(ctx.transport, ctx.connection, ctx.source),
        tokens,
    }
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
