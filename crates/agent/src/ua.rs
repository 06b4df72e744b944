//! The sans-IO user agent: registration (RFC 3261 §10, RFC 5626 outbound), calls (§13–§15,
//! dialogs §12), digest authentication (§22, RFC 8760), SDP offer/answer (RFC 3264) with SDES
//! (RFC 4568), ghost-call protection and the per-call security report.
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
//! flow, RFC 5626) or from a configured trusted host. Any other request is answered 403
//! (never ringing) and reported as [`UaEvent::Rejected`].
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

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::Bytes;
use sotto_crypto::CryptoProvider;
use sotto_sdp::{
    EncryptionMode, EncryptionPolicy, LocalCapabilities, NegotiatedMedia, Refusal, Session,
};
use sotto_sip::digest::{ClientSecret, DigestClient, parse_challenges, select_challenge};
use sotto_sip::message::{Message, Method, NameAddr, Request, Response, StatusCode, Uri, Via};
use sotto_sip::parse::{Limits, parse_message};
use sotto_sip::transaction::{
    ClientEvent, LayerConfig, LayerEvent, Received, ServerEvent, TimerConfig, TransactionId,
    TransactionLayer,
};
use sotto_sip::transport::{ConnectionId, Destination, TransportKind};
use zeroize::Zeroizing;

use crate::call::{Call, CallId, CallState, Role};
use crate::config::{AccountConfig, ConfigError, Encryption, host_ip};
use crate::security::{SecurityReport, TlsSummary};

/// What we allow in dialogs and say in `Allow`.
const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS";
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

/// The auth label of requests the proxy accepted on our TLS client certificate.
const TLS_CLIENT_CERT_AUTH: &str = "tls-client-certificate";

impl UaConfig {
    /// From a checked account file.
    pub fn from_account(c: &AccountConfig) -> Result<Self, ConfigError> {
        let proxy_uri = c.proxy_uri()?;
        let transport = transport_of(&proxy_uri);
        let port = proxy_uri.port().unwrap_or(match transport {
            TransportKind::Tls => 5061,
            _ => 5060,
        });
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
            encryption: c.media.encryption,
            trusted_hosts: c.security.trusted_hosts.clone(),
            user_agent: format!("sotto-agent/{}", env!("CARGO_PKG_VERSION")),
            tls_listen: c.security.listen_tls,
            udp_listen: c.security.listen_udp.first().copied(),
            sdes_without_tls: c.danger.sdes_without_tls,
            client_certificate: c.client_cert_files().is_some(),
        })
    }
}

/// The transport a URI asks for: `sips:` or `transport=tls` is TLS, `transport=tcp` TCP,
/// otherwise UDP.
pub fn transport_of(uri: &Uri) -> TransportKind {
    sotto_sip::resolve::transport_of(uri)
}

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
        report: SecurityReport,
    },
    /// Media was negotiated: the driver starts RTP with these parameters.
    MediaReady {
        /// The call.
        call: CallId,
        /// Negotiated stream (addresses, codecs, SDES keys).
        media: Box<NegotiatedMedia>,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    Register,
    Invite(CallId),
    Bye(CallId),
    Cancel(CallId),
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RegState {
    Idle,
    Registering,
    Registered,
    Unregistering,
}

#[derive(Debug)]
struct Registration {
    state: RegState,
    call_id: String,
    from_tag: String,
    cseq: u32,
    tries: u8,
    refresh_at: Option<Instant>,
    auth: String,
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
    pub fn new(config: UaConfig, provider: &'static CryptoProvider) -> Result<Self, UaError> {
        let call_id = random_token(provider, 16)?;
        let from_tag = random_token(provider, 8)?;
        let reg_auth = unchallenged_auth(&config, false).to_owned();
        Ok(UserAgent {
            provider,
            config,
            layer: TransactionLayer::new(LayerConfig::default(), provider),
            local: None,
            proxy_connection: None,
            proxy_tls: None,
            digest: DigestClient::new(provider),
            reg: Registration {
                state: RegState::Idle,
                call_id,
                from_tag,
                cseq: 0,
                tries: 0,
                refresh_at: None,
                auth: reg_auth,
            },
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

    /// Whether the registration is current.
    pub fn is_registered(&self) -> bool {
        self.reg.state == RegState::Registered
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

    /// Sends a REGISTER (RFC 3261 §10.2, with `+sip.instance`/`reg-id` per RFC 5626 §4.2).
    pub fn register(&mut self, now: Instant) -> Result<(), UaError> {
        self.reg.tries = 0;
        self.reg.state = RegState::Registering;
        self.send_register(now, self.config.register_expires, None)
    }

    /// Removes our contact (REGISTER with `expires=0`). [`UaEvent::Unregistered`] follows.
    pub fn unregister(&mut self, now: Instant) -> Result<(), UaError> {
        self.reg.tries = 0;
        self.reg.refresh_at = None;
        self.reg.state = RegState::Unregistering;
        self.send_register(now, Duration::ZERO, None)
    }

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
        let first_hop_tls = dest.transport == TransportKind::Tls;
        // The insecure override: SDES on a direct call without TLS (reported loudly).
        let danger = direct && !first_hop_tls && self.config.sdes_without_tls;
        let mode = match (self.config.encryption, first_hop_tls || danger) {
            (Encryption::Mandatory, true) => EncryptionMode::Mandatory,
            (Encryption::Mandatory, false) if direct => {
                return Err(UaError::Policy(format!(
                    "media encryption is mandatory and SDES needs TLS: this direct call to {} \
                     goes over {}, where the SDES keys would travel in clear text; refused \
                     (the insecure override [danger] sdes_without_tls = true allows it)",
                    dest.remote,
                    dest.transport.as_str()
                )));
            }
            (Encryption::Mandatory, false) => {
                return Err(UaError::Policy(
                    "media encryption is mandatory and SDES needs TLS on the first hop".into(),
                ));
            }
            (Encryption::Optional, true) => EncryptionMode::Optional,
            (Encryption::Optional, false) | (Encryption::None, _) => EncryptionMode::None,
        };
        let local = if direct && dest.transport == TransportKind::Udp {
            self.config.udp_listen.ok_or_else(|| {
                UaError::Policy("a direct UDP call needs a UDP socket (udp_listen)".into())
            })?
        } else {
            local
        };
        let transport = if direct {
            dest.transport.as_str()
        } else {
            self.config.proxy.transport.as_str()
        };
        let caps = self.caps(media)?;
        let policy = EncryptionPolicy {
            mode,
            best_effort_sdes: false,
        };
        let offer =
            sotto_sdp::create_offer(&caps, &policy, self.provider.rng).map_err(|_| UaError::Rng)?;
        let body = offer.to_sdp().map_err(|e| UaError::Policy(e.to_string()))?;
        let tag = random_token(self.provider, 8)?;
        let call_id = random_token(self.provider, 16)?;
        let id = self.alloc_call();
        let local_party = format!("<{}>;tag={tag}", self.config.identity);
        let mut call = Call {
            role: Role::Uac,
            state: CallState::Calling,
            call_id,
            local_party,
            remote_party: format!("<{target}>"),
            remote_tag: None,
            target: target.clone(),
            local_cseq: 1,
            remote_target: None,
            route_set: Vec::new(),
            dest,
            direct,
            invite_tx: None,
            invite: None,
            offer: Some(offer),
            local_sdp: Some(Bytes::from(body)),
            negotiated: None,
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
        let reliable = call.dest.transport.is_stream();
        let tx = self.layer.send_request(req.clone(), reliable, now)?;
        call.invite = Some(req);
        call.invite_tx = Some(tx);
        self.owners.insert(tx, Owner::Invite(id));
        self.dests.insert(tx, call.dest.clone());
        self.calls.insert(id, call);
        self.pump(now);
        Ok(id)
    }

    /// Answers a ringing incoming call with our RTP at `media` (200 OK with the SDP answer).
    pub fn answer(&mut self, id: CallId, media: SocketAddr, now: Instant) -> Result<(), UaError> {
        let caps = self.caps(media)?;
        let policy = self.answer_policy();
        let contact = self
            .calls
            .get(&id)
            .and_then(|c| self.contact_for(c.direct, c.dest.transport));
        let call = self.calls.get_mut(&id).ok_or(UaError::NoSuchCall)?;
        if call.role != Role::Uas || call.state != CallState::Ringing {
            return Err(UaError::NoSuchCall);
        }
        let (Some(tx), Some(invite), Some(offer)) = (call.invite_tx, &call.invite, &call.offer)
        else {
            return Err(UaError::NoSuchCall);
        };
        let (sdp, neg) = match sotto_sdp::answer(offer, &caps, &policy, self.provider.rng) {
            Ok(x) => x,
            Err(refusal) => {
                let resp = refusal_response(invite, &refusal, &call.local_party);
                self.layer.send_response(tx, resp, now)?;
                let reason = refusal_reason(&refusal);
                self.end_call(id, reason);
                self.pump(now);
                return Ok(());
            }
        };
        let body = Bytes::from(sdp.to_sdp().map_err(|e| UaError::Policy(e.to_string()))?);
        let mut resp = Response::from_request(invite, StatusCode::OK);
        set_to(&mut resp, &call.local_party);
        copy_record_route(invite, &mut resp);
        let h = resp.headers_mut();
        if let Some(c) = contact {
            h.push("Contact", c);
        }
        h.push("Allow", ALLOW);
        h.push("Supported", "outbound");
        h.push("Content-Type", "application/sdp");
        resp.set_body(body.clone());
        call.local_sdp = Some(body);
        call.negotiated = Some(neg.clone());
        call.state = CallState::Connected;
        call.ring_deadline = None;
        if !call.dest.transport.is_stream() {
            let t1 = TimerConfig::default().t1;
            call.ok_retransmit = Some((resp.to_bytes(), now + t1, t1, now + t1 * 64));
        }
        let report = SecurityReport::new(
            call.transport,
            call.tls.as_ref(),
            &call.auth,
            neg.srtp.as_ref().map(|k| k.suite.name()),
        )
        .direct(call.direct)
        .sdes_without_tls();
        self.layer.send_response(tx, resp, now)?;
        self.announce_connected(id, report, neg);
        self.pump(now);
        Ok(())
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
            (Role::Uac, CallState::Calling | CallState::Ringing) => {
                if call.got_provisional {
                    call.state = CallState::Ending;
                    self.send_cancel(id, now)?;
                } else {
                    call.cancel_pending = true;
                }
            }
            (Role::Uas, CallState::Calling | CallState::Ringing) => {
                if let (Some(tx), Some(inv)) = (call.invite_tx, &call.invite) {
                    let mut resp = Response::from_request(inv, StatusCode::BUSY_HERE);
                    set_to(&mut resp, &call.local_party);
                    self.layer.send_response(tx, resp, now)?;
                }
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
                let trusted = self.config.trusted_hosts.contains(&flow.remote.ip());
                // A request inside one of our direct dialogs (BYE, re-INVITE) from that
                // dialog's peer: its Call-ID is our random one and it comes from the host we
                // called or that called us.
                let own_direct_dialog = !from_proxy
                    && req.to_tag().ok().flatten().is_some()
                    && req.call_id().is_ok_and(|cid| {
                        self.calls.values().any(|c| {
                            c.direct && c.call_id == cid && c.dest.remote.ip() == flow.remote.ip()
                        })
                    });
                if !from_proxy && !trusted && !own_direct_dialog {
                    self.reject_ghost(&req, flow);
                } else {
                    let how = if from_proxy {
                        "registration-flow"
                    } else if trusted {
                        "trusted-host"
                    } else {
                        "direct-dialog"
                    };
                    self.handle_request(req, flow, how, now);
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
        let unanswered: Vec<CallId> = self
            .calls
            .iter()
            .filter(|(_, c)| c.ring_deadline.is_some_and(|at| at <= now))
            .map(|(id, _)| *id)
            .collect();
        for id in unanswered {
            if let Some(c) = self.calls.get(&id)
                && let (Some(tx), Some(inv)) = (c.invite_tx, &c.invite)
            {
                let mut resp = Response::from_request(inv, StatusCode::TEMPORARILY_UNAVAILABLE);
                set_to(&mut resp, &c.local_party);
                let _ = self.layer.send_response(tx, resp, now);
            }
            self.end_call(id, "not answered (480 Temporarily Unavailable)".into());
        }
        if let Some(at) = self.reg.refresh_at
            && at <= now
        {
            self.reg.refresh_at = None;
            self.reg.tries = 0;
            self.reg.state = RegState::Registering;
            let _ = self.send_register(now, self.config.register_expires, None);
        }
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
            self.reg.refresh_at,
            self.calls.values().filter_map(|c| c.ring_deadline).min(),
            self.calls
                .values()
                .filter_map(|c| c.ok_retransmit.as_ref().map(|r| r.1.min(r.3)))
                .min(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    // ---- internals ----

    fn alloc_call(&mut self) -> CallId {
        self.next_call += 1;
        CallId(self.next_call)
    }

    fn reliable(&self) -> bool {
        self.config.proxy.transport.is_stream()
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

    fn answer_policy(&self) -> EncryptionPolicy {
        EncryptionPolicy {
            mode: match self.config.encryption {
                Encryption::Mandatory => EncryptionMode::Mandatory,
                Encryption::Optional => EncryptionMode::Optional,
                Encryption::None => EncryptionMode::None,
            },
            best_effort_sdes: false,
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

    /// Builds the common part of a request outside a dialog.
    fn new_request(
        &self,
        method: Method,
        uri: Uri,
        (local, transport): (SocketAddr, TransportKind),
        branch: &str,
    ) -> Request {
        let mut req = Request::new(method, uri);
        let via = Via::new(
            transport.via_token(),
            &host_of(local),
            Some(local.port()),
            branch,
        );
        let h = req.headers_mut();
        h.push("Via", via.to_string());
        h.push("Max-Forwards", "70");
        req
    }

    fn send_register(
        &mut self,
        now: Instant,
        expires: Duration,
        auth: Option<(&'static str, String)>,
    ) -> Result<(), UaError> {
        let local = self.local.ok_or(UaError::NoFlow)?;
        let registrar = registrar_uri(&self.config.identity);
        let branch = branch(self.provider)?;
        self.reg.cseq += 1;
        let mut req = self.new_request(
            Method::Register,
            registrar,
            (local, self.config.proxy.transport),
            &branch,
        );
        let aor = format!("<{}>", self.config.identity);
        let h = req.headers_mut();
        h.push("From", format!("{aor};tag={}", self.reg.from_tag));
        h.push("To", aor);
        h.push("Call-ID", self.reg.call_id.clone());
        h.push("CSeq", format!("{} REGISTER", self.reg.cseq));
        h.push("Contact", contact_value(&self.config, local, true));
        h.push("Expires", expires.as_secs().to_string());
        h.push("Supported", "outbound, path");
        h.push("Allow", ALLOW);
        h.push("User-Agent", self.config.user_agent.clone());
        if let Some((name, value)) = auth {
            h.push(name, value);
        }
        let tx = self.layer.send_request(req, self.reliable(), now)?;
        self.owners.insert(tx, Owner::Register);
        self.dests.insert(tx, self.proxy_destination());
        self.pump(now);
        Ok(())
    }

    fn build_invite(
        &self,
        call: &Call,
        local: SocketAddr,
        auth: Option<(&'static str, String)>,
    ) -> Result<Request, UaError> {
        let branch = branch(self.provider)?;
        let mut req = self.new_request(
            Method::Invite,
            call.target.clone(),
            (local, call.dest.transport),
            &branch,
        );
        let contact = self
            .contact_for(call.direct, call.dest.transport)
            .unwrap_or_else(|| contact_value(&self.config, local, false));
        let h = req.headers_mut();
        h.push("From", call.local_party.clone());
        h.push("To", call.remote_party.clone());
        h.push("Call-ID", call.call_id.clone());
        h.push("CSeq", format!("{} INVITE", call.local_cseq));
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

    /// An in-dialog request (BYE, ACK) on `call` (RFC 3261 §12.2.1.1).
    fn dialog_request(&self, call: &Call, method: Method, cseq: u32) -> Result<Request, UaError> {
        let local = self.local_for(call).ok_or(UaError::NoFlow)?;
        let target = call
            .remote_target
            .clone()
            .unwrap_or_else(|| call.target.clone());
        let branch = branch(self.provider)?;
        let mut req = self.new_request(
            method.clone(),
            target,
            (local, call.dest.transport),
            &branch,
        );
        let remote = match &call.remote_tag {
            Some(t) if !call.remote_party.contains(";tag=") => {
                format!("{};tag={t}", call.remote_party)
            }
            _ => call.remote_party.clone(),
        };
        let h = req.headers_mut();
        h.push("From", call.local_party.clone());
        h.push("To", remote);
        h.push("Call-ID", call.call_id.clone());
        h.push("CSeq", format!("{cseq} {}", method.as_str()));
        for r in &call.route_set {
            h.push("Route", r.clone());
        }
        h.push("User-Agent", self.config.user_agent.clone());
        Ok(req)
    }

    fn send_bye(&mut self, id: CallId, now: Instant) -> Result<(), UaError> {
        let call = self.calls.get_mut(&id).ok_or(UaError::NoSuchCall)?;
        call.local_cseq += 1;
        let cseq = call.local_cseq;
        let dest = call.dest.clone();
        let call = self.calls.get(&id).ok_or(UaError::NoSuchCall)?;
        let req = self.dialog_request(call, Method::Bye, cseq)?;
        let reliable = dest.transport.is_stream();
        let tx = self.layer.send_request(req, reliable, now)?;
        self.owners.insert(tx, Owner::Bye(id));
        self.dests.insert(tx, dest);
        Ok(())
    }

    fn send_cancel(&mut self, id: CallId, now: Instant) -> Result<(), UaError> {
        let call = self.calls.get(&id).ok_or(UaError::NoSuchCall)?;
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
        let tx = self
            .layer
            .send_request(cancel, dest.transport.is_stream(), now)?;
        self.owners.insert(tx, Owner::Cancel(id));
        self.dests.insert(tx, dest);
        Ok(())
    }

    fn end_call(&mut self, id: CallId, reason: String) {
        if let Some(c) = self.calls.get_mut(&id)
            && c.state != CallState::Ended
        {
            c.state = CallState::Ended;
            if c.negotiated.is_none() {
                // Every call gets its report, including one that never carried media.
                let tls = if c.direct {
                    c.tls.as_ref()
                } else {
                    c.tls.as_ref().or(self.proxy_tls.as_ref())
                };
                let report = SecurityReport::not_established(c.transport, tls, &c.auth, &reason)
                    .direct(c.direct);
                self.events
                    .push_back(UaEvent::CallSecurity { call: id, report });
            }
            self.events.push_back(UaEvent::CallState {
                call: id,
                state: CallState::Ended,
                reason: Some(reason),
            });
        }
        self.calls.remove(&id);
    }

    /// Moves the layer's output to our queues and handles its events, until both are empty.
    /// A call became connected (either side): its state, its security report, then its
    /// media, in that order.
    fn announce_connected(&mut self, id: CallId, report: SecurityReport, neg: NegotiatedMedia) {
        self.events.push_back(UaEvent::CallState {
            call: id,
            state: CallState::Connected,
            reason: None,
        });
        self.events
            .push_back(UaEvent::CallSecurity { call: id, report });
        self.events.push_back(UaEvent::MediaReady {
            call: id,
            media: Box::new(neg),
        });
    }

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
                    ClientEvent::Response(r) => self.client_response(owner, id, r, now),
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
            Owner::Register => {
                self.reg.state = RegState::Idle;
                self.events.push_back(UaEvent::RegistrationFailed {
                    status: 408,
                    reason: format!("registrar: {why}"),
                });
            }
            Owner::Invite(c) => self.end_call(c, why.to_owned()),
            Owner::Bye(c) => {
                let why = self.hangup_reason(c);
                self.end_call(c, format!("{why} (BYE unanswered)"));
            }
            Owner::Cancel(_) | Owner::Other => {}
        }
    }

    fn client_response(&mut self, owner: Owner, _id: TransactionId, r: Response, now: Instant) {
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

    fn credentials(
        &mut self,
        r: &Response,
        method: &str,
        uri: &str,
    ) -> Option<(&'static str, String, String)> {
        let (challenge_header, answer_header) = if r.status() == StatusCode::UNAUTHORIZED {
            ("WWW-Authenticate", "Authorization")
        } else {
            ("Proxy-Authenticate", "Proxy-Authorization")
        };
        let mut challenges = Vec::new();
        for v in r.headers().get_all(challenge_header) {
            if let Ok(mut c) = parse_challenges(v) {
                challenges.append(&mut c);
            }
        }
        let ch = select_challenge(&challenges)?;
        if self.config.password.is_empty() {
            return None;
        }
        let creds = self
            .digest
            .respond(
                ch,
                method,
                uri,
                &self.config.username,
                ClientSecret::Password(&self.config.password),
            )
            .ok()?;
        Some((
            answer_header,
            creds.to_string(),
            format!("digest-{}", creds.algorithm.name()),
        ))
    }

    fn register_response(&mut self, r: Response, now: Instant) {
        let status = r.status();
        if status.is_provisional() {
            return;
        }
        let unregistering = self.reg.state == RegState::Unregistering;
        if (status == StatusCode::UNAUTHORIZED
            || status == StatusCode::PROXY_AUTHENTICATION_REQUIRED)
            && self.reg.tries < MAX_AUTH_TRIES
        {
            self.reg.tries += 1;
            let uri = registrar_uri(&self.config.identity).to_string();
            if let Some((name, value, alg)) = self.credentials(&r, "REGISTER", &uri) {
                self.reg.auth = alg;
                let expires = if unregistering {
                    Duration::ZERO
                } else {
                    self.config.register_expires
                };
                let _ = self.send_register(now, expires, Some((name, value)));
                return;
            }
        }
        if status.is_success() {
            if unregistering {
                self.reg.state = RegState::Idle;
                self.events.push_back(UaEvent::Unregistered);
                return;
            }
            let granted = self.granted_expires(&r);
            self.reg.state = RegState::Registered;
            self.reg.refresh_at = Some(now + granted / 2);
            let contact = self
                .local
                .map(|l| contact_value(&self.config, l, true))
                .unwrap_or_default();
            self.events.push_back(UaEvent::Registered {
                expires: granted,
                contact,
                auth: self.reg.auth.clone(),
            });
            return;
        }
        self.reg.state = RegState::Idle;
        let mut reason = with_warning(&r);
        let challenged = status == StatusCode::UNAUTHORIZED
            || status == StatusCode::PROXY_AUTHENTICATION_REQUIRED;
        if challenged && self.config.password.is_empty() {
            reason.push_str(if self.config.client_certificate {
                " (the server did not accept the TLS client certificate for this identity and \
                 the account has no password)"
            } else {
                " (the account has no password)"
            });
        } else if challenged {
            reason.push_str(&format!(
                " (the server refused the credentials of user {:?}: check the password and \
                 the user name in the account file, and that the server has this user in \
                 the realm it challenges with)",
                self.config.username
            ));
        }
        self.events.push_back(UaEvent::RegistrationFailed {
            status: status.as_u16(),
            reason,
        });
    }

    /// The lifetime the registrar granted our contact (its `expires` parameter, else the
    /// Expires header, else what we asked), at least one second.
    fn granted_expires(&self, r: &Response) -> Duration {
        let ours = self.config.instance.as_str();
        let from_contact = r.contacts().ok().and_then(|cs| {
            cs.iter().find_map(|c| {
                let a = c.addr()?;
                let inst = a.sip_instance()?;
                (inst.trim_matches(|ch| ch == '<' || ch == '>') == ours)
                    .then(|| a.expires())
                    .flatten()
            })
        });
        let secs = from_contact
            .or_else(|| r.headers().expires().ok().flatten())
            .map(u64::from)
            .unwrap_or(self.config.register_expires.as_secs());
        Duration::from_secs(secs.max(1))
    }

    fn invite_response(&mut self, id: CallId, r: Response, now: Instant) {
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
                call.state = CallState::Ending;
                let _ = self.send_cancel(id, now);
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
            call.local_cseq += 1;
            if let Ok(req) = self.build_invite(&call, local, Some((name, value)))
                && let Ok(tx) =
                    self.layer
                        .send_request(req.clone(), call.dest.transport.is_stream(), now)
            {
                self.owners.insert(tx, Owner::Invite(id));
                self.dests.insert(tx, call.dest.clone());
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
        call.remote_tag = r.to_tag().ok().flatten().map(str::to_owned);
        if let Some(to) = r.headers().get("To") {
            call.remote_party = to.trim().to_owned();
        }
        call.remote_target = r
            .contacts()
            .ok()
            .and_then(|cs| cs.first().and_then(|c| c.addr().map(|a| a.uri.clone())));
        call.route_set = r
            .record_routes()
            .map(|rr| rr.iter().rev().map(NameAddr::to_string).collect())
            .unwrap_or_default();
        let seq = r.cseq().map(|c| c.seq).unwrap_or(call.local_cseq);
        if let Ok(ack) = self.dialog_request(&call, Method::Ack, seq) {
            let bytes = ack.to_bytes();
            self.out.push_back(Outgoing {
                destination: call.dest.clone(),
                bytes: bytes.clone(),
                transaction: None,
            });
            call.ack = Some(bytes);
        }
        call.state = CallState::Connected;
        let policy = self.answer_policy();
        let neg = match (&call.offer, Session::parse(r.body())) {
            (Some(offer), Ok(ans)) => sotto_sdp::process_answer(offer, &ans, &policy),
            _ => Err(Refusal::NoAudio),
        };
        match neg {
            Ok(neg) => {
                let tls = if call.direct {
                    call.tls.as_ref()
                } else {
                    call.tls.as_ref().or(self.proxy_tls.as_ref())
                };
                let report = SecurityReport::new(
                    call.transport,
                    tls,
                    &call.auth,
                    neg.srtp.as_ref().map(|k| k.suite.name()),
                )
                .direct(call.direct)
                .sdes_without_tls();
                call.negotiated = Some(neg.clone());
                self.calls.insert(id, call);
                self.announce_connected(id, report, neg);
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

    fn stray_response(&mut self, r: &Response) {
        // A 2xx retransmission after the INVITE transaction ended: ACK it again (§13.2.2.4).
        let is_invite_2xx = r.status().is_success()
            && r.cseq()
                .map(|c| c.method == Method::Invite)
                .unwrap_or(false);
        if !is_invite_2xx {
            return;
        }
        let Ok(cid) = r.call_id() else { return };
        if let Some(c) = self.calls.values().find(|c| c.call_id == cid)
            && let Some(ack) = &c.ack
        {
            self.out.push_back(Outgoing {
                destination: c.dest.clone(),
                bytes: ack.clone(),
                transaction: None,
            });
        }
    }

    fn reject_ghost(&mut self, req: &Request, flow: &Flow) {
        let reason = "request not received over the registration flow nor from a trusted host";
        if *req.method() != Method::Ack {
            let mut resp = Response::from_request(req, StatusCode::FORBIDDEN);
            if let Ok(tag) = random_token(self.provider, 8) {
                resp.set_to_tag(&tag);
            }
            resp.headers_mut()
                .push("Warning", format!("399 sotto \"{reason}\""));
            self.out.push_back(Outgoing {
                destination: flow.reply_destination(),
                bytes: resp.to_bytes(),
                transaction: None,
            });
        }
        self.events.push_back(UaEvent::Rejected {
            source: flow.remote,
            method: req.method().as_str().to_owned(),
            status: 403,
            reason: reason.into(),
        });
    }

    fn handle_request(&mut self, req: Request, flow: &Flow, how: &str, now: Instant) {
        let reliable = flow.transport.is_stream();
        let dest = flow.reply_destination();
        match self.layer.handle_request(req, reliable, now) {
            Received::Request(inc) => {
                let method = inc.request().method().clone();
                let Ok(tx) = self.layer.accept(inc, now) else {
                    return;
                };
                self.dests.insert(tx, dest.clone());
                let Some(req) = self.layer.server(tx).and_then(|t| t.request().cloned()) else {
                    return;
                };
                match method {
                    Method::Invite => self.incoming_invite(tx, req, flow, how, now),
                    Method::Bye => self.incoming_bye(tx, &req, now),
                    Method::Options => {
                        let mut resp = Response::from_request(&req, StatusCode::OK);
                        if let Ok(tag) = random_token(self.provider, 8) {
                            resp.set_to_tag(&tag);
                        }
                        resp.headers_mut().push("Allow", ALLOW);
                        let _ = self.layer.send_response(tx, resp, now);
                    }
                    _ => {
                        let mut resp = Response::from_request(&req, StatusCode::METHOD_NOT_ALLOWED);
                        resp.headers_mut().push("Allow", ALLOW);
                        let _ = self.layer.send_response(tx, resp, now);
                    }
                }
            }
            Received::Cancel { cancel, invite } => {
                self.dests.insert(cancel, dest);
                if let Some(inv) = invite {
                    let found = self
                        .calls
                        .iter()
                        .find(|(_, c)| c.invite_tx == Some(inv) && c.role == Role::Uas)
                        .map(|(k, _)| *k);
                    if let Some(cid) = found
                        && let Some(c) = self.calls.get(&cid)
                        && matches!(c.state, CallState::Calling | CallState::Ringing)
                        && let Some(invite) = &c.invite
                    {
                        let mut resp =
                            Response::from_request(invite, StatusCode::REQUEST_TERMINATED);
                        set_to(&mut resp, &c.local_party);
                        let _ = self.layer.send_response(inv, resp, now);
                        self.end_call(cid, "cancelled by the caller".into());
                    }
                }
            }
            Received::Merged(id) | Received::Absorbed(id) => {
                self.dests.entry(id).or_insert(dest);
            }
            Received::Ack(ack) => self.ack_received(&ack),
            _ => {}
        }
    }

    fn incoming_invite(
        &mut self,
        tx: TransactionId,
        req: Request,
        flow: &Flow,
        how: &str,
        now: Instant,
    ) {
        let has_tag = req.to_tag().ok().flatten().is_some();
        if has_tag {
            self.incoming_reinvite(tx, &req, now);
            return;
        }
        let local_tag = random_token(self.provider, 8).unwrap_or_else(|_| "t".into());
        let to = req
            .headers()
            .get("To")
            .unwrap_or_default()
            .trim()
            .to_owned();
        let from = req
            .headers()
            .get("From")
            .unwrap_or_default()
            .trim()
            .to_owned();
        let local_party = format!("{to};tag={local_tag}");
        let id = self.alloc_call();
        let report_refusal = |ua: &mut Self, status: u16, warning_code: u16, text: String| {
            let mut resp = Response::from_request(&req, StatusCode(status));
            set_to(&mut resp, &local_party);
            resp.headers_mut().push(
                "Warning",
                format!("{warning_code} sotto \"{}\"", text.replace('"', "'")),
            );
            let _ = ua.layer.send_response(tx, resp, now);
            ua.events.push_back(UaEvent::IncomingCall {
                call: id,
                from: from.clone(),
                to: to.clone(),
            });
            let reason = format!("refused: {status} {text}");
            let report = SecurityReport::not_established(
                flow.transport.as_str(),
                flow.tls.as_ref(),
                how,
                &reason,
            )
            .direct(how != "registration-flow");
            ua.events
                .push_back(UaEvent::CallSecurity { call: id, report });
            ua.events.push_back(UaEvent::CallState {
                call: id,
                state: CallState::Ended,
                reason: Some(reason),
            });
        };
        if self.calls.len() >= MAX_CALLS {
            report_refusal(self, 486, 399, "too many calls".into());
            return;
        }
        let body = req.body().clone();
        if body.is_empty() {
            report_refusal(
                self,
                488,
                399,
                "an INVITE without an SDP offer is not supported".into(),
            );
            return;
        }
        // SDES over a non-TLS hop: only on a direct call, and only with the insecure override.
        let danger_ok = self.config.sdes_without_tls && how != "registration-flow";
        if sotto_sdp::sdes_present(&body) && flow.transport != TransportKind::Tls && !danger_ok {
            report_refusal(
                self,
                488,
                399,
                "SDES keys are never accepted over a non-TLS hop".into(),
            );
            return;
        }
        let offer = match Session::parse(&body) {
            Ok(s) => s,
            Err(e) => {
                report_refusal(self, 488, 399, format!("malformed SDP: {e}"));
                return;
            }
        };
        // Check the offer against our policy before ringing (no ringing for a call that
        // cannot be set up): a throw-away answer with the discard port.
        let probe_caps = match self.caps(SocketAddr::new(flow.local.ip(), 9)) {
            Ok(c) => c,
            Err(_) => return,
        };
        if let Err(refusal) = sotto_sdp::answer(
            &offer,
            &probe_caps,
            &self.answer_policy(),
            self.provider.rng,
        ) {
            report_refusal(
                self,
                refusal.status_code(),
                refusal.warning_code(),
                refusal.warning_text(),
            );
            return;
        }
        let contact_target = req
            .contacts()
            .ok()
            .and_then(|cs| cs.first().and_then(|c| c.addr().map(|a| a.uri.clone())));
        let route_set = req
            .record_routes()
            .map(|rr| rr.iter().map(NameAddr::to_string).collect())
            .unwrap_or_default();
        let from_proxy = self.is_proxy_flow(flow);
        let dest = if from_proxy {
            self.proxy_destination()
        } else {
            flow.reply_destination()
        };
        let call = Call {
            role: Role::Uas,
            state: CallState::Ringing,
            call_id: req.call_id().unwrap_or_default().to_owned(),
            local_party: local_party.clone(),
            remote_party: from.clone(),
            remote_tag: req.from_tag().ok().flatten().map(str::to_owned),
            target: req.uri().clone(),
            local_cseq: 0,
            remote_target: contact_target,
            route_set,
            dest,
            direct: !from_proxy,
            invite_tx: Some(tx),
            invite: Some(req.clone()),
            offer: Some(offer),
            local_sdp: None,
            negotiated: None,
            ack: None,
            auth: how.to_owned(),
            auth_tries: 0,
            got_provisional: true,
            cancel_pending: false,
            ring_deadline: Some(now + RING_TIMEOUT),
            ok_retransmit: None,
            transport: flow.transport.as_str(),
            tls: flow.tls.clone(),
            end_reason: None,
        };
        self.calls.insert(id, call);
        let mut ringing = Response::from_request(&req, StatusCode::RINGING);
        set_to(&mut ringing, &local_party);
        copy_record_route(&req, &mut ringing);
        if let Some(c) = self.contact_for(!from_proxy, flow.transport) {
            ringing.headers_mut().push("Contact", c);
        }
        let _ = self.layer.send_response(tx, ringing, now);
        self.events
            .push_back(UaEvent::IncomingCall { call: id, from, to });
        self.events.push_back(UaEvent::CallState {
            call: id,
            state: CallState::Ringing,
            reason: None,
        });
    }

    /// The ACK of our 2xx: stop retransmitting it.
    fn ack_received(&mut self, ack: &Request) {
        let cid = ack.call_id().unwrap_or_default();
        if let Some(c) = self.calls.values_mut().find(|c| c.call_id == cid) {
            c.ok_retransmit = None;
        }
    }

    /// Retransmits unacknowledged 2xx responses (T1 doubling up to T2; §13.3.1.4); a call
    /// whose 2xx is never acknowledged within 64·T1 is ended with a BYE.
    fn retransmit_2xx(&mut self, now: Instant) {
        let t2 = TimerConfig::default().t2;
        let mut give_up = Vec::new();
        for (id, c) in self.calls.iter_mut() {
            let Some((bytes, at, interval, until)) = c.ok_retransmit.as_mut() else {
                continue;
            };
            if *until <= now {
                give_up.push(*id);
                continue;
            }
            if *at <= now {
                self.out.push_back(Outgoing {
                    destination: c.dest.clone(),
                    bytes: bytes.clone(),
                    transaction: None,
                });
                *interval = (*interval * 2).min(t2);
                *at = now + *interval;
            }
        }
        for id in give_up {
            if let Some(c) = self.calls.get_mut(&id) {
                c.ok_retransmit = None;
                c.state = CallState::Ending;
            }
            if self.send_bye(id, now).is_err() {
                self.end_call(id, "no ACK received".into());
            }
        }
    }

    fn incoming_reinvite(&mut self, tx: TransactionId, req: &Request, now: Instant) {
        let cid = req.call_id().unwrap_or_default();
        let found = self
            .calls
            .values()
            .find(|c| c.call_id == cid && c.state == CallState::Connected);
        let resp = match found {
            Some(c) => {
                // Session refresh or hold: we keep our media as it is and repeat our answer.
                let mut resp = Response::from_request(req, StatusCode::OK);
                if let Some(l) = self.local {
                    resp.headers_mut()
                        .push("Contact", contact_value(&self.config, l, false));
                }
                if let Some(sdp) = &c.local_sdp {
                    resp.headers_mut().push("Content-Type", "application/sdp");
                    resp.set_body(sdp.clone());
                }
                resp
            }
            None => Response::from_request(req, StatusCode::CALL_TRANSACTION_DOES_NOT_EXIST),
        };
        let _ = self.layer.send_response(tx, resp, now);
    }

    fn incoming_bye(&mut self, tx: TransactionId, req: &Request, now: Instant) {
        let cid = req.call_id().unwrap_or_default();
        let found = self
            .calls
            .iter()
            .find(|(_, c)| c.call_id == cid)
            .map(|(k, _)| *k);
        let status = if found.is_some() {
            StatusCode::OK
        } else {
            StatusCode::CALL_TRANSACTION_DOES_NOT_EXIST
        };
        let resp = Response::from_request(req, status);
        let _ = self.layer.send_response(tx, resp, now);
        if let Some(c) = found {
            self.end_call(c, "remote hangup".into());
        }
    }
}

/// A refusal as a final response to `invite` with a Warning (RFC 3261 §20.43).
fn refusal_response(invite: &Request, refusal: &Refusal, local_party: &str) -> Response {
    let mut resp = Response::from_request(invite, StatusCode(refusal.status_code()));
    set_to(&mut resp, local_party);
    resp.headers_mut().push(
        "Warning",
        format!(
            "{} sotto \"{}\"",
            refusal.warning_code(),
            refusal.warning_text().replace('"', "'")
        ),
    );
    resp
}

fn refusal_reason(refusal: &Refusal) -> String {
    format!("{} {}", refusal.status_code(), refusal.warning_text())
}

/// Copies the request's Record-Route values into a dialog-creating response (RFC 3261
/// §12.1.1).
fn copy_record_route(req: &Request, resp: &mut Response) {
    let rr: Vec<String> = req
        .headers()
        .get_all("Record-Route")
        .map(str::to_owned)
        .collect();
    for v in rr {
        resp.headers_mut().push("Record-Route", v);
    }
}

/// Replaces the To header of a response with our party (with our tag).
fn set_to(resp: &mut Response, local_party: &str) {
    resp.headers_mut().set_first("To", local_party.to_owned());
}

/// The auth of a request the proxy accepts without a challenge: our TLS client certificate when
/// we present one to the proxy (not on a direct call), else `none`.
fn unchallenged_auth(config: &UaConfig, direct: bool) -> &'static str {
    if config.client_certificate && !direct {
        TLS_CLIENT_CERT_AUTH
    } else {
        "none"
    }
}

/// `status reason` plus the Warning text, if any.
fn with_warning(r: &Response) -> String {
    let mut s = format!("{} {}", r.status().as_u16(), r.reason());
    if let Some(w) = r.headers().get("Warning") {
        s.push_str(" (Warning: ");
        s.push_str(w.trim());
        s.push(')');
    }
    s
}

/// The registrar's URI: the identity's domain (RFC 3261 §10.2).
fn registrar_uri(identity: &Uri) -> Uri {
    let scheme = identity.scheme_str();
    let host = identity.host();
    let s = match identity.port() {
        Some(p) => format!("{scheme}:{host}:{p}"),
        None => format!("{scheme}:{host}"),
    };
    Uri::parse(&s).unwrap_or_else(|_| identity.clone())
}

/// Our Contact: `<sip:user@addr;transport=..;ob>`, with `+sip.instance` and `reg-id` for
/// REGISTER (RFC 5626 §4.2).
fn contact_value(c: &UaConfig, local: SocketAddr, register: bool) -> String {
    let user = c.identity.user().unwrap_or("anonymous");
    let transport = c.proxy.transport.as_str();
    let mut v = format!(
        "<sip:{user}@{}:{};transport={transport};ob>",
        host_of(local),
        local.port()
    );
    if register {
        v.push_str(&format!(";+sip.instance=\"<{}>\";reg-id=1", c.instance));
    }
    v
}

/// A dialog Contact at `addr` over `transport` (no `ob`: not the registration flow).
fn contact_at(c: &UaConfig, addr: SocketAddr, transport: &str) -> String {
    let user = c.identity.user().unwrap_or("anonymous");
    format!(
        "<sip:{user}@{}:{};transport={transport}>",
        host_of(addr),
        addr.port()
    )
}

fn host_of(a: SocketAddr) -> String {
    match a.ip() {
        IpAddr::V4(ip) => ip.to_string(),
        IpAddr::V6(ip) => format!("[{ip}]"),
    }
}

fn random_token(p: &CryptoProvider, bytes: usize) -> Result<String, UaError> {
    let mut b = vec![0u8; bytes.min(32)];
    p.rng.fill(&mut b).map_err(|_| UaError::Rng)?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

fn branch(p: &CryptoProvider) -> Result<String, UaError> {
    Ok(format!("z9hG4bK{}", random_token(p, 12)?))
}
