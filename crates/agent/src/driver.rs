//! The async driver: the agent's only IO. It owns a `sotto-net` transport (one TLS
//! connection to the outbound proxy, kept alive with CRLF pings per RFC 5626 §4.4.1, plus
//! optional direct UDP and TLS listeners, and a UDP socket opened for a direct UDP call when
//! no UDP listener is configured), the clock, one RTP/RTCP socket pair (RTP port
//! and RTP port + 1, RFC 3550 §11, for peers that do not accept rtcp-mux) and one task per
//! call, and the WAV files; it feeds the sans-IO [`UserAgent`] and reports [`Output`]s. No protocol decision
//! is taken here.

// The edge: reading the clock is this file's job.
#![allow(clippy::disallowed_methods)]

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use sotto_media::audio::{FRAME_SAMPLES, Tone, Wav, WavWriter};
use sotto_media::session::{Channel, MediaStats, RtpSession};
use sotto_net::dns::Resolver;
use sotto_net::{Transport, TransportConfig};
use sotto_sdp::NegotiatedMedia;
use sotto_sip::message::Uri;
use sotto_sip::resolve::Policy;
use sotto_sip::transport::{Destination, TransportKind};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};

use crate::call::{CallId, CallState};
use crate::security::TlsSummary;
use crate::ua::{Flow, UaConfig, UaEvent, UserAgent};

/// How long the driver waits for the registrar to confirm an unregistration on exit.
const UNREGISTER_WAIT: Duration = Duration::from_secs(5);
/// How long the driver waits for its calls to end on exit before unregistering anyway.
const HANGUP_WAIT: Duration = Duration::from_secs(5);
/// Amplitude of a generated tone.
const TONE_AMPLITUDE: i16 = 8000;

/// What to send as audio.
#[derive(Debug, Clone)]
pub enum Source {
    /// Silence.
    Silence,
    /// A sine tone of this frequency (Hz).
    Tone(f64),
    /// These 8 kHz mono samples, looped.
    Samples(Arc<Vec<i16>>),
}

impl Source {
    /// Loads a WAV file as a looped source (any rate/channels; converted to 8 kHz mono).
    pub fn from_wav(path: &std::path::Path) -> Result<Self, DriverError> {
        let bytes =
            std::fs::read(path).map_err(|e| DriverError::Io(format!("{}: {e}", path.display())))?;
        let wav = Wav::parse(&bytes)
            .map_err(|e| DriverError::Media(format!("{}: {e}", path.display())))?;
        let samples = wav
            .to_8k_mono()
            .map_err(|e| DriverError::Media(format!("{}: {e}", path.display())))?;
        if samples.is_empty() {
            return Err(DriverError::Media(format!(
                "{}: no samples",
                path.display()
            )));
        }
        Ok(Source::Samples(Arc::new(samples)))
    }
}

/// What the driver does.
#[derive(Debug, Clone)]
pub enum Mode {
    /// Register, refresh, and on shutdown unregister.
    Register,
    /// Register, call `target`, hang up after `duration` (or on shutdown), unregister.
    Call {
        /// Whom to call.
        target: Uri,
        /// How long to stay connected.
        duration: Option<Duration>,
    },
    /// Register and wait for calls; answer them when `auto_answer`.
    Listen {
        /// Answer incoming calls at once.
        auto_answer: bool,
    },
}

/// Everything the driver needs.
#[derive(Debug, Clone)]
pub struct DriverConfig {
    /// The agent's settings.
    pub ua: UaConfig,
    /// TLS client settings (CA) for the proxy connection.
    pub tls_client: Arc<sotto_net::rustls::ClientConfig>,
    /// Direct UDP listeners (requests there pass the ghost-call check).
    pub listen_udp: Vec<SocketAddr>,
    /// A direct TLS listener and its server config (requests there pass the ghost-call
    /// check; its bound address becomes the Contact of direct dialogs).
    pub listen_tls: Option<(SocketAddr, Arc<sotto_net::rustls::ServerConfig>)>,
    /// What to play.
    pub play: Source,
    /// Where to record received audio (a call id is inserted when there are several calls).
    pub record: Option<PathBuf>,
    /// What to do.
    pub mode: Mode,
    /// Interval of CRLF keep-alives on the proxy connection.
    pub keepalive: Duration,
    /// Interval of `media_stats` reports during a call (one more at its end).
    pub stats_interval: Duration,
    /// Name servers that locate the proxy when its URI names a host (RFC 3263).
    pub dns: sotto_net::dns::DnsConfig,
    /// A call whose media stops arriving for this long is hung up; `None`: never.
    pub rtp_timeout: Option<Duration>,
}

/// Why the driver stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DriverError {
    /// Network setup failed.
    #[error("network: {0}")]
    Net(String),
    /// File IO failed.
    #[error("io: {0}")]
    Io(String),
    /// Media setup failed.
    #[error("media: {0}")]
    Media(String),
    /// The agent refused a command.
    #[error(transparent)]
    Ua(#[from] crate::ua::UaError),
    /// Registration failed.
    #[error("registration failed: {reason}")]
    Registration {
        /// Status.
        status: u16,
        /// Reason.
        reason: String,
    },
    /// The call failed before it connected.
    #[error("call failed: {0}")]
    CallFailed(String),
}

/// What the driver reports.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Output {
    /// An event of the agent (the driver-only `MediaReady` is not reported).
    Ua(UaEvent),
    /// Media statistics of a call.
    MediaStats {
        /// The call.
        call: CallId,
        /// The figures.
        stats: MediaStats,
        /// The last report of the call.
        last: bool,
    },
    /// A direct listener is open.
    Listening {
        /// `tls` or `udp`.
        transport: &'static str,
        /// The bound address.
        local: SocketAddr,
    },
    /// The connection to the proxy broke and a new one was opened (registration follows).
    Reconnected {
        /// The new local address.
        local: SocketAddr,
    },
    /// The proxy's first server(s) could not be reached; this one was (RFC 3263 failover).
    ProxyFailover {
        /// The server in use.
        server: SocketAddr,
        /// The servers that failed, and why.
        failed: Vec<String>,
    },
    /// Received audio was written.
    Recorded {
        /// The call.
        call: CallId,
        /// The file.
        path: PathBuf,
        /// Samples written.
        samples: usize,
    },
}

impl Output {
    /// The JSON object of the `--json` output (one per line).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::json;
        match self {
            Output::Ua(ev) => match ev {
                UaEvent::Registered {
                    expires,
                    contact,
                    auth,
                } => json!({
                    "event": "registered", "expires_s": expires.as_secs(),
                    "contact": contact, "auth": auth}),
                UaEvent::RegistrationFailed { status, reason } => json!({
                    "event": "registration_failed", "status": status, "reason": reason}),
                UaEvent::Unregistered => json!({"event": "unregistered"}),
                UaEvent::IncomingCall { call, from, to } => json!({
                    "event": "incoming_call", "call": call.0, "from": from, "to": to}),
                UaEvent::CallState {
                    call,
                    state,
                    reason,
                } => {
                    let mut v =
                        json!({"event": "call_state", "call": call.0, "state": state.as_str()});
                    if let Some(r) = reason {
                        v["reason"] = r.clone().into();
                    }
                    v
                }
                UaEvent::CallSecurity { call, report } => {
                    let mut v = serde_json::to_value(report).unwrap_or_else(|_| json!({}));
                    v["event"] = "call_security".into();
                    v["call"] = call.0.into();
                    v
                }
                UaEvent::MediaReady { call, media } => json!({
                    "event": "media_ready", "call": call.0,
                    "remote": format!("{}:{}", media.remote_address, media.remote_rtp_port),
                    "encrypted": media.is_encrypted()}),
                UaEvent::Rejected {
                    source,
                    method,
                    status,
                    reason,
                } => json!({
                    "event": "rejected", "source": source.to_string(), "method": method,
                    "status": status, "reason": reason}),
            },
            Output::MediaStats { call, stats, last } => json!({
                "event": "media_stats", "call": call.0, "final": last,
                "packets_sent": stats.packets_sent,
                "packets_received": stats.packets_received,
                "packets_lost": stats.packets_lost,
                "packets_dropped": stats.packets_dropped,
                "jitter_ms": stats.jitter_ms,
                "protection": stats.protection,
                "rtcp_sent": stats.rtcp_sent,
                "rtcp_received": stats.rtcp_received,
            }),
            Output::Listening { transport, local } => json!({
                "event": "listening", "transport": transport, "local": local.to_string()}),
            Output::Reconnected { local } => json!({
                "event": "reconnected", "local": local.to_string()}),
            Output::ProxyFailover { server, failed } => json!({
                "event": "proxy_failover", "server": server.to_string(), "failed": failed}),
            Output::Recorded {
                call,
                path,
                samples,
            } => json!({
                "event": "recorded", "call": call.0, "path": path.display().to_string(),
                "samples": samples}),
        }
    }

    /// A one-line human description.
    pub fn to_text(&self) -> String {
        let v = self.to_json();
        let name = v
            .get("event")
            .and_then(|e| e.as_str())
            .unwrap_or("event")
            .to_owned();
        let mut parts = Vec::new();
        if let Some(o) = v.as_object() {
            for (k, val) in o {
                if k != "event" {
                    parts.push(format!("{k}={val}"));
                }
            }
        }
        format!("{name}: {}", parts.join(" "))
    }
}

enum MediaMsg {
    Stats(CallId, Box<MediaStats>, bool),
    Recorded(CallId, PathBuf, usize),
    Failed(CallId, String),
    /// Nothing arrived from the peer for this long (RTP timeout).
    NoMedia(CallId, Duration),
}

/// Why a call whose media stopped is hung up (its `call_state` reason).
fn no_media_reason(after: Duration) -> String {
    format!(
        "no media from the peer for {} s (RTP timeout): the call is gone on its side",
        after.as_secs()
    )
}

struct MediaTask {
    stop: Option<oneshot::Sender<()>>,
    handle: tokio::task::JoinHandle<()>,
}

/// Runs the agent until the mode's work is done or `shutdown` resolves.
pub async fn run(
    mut cfg: DriverConfig,
    mut emit: impl FnMut(&Output),
    shutdown: impl Future<Output = ()>,
) -> Result<(), DriverError> {
    let provider = sotto_crypto_rust::provider();
    let tconf = TransportConfig {
        tls_client: Some(cfg.tls_client.clone()),
        idle_timeout: cfg.keepalive.saturating_mul(4).max(Duration::from_secs(60)),
        ..TransportConfig::default()
    };
    let (transport, mut incoming) = Transport::new(tconf);
    let mut udp_bound = None;
    for a in &cfg.listen_udp {
        let local = transport
            .bind_udp(*a)
            .await
            .map_err(|e| DriverError::Net(format!("binding UDP {a}: {e}")))?;
        udp_bound = udp_bound.or(Some(local));
        emit(&Output::Listening {
            transport: "udp",
            local,
        });
    }
    if let Some((a, server)) = &cfg.listen_tls {
        let local = transport
            .listen_tls(*a, server.clone())
            .await
            .map_err(|e| DriverError::Net(format!("listening on TLS {a}: {e}")))?;
        cfg.ua.tls_listen = Some(local);
        emit(&Output::Listening {
            transport: "tls",
            local,
        });
    }
    // Locate the proxy (DNS for a host name, RFC 3263) and open the flow to the first of its
    // servers that answers, with a CRLF keep-alive (RFC 5626 §4.4.1): its local address goes
    // into Via and Contact.
    let resolver = Resolver::new(&cfg.dns, provider.rng)
        .map_err(|e| DriverError::Net(format!("DNS resolver: {e}")))?;
    let (proxy, sent) = open_proxy_flow(&transport, &resolver, &cfg.ua, &mut emit).await?;
    cfg.ua.proxy = proxy.clone();
    cfg.ua.udp_listen = udp_bound;
    // A direct UDP call (`sip:bob@IP:PORT`) is sent from, and answered on, a UDP socket: open
    // one on the flow's address when no UDP listener is configured. Requests arriving there
    // still pass the ghost-call check.
    if let Mode::Call { target, .. } = &cfg.mode
        && cfg.ua.udp_listen.is_none()
        && crate::ua::direct_udp_destination(target).is_some()
    {
        let a = SocketAddr::new(sent.local.ip(), 0);
        let local = transport
            .bind_udp(a)
            .await
            .map_err(|e| DriverError::Net(format!("binding UDP {a}: {e}")))?;
        cfg.ua.udp_listen = Some(local);
    }
    let mut ua = UserAgent::new(cfg.ua.clone(), provider)?;
    ua.set_flow(sent.local, sent.connection);
    let media_ip = sent.local.ip();
    ua.register(Instant::now())?;

    let (media_tx, mut media_rx) = mpsc::channel::<MediaMsg>(64);
    let mut media: HashMap<CallId, MediaTask> = HashMap::new();
    let mut sockets: HashMap<CallId, MediaSockets> = HashMap::new();
    let mut keepalive = tokio::time::interval(cfg.keepalive.max(Duration::from_secs(1)));
    keepalive.tick().await;
    tokio::pin!(shutdown);
    let mut shutting_down = false;
    let mut exit_at: Option<Instant> = None;
    let mut hangup_at: Option<(CallId, Instant)> = None;
    let mut placed: Option<CallId> = None;
    let mut result: Result<(), DriverError> = Ok(());
    let mut done = false;
    let mut connected_once = false;
    let mut unregister_pending = false;
    let mut flow_connection = sent.connection;
    let mut hangup_deadline: Option<Instant> = None;

    loop {
        // Drain the agent until it has nothing left (handling an event may queue messages).
        loop {
            while let Some(out) = ua.poll_transmit() {
                // A failed send fails its transaction at once (an unreachable or unverified
                // direct peer); the proxy flow is re-opened by the keep-alive.
                if let Err(e) = transport.send(&out.destination, out.bytes.clone()).await
                    && out.destination.remote != ua.proxy().remote
                {
                    ua.transport_failed(&out, &e.to_string(), Instant::now());
                }
            }
            let Some(ev) = ua.poll_event() else { break };
            match &ev {
                UaEvent::Registered { .. } => {
                    if let (Mode::Call { target, .. }, None, false) =
                        (&cfg.mode, placed, shutting_down)
                    {
                        let sock = bind_media(media_ip).await?;
                        let local = sock
                            .rtp
                            .local_addr()
                            .map_err(|e| DriverError::Net(e.to_string()))?;
                        match ua.call(target, local, Instant::now()) {
                            Ok(id) => {
                                sockets.insert(id, sock);
                                placed = Some(id);
                            }
                            Err(e) => {
                                result = Err(DriverError::CallFailed(e.to_string()));
                                shutting_down = true;
                                let _ = ua.unregister(Instant::now());
                                exit_at = Some(Instant::now() + UNREGISTER_WAIT);
                            }
                        }
                    }
                }
                UaEvent::RegistrationFailed { status, reason } => {
                    if !shutting_down {
                        result = Err(DriverError::Registration {
                            status: *status,
                            reason: reason.clone(),
                        });
                    }
                    done = true;
                }
                UaEvent::Unregistered if shutting_down => done = true,
                UaEvent::IncomingCall { call, .. }
                    if matches!(cfg.mode, Mode::Listen { auto_answer: true }) && !shutting_down =>
                {
                    let sock = bind_media(media_ip).await?;
                    let local = sock
                        .rtp
                        .local_addr()
                        .map_err(|e| DriverError::Net(e.to_string()))?;
                    sockets.insert(*call, sock);
                    let _ = ua.answer(*call, local, Instant::now());
                }
                UaEvent::CallState {
                    call,
                    state,
                    reason,
                } => {
                    if *state == CallState::Connected && Some(*call) == placed {
                        connected_once = true;
                    }
                    if *state == CallState::Connected
                        && let Mode::Call {
                            duration: Some(d), ..
                        } = &cfg.mode
                        && Some(*call) == placed
                    {
                        hangup_at = Some((*call, Instant::now() + *d));
                    }
                    if *state == CallState::Ended {
                        sockets.remove(call);
                        if let Some(mut t) = media.remove(call) {
                            if let Some(s) = t.stop.take() {
                                let _ = s.send(());
                            }
                            // Let the task write its last report and close the WAV file.
                            let _ =
                                tokio::time::timeout(Duration::from_secs(5), &mut t.handle).await;
                        }
                        if Some(*call) == placed && !shutting_down {
                            if !connected_once {
                                result = Err(DriverError::CallFailed(
                                    reason.clone().unwrap_or_default(),
                                ));
                            }
                            shutting_down = true;
                            let _ = ua.unregister(Instant::now());
                            exit_at = Some(Instant::now() + UNREGISTER_WAIT);
                        }
                    }
                }
                UaEvent::MediaReady { call, media: neg } => {
                    if let Some(sock) = sockets.remove(call) {
                        match start_media(*call, sock, neg, &cfg, media_tx.clone()) {
                            Ok(t) => {
                                media.insert(*call, t);
                            }
                            Err(e) => {
                                emit(&Output::Ua(UaEvent::CallState {
                                    call: *call,
                                    state: CallState::Ending,
                                    reason: Some(format!("media setup failed: {e}")),
                                }));
                                let _ = ua.hangup(*call, Instant::now());
                            }
                        }
                    }
                    continue;
                }
                _ => {}
            }
            // Media arrives on the drain above; other events are reported as they come.
            while let Ok(m) = media_rx.try_recv() {
                emit_media(&mut emit, m);
            }
            emit(&Output::Ua(ev));
        }
        while let Ok(m) = media_rx.try_recv() {
            emit_media(&mut emit, m);
        }
        if done {
            break;
        }
        let now = Instant::now();
        if unregister_pending
            && (ua.call_ids().is_empty() || hangup_deadline.is_some_and(|at| at <= now))
        {
            unregister_pending = false;
            hangup_deadline = None;
            // Calls that did not end in time are dropped (their peer is unreachable).
            for id in ua.call_ids() {
                ua.forget_call(id);
            }
            if ua.is_registered() && ua.unregister(now).is_ok() {
                exit_at = Some(now + UNREGISTER_WAIT);
            } else {
                done = true;
            }
            continue;
        }
        let mut wake = ua.poll_timeout().unwrap_or(now + Duration::from_secs(3600));
        if let Some((_, at)) = hangup_at {
            wake = wake.min(at);
        }
        if let Some(at) = exit_at {
            wake = wake.min(at);
        }
        if let Some(at) = hangup_deadline {
            wake = wake.min(at);
        }
        tokio::select! {
            msg = incoming.recv() => {
                let Some(msg) = msg else { break };
                let flow = Flow {
                    transport: msg.transport,
                    remote: msg.source,
                    local: msg.local,
                    connection: msg.connection,
                    tls: msg.tls.as_ref().map(|t| TlsSummary {
                        version: t.version.to_owned(),
                        cipher_suite: t.cipher_suite.clone(),
                    }),
                };
                ua.handle_incoming(msg.data, &flow, Instant::now());
            }
            _ = tokio::time::sleep_until(tokio::time::Instant::from_std(wake)) => {
                let now = Instant::now();
                if let Some((call, at)) = hangup_at && at <= now {
                    hangup_at = None;
                    let _ = ua.hangup(call, now);
                }
                if exit_at.is_some_and(|at| at <= now) {
                    break;
                }

                ua.handle_timeout(now);
            }
            m = media_rx.recv() => {
                if let Some(m) = m {
                    match &m {
                        MediaMsg::Failed(call, _) => {
                            let _ = ua.hangup(*call, Instant::now());
                        }
                        MediaMsg::NoMedia(call, after) => {
                            let _ = ua.hangup_because(*call, no_media_reason(*after), Instant::now());
                        }
                        _ => {}
                    }
                    emit_media(&mut emit, m);
                }
            }
            _ = keepalive.tick() => {
                let mut d = ua.proxy().clone();
                d.connection = flow_connection;
                // The transport reuses the flow if it is open, else opens a new connection:
                // then the flow broke, and we register again over the new one (RFC 5626
                // §4.4.1, flow recovery). A server that is gone: the domain's next one.
                let reopened = match transport.send(&d, Bytes::from_static(b"\r\n\r\n")).await {
                    Ok(s) if s.connection != flow_connection => Some((d, s)),
                    Ok(_) => None,
                    // Unreachable: the domain's servers again, in order.
                    Err(_) => open_proxy_flow(&transport, &resolver, &cfg.ua, &mut emit).await.ok(),
                };
                if let Some((dest, s)) = reopened {
                    flow_connection = s.connection;
                    ua.set_proxy(dest);
                    ua.set_flow(s.local, s.connection);
                    emit(&Output::Reconnected { local: s.local });
                    if !shutting_down {
                        let _ = ua.register(Instant::now());
                    }
                }
            }
            _ = &mut shutdown, if !shutting_down => {
                shutting_down = true;
                let now = Instant::now();
                // Hang up every call first (BYE, CANCEL or 486); unregister once they ended.
                for id in ua.call_ids() {
                    let _ = ua.hangup(id, now);
                }
                unregister_pending = true;
                hangup_deadline = Some(now + HANGUP_WAIT);
            }
        }
    }
    // Stop what is left and flush its reports.
    for (_, mut t) in media.drain() {
        if let Some(s) = t.stop.take() {
            let _ = s.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), &mut t.handle).await;
    }
    while let Ok(m) = media_rx.try_recv() {
        emit_media(&mut emit, m);
    }
    result
}

/// Locates the outbound proxy (`ua.proxy_uri`: an address, or a domain looked up by DNS,
/// RFC 3263) and opens a connection to the first of its servers that takes one, trying the
/// next on failure (RFC 3263 §4.3). Returns that server and the connection.
async fn open_proxy_flow(
    transport: &Transport,
    resolver: &Resolver,
    ua: &UaConfig,
    emit: &mut impl FnMut(&Output),
) -> Result<(Destination, sotto_net::Sent), DriverError> {
    let tls_only = ua.proxy.transport == TransportKind::Tls;
    let uri = &ua.proxy_uri;
    let candidates = resolver
        .resolve(uri, Policy { tls_only })
        .await
        .map_err(|e| DriverError::Net(format!("locating the proxy {uri}: {e}")))?;
    let mut failures = Vec::new();
    for c in candidates {
        let mut dest = Destination::new(c.transport, c.addr);
        // The name the proxy's certificate must carry: the account's override, else the
        // domain looked up (RFC 5922 §4), else the address.
        dest.server_name = ua.proxy.server_name.clone().or(c.server_name);
        match transport.send(&dest, Bytes::from_static(b"\r\n\r\n")).await {
            Ok(sent) => {
                if !failures.is_empty() {
                    emit(&Output::ProxyFailover {
                        server: dest.remote,
                        failed: failures.clone(),
                    });
                }
                return Ok((dest, sent));
            }
            Err(e) => failures.push(format!("{} {}: {e}", c.transport.as_str(), c.addr)),
        }
    }
    Err(DriverError::Net(format!(
        "connecting to the proxy {uri}: {}",
        failures.join("; ")
    )))
}

fn emit_media(emit: &mut impl FnMut(&Output), m: MediaMsg) {
    match m {
        MediaMsg::Stats(call, stats, last) => emit(&Output::MediaStats {
            call,
            stats: *stats,
            last,
        }),
        MediaMsg::Recorded(call, path, samples) => emit(&Output::Recorded {
            call,
            path,
            samples,
        }),
        MediaMsg::Failed(call, reason) => emit(&Output::Ua(UaEvent::CallState {
            call,
            state: CallState::Ending,
            reason: Some(format!("media failed: {reason}")),
        })),
        MediaMsg::NoMedia(call, after) => emit(&Output::Ua(UaEvent::CallState {
            call,
            state: CallState::Ending,
            reason: Some(no_media_reason(after)),
        })),
    }
}

/// A call's media sockets: RTP, and RTCP on the RTP port + 1 (the default RTCP port of an
/// SDP without `a=rtcp`, RFC 3605/RFC 3550 §11): peers that refuse rtcp-mux send there.
struct MediaSockets {
    rtp: UdpSocket,
    rtcp: UdpSocket,
}

impl MediaSockets {
    fn of(&self, channel: Channel) -> &UdpSocket {
        match channel {
            Channel::Rtp => &self.rtp,
            Channel::Rtcp => &self.rtcp,
        }
    }
}

/// Attempts at finding a free RTP port whose next port is free too.
const PORT_PAIR_TRIES: usize = 64;

async fn bind_media(ip: std::net::IpAddr) -> Result<MediaSockets, DriverError> {
    let mut last = String::from("no attempt");
    for _ in 0..PORT_PAIR_TRIES {
        let rtp = UdpSocket::bind(SocketAddr::new(ip, 0))
            .await
            .map_err(|e| DriverError::Net(format!("binding an RTP socket: {e}")))?;
        let port = rtp
            .local_addr()
            .map_err(|e| DriverError::Net(e.to_string()))?
            .port();
        // RTP on an even port, RTCP on the odd one above it (RFC 3550 §11).
        if port % 2 != 0 {
            continue;
        }
        let Some(next) = port.checked_add(1) else {
            continue;
        };
        match UdpSocket::bind(SocketAddr::new(ip, next)).await {
            Ok(rtcp) => return Ok(MediaSockets { rtp, rtcp }),
            Err(e) => last = e.to_string(),
        }
    }
    Err(DriverError::Net(format!(
        "no free RTP/RTCP port pair after {PORT_PAIR_TRIES} attempts: {last}"
    )))
}

fn start_media(
    call: CallId,
    sock: MediaSockets,
    neg: &NegotiatedMedia,
    cfg: &DriverConfig,
    tx: mpsc::Sender<MediaMsg>,
) -> Result<MediaTask, DriverError> {
    let provider = sotto_crypto_rust::provider();
    let mconf = crate::media::media_config(neg, "sotto-agent")
        .map_err(|e| DriverError::Media(e.to_string()))?;
    let protection =
        crate::media::protection(provider, neg).map_err(|e| DriverError::Media(e.to_string()))?;
    let session = RtpSession::new(
        mconf,
        protection,
        provider.rng,
        Instant::now(),
        SystemTime::now(),
    )
    .map_err(|e| DriverError::Media(e.to_string()))?;
    let writer = match &cfg.record {
        Some(p) => {
            let f = std::fs::File::create(p)
                .map_err(|e| DriverError::Io(format!("{}: {e}", p.display())))?;
            Some((
                p.clone(),
                WavWriter::new(f, sotto_media::audio::SAMPLE_RATE)
                    .map_err(|e| DriverError::Io(format!("{}: {e}", p.display())))?,
            ))
        }
        None => None,
    };
    let (stop_tx, stop_rx) = oneshot::channel();
    let play = cfg.play.clone();
    let timing = MediaTiming {
        stats: cfg.stats_interval.max(Duration::from_millis(100)),
        rtp_timeout: cfg.rtp_timeout,
    };
    let handle = tokio::spawn(media_loop(
        call, sock, session, play, writer, timing, stop_rx, tx,
    ));
    Ok(MediaTask {
        stop: Some(stop_tx),
        handle,
    })
}

type Recorder = Option<(PathBuf, WavWriter<std::fs::File>)>;

/// A call's media clocks: statistics reports and the RTP timeout.
#[derive(Debug, Clone, Copy)]
struct MediaTiming {
    stats: Duration,
    rtp_timeout: Option<Duration>,
}

#[allow(clippy::too_many_arguments)]
async fn media_loop(
    call: CallId,
    sock: MediaSockets,
    mut session: RtpSession,
    play: Source,
    mut writer: Recorder,
    timing: MediaTiming,
    mut stop: oneshot::Receiver<()>,
    tx: mpsc::Sender<MediaMsg>,
) {
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut stats_tick = tokio::time::interval(timing.stats);
    // When the peer's media last arrived (the call's start, before any).
    let mut last_heard = Instant::now();
    stats_tick.tick().await;
    let mut tone = match play {
        Source::Tone(f) => Some(Tone::new(
            f,
            TONE_AMPLITUDE,
            sotto_media::audio::SAMPLE_RATE,
        )),
        _ => None,
    };
    let mut pos = 0usize;
    let mut pcm = [0i16; FRAME_SAMPLES];
    let mut out = [0i16; FRAME_SAMPLES];
    let mut buf = [0u8; 1500];
    let mut rbuf = [0u8; 2048];
    let mut cbuf = [0u8; 2048];
    let mut write_failed = false;
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = tick.tick() => {
                let now = Instant::now();
                if let Some(limit) = timing.rtp_timeout
                    && now.duration_since(last_heard) >= limit
                {
                    let _ = tx.send(MediaMsg::NoMedia(call, limit)).await;
                    break;
                }
                match (&play, tone.as_mut()) {
                    (_, Some(t)) => t.fill(&mut pcm),
                    (Source::Samples(s), None) => {
                        for p in pcm.iter_mut() {
                            *p = s.get(pos % s.len().max(1)).copied().unwrap_or(0);
                            pos = pos.wrapping_add(1);
                        }
                    }
                    _ => pcm.fill(0),
                }
                match session.send_audio(now, &pcm, &mut buf) {
                    Ok(Some(t)) => {
                        if let Some(b) = buf.get(..t.len) {
                            let _ = sock.of(t.channel).send_to(b, t.dst).await;
                        }
                    }
                    Ok(None) => {}
                    Err(e) => {
                        let _ = tx.send(MediaMsg::Failed(call, e.to_string())).await;
                        break;
                    }
                }
                for _ in 0..8 {
                    match session.poll_transmit(now, &mut buf) {
                        Ok(Some(t)) => {
                            if let Some(b) = buf.get(..t.len) {
                                let _ = sock.of(t.channel).send_to(b, t.dst).await;
                            }
                        }
                        _ => break,
                    }
                }
                for _ in 0..50 {
                    if session.poll_audio(now, &mut out).is_none() {
                        break;
                    }
                    if let Some((_, w)) = writer.as_mut()
                        && !write_failed
                        && w.write_samples(&out).is_err()
                    {
                        write_failed = true;
                    }
                }
            }
            r = sock.rtp.recv_from(&mut rbuf) => {
                if let Ok((n, src)) = r
                    && let Some(pkt) = rbuf.get_mut(..n)
                    && session.handle_receive(Instant::now(), src, Channel::Rtp, pkt).is_ok()
                {
                    last_heard = Instant::now();
                }
            }
            r = sock.rtcp.recv_from(&mut cbuf) => {
                if let Ok((n, src)) = r
                    && let Some(pkt) = cbuf.get_mut(..n)
                    && session.handle_receive(Instant::now(), src, Channel::Rtcp, pkt).is_ok()
                {
                    last_heard = Instant::now();
                }
            }
            _ = stats_tick.tick() => {
                let _ = tx.send(MediaMsg::Stats(call, Box::new(session.stats()), false)).await;
            }
        }
    }
    if let Ok(Some(t)) = session.close(Instant::now(), "call ended", &mut buf)
        && let Some(b) = buf.get(..t.len)
    {
        let _ = sock.of(t.channel).send_to(b, t.dst).await;
    }
    let _ = tx
        .send(MediaMsg::Stats(call, Box::new(session.stats()), true))
        .await;
    if let Some((path, w)) = writer {
        let samples = w.samples_written();
        if w.finish().is_ok() && !write_failed {
            let _ = tx.send(MediaMsg::Recorded(call, path, samples)).await;
        } else {
            let _ = tx
                .send(MediaMsg::Failed(
                    call,
                    format!("writing {}", path.display()),
                ))
                .await;
        }
    }
}
