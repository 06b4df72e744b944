//! The async driver: the agent's only IO, a thin loop. It owns a `sotto-net` transport (one
//! TLS connection to the outbound proxy, kept alive with CRLF pings per RFC 5626 §4.4.1, plus
//! optional direct UDP and TLS listeners, and a UDP socket opened for a direct UDP call when no
//! UDP listener is configured), the clock, and one media task per call
//! (`media_task`: RTP/RTCP sockets, WAV files, around the sans-IO `CallMedia`). It feeds the
//! sans-IO [`UserAgent`] and the run's own sans-IO logic (`session`: what the mode does, when
//! to stop) and reports [`Output`]s; it takes no decision itself.

// The edge: reading the clock is this module's job.
#![allow(clippy::disallowed_methods)]

pub mod dtls_store;
pub mod lime_client;
pub mod lime_store;
mod media_task;
mod proxy;
mod session;
pub mod zid_store;

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sotto_media::audio::Wav;
use sotto_media::session::MediaStats;
use sotto_net::dns::Resolver;
use sotto_net::{Transport, TransportConfig};
use sotto_sip::message::Uri;
use tokio::sync::mpsc;

use crate::call::{CallId, CallState};
use crate::security::TlsSummary;
use crate::ua::{Flow, UaConfig, UaEvent, UserAgent};
use media_task::{MediaMsg, MediaSettings, MediaSockets, MediaTask};
use session::{AgentSession, Effect};

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
    /// Where the ZRTP key-continuity cache lives (`None`: in memory, forgotten at exit).
    pub zrtp_store: Option<zid_store::ZidStore>,
    /// Where the DTLS-SRTP certificate lives (`None`: a new one in memory when needed).
    pub dtls_store: Option<dtls_store::CertificateStore>,
    /// Read commands from standard input, one per line (`sas confirm`, `sas reject`).
    pub stdin_commands: bool,
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
    /// An event of the agent.
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
    /// Something went wrong that does not stop the agent (a cache not written, a command
    /// not understood).
    Warning(String),
}

/// Why a call whose media stopped is hung up (its `call_state` reason).
fn no_media_reason(after: Duration) -> String {
    format!(
        "no media from the peer for {} s (RTP timeout): the call is gone on its side",
        after.as_secs()
    )
}

/// The loop's IO: the SIP transport, the calls' media sockets and tasks.
struct Io {
    transport: Transport,
    media_ip: std::net::IpAddr,
    settings: MediaSettings,
    sockets: HashMap<CallId, MediaSockets>,
    media: HashMap<CallId, MediaTask>,
    media_tx: mpsc::Sender<MediaMsg>,
    media_rx: mpsc::Receiver<MediaMsg>,
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
    let (proxy, sent) = proxy::open_proxy_flow(&transport, &resolver, &cfg.ua, &mut emit).await?;
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
    if let Some(store) = &cfg.zrtp_store
        && cfg.ua.zrtp_cache.is_none()
    {
        let cache = store.load(provider.rng).map_err(DriverError::Io)?;
        cfg.ua.zrtp_cache = Some(std::sync::Arc::new(std::sync::Mutex::new(cache)));
    }
    if let Some(store) = &cfg.dtls_store
        && cfg.ua.dtls_certificate.is_none()
        && cfg.ua.methods.contains(&crate::config::KeyExchange::Dtls)
    {
        let cert = store.load_or_create(provider).map_err(DriverError::Io)?;
        cfg.ua.dtls_certificate = Some(std::sync::Arc::new(cert));
    }
    let mut ua = UserAgent::new(cfg.ua.clone(), provider)?;
    let zrtp_cache = ua.config().zrtp_cache.clone();
    let save_cache = |emit: &mut dyn FnMut(&Output)| {
        let (Some(store), Some(cache)) = (&cfg.zrtp_store, &zrtp_cache) else {
            return;
        };
        let Ok(mut c) = cache.lock() else { return };
        if c.is_dirty() {
            match store.save(&c) {
                Ok(()) => c.mark_saved(),
                Err(e) => emit(&Output::Warning(e)),
            }
        }
    };
    let mut commands = if cfg.stdin_commands {
        Some(stdin_lines())
    } else {
        None
    };
    ua.set_flow(sent.local, sent.connection);
    ua.register(Instant::now())?;

    let (media_tx, media_rx) = mpsc::channel::<MediaMsg>(64);
    let mut io = Io {
        transport,
        media_ip: sent.local.ip(),
        settings: MediaSettings {
            play: cfg.play.clone(),
            record: cfg.record.clone(),
            stats: cfg.stats_interval.max(Duration::from_millis(100)),
            rtp_timeout: cfg.rtp_timeout,
        },
        sockets: HashMap::new(),
        media: HashMap::new(),
        media_tx,
        media_rx,
    };
    let mut run = AgentSession::new(cfg.mode.clone());
    let mut keepalive = tokio::time::interval(cfg.keepalive.max(Duration::from_secs(1)));
    keepalive.tick().await;
    tokio::pin!(shutdown);
    let mut shutdown_seen = false;
    let mut flow_connection = sent.connection;

    loop {
        drive(&mut ua, &mut run, &mut io, &mut emit).await?;
        if run.is_done() {
            break;
        }
        let wake = [ua.poll_timeout(), run.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
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
                run.handle_timeout(&mut ua, now);
                ua.handle_timeout(now);
            }
            m = io.media_rx.recv() => {
                if let Some(m) = m {
                    media_news(&mut ua, &mut run, m, &mut emit);
                    save_cache(&mut emit);
                }
            }
            line = async { commands.as_mut()?.recv().await }, if commands.is_some() => {
                match line.as_deref().map(str::trim) {
                    None => commands = None,
                    Some("sas confirm") | Some("sas reject") => {
                        let verified = line.as_deref().is_some_and(|l| l.trim() == "sas confirm");
                        for t in io.media.values() {
                            t.command(media_task::MediaCmd::SasVerified(verified));
                        }
                    }
                    Some("") => {}
                    Some(other) => emit(&Output::Warning(format!(
                        "unknown command {other:?} (commands: sas confirm, sas reject)"
                    ))),
                }
            }
            _ = keepalive.tick() => {
                let mut d = ua.proxy().clone();
                d.connection = flow_connection;
                // The transport reuses the flow if it is open, else opens a new connection:
                // then the flow broke, and we register again over the new one (RFC 5626
                // §4.4.1, flow recovery). A server that is gone: the domain's next one.
                let reopened = match io.transport.send(&d, Bytes::from_static(b"\r\n\r\n")).await {
                    Ok(s) if s.connection != flow_connection => Some((d, s)),
                    Ok(_) => None,
                    Err(_) => proxy::open_proxy_flow(&io.transport, &resolver, &cfg.ua, &mut emit)
                        .await
                        .ok(),
                };
                if let Some((dest, s)) = reopened {
                    flow_connection = s.connection;
                    ua.set_proxy(dest);
                    ua.set_flow(s.local, s.connection);
                    emit(&Output::Reconnected { local: s.local });
                    if !shutdown_seen {
                        let _ = ua.register(Instant::now());
                    }
                }
            }
            _ = &mut shutdown, if !shutdown_seen => {
                shutdown_seen = true;
                run.shutdown(&mut ua, Instant::now());
            }
        }
    }
    // Stop what is left and flush its reports.
    for (_, t) in io.media.drain() {
        t.stop().await;
    }
    while let Ok(m) = io.media_rx.try_recv() {
        media_news(&mut ua, &mut run, m, &mut emit);
    }
    save_cache(&mut emit);
    run.into_result()
}

/// Lines of standard input, read on their own task.
fn stdin_lines() -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel(8);
    tokio::spawn(async move {
        use tokio::io::AsyncBufReadExt;
        let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
        while let Ok(Some(l)) = lines.next_line().await {
            if tx.send(l).await.is_err() {
                break;
            }
        }
    });
    rx
}

/// Sends what the agent queued, carries out the run's effects and reports the agent's
/// events, until none is left (one may lead to another).
async fn drive(
    ua: &mut UserAgent,
    run: &mut AgentSession,
    io: &mut Io,
    emit: &mut impl FnMut(&Output),
) -> Result<(), DriverError> {
    loop {
        while let Some(out) = ua.poll_transmit() {
            // A failed send fails its transaction at once (an unreachable or unverified
            // direct peer); the proxy flow is re-opened by the keep-alive.
            if let Err(e) = io.transport.send(&out.destination, out.bytes.clone()).await
                && out.destination.remote != ua.proxy().remote
            {
                ua.transport_failed(&out, &e.to_string(), Instant::now());
            }
        }
        let Some(ev) = ua.poll_event() else { break };
        run.handle_event(ua, &ev, Instant::now());
        while let Some(effect) = run.poll_effect() {
            apply(effect, ua, run, io, emit).await?;
        }
        // What the media said so far comes first (a call's last statistics before its end).
        while let Ok(m) = io.media_rx.try_recv() {
            media_news(ua, run, m, emit);
        }
        // Media parameters are the driver's business, not the user's.
        if !matches!(ev, UaEvent::MediaReady { .. }) {
            emit(&Output::Ua(ev));
        }
    }
    Ok(())
}

/// Carries out one effect of the run.
async fn apply(
    effect: Effect,
    ua: &mut UserAgent,
    run: &mut AgentSession,
    io: &mut Io,
    emit: &mut impl FnMut(&Output),
) -> Result<(), DriverError> {
    match effect {
        Effect::PlaceCall(target) => {
            let sock = MediaSockets::bind(io.media_ip).await?;
            let placed = ua.call(&target, sock.rtp_address()?, Instant::now());
            if let Ok(id) = placed {
                io.sockets.insert(id, sock);
            }
            run.call_placed(ua, placed, Instant::now());
        }
        Effect::Answer(call) => {
            let sock = MediaSockets::bind(io.media_ip).await?;
            let local = sock.rtp_address()?;
            io.sockets.insert(call, sock);
            let _ = ua.answer(call, local, Instant::now());
        }
        Effect::StartMedia(call, neg) => {
            let (Some(sock), Some(keyx)) = (io.sockets.remove(&call), ua.take_key_exchange(call))
            else {
                return Ok(());
            };
            match media_task::start(call, sock, &neg, keyx, &io.settings, io.media_tx.clone()) {
                Ok(t) => {
                    io.media.insert(call, t);
                }
                Err(e) => {
                    let reason = format!("media setup failed: {e}");
                    emit(&Output::Ua(UaEvent::CallState {
                        call,
                        state: CallState::Ending,
                        reason: Some(reason.clone()),
                    }));
                    run.media_failed(ua, call, reason, Instant::now());
                }
            }
        }
        Effect::StopMedia(call) => {
            io.sockets.remove(&call);
            if let Some(t) = io.media.remove(&call) {
                t.stop().await;
            }
        }
    }
    Ok(())
}

/// What a media task said: to the agent (its events), to the run (a failure), and reported.
fn media_news(
    ua: &mut UserAgent,
    run: &mut AgentSession,
    m: MediaMsg,
    emit: &mut impl FnMut(&Output),
) {
    let now = Instant::now();
    match m {
        MediaMsg::Event(call, ev) => ua.handle_media_event(call, ev, now),
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
        MediaMsg::Failed(call, reason) => {
            let reason = format!("media failed: {reason}");
            emit(&Output::Ua(UaEvent::CallState {
                call,
                state: CallState::Ending,
                reason: Some(reason.clone()),
            }));
            run.media_failed(ua, call, reason, now);
        }
        MediaMsg::NoMedia(call, after) => {
            let reason = no_media_reason(after);
            emit(&Output::Ua(UaEvent::CallState {
                call,
                state: CallState::Ending,
                reason: Some(reason.clone()),
            }));
            run.media_failed(ua, call, reason, now);
        }
    }
}
