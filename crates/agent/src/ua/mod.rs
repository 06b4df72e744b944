//! The sans-IO user agent: registration (RFC 3261 §10, RFC 5626 outbound), calls (§13–§15,
//! dialogs §12 from `sotto_sip::dialog`), digest authentication (§22, RFC 8760), SDP
//! offer/answer (RFC 3264) with SDES (RFC 4568), ghost-call protection and the per-call
//! security report. One file per concern: [`registration`], [`outgoing`] and [`incoming`]
//! calls, [`report`] (what a call's security and end are reported as), [`auth`] (digest
//! credentials), [`zrtp`] (the SAS and cache news), [`wire`] (how messages are written); every
//! encryption and trust decision is in [`crate::policy`].
//!
//! ## Driving contract
//!
//! Feed it with [`UserAgent::handle_incoming`] (bytes plus the [`Flow`] they came over),
//! [`UserAgent::handle_timeout`] and the commands ([`UserAgent::register`],
//! [`UserAgent::call`], [`UserAgent::answer`], [`UserAgent::hangup`],
//! [`UserAgent::unregister`]). After each, drain [`UserAgent::poll_transmit`] and
//! [`UserAgent::poll_event`] until `None`, then wake at [`UserAgent::poll_timeout`].
//! Nothing here reads a clock, opens a socket or uses a thread RNG.
//!
//! ## Ghost calls
//!
//! A request is accepted only when it arrives over the registration connection (the outbound
//! flow, RFC 5626) or from a configured trusted host ([`crate::policy::trust`]). Any other
//! request is answered 403 (never ringing) and reported as [`UaEvent::Rejected`].
//!
//! ## Direct calls
//!
//! A target that asks for TLS and names an IP address (`sips:bob@127.0.0.1:5072` or
//! `sip:bob@127.0.0.1:5072;transport=tls`) is called directly: the INVITE and the whole
//! dialog go to that address over TLS (the driver verifies the peer's certificate against
//! the account's CA), not through the outbound proxy. SDES is allowed because the only hop
//! is TLS. Our Contact in a direct dialog is the direct TLS listener
//! ([`UaConfig::tls_listen`]) when there is one.
//!
//! A `sip:` target naming an IP address and a port, without a TLS transport
//! (`sip:bob@127.0.0.1:5072`), is a direct UDP call ([`direct_udp_destination`]), sent from
//! the UDP socket [`UaConfig::udp_listen`]. SDES is never offered or accepted on such a
//! call, unless the account sets the insecure override `[danger] sdes_without_tls = true`
//! ([`UaConfig::sdes_without_tls`]): then the call goes ahead and its `call_security` report
//! says so loudly (`danger: ["sdes_without_tls"]`, the clear-text-keys note, not end to end).
//! Without the override, a direct UDP call with mandatory encryption is refused locally
//! ([`UaError::Policy`]): nothing is sent.

mod auth;
mod incoming;
mod outgoing;
mod registration;
mod report;
pub(crate) mod wire;
mod zrtp;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use sotto_crypto::CryptoProvider;
use sotto_crypto::dtls::DtlsCertificate;
use sotto_media::keyx::MediaProtection;
use sotto_media::zrtp::{ZidCache, ZrtpPreferences};
use sotto_sdp::{LocalCapabilities, NegotiatedMedia};
use sotto_sip::digest::DigestClient;
use sotto_sip::message::{Message, Response, StatusCode, Uri};
use sotto_sip::parse::{Limits, parse_message};
use sotto_sip::transaction::{
    ClientEvent, LayerConfig, LayerEvent, Received, ServerEvent, TransactionId, TransactionLayer,
};
use sotto_sip::transport::{ConnectionId, Destination, TransportKind};
use zeroize::Zeroizing;

use crate::call::{Call, CallId, CallState, Role};
use crate::config::{AccountConfig, ConfigError, Encryption, KeyExchange, host_ip};
use crate::security::{SecurityReport, TlsSummary};
use auth::unchallenged_auth;
use registration::Registration;
use wire::{contact_at, contact_value, with_warning};

pub use registration::RegState;

/// The most calls kept at once; beyond, new INVITEs get 486.
pub const MAX_CALLS: usize = 16;
/// How long an incoming call may ring unanswered before it is refused with 480.
pub const RING_TIMEOUT: Duration = Duration::from_secs(120);
/// How many times a request is retried with credentials before giving up.
const MAX_AUTH_TRIES: u8 = 2;

/// Runtime settings of a [`UserAgent`], derived from the account file.
#[derive(Debug, Clone)]
pub struct UaConfig {
    /// Address of record.
    pub identity: Uri,
    /// Digest user name.
    pub username: String,
    /// Digest password.
    pub password: Zeroizing<String>,
    /// RFC 5626 instance URN.
    pub instance: String,
    /// Registration lifetime to ask for.
    pub register_expires: Duration,
    /// The outbound proxy URI as configured (`sips:example.test`, `sips:192.0.2.1:5061`).
    pub proxy_uri: Uri,
    /// The outbound proxy (first hop of every request): its address once located (the
    /// driver resolves a host name by DNS, RFC 3263, and sets it with
    /// [`UserAgent::set_proxy`]).
    pub proxy: Destination,
    /// Media encryption policy.
    pub encryption: Encryption,
    /// Key exchanges, most preferred first (`[media] methods`).
    pub methods: Vec<KeyExchange>,
    /// The ZRTP algorithms we offer.
    pub zrtp_preferences: ZrtpPreferences,
    /// The ZRTP key-continuity cache (our ZID, the peers' retained secrets), loaded and
    /// stored by the driver; an agent without one gets a fresh in-memory cache.
    pub zrtp_cache: Option<Arc<Mutex<ZidCache>>>,
    /// The DTLS-SRTP certificate (ECDSA P-256), loaded or made by the driver and kept in the
    /// data directory; an agent with DTLS and none gets a fresh one in memory.
    pub dtls_certificate: Option<Arc<DtlsCertificate>>,
    /// Hosts allowed to send requests outside the registration flow.
    pub trusted_hosts: Vec<IpAddr>,
    /// `User-Agent` header value.
    pub user_agent: String,
    /// Our direct TLS listener, if any: the Contact of direct dialogs.
    pub tls_listen: Option<SocketAddr>,
    /// Our UDP socket for direct UDP calls (Via and Contact of their dialogs), if any.
    pub udp_listen: Option<SocketAddr>,
    /// The insecure override `danger.sdes_without_tls`: SDES allowed on a direct call whose
    /// hop is not TLS (loudly reported). Off by default.
    pub sdes_without_tls: bool,
    /// The TLS connection to the proxy presents a client certificate: an unchallenged
    /// registration (and call through the proxy) reports `tls-client-certificate` as its auth.
    pub client_certificate: bool,
}

impl UaConfig {
    /// From a checked account file.
    pub fn from_account(c: &AccountConfig) -> Result<Self, ConfigError> {
        let proxy_uri = c.proxy_uri()?;
        let transport = transport_of(&proxy_uri);
        let port = proxy_uri
            .port()
            .unwrap_or(sotto_sip::resolve::default_port(transport));
        // A host name is located by the driver (DNS) before the first request.
        let ip = host_ip(proxy_uri.host()).unwrap_or(IpAddr::from([0u8; 4]));
        let mut proxy = Destination::new(transport, SocketAddr::new(ip, port));
        proxy.server_name = c.proxy.server_name.clone().or_else(|| {
            host_ip(proxy_uri.host())
                .is_none()
                .then(|| proxy_uri.host().to_ascii_lowercase())
        });
        Ok(UaConfig {
            identity: c.identity()?,
            username: c.username(),
            password: Zeroizing::new(c.account.password.clone()),
            instance: c.account.instance.clone(),
            register_expires: Duration::from_secs(u64::from(c.account.register_expires_secs)),
            proxy_uri,
            proxy,
            encryption: c.media_policy()?.0,
            methods: c.media_policy()?.1,
            zrtp_preferences: c.zrtp_preferences()?,
            zrtp_cache: None,
            dtls_certificate: None,
            trusted_hosts: c.security.trusted_hosts.clone(),
            user_agent: format!("sotto-agent/{}", env!("CARGO_PKG_VERSION")),
            tls_listen: c.security.listen_tls,
            udp_listen: c.security.listen_udp.first().copied(),
            sdes_without_tls: c.danger.sdes_without_tls,
            client_certificate: c.client_cert_files().is_some(),
        })
    }
}

/// The transport a URI asks for (one rule for the whole stack, in the SIP core).
pub use sotto_sip::resolve::transport_of;

/// The destination of a direct call to `target`: TLS (`sips:` or `transport=tls`) to an IP
/// address (port 5061 when absent). `None` for any other target (it goes through the proxy).
pub fn direct_destination(target: &Uri) -> Option<Destination> {
    if transport_of(target) != TransportKind::Tls {
        return None;
    }
    let ip = host_ip(target.host())?;
    Some(Destination::new(
        TransportKind::Tls,
        SocketAddr::new(ip, target.port().unwrap_or(5061)),
    ))
}

/// The destination of a direct UDP call to `target`: a `sip:` URI without a TLS or TCP
/// transport whose host is an IP address and which names a port
/// (`sip:bob@127.0.0.1:5072`). `None` for any other target (a target without a port, like
/// `sip:bob@127.0.0.1`, goes through the proxy as before).
pub fn direct_udp_destination(target: &Uri) -> Option<Destination> {
    if !target.scheme_str().eq_ignore_ascii_case("sip")
        || transport_of(target) != TransportKind::Udp
    {
        return None;
    }
    let ip = host_ip(target.host())?;
    let port = target.port()?;
    Some(Destination::new(
        TransportKind::Udp,
        SocketAddr::new(ip, port),
    ))
}

/// How a message arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flow {
    /// Transport.
    pub transport: TransportKind,
    /// The peer's address.
    pub remote: SocketAddr,
    /// Our address.
    pub local: SocketAddr,
    /// The connection (TCP/TLS).
    pub connection: Option<ConnectionId>,
    /// What TLS negotiated (TLS only).
    pub tls: Option<TlsSummary>,
}

impl Flow {
    fn reply_destination(&self) -> Destination {
        Destination {
            transport: self.transport,
            remote: self.remote,
            connection: self.connection,
            server_name: None,
        }
    }
}

/// A message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// Where.
    pub destination: Destination,
    /// The wire bytes.
    pub bytes: Bytes,
    /// The client transaction it belongs to (for [`UserAgent::transport_failed`]).
    transaction: Option<TransactionId>,
}

/// What the agent reports.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum UaEvent {
    /// The registrar accepted our contact.
    Registered {
        /// The granted lifetime.
        expires: Duration,
        /// Our registered contact.
        contact: String,
        /// Authentication used (`digest-SHA-256`, `none`...).
        auth: String,
    },
    /// Registration failed (final error response or timeout).
    RegistrationFailed {
        /// The status (408 for a timeout).
        status: u16,
        /// Reason phrase or explanation.
        reason: String,
    },
    /// Our contact was removed (after [`UserAgent::unregister`]).
    Unregistered,
    /// A new incoming call.
    IncomingCall {
        /// The call.
        call: CallId,
        /// The caller (From).
        from: String,
        /// The callee (To).
        to: String,
    },
    /// A call changed state.
    CallState {
        /// The call.
        call: CallId,
        /// New state.
        state: CallState,
        /// Why (for `ended`: the status and Warning, `remote hangup`...).
        reason: Option<String>,
    },
    /// How a call is protected (once per established or refused call).
    CallSecurity {
        /// The call.
        call: CallId,
        /// The report.
        report: Box<SecurityReport>,
    },
    /// Media was negotiated: the driver starts the call's media with these parameters and
    /// its key exchange ([`UserAgent::take_key_exchange`]).
    MediaReady {
        /// The call.
        call: CallId,
        /// Negotiated stream (addresses, codecs, the peer's key attributes).
        media: Box<NegotiatedMedia>,
        /// The protection the key exchange promises (keys may still be on their way).
        protection: MediaProtection,
    },
    /// ZRTP computed the SAS, or its verification changed: show it to the user (the same
    /// string the peer shows), with the algorithms and the cache's verdict.
    ZrtpSas {
        /// The call.
        call: CallId,
        /// The SAS (`h441`, or two PGP words).
        sas: String,
        /// Whether it was verified (now or on an earlier call).
        verified: bool,
        /// Algorithms, cache status, the peer's ZID.
        details: Option<Box<sotto_media::keyx::ZrtpDetails>>,
    },
    /// Something the user must know about a call's security: a downgrade refused, a key
    /// exchange that failed.
    SecurityAlert {
        /// The call.
        call: CallId,
        /// What happened.
        reason: String,
    },
    /// A request was refused without reaching the user (ghost call protection).
    Rejected {
        /// Its source.
        source: SocketAddr,
        /// Its method.
        method: String,
        /// The status sent.
        status: u16,
        /// Why.
        reason: String,
    },
}

/// What a client transaction was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    Register,
    Invite(CallId),
    Bye(CallId),
    Cancel(CallId),
    Other,
}

/// The user agent (see the module documentation for the driving contract).
#[derive(Debug)]
pub struct UserAgent {
    provider: &'static CryptoProvider,
    config: UaConfig,
    layer: TransactionLayer,
    local: Option<SocketAddr>,
    proxy_connection: Option<ConnectionId>,
    proxy_tls: Option<TlsSummary>,
    digest: DigestClient,
    reg: Registration,
    calls: BTreeMap<CallId, Call>,
    owners: HashMap<TransactionId, Owner>,
    dests: HashMap<TransactionId, Destination>,
    out: VecDeque<Outgoing>,
    events: VecDeque<UaEvent>,
    next_call: u64,
    limits: Limits,
    transport_error: Option<String>,
}

/// Why a command could not be carried out.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UaError {
    /// No such call (or not in a state allowing it).
    #[error("no such call, or not in a state allowing this")]
    NoSuchCall,
    /// The local address of the flow is not known yet ([`UserAgent::set_flow`]).
    #[error("the connection to the proxy is not open yet")]
    NoFlow,
    /// The media policy forbids the call (e.g. mandatory encryption without a TLS hop).
    #[error("media security policy: {0}")]
    Policy(String),
    /// The random number generator failed.
    #[error("random number generator failed")]
    Rng,
    /// The transaction layer refused.
    #[error("transaction: {0}")]
    Transaction(#[from] sotto_sip::transaction::TransactionError),
    /// Too many calls.
    #[error("too many calls")]
    TooManyCalls,
}

impl UserAgent {
    /// A new agent; nothing is sent until [`UserAgent::register`] or [`UserAgent::call`].
    pub fn new(mut config: UaConfig, provider: &'static CryptoProvider) -> Result<Self, UaError> {
        let reg = Registration::new(provider, unchallenged_auth(&config, false))?;
        if config.zrtp_cache.is_none() {
            let mut zid = [0u8; 12];
            provider.rng.fill(&mut zid).map_err(|_| UaError::Rng)?;
            config.zrtp_cache = Some(Arc::new(Mutex::new(ZidCache::new(zid))));
        }
        if config.dtls_certificate.is_none() && config.methods.contains(&KeyExchange::Dtls) {
            let cert = provider
                .dtls
                .generate_certificate("sotto")
                .map_err(|e| UaError::Policy(format!("DTLS certificate: {e}")))?;
            config.dtls_certificate = Some(Arc::new(cert));
        }
        Ok(UserAgent {
            provider,
            config,
            layer: TransactionLayer::new(LayerConfig::default(), provider),
            local: None,
            proxy_connection: None,
            proxy_tls: None,
            digest: DigestClient::new(provider),
            reg,
            calls: BTreeMap::new(),
            owners: HashMap::new(),
            dests: HashMap::new(),
            out: VecDeque::new(),
            events: VecDeque::new(),
            next_call: 0,
            limits: Limits::default(),
            transport_error: None,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &UaConfig {
        &self.config
    }

    /// Tells the agent the local address of its connection to the proxy (for Via and
    /// Contact) and the connection's id (requests arriving on it are from the registrar).
    pub fn set_flow(&mut self, local: SocketAddr, connection: Option<ConnectionId>) {
        self.local = Some(local);
        self.proxy_connection = connection;
    }

    /// The outbound proxy's address, once located (a host name is resolved by the driver;
    /// after a failover, the next server of the domain).
    pub fn set_proxy(&mut self, proxy: Destination) {
        self.config.proxy = proxy;
    }

    /// The outbound proxy's address.
    pub fn proxy(&self) -> &Destination {
        &self.config.proxy
    }

    /// The state of a call, if it exists.
    pub fn call_state(&self, call: CallId) -> Option<CallState> {
        self.calls.get(&call).map(|c| c.state)
    }

    /// The calls that exist (not ended yet).
    pub fn call_ids(&self) -> Vec<CallId> {
        self.calls.keys().copied().collect()
    }

    /// Drops a call without signalling (its peer is unreachable); `call_state ended` follows.
    pub fn forget_call(&mut self, id: CallId) {
        self.end_call(id, "abandoned: no answer to the hangup".into());
    }

    /// Ends a call: BYE when connected, CANCEL while an outgoing call rings, 486 for an
    /// unanswered incoming call.
    pub fn hangup(&mut self, id: CallId, now: Instant) -> Result<(), UaError> {
        let call = self.calls.get_mut(&id).ok_or(UaError::NoSuchCall)?;
        match (call.role, call.state) {
            (_, CallState::Connected) => {
                call.state = CallState::Ending;
                self.send_bye(id, now)?;
            }
            (Role::Uac, CallState::Calling | CallState::Ringing) => self.cancel(id, now)?,
            (Role::Uas, CallState::Calling | CallState::Ringing) => {
                self.refuse_ringing(id, StatusCode::BUSY_HERE, now);
                self.end_call(id, "declined (486 Busy Here)".into());
            }
            _ => return Err(UaError::NoSuchCall),
        }
        self.pump(now);
        Ok(())
    }

    /// [`UserAgent::hangup`], with the reason the call's end will report (e.g. the media
    /// stopped arriving) instead of "local hangup".
    pub fn hangup_because(
        &mut self,
        id: CallId,
        reason: String,
        now: Instant,
    ) -> Result<(), UaError> {
        if let Some(c) = self.calls.get_mut(&id) {
            c.end_reason = Some(reason);
        }
        self.hangup(id, now)
    }

    /// Handles one received message.
    pub fn handle_incoming(&mut self, data: Bytes, flow: &Flow, now: Instant) {
        let Ok(msg) = parse_message(data, &self.limits) else {
            return;
        };
        let from_proxy = self.is_proxy_flow(flow);
        if from_proxy && flow.tls.is_some() {
            self.proxy_tls = flow.tls.clone();
        }
        if !from_proxy && flow.tls.is_some() {
            // A direct call's TLS parameters: from the connection its responses come over.
            for c in self.calls.values_mut() {
                if c.direct && c.tls.is_none() && c.dest.remote == flow.remote {
                    c.tls = flow.tls.clone();
                }
            }
        }
        match msg {
            Message::Response(r) => {
                if let Received::StrayResponse(r) = self.layer.handle_response(r, now) {
                    self.stray_response(&r);
                }
            }
            Message::Request(req) => {
                // A request inside one of our direct dialogs (BYE, re-INVITE) from that
                // dialog's peer: its Call-ID is our random one and it comes from the host we
                // called or that called us.
                let own_direct_dialog = !from_proxy
                    && req.to_tag().ok().flatten().is_some()
                    && req.call_id().is_ok_and(|cid| {
                        self.calls.values().any(|c| {
                            c.direct
                                && c.dialog.call_id == cid
                                && c.dest.remote.ip() == flow.remote.ip()
                        })
                    });
                match crate::policy::trust(
                    &self.config,
                    from_proxy,
                    flow.remote.ip(),
                    own_direct_dialog,
                ) {
                    Some(trust) => self.handle_request(req, flow, trust, now),
                    None => self.reject_ghost(&req, flow),
                }
            }
        }
        self.pump(now);
    }

    /// Tells the agent that `out` could not be sent (connection refused, TLS handshake or
    /// certificate verification failed): its transaction fails at once, as a 503 would
    /// (RFC 3261 §8.1.3.1), instead of waiting for the transaction timeout.
    pub fn transport_failed(&mut self, out: &Outgoing, reason: &str, now: Instant) {
        if let Some(tx) = out.transaction {
            self.transport_error = Some(format!("transport error: {reason}"));
            self.layer.handle_transport_error(tx, now);
            self.pump(now);
            self.transport_error = None;
        }
    }

    /// Fires the timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.layer.handle_timeout(now);
        self.retransmit_2xx(now);
        self.ring_timeouts(now);
        self.refresh_registration(now);
        self.pump(now);
    }

    /// The next message to send.
    pub fn poll_transmit(&mut self) -> Option<Outgoing> {
        self.out.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<UaEvent> {
        self.events.pop_front()
    }

    /// When [`UserAgent::handle_timeout`] is due next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.layer.poll_timeout(),
            self.reg.refresh_at(),
            self.calls.values().filter_map(|c| c.ring_deadline).min(),
            self.calls
                .values()
                .filter_map(|c| c.ok_retransmit.as_ref().map(|r| r.poll_timeout()))
                .min(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    // ---- shared by the concerns ----

    fn alloc_call(&mut self) -> CallId {
        self.next_call += 1;
        CallId(self.next_call)
    }

    /// Our Contact in a dialog: through the proxy flow, or (direct) at the TLS listener, or
    /// (direct over UDP) at our UDP socket.
    fn contact_for(&self, direct: bool, transport: TransportKind) -> Option<String> {
        if direct && transport == TransportKind::Udp {
            return self
                .config
                .udp_listen
                .map(|l| contact_at(&self.config, l, "udp"));
        }
        match (direct, self.config.tls_listen) {
            (true, Some(l)) => Some(contact_at(&self.config, l, "tls")),
            (true, None) => self.local.map(|l| contact_at(&self.config, l, "tls")),
            (false, _) => self.local.map(|l| contact_value(&self.config, l, false)),
        }
    }

    /// Our address in the Via of a request of `call`: the UDP socket of a direct UDP call,
    /// otherwise the proxy flow's.
    fn local_for(&self, call: &Call) -> Option<SocketAddr> {
        if call.direct && call.dest.transport == TransportKind::Udp {
            self.config.udp_listen
        } else {
            self.local
        }
    }

    fn proxy_destination(&self) -> Destination {
        let mut d = self.config.proxy.clone();
        d.connection = self.proxy_connection;
        d
    }

    fn is_proxy_flow(&self, flow: &Flow) -> bool {
        match (self.proxy_connection, flow.connection) {
            (Some(a), Some(b)) => a == b,
            _ => {
                flow.transport == self.config.proxy.transport
                    && flow.remote == self.config.proxy.remote
            }
        }
    }

    /// The TLS parameters of a call's first hop: its own (direct), else the proxy flow's.
    fn tls_of(&self, call: &Call) -> Option<TlsSummary> {
        if call.direct {
            call.tls.clone()
        } else {
            call.tls.clone().or_else(|| self.proxy_tls.clone())
        }
    }

    fn caps(&self, media: SocketAddr) -> Result<LocalCapabilities, UaError> {
        let mut caps = LocalCapabilities::new(&media.ip().to_string(), media.port());
        caps.username = self.config.identity.user().unwrap_or("-").to_owned();
        let mut r = [0u8; 4];
        self.provider.rng.fill(&mut r).map_err(|_| UaError::Rng)?;
        caps.session_id = (u32::from_be_bytes(r) & 0x7fff_ffff).to_string();
        Ok(caps)
    }

    /// Sends a request on a client transaction owned by `owner`, toward `dest`.
    fn send_request(
        &mut self,
        req: sotto_sip::message::Request,
        dest: Destination,
        owner: Owner,
        now: Instant,
    ) -> Result<TransactionId, UaError> {
        let tx = self
            .layer
            .send_request(req, dest.transport.is_stream(), now)?;
        self.owners.insert(tx, owner);
        self.dests.insert(tx, dest);
        Ok(tx)
    }

    /// Moves the layer's output to our queues and handles its events, until both are empty.
    fn pump(&mut self, now: Instant) {
        for _ in 0..1024 {
            let mut progressed = false;
            while let Some((id, t)) = self.layer.poll_transmit() {
                progressed = true;
                if let Some(d) = self.dests.get(&id) {
                    self.out.push_back(Outgoing {
                        destination: d.clone(),
                        bytes: t.bytes,
                        transaction: Some(id),
                    });
                }
            }
            while let Some(ev) = self.layer.poll_event() {
                progressed = true;
                self.layer_event(ev, now);
            }
            if !progressed {
                break;
            }
        }
    }

    fn layer_event(&mut self, ev: LayerEvent, now: Instant) {
        match ev {
            LayerEvent::Client(id, ev) => {
                let owner = self.owners.get(&id).copied().unwrap_or(Owner::Other);
                match ev {
                    ClientEvent::Response(r) => self.client_response(owner, r, now),
                    ClientEvent::Timeout => self.client_failed(owner, id, "408 no response"),
                    ClientEvent::TransportError => {
                        let reason = self
                            .transport_error
                            .take()
                            .unwrap_or_else(|| "transport error".into());
                        self.client_failed(owner, id, &format!("503 {reason}"))
                    }
                    ClientEvent::Terminated => {
                        self.owners.remove(&id);
                        self.dests.remove(&id);
                    }
                }
            }
            LayerEvent::Server(id, ev) => match ev {
                ServerEvent::Ack(ack) => self.ack_received(&ack),
                ServerEvent::Timeout | ServerEvent::TransportError => {
                    let calls: Vec<CallId> = self
                        .calls
                        .iter()
                        .filter(|(_, c)| c.invite_tx == Some(id) && c.role == Role::Uas)
                        .map(|(k, _)| *k)
                        .collect();
                    for c in calls {
                        self.end_call(c, "no ACK received".into());
                    }
                }
                ServerEvent::Terminated => {
                    self.dests.remove(&id);
                }
            },
        }
    }

    fn client_failed(&mut self, owner: Owner, id: TransactionId, why: &str) {
        self.owners.remove(&id);
        match owner {
            Owner::Register => self.registration_failed(why),
            Owner::Invite(c) => self.end_call(c, why.to_owned()),
            Owner::Bye(c) => {
                let why = self.hangup_reason(c);
                self.end_call(c, format!("{why} (BYE unanswered)"));
            }
            Owner::Cancel(_) | Owner::Other => {}
        }
    }

    fn client_response(&mut self, owner: Owner, r: Response, now: Instant) {
        match owner {
            Owner::Register => self.register_response(r, now),
            Owner::Invite(c) => self.invite_response(c, r, now),
            Owner::Bye(c) => {
                let why = self.hangup_reason(c);
                if r.status().is_success() {
                    self.end_call(c, why);
                } else if r.status().is_final() {
                    self.end_call(c, format!("{why} (BYE answered {})", with_warning(&r)));
                }
            }
            Owner::Cancel(_) | Owner::Other => {}
        }
    }

    /// Why we hung call `c` up: the reason given to [`UserAgent::hangup_because`], else a
    /// local hangup.
    fn hangup_reason(&self, c: CallId) -> String {
        self.calls
            .get(&c)
            .and_then(|call| call.end_reason.clone())
            .unwrap_or_else(|| "local hangup".into())
    }
}
