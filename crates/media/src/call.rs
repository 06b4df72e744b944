//! One call's media, sans-IO: its streams ([`RtpSession`]s), its key exchange
//! ([`MediaKeyExchange`]), and the demultiplexing of whatever arrives on a stream's port
//! (RFC 7983 §7: STUN, ZRTP, DTLS, RTP/RTCP by their first octet).
//!
//! Until an encrypting key exchange has delivered keys, no media leaves and none is taken:
//! mandatory encryption never falls back to plain RTP. When keys come
//! ([`KeyExchangeEvent::KeysReady`]), SRTP is installed on every stream and [`MediaEvent`]s
//! tell the call; a failed exchange is reported with its reason, and media stays shut.
//!
//! ## Driving contract
//! Like the other engines: [`CallMedia::handle_packet`] for each datagram,
//! [`CallMedia::send_audio`] for each frame, then drain [`CallMedia::poll_transmit`] and
//! [`CallMedia::poll_event`]; wake at [`CallMedia::poll_timeout`] and call
//! [`CallMedia::handle_timeout`].

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use sotto_crypto::CryptoProvider;

use crate::keyx::{KeyExchangeEvent, KeyMethod, MediaKeyExchange, MediaProtection, SrtpKeys};
use crate::session::{
    Channel, FrameKind, MediaStats, PacketClass, Received, RtpSession, SessionError,
    SrtpProtection, Transmit, classify,
};
use crate::srtp::SrtpSession;

/// What the call learns from its media.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MediaEvent {
    /// Keys are in place: protected media flows.
    Secured,
    /// The protection as it stands (a SAS to show, a SAS verified, a handshake done).
    Protection(MediaProtection),
    /// The key exchange failed: no media flows, and why.
    Failed {
        /// What went wrong.
        reason: String,
    },
}

/// What became of a received datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inbound {
    /// A media packet of a stream.
    Media(Received),
    /// A packet of the key exchange.
    KeyExchange,
}

/// One call's media; see the [module documentation](self).
#[derive(Debug)]
pub struct CallMedia {
    provider: &'static CryptoProvider,
    keyx: Box<dyn MediaKeyExchange>,
    streams: Vec<RtpSession>,
    /// Media waits for keys (an encrypting key exchange).
    secure: bool,
    /// Keys are installed.
    keyed: bool,
    /// The key exchange failed: nothing flows.
    failed: bool,
    events: VecDeque<MediaEvent>,
}

/// Why a packet was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MediaError {
    /// A stream refused it (see [`SessionError`]).
    #[error(transparent)]
    Session(#[from] SessionError),
    /// Media before keys (or after a failed exchange): dropped, never taken in clear.
    #[error("media before the keys are agreed")]
    NotSecured,
    /// Not a packet this call speaks (TURN, unknown first octet).
    #[error("not a media or key-exchange packet")]
    Unknown,
    /// No such stream.
    #[error("no stream {0}")]
    NoStream(usize),
}

impl CallMedia {
    /// The media of a call: its `streams` (their protection is replaced when keys come) and
    /// its key exchange, whose events so far (SDES keys, agreed in the SDP) are taken at once.
    pub fn new(
        provider: &'static CryptoProvider,
        keyx: Box<dyn MediaKeyExchange>,
        streams: Vec<RtpSession>,
    ) -> Self {
        let secure = keyx.method() != KeyMethod::None;
        let mut m = CallMedia {
            provider,
            keyx,
            streams,
            secure,
            keyed: false,
            failed: false,
            events: VecDeque::new(),
        };
        m.pump();
        m
    }

    /// The users confirmed (`true`) or rejected the SAS (ZRTP): the key exchange keeps it
    /// for later calls and reports the new protection as an event.
    pub fn set_sas_verified(&mut self, verified: bool) {
        self.keyx.set_sas_verified(verified);
        self.pump();
    }

    /// The key exchange's protection as it stands.
    pub fn protection(&self) -> MediaProtection {
        self.keyx.protection()
    }

    /// Whether media may flow (keys in place, or a plain call).
    pub fn is_flowing(&self) -> bool {
        !self.failed && (!self.secure || self.keyed)
    }

    /// Stream `i`.
    pub fn stream(&self, i: usize) -> Option<&RtpSession> {
        self.streams.get(i)
    }

    /// Takes the key exchange's events: keys installed on every stream, protection changes
    /// and failures passed on.
    fn pump(&mut self) {
        while let Some(ev) = self.keyx.poll_event() {
            match ev {
                KeyExchangeEvent::KeysReady(keys) => match self.install(&keys) {
                    Ok(()) => {
                        self.keyed = true;
                        self.events.push_back(MediaEvent::Secured);
                    }
                    Err(e) => self.fail(format!("the agreed SRTP keys are unusable: {e}")),
                },
                KeyExchangeEvent::Protection(p) => self.events.push_back(MediaEvent::Protection(p)),
                KeyExchangeEvent::Failed { reason } => self.fail(reason),
            }
        }
    }

    fn fail(&mut self, reason: String) {
        self.failed = true;
        self.events.push_back(MediaEvent::Failed { reason });
    }

    fn install(&mut self, keys: &SrtpKeys) -> Result<(), crate::SrtpError> {
        for s in &mut self.streams {
            let outbound = SrtpSession::new(self.provider, keys.outbound.clone())?;
            let inbound = SrtpSession::new(self.provider, keys.inbound.clone())?;
            let mut p = SrtpProtection::new(outbound, inbound);
            if let Some(rtcp) = &keys.rtcp {
                p = p.with_rtcp(
                    SrtpSession::new(self.provider, rtcp.outbound.clone())?,
                    SrtpSession::new(self.provider, rtcp.inbound.clone())?,
                );
            }
            s.set_protection(Box::new(p));
        }
        Ok(())
    }

    /// Handles a datagram received at `now` from `src` on stream `stream`'s port `channel`,
    /// in place: to the key exchange or to the stream, by its first octet (RFC 7983).
    pub fn handle_packet(
        &mut self,
        now: Instant,
        stream: usize,
        src: SocketAddr,
        channel: Channel,
        pkt: &mut [u8],
    ) -> Result<Inbound, MediaError> {
        match classify(pkt) {
            PacketClass::Zrtp | PacketClass::Dtls | PacketClass::Stun => {
                self.keyx.handle_packet(now, channel, pkt);
                self.pump();
                Ok(Inbound::KeyExchange)
            }
            PacketClass::Rtp | PacketClass::Rtcp => {
                if !self.is_flowing() {
                    return Err(MediaError::NotSecured);
                }
                let s = self
                    .streams
                    .get_mut(stream)
                    .ok_or(MediaError::NoStream(stream))?;
                Ok(Inbound::Media(s.handle_receive(now, src, channel, pkt)?))
            }
            PacketClass::TurnChannel | PacketClass::Unknown => Err(MediaError::Unknown),
        }
    }

    /// Encodes one frame of stream `stream` into a packet at the start of `buf`; `None` while
    /// media may not flow yet (the timeline moves on) or no remote address is known.
    pub fn send_audio(
        &mut self,
        now: Instant,
        stream: usize,
        pcm: &[i16],
        buf: &mut [u8],
    ) -> Result<Option<Transmit>, MediaError> {
        let flowing = self.is_flowing();
        let s = self
            .streams
            .get_mut(stream)
            .ok_or(MediaError::NoStream(stream))?;
        if !flowing {
            // Nothing in clear: the frame is skipped, its time passes.
            return Ok(None);
        }
        Ok(s.send_audio(now, pcm, buf)?)
    }

    /// The next packet to send (the key exchange's first, then RTCP reports), written into
    /// `buf`, with the stream whose sockets send it.
    pub fn poll_transmit(
        &mut self,
        now: Instant,
        buf: &mut [u8],
    ) -> Result<Option<(usize, Transmit)>, MediaError> {
        if let Some((len, channel)) = self.keyx.poll_transmit(now, buf) {
            self.pump();
            let dst = self.streams.first().and_then(|s| match channel {
                Channel::Rtp => s.remote_rtp(),
                Channel::Rtcp => s.remote_rtcp(),
            });
            if let Some(dst) = dst {
                return Ok(Some((0, Transmit { dst, channel, len })));
            }
        }
        if !self.is_flowing() {
            return Ok(None);
        }
        for (i, s) in self.streams.iter_mut().enumerate() {
            if let Some(t) = s.poll_transmit(now, buf)? {
                return Ok(Some((i, t)));
            }
        }
        Ok(None)
    }

    /// Plays the next 20 ms of stream `stream`'s received audio if due at `now`.
    pub fn poll_audio(
        &mut self,
        now: Instant,
        stream: usize,
        out: &mut [i16],
    ) -> Option<FrameKind> {
        self.streams.get_mut(stream)?.poll_audio(now, out)
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<MediaEvent> {
        self.events.pop_front()
    }

    /// The next instant something is due (the key exchange's timer, RTCP, playout).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.streams
            .iter()
            .filter_map(RtpSession::poll_timeout)
            .chain(self.keyx.poll_timeout())
            .min()
    }

    /// Fires the key exchange's timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.keyx.handle_timeout(now);
        self.pump();
    }

    /// Ends stream `stream`: its final report with a BYE, if media flowed.
    pub fn close(
        &mut self,
        now: Instant,
        stream: usize,
        reason: &str,
        buf: &mut [u8],
    ) -> Result<Option<Transmit>, MediaError> {
        if !self.is_flowing() {
            return Ok(None);
        }
        let s = self
            .streams
            .get_mut(stream)
            .ok_or(MediaError::NoStream(stream))?;
        Ok(s.close(now, reason, buf)?)
    }

    /// Stream `stream`'s statistics.
    pub fn stats(&self, stream: usize) -> Option<MediaStats> {
        self.streams.get(stream).map(RtpSession::stats)
    }
}
