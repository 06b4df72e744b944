//! The async glue: feeds what a `sotto_net::Transport` receives to the sans-IO [`Proxy`],
//! sends what it asks for, arms its one timer, and feeds [`Metrics`]. No routing decision is
//! made here.
//!
//! ## Graceful shutdown
//! When the `shutdown` future resolves, the driver stops taking new work: requests that would
//! start something new (out of dialog, other than ACK and CANCEL) are dropped unanswered, so
//! clients retry elsewhere or later. Responses, ACK, CANCEL and in-dialog requests are still
//! handled until no forwarded request waits for its final response, or for at most
//! [`RunOptions::grace`]; then what is queued is sent (with [`LINGER`] for the connection
//! tasks to write it) and [`run_with`] returns.

use std::future::Future;
use std::time::{Duration, Instant, SystemTime};

use sotto_net::dns::Resolver;
use sotto_net::{Incoming, IncomingReceiver, Queued, Transport};
use sotto_sip::message::{Message, Method};
use sotto_sip::parse::{Limits, parse_message};
use sotto_sip::resolve::{Candidate, ResolveError};
use sotto_sip::transaction::TransactionId;
use tokio::sync::mpsc;

use crate::identity::{client_domains, client_identities};
use crate::metrics::Metrics;
use crate::proxy::{LookupRequest, Packet, Proxy, ProxyEvent};

pub mod admin;
pub mod lime_https;
pub mod metrics;
mod store_workers;
pub use store_workers::{Answers, GROUP_MAX, StoreWorkers};

/// How long, by default, a stopping server lets forwarded requests finish.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(2);
/// Least time between two samples of the proxy for [`Metrics::observe`] while received
/// messages are queued (a sample walks the proxy's tables, so it is not taken per message
/// under load). Otherwise the proxy is sampled after every step, before what it queued is
/// sent, so a peer that got an answer scrapes figures that include its request.
pub const OBSERVE_INTERVAL: Duration = Duration::from_millis(100);
/// After the last flush of a graceful stop: time the transport's connection tasks get to
/// write what was queued on them (a stream send only queues).
pub const LINGER: Duration = Duration::from_millis(100);

/// Most received messages handled in one step when [`RunOptions::batch`] is set (one group
/// commit of the store).
pub const BATCH_MAX: usize = 32;

/// Options of [`run_with`].
#[derive(Clone, Copy)]
pub struct RunOptions<'a> {
    /// Where to count events and sample the proxy, if anywhere.
    pub metrics: Option<&'a Metrics>,
    /// Longest wait for forwarded requests to finish after `shutdown`.
    pub grace: Duration,
    /// The proxy's binding store, for group commit: a received message and those already
    /// queued behind it (up to [`BATCH_MAX`]) are handled between
    /// [`BindingStore::batch_begin`] and [`BindingStore::batch_end`], and what they produced
    /// is sent only after `batch_end`, so nothing is acknowledged before it is committed.
    /// `None`: one message per step.
    pub batch: Option<&'a dyn sotto_store::BindingStore>,
    /// Locates next hops named by host names (RFC 3263); `None`: such requests fail with 503.
    pub resolver: Option<&'a Resolver>,
    /// Runs the proxy's store operations off the loop (turn on
    /// [`Proxy::defer_store_operations`] with it); `None`: the proxy runs them itself.
    pub stores: Option<&'a StoreWorkers>,
    /// Operator commands ([`admin`]), answered between two messages; `None`: none.
    pub admin: Option<&'a admin::Admin>,
}

impl std::fmt::Debug for RunOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunOptions")
            .field("metrics", &self.metrics)
            .field("grace", &self.grace)
            .field("batch", &self.batch.is_some())
            .field("resolver", &self.resolver.is_some())
            .field("stores", &self.stores.is_some())
            .field("admin", &self.admin.is_some())
            .finish()
    }
}

impl Default for RunOptions<'_> {
    fn default() -> Self {
        RunOptions {
            metrics: None,
            grace: DEFAULT_GRACE,
            batch: None,
            resolver: None,
            stores: None,
            admin: None,
        }
    }
}

/// Converts a received message for the proxy (the client certificate's identities included).
pub fn packet_of(m: &Incoming) -> Packet {
    let cert = m.tls.as_ref().and_then(|t| t.peer_certificates.first());
    Packet {
        data: m.data.clone(),
        source: m.source,
        local: m.local,
        transport: m.transport,
        connection: m.connection,
        client_identities: cert
            .map(|der| client_identities(der.as_ref()))
            .unwrap_or_default(),
        client_domains: cert
            .map(|der| client_domains(der.as_ref()))
            .unwrap_or_default(),
    }
}

/// Whether a message received while stopping may still be handled: responses, ACK, CANCEL
/// and in-dialog requests (work already under way). Unparsable bytes are not.
pub fn belongs_to_ongoing_work(data: &bytes::Bytes) -> bool {
    match parse_message(data.clone(), &Limits::default()) {
        Ok(Message::Response(_)) => true,
        Ok(Message::Request(r)) => {
            matches!(r.method(), Method::Ack | Method::Cancel)
                || r.to_tag().ok().flatten().is_some()
        }
        Err(_) => false,
    }
}

/// A DNS answer for the proxy: the lookup's id and its outcome.
type LookupAnswer = (u64, Result<Vec<Candidate>, ResolveError>);

/// Where the driver's background work reports back: sends whose new connection failed, and
/// DNS answers.
struct Callbacks {
    failed: mpsc::UnboundedSender<(TransactionId, String)>,
    lookups: mpsc::UnboundedSender<LookupAnswer>,
    stores: store_workers::Answers,
}

/// Runs one lookup in the background (DNS never blocks the proxy's loop).
fn spawn_lookup(resolver: Option<&Resolver>, l: LookupRequest, answers: &Callbacks) {
    let tx = answers.lookups.clone();
    let Some(resolver) = resolver.cloned() else {
        let domain = l.uri.host().to_owned();
        let _ = tx.send((
            l.id,
            Err(ResolveError::Unavailable {
                domain,
                reason: "no DNS resolver configured".into(),
            }),
        ));
        return;
    };
    tokio::spawn(async move {
        let result = resolver.resolve(&l.uri, l.policy).await;
        let _ = tx.send((l.id, result));
    });
}

/// Sends everything the proxy queued, starts the lookups it asked for, then hands its events
/// to `metrics` and `on_event`; sampling the proxy is left to the caller ([`Sampler`]).
/// Sends go first: one that fails at once is reported to the proxy, which then turns the
/// request's queued `forwarded` event into the failure it was.
///
/// A stream destination that names a connection (a flow, a registration's connection, the
/// connection a request came over) is sent on that connection only
/// ([`Transport::send_on`]): if it is gone, the transaction hears at once (430 Flow Failed or
/// the next branch), instead of the loop stalling on a connect to an address behind NAT.
/// Otherwise a needed new connection is opened in the background
/// ([`Transport::send_nowait`]) so that other messages keep flowing; if it fails, its
/// transaction id and the reason come back on `callbacks.failed`.
async fn flush(
    proxy: &mut Proxy,
    transport: &Transport,
    options: &RunOptions<'_>,
    on_event: &mut impl FnMut(&ProxyEvent),
    callbacks: &Callbacks,
) {
    loop {
        while let Some(t) = proxy.poll_transmit() {
            send(proxy, transport, t, callbacks).await;
        }
        while let Some(l) = proxy.poll_lookup() {
            spawn_lookup(options.resolver, l, callbacks);
        }
        if let Some(workers) = options.stores {
            while let Some(r) = proxy.poll_store() {
                workers.submit(r, &callbacks.stores);
            }
        }
        let mut any = false;
        while let Some(ev) = proxy.poll_event() {
            any = true;
            if ev.authenticated
                && let Some(c) = ev.connection
            {
                // Its connection has done a successful, authenticated request: it is no
                // longer held to the short deadline of unauthenticated connections.
                transport.mark_authenticated(c);
            }
            if let Some(m) = options.metrics {
                m.record(&ev);
            }
            on_event(&ev);
        }
        if !any {
            break;
        }
    }
}

async fn send(
    proxy: &mut Proxy,
    transport: &Transport,
    t: crate::proxy::Transmit,
    callbacks: &Callbacks,
) {
    let dest = &t.destination;
    let sent = if dest.transport.is_stream() && dest.connection.is_some() {
        transport.send_on(dest, t.data).await.map(|_| None)
    } else {
        match transport.send_nowait(dest, t.data).await {
            Ok(Queued::Sent(_)) => Ok(None),
            Ok(Queued::Connecting(c)) => Ok(Some(c)),
            Err(e) => Err(e),
        }
    };
    match sent {
        Ok(None) => {}
        Ok(Some(connecting)) => {
            if let Some(id) = t.transaction {
                let failed = callbacks.failed.clone();
                let remote = dest.remote;
                tokio::spawn(async move {
                    if let Err(e) = connecting.outcome().await {
                        tracing::debug!(error = %e, dest = %remote, "send failed");
                        let _ = failed.send((id, error_text(&e)));
                    }
                });
            }
        }
        Err(e) => {
            tracing::debug!(error = %e, dest = %dest.remote, "send failed");
            if let Some(id) = t.transaction {
                proxy.handle_send_error(id, &error_text(&e), Instant::now());
            }
        }
    }
}

/// Answers an operator command from the proxy's state.
fn answer_admin(proxy: &mut Proxy, request: admin::AdminRequest) {
    match request {
        admin::AdminRequest::Blocks(tx) => {
            let _ = tx.send(proxy.blocks(Instant::now()));
        }
        admin::AdminRequest::Lift(source, tx) => {
            let _ = tx.send(proxy.lift_blocks(source));
        }
    }
}

/// An error and its causes in one line, each cause once.
fn error_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let s = c.to_string();
        if !text.contains(&s) {
            text.push_str(": ");
            text.push_str(&s);
        }
        cause = c.source();
    }
    text
}

/// Rate-limits [`Metrics::observe`] to one sample per [`OBSERVE_INTERVAL`] while messages are
/// queued, and remembers that a sample is owed so that the gauges catch up after a burst.
struct Sampler<'a> {
    metrics: Option<&'a Metrics>,
    last: Option<tokio::time::Instant>,
    owed: bool,
}

impl<'a> Sampler<'a> {
    fn new(metrics: Option<&'a Metrics>) -> Self {
        Sampler {
            metrics,
            last: None,
            owed: false,
        }
    }

    /// After the proxy changed: samples now if nothing else is queued (`idle`) or the last
    /// sample is old enough, else owes one.
    fn changed(&mut self, proxy: &Proxy, now: tokio::time::Instant, idle: bool) {
        if self.metrics.is_none() {
            return;
        }
        match self.last {
            Some(last) if !idle && now < last + OBSERVE_INTERVAL => self.owed = true,
            _ => self.sample(proxy, now),
        }
    }

    /// When the owed sample is due, if one is owed.
    fn due(&self) -> Option<tokio::time::Instant> {
        match (self.owed, self.last) {
            (true, Some(last)) => Some(last + OBSERVE_INTERVAL),
            _ => None,
        }
    }

    fn sample(&mut self, proxy: &Proxy, now: tokio::time::Instant) {
        if let Some(m) = self.metrics {
            m.observe(proxy);
        }
        self.last = Some(now);
        self.owed = false;
    }
}

/// [`run_with`] with the default options (no metrics, [`DEFAULT_GRACE`]).
pub async fn run(
    proxy: &mut Proxy,
    transport: &Transport,
    incoming: &mut IncomingReceiver,
    shutdown: impl Future<Output = ()>,
    on_event: impl FnMut(&ProxyEvent),
) {
    run_with(
        proxy,
        transport,
        incoming,
        shutdown,
        RunOptions::default(),
        on_event,
    )
    .await;
}

/// Runs the proxy until `shutdown` resolves (then stops gracefully, see the module doc) or
/// the transport stops; `on_event` sees every request's outcome. Messages already queued are
/// sent before returning.
pub async fn run_with(
    proxy: &mut Proxy,
    transport: &Transport,
    incoming: &mut IncomingReceiver,
    shutdown: impl Future<Output = ()>,
    options: RunOptions<'_>,
    mut on_event: impl FnMut(&ProxyEvent),
) {
    let metrics = options.metrics;
    let mut sampler = Sampler::new(metrics);
    tokio::pin!(shutdown);
    let mut stopping: Option<tokio::time::Instant> = None;
    // Transactions whose message waited on a connection that could not be opened, and DNS
    // answers.
    let (failed_tx, mut failed) = mpsc::unbounded_channel::<(TransactionId, String)>();
    let (lookups_tx, mut lookups) = mpsc::unbounded_channel::<LookupAnswer>();
    let (stores_tx, mut store_answers) = mpsc::unbounded_channel();
    let callbacks = Callbacks {
        failed: failed_tx,
        lookups: lookups_tx,
        stores: stores_tx,
    };
    // The loop owns the proxy, so it answers operator commands itself.
    let mut admin = match options.admin {
        Some(a) => Some(a.requests.lock().await),
        None => None,
    };
    loop {
        if let Some(deadline) = stopping
            && (proxy.pending_forks() == 0 || tokio::time::Instant::now() >= deadline)
        {
            break;
        }
        let wake = proxy.poll_timeout();
        let timer = async move {
            match wake {
                Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
                None => std::future::pending::<()>().await,
            }
        };
        let sample_at = sampler.due();
        let sample_due = async move {
            match sample_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending::<()>().await,
            }
        };
        let grace_over = async move {
            match stopping {
                Some(deadline) => tokio::time::sleep_until(deadline).await,
                None => std::future::pending::<()>().await,
            }
        };
        let admin_request = async {
            match admin.as_mut() {
                Some(rx) => rx.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            Some(request) = admin_request => {
                answer_admin(proxy, request);
                continue;
            }
            () = &mut shutdown, if stopping.is_none() => {
                tracing::info!(
                    pending = proxy.pending_forks(),
                    grace_ms = options.grace.as_millis() as u64,
                    "stopping: no new requests; letting forwarded ones finish"
                );
                stopping = Some(tokio::time::Instant::now() + options.grace);
            }
            m = incoming.recv() => {
                let Some(m) = m else { break };
                // Group commit (RunOptions::batch): this message and those queued behind it
                // in one store batch; the flush below sends after the commit.
                if let Some(store) = options.batch
                    && let Err(e) = store.batch_begin()
                {
                    tracing::error!(error = %e, "store batch could not begin");
                }
                let limit = if options.batch.is_some() { BATCH_MAX } else { 1 };
                let mut next = Some(m);
                let mut taken = 0;
                while let Some(m) = next.take() {
                    taken += 1;
                    if stopping.is_some() && !belongs_to_ongoing_work(&m.data) {
                        tracing::debug!(source = %m.source, "stopping: new request dropped");
                    } else {
                        // The proxy sheds new work on these figures (config `overload`): how
                        // many wait behind this message, and how long it waited itself.
                        let now = Instant::now();
                        let waited = now.saturating_duration_since(m.received);
                        proxy.set_backlog(incoming.len(), waited, now);
                        proxy.handle_packet(packet_of(&m), now, SystemTime::now());
                    }
                    if taken < limit {
                        next = incoming.try_recv();
                    }
                }
                if let Some(store) = options.batch
                    && let Err(e) = store.batch_end()
                {
                    tracing::error!(error = %e, "store batch could not commit");
                }
            }
            () = timer => proxy.handle_timeout(Instant::now()),
            Some((id, reason)) = failed.recv() => {
                proxy.handle_send_error(id, &reason, Instant::now());
            }
            Some((id, result)) = lookups.recv() => proxy.handle_lookup(id, result, Instant::now()),
            Some((ticket, answer)) = store_answers.recv() => {
                proxy.handle_store(ticket, answer, Instant::now());
                // Answers that came together are handled in one step.
                while let Ok((ticket, answer)) = store_answers.try_recv() {
                    proxy.handle_store(ticket, answer, Instant::now());
                }
            }
            () = grace_over => {}
            () = sample_due => {
                sampler.sample(proxy, tokio::time::Instant::now());
                continue;
            }
        }
        sampler.changed(proxy, tokio::time::Instant::now(), incoming.is_empty());
        flush(proxy, transport, &options, &mut on_event, &callbacks).await;
    }
    flush(proxy, transport, &options, &mut on_event, &callbacks).await;
    sampler.sample(proxy, tokio::time::Instant::now());
    if stopping.is_some() {
        tokio::time::sleep(LINGER).await;
    }
}
