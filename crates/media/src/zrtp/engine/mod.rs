//! The ZRTP endpoint (RFC 6189), sans-IO: packets in ([`ZrtpEngine::handle_packet`]),
//! packets out ([`ZrtpEngine::poll_transmit`]), one timer, and [`ZrtpEvent`]s.
//!
//! DH mode, as bzrtp runs it: both sides send Hello; each, once it holds the peer's Hello
//! and its own was acknowledged, sends a Commit; if both commit, the lower hvi yields and
//! becomes responder (§4.2). Initiator: Commit → DHPart2 → Confirm2, each retransmitted on
//! T2 until answered; responder: DHPart1, Confirm1, Conf2ACK, each sent when asked for.
//! Every hash-chain link and MAC is checked when its key arrives; a failure is reported with
//! its reason and, where the RFC has a code, an Error message is sent. GoClear is refused.

mod agreement;
mod confirm;
mod multistream;
pub mod secrets;
pub mod timer;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sotto_crypto::CryptoProvider;
use sotto_crypto::agreement::PrivateKey;
use sotto_crypto::secret::SecretBytes;

use super::ZrtpError;
use super::algorithms::{ZrtpPreferences, ZrtpSuite};
use super::cache::{CacheStatus, ZidCache};
use super::keys::SessionKeys;
use super::messages::commit::{Commit, CommitMode};
use super::messages::dhpart::DhPart;
use super::messages::hello::{self, Hello, HelloFields};
use super::messages::small;
use super::packet::{self, MessageType};
use crate::keyx::SrtpKeys;
use secrets::{Held, Role};
use timer::{Fired, Retransmit, TimerKind};

/// How long a handshake may take before it is given up (peer silent after its Hello, a
/// responder whose initiator vanished).
pub const HANDSHAKE_LIMIT: Duration = Duration::from_secs(30);

/// What a ZRTP endpoint is told.
#[derive(Debug, Clone)]
pub struct ZrtpConfig {
    /// The algorithms we offer, most preferred first.
    pub preferences: ZrtpPreferences,
    /// Our client identifier in Hello (16 octets at most).
    pub client_id: String,
    /// The SSRC our ZRTP packets carry (the stream's).
    pub ssrc: u32,
    /// An auxiliary secret both sides may hold (§4.3: the messaging layer binds identity
    /// keys to the SAS through it).
    pub aux_secret: Option<SecretBytes>,
    /// The peer's address of record, remembered in the cache.
    pub peer_uri: Option<String>,
    /// SHA-256 of the peer's Hello, from its SDP `a=zrtp-hash` (§8.1), once known.
    pub peer_hello_hash: Option<[u8; 32]>,
    /// For a further stream of a call already secured by ZRTP with the same peer: the first
    /// stream's session (Multistream mode, §4.4.3: no DH, the first stream's SAS).
    pub multistream: Option<MultistreamKeys>,
}

/// What a further stream needs from the call's first ZRTP stream.
#[derive(Clone)]
pub struct MultistreamKeys {
    /// ZRTPSess of the first stream.
    pub zrtp_session: SecretBytes,
    /// The first stream's outcome (algorithms, SAS, peer, cache, verification).
    pub first: ZrtpSecured,
}

impl std::fmt::Debug for MultistreamKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MultistreamKeys")
            .field("first", &self.first)
            .finish_non_exhaustive()
    }
}

impl ZrtpConfig {
    /// Defaults: the default preferences, client id `sotto`, SSRC `ssrc`.
    pub fn new(ssrc: u32) -> Self {
        ZrtpConfig {
            preferences: ZrtpPreferences::default(),
            client_id: format!("sotto {}", env!("CARGO_PKG_VERSION")),
            ssrc,
            aux_secret: None,
            peer_uri: None,
            peer_hello_hash: None,
            multistream: None,
        }
    }
}

/// The result of a finished exchange.
#[derive(Debug, Clone)]
pub struct ZrtpSecured {
    /// The rendered SAS (`h441`).
    pub sas: String,
    /// The algorithms.
    pub suite: ZrtpSuite,
    /// Our role.
    pub role: Role,
    /// The users verified the SAS (on an earlier call, both sides' caches agreeing).
    pub verified: bool,
    /// How the key-continuity cache stood.
    pub cache: CacheStatus,
    /// Whether the auxiliary secret matched (`None`: we gave none).
    pub aux_matched: Option<bool>,
    /// The peer's ZID.
    pub peer_zid: [u8; 12],
    /// The peer's client identifier.
    pub peer_client: String,
}

/// What the engine reports.
#[derive(Debug, Clone)]
pub enum ZrtpEvent {
    /// The SAS is known (the initiator knows it on Confirm1, before media keys).
    Sas(ZrtpSecured),
    /// Keys are agreed: SRTP for both directions.
    Secure(ZrtpSecured, Box<SrtpKeys>),
    /// The exchange failed; nothing may flow.
    Failed(String),
    /// The peer sent GoClear; refused (media stays encrypted).
    GoClearRefused,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Hello sent; waiting for the peer's Hello and our HelloACK.
    Discovery,
    /// Our Commit sent (we may still yield to the peer's).
    Committed,
    /// Responder: DHPart1 sent.
    SentDhPart1,
    /// Initiator: DHPart2 sent.
    SentDhPart2,
    /// Responder: Confirm1 sent.
    SentConfirm1,
    /// Initiator: Confirm2 sent.
    SentConfirm2,
    /// Keys in use.
    Secure,
    /// Given up.
    Failed,
}

/// One ZRTP endpoint; see the [module documentation](self).
pub struct ZrtpEngine {
    provider: &'static CryptoProvider,
    config: ZrtpConfig,
    cache: Arc<Mutex<ZidCache>>,
    zid: [u8; 12],
    /// H0..H3 of our hash chain.
    chain: [[u8; 32]; 4],
    our_hello: Vec<u8>,
    state: State,
    started: Option<Instant>,
    seq: u16,
    hello_acked: bool,
    peer_hello: Option<(Vec<u8>, Hello)>,
    suite: Option<ZrtpSuite>,
    role: Option<Role>,
    our_commit: Option<(Vec<u8>, CommitMode)>,
    /// This exchange is in Multistream mode.
    mult: bool,
    /// ZRTPSess of a finished DH-mode exchange, for further streams.
    zrtp_session: Option<SecretBytes>,
    peer_commit: Option<(Vec<u8>, Commit)>,
    dh: Option<Box<dyn PrivateKey>>,
    held: Held,
    our_dhpart: Option<Vec<u8>>,
    peer_dhpart: Option<(Vec<u8>, DhPart)>,
    keys: Option<SessionKeys>,
    matched: Option<secrets::Matched>,
    /// Our last answer (responder) to send again when the question repeats.
    answer: Option<(MessageType, Vec<u8>)>,
    retransmit: Option<Retransmit>,
    outbox: VecDeque<Vec<u8>>,
    events: VecDeque<ZrtpEvent>,
    peer_verified_flag: bool,
    secured: Option<ZrtpSecured>,
    /// Why the last dropped message was dropped, told if the exchange then times out.
    discarded: Option<String>,
}

impl std::fmt::Debug for ZrtpEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZrtpEngine")
            .field("state", &self.state)
            .field("role", &self.role)
            .field("suite", &self.suite)
            .finish_non_exhaustive()
    }
}

impl ZrtpEngine {
    /// An endpoint with our ZID from `cache` and a fresh hash chain.
    pub fn new(
        provider: &'static CryptoProvider,
        config: ZrtpConfig,
        cache: Arc<Mutex<ZidCache>>,
    ) -> Result<Self, ZrtpError> {
        let zid = *cache.lock().map_err(|_| ZrtpError::Cache)?.zid();
        let mut h0 = [0u8; 32];
        provider
            .rng
            .fill(&mut h0)
            .map_err(|_| ZrtpError::Crypto("random"))?;
        let sha = |x: &[u8; 32]| super::keys::sha256(provider, x);
        let h1 = sha(&h0)?;
        let h2 = sha(&h1)?;
        let h3 = sha(&h2)?;
        let our_hello = hello::encode(
            provider,
            &HelloFields {
                client_id: &config.client_id,
                h3: &h3,
                zid: &zid,
                preferences: &config.preferences,
                passive: false,
            },
            &h2,
        )?;
        let mut seq = [0u8; 2];
        provider
            .rng
            .fill(&mut seq)
            .map_err(|_| ZrtpError::Crypto("random"))?;
        Ok(ZrtpEngine {
            provider,
            config,
            cache,
            zid,
            chain: [h0, h1, h2, h3],
            our_hello,
            state: State::Discovery,
            started: None,
            // Low and non-zero: bzrtp drops sequence numbers not above the last it saw.
            seq: (u16::from_be_bytes(seq) & 0x3FFF) + 1,
            hello_acked: false,
            peer_hello: None,
            suite: None,
            role: None,
            our_commit: None,
            mult: false,
            zrtp_session: None,
            peer_commit: None,
            dh: None,
            held: Held::default(),
            our_dhpart: None,
            peer_dhpart: None,
            keys: None,
            matched: None,
            answer: None,
            retransmit: None,
            outbox: VecDeque::new(),
            events: VecDeque::new(),
            peer_verified_flag: false,
            secured: None,
            discarded: None,
        })
    }

    /// SHA-256 of our Hello, hex, for our SDP's `a=zrtp-hash:1.10 <hash>` (§8.1).
    pub fn hello_hash(&self) -> String {
        self.sha256(&self.our_hello)
            .map(|h| sotto_crypto::hex::encode(&h))
            .unwrap_or_default()
    }

    /// The peer's `a=zrtp-hash`, once its SDP is known. A Hello that arrived before is
    /// checked at once.
    pub fn set_peer_hello_hash(&mut self, hash: [u8; 32]) {
        self.config.peer_hello_hash = Some(hash);
        if let Some((msg, _)) = &self.peer_hello
            && !self.hello_matches_sdp(&msg.clone())
        {
            self.fail(
                Some(small::code::HELLO_MISMATCH),
                "the peer's ZRTP Hello does not match the zrtp-hash of its SDP: someone on the media path is not the peer",
            );
        }
    }

    /// Starts the exchange (sends Hello). Called by the first poll.
    fn start(&mut self, now: Instant) {
        if self.started.is_none() {
            self.started = Some(now);
            self.outbox.push_back(self.our_hello.clone());
            self.retransmit = Some(Retransmit::start(
                TimerKind::T1,
                self.our_hello.clone(),
                now,
            ));
        }
    }

    /// Whether keys are agreed.
    pub fn is_secure(&self) -> bool {
        self.state == State::Secure
    }

    /// The result, once secure.
    pub fn secured(&self) -> Option<&ZrtpSecured> {
        self.secured.as_ref()
    }

    /// What a further stream with the same peer needs (Multistream mode), once this DH-mode
    /// exchange is secure.
    pub fn multistream_keys(&self) -> Option<MultistreamKeys> {
        Some(MultistreamKeys {
            zrtp_session: self.zrtp_session.clone()?,
            first: self.secured.clone()?,
        })
    }

    /// The users confirmed or rejected the SAS: kept in the cache for the next calls.
    pub fn set_sas_verified(&mut self, verified: bool) {
        let Some(s) = self.secured.as_mut() else {
            return;
        };
        s.verified = verified;
        if let Ok(mut c) = self.cache.lock() {
            c.set_verified(s.peer_zid, verified);
        }
    }

    /// A datagram of ours (ZRTP) received at `now`. Damaged or unexpected packets are
    /// dropped; a broken protocol step fails the exchange.
    pub fn handle_packet(&mut self, now: Instant, datagram: &[u8]) {
        self.start(now);
        let Ok(p) = packet::parse(datagram) else {
            return;
        };
        if self.state == State::Failed {
            return;
        }
        let message = p.message.to_vec();
        let result = match p.kind {
            MessageType::Hello => self.on_hello(now, message),
            MessageType::HelloAck => self.on_hello_ack(now),
            MessageType::Commit => self.on_commit(now, message),
            MessageType::DhPart1 => self.on_dhpart1(now, message),
            MessageType::DhPart2 => self.on_dhpart2(message),
            MessageType::Confirm1 => self.on_confirm1(now, message),
            MessageType::Confirm2 => self.on_confirm2(message),
            MessageType::Conf2Ack => self.on_conf2ack(),
            MessageType::Error => {
                let code = small::parse_error(&message).unwrap_or(0);
                self.outbox.push_back(small::bare(MessageType::ErrorAck));
                self.fail(None, &format!("the peer ended ZRTP with Error 0x{code:x}"));
                Ok(())
            }
            MessageType::GoClear => {
                // We never allow clear media (A flag unset): refuse, stay encrypted.
                self.outbox
                    .push_back(small::error(small::code::GOCLEAR_REFUSED));
                self.events.push_back(ZrtpEvent::GoClearRefused);
                Ok(())
            }
            MessageType::Ping => {
                if let Ok(ping) = small::parse_ping(&message) {
                    let mut ours = [0u8; 8];
                    ours.copy_from_slice(&self.chain[3][..8]);
                    self.outbox
                        .push_back(small::ping_ack(&ping, &ours, self.config.ssrc));
                }
                Ok(())
            }
            _ => Ok(()),
        };
        match result {
            Err(e) if e.is_fatal() => {
                let code = e.error_code();
                self.fail(code, &e.to_string());
            }
            Err(e) => self.discarded = Some(e.to_string()),
            Ok(()) => {}
        }
    }

    /// The next packet to send, framed into `buf`; returns its length.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        self.start(now);
        let m = self.outbox.pop_front()?;
        let n = packet::frame(self.seq, self.config.ssrc, &m, buf)?;
        self.seq = self.seq.wrapping_add(1);
        Some(n)
    }

    /// When [`ZrtpEngine::handle_timeout`] is due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if matches!(self.state, State::Secure | State::Failed) {
            return None;
        }
        let limit = self.started.map(|s| s + HANDSHAKE_LIMIT);
        match (self.retransmit.as_ref().map(|r| r.due), limit) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Fires the retransmission timer and the handshake limit.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.start(now);
        if matches!(self.state, State::Secure | State::Failed) {
            return;
        }
        if self.started.is_some_and(|s| now >= s + HANDSHAKE_LIMIT) {
            self.fail(Some(small::code::TIMEOUT), "ZRTP did not complete in 30 s");
            return;
        }
        let Some(r) = self.retransmit.as_mut() else {
            return;
        };
        match r.fire(now) {
            Some(Fired::Resend(m)) => self.outbox.push_back(m),
            Some(Fired::Exhausted(TimerKind::T1)) => {
                self.retransmit = None;
                if self.peer_hello.is_none() {
                    self.fail(
                        None,
                        "no ZRTP Hello from the peer: it does not speak ZRTP, or the media path is blocked",
                    );
                }
            }
            Some(Fired::Exhausted(TimerKind::T2)) => {
                self.retransmit = None;
                self.fail(
                    Some(small::code::TIMEOUT),
                    "the peer stopped answering ZRTP",
                );
            }
            None => {}
        }
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<ZrtpEvent> {
        self.events.pop_front()
    }

    fn fail(&mut self, code: Option<u32>, reason: &str) {
        if matches!(self.state, State::Failed) {
            return;
        }
        if let Some(c) = code {
            self.outbox.push_back(small::error(c));
        }
        let reason = match (&self.discarded, code) {
            (Some(d), Some(small::code::TIMEOUT)) | (Some(d), None) => {
                format!("{reason} (last packet dropped: {d})")
            }
            _ => reason.to_owned(),
        };
        self.state = State::Failed;
        self.retransmit = None;
        self.dh = None;
        self.keys = None;
        self.events.push_back(ZrtpEvent::Failed(reason));
    }

    fn hello_matches_sdp(&self, message: &[u8]) -> bool {
        let Some(expected) = self.config.peer_hello_hash else {
            return true;
        };
        self.sha256(message)
            .is_ok_and(|h| sotto_crypto::ct_eq(&h, &expected))
    }

    fn sha256(&self, data: &[u8]) -> Result<[u8; 32], ZrtpError> {
        super::keys::sha256(self.provider, data)
    }

    fn random<const N: usize>(&self) -> Result<[u8; N], ZrtpError> {
        let mut a = [0u8; N];
        self.provider
            .rng
            .fill(&mut a)
            .map_err(|_| ZrtpError::Crypto("random"))?;
        Ok(a)
    }
}
