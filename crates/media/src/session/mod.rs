//! # A sans-IO RTP/RTCP media session (RFC 3550, RFC 3551, RFC 5761, RFC 4733)
//!
//! [`RtpSession`] is one audio stream of a call, both directions, with no socket, no clock and
//! no thread RNG: the caller passes `now` (and, once, a random source and the wall-clock time
//! for RTCP NTP timestamps), hands in datagrams, and gets back packets to send in its own
//! buffers. It does:
//!
//! - **sending**: G.711 encoding of 20 ms frames into RTP (§5.1: random SSRC, initial sequence
//!   number and timestamp; marker on the first packet and on each talkspurt), then the
//!   [`Protection`] step (SRTP or none) in place ([`RtpSession::send_audio`]); telephone-events
//!   (RFC 4733) with [`RtpSession::send_event`];
//! - **receiving**: demultiplexing RTP from RTCP on one port (RFC 5761 §4: second octet
//!   192–223 is RTCP), source checks (symmetric RTP / comedia latching), unprotect,
//!   sequence-number validation (§A.1) with duplicate detection, interarrival jitter (§A.8),
//!   and decoding into the [`jitter`] buffer, played out by timestamp
//!   ([`RtpSession::poll_audio`]);
//! - **RTCP**: SR or RR with a reception report block, SDES CNAME (§6.1, §6.4, §6.5), at a
//!   randomised interval ([`RtpSession::poll_transmit`]); incoming SR/RR give the peer's view
//!   of our stream and the round-trip time (§6.4.1 LSR/DLSR); BYE on [`RtpSession::close`];
//! - **statistics**: [`RtpSession::stats`] gives packets sent, received and lost, jitter, the
//!   jitter buffer's counters, and what the peer reported.
//!
//! ## Addresses, symmetric RTP and comedia
//!
//! The session sends RTP to [`MediaConfig::remote_rtp`] (from the SDP) and RTCP to
//! [`MediaConfig::remote_rtcp`], or the RTP port plus one, or the RTP address when
//! [`MediaConfig::rtcp_mux`] is on (RFC 5761). The driver sends from the socket it receives on
//! (symmetric RTP, RFC 4961). With [`MediaConfig::latching`] on (comedia, for peers behind
//! NAT), the remote address is learned from the source of the first *valid* packet
//! (expected payload type, unprotected successfully, accepted sequence number), overriding
//! the SDP address; from then on packets from any other source are dropped
//! ([`SessionError::ForeignSource`]). Until an address is known, nothing is sent. With SRTP
//! only an authenticated packet can latch; in clear, the first well-formed packet wins
//! (comedia's known weakness, one more reason to keep media encryption mandatory).
//!
//! ## Driving it
//!
//! ```text
//! loop {
//!     every 20 ms of audio:  session.send_audio(now, &frame, &mut buf)? -> send buf[..len] to t.dst
//!     on a datagram:         session.handle_receive(now, src, channel, &mut datagram)
//!     while let Some(kind) = session.poll_audio(now, &mut frame_out) { record frame_out }
//!     while let Some(t) = session.poll_transmit(now, &mut buf)? { send buf[..t.len] }
//!     sleep until session.poll_timeout() (or the next audio frame)
//! }
//! ```
//!
//! ```
//! use std::time::{Duration, Instant, SystemTime};
//! use sotto_media::audio::{Codec, FRAME_SAMPLES, Tone};
//! use sotto_media::session::{Channel, MediaConfig, NoProtection, RtpSession};
//!
//! let rng = sotto_crypto_rust::provider().rng;
//! let (t0, wall) = (Instant::now(), SystemTime::now());
//! let a_addr = "127.0.0.1:4000".parse().unwrap();
//! let b_addr = "127.0.0.1:5000".parse().unwrap();
//! let mut a = RtpSession::new(MediaConfig::to(b_addr, Codec::Pcmu), Box::new(NoProtection::new()), rng, t0, wall).unwrap();
//! let mut b = RtpSession::new(MediaConfig::to(a_addr, Codec::Pcmu), Box::new(NoProtection::new()), rng, t0, wall).unwrap();
//!
//! let mut tone = Tone::new(440.0, 8000, 8000);
//! let (mut pcm, mut out) = ([0i16; FRAME_SAMPLES], [0i16; FRAME_SAMPLES]);
//! let mut buf = [0u8; 1500];
//! let mut played = 0;
//! for i in 0..50u32 {
//!     let now = t0 + Duration::from_millis(20 * u64::from(i));
//!     tone.fill(&mut pcm);
//!     let t = a.send_audio(now, &pcm, &mut buf).unwrap().unwrap();
//!     b.handle_receive(now, a_addr, Channel::Rtp, &mut buf[..t.len]).unwrap();
//!     while b.poll_audio(now, &mut out).is_some() {
//!         played += 1;
//!     }
//! }
//! assert_eq!(b.stats().packets_received, 50);
//! assert!(played >= 45);
//! ```

pub mod jitter;
pub mod packet;
pub mod pipeline;
mod protect;
pub mod rtcp;
mod source;
pub mod stream;

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use sotto_crypto::rng::SecureRandom;

use crate::audio::{Codec, TelephoneEvent};
use crate::rtp::{HeaderError, RTP_FIXED_HEADER_LEN};
use crate::srtp::SrtpError;

pub use jitter::{FrameKind, Inserted, JitterBuffer, JitterConfig, JitterStats};
pub use packet::{PacketClass, RtpPacket, classify, is_rtcp};
pub use pipeline::AudioPipeline;
pub use protect::{NoProtection, Protection, SrtpProtection};
pub use rtcp::{ReportBlock, RtcpError, RtcpPacket, SenderInfo};
pub use stream::{PayloadKind, RtpIn, RtpStream, StreamConfig, StreamIn};

/// Largest RTP payload accepted for decoding (samples of G.711).
pub const MAX_PAYLOAD: usize = 1500;

/// Settings of one audio stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaConfig {
    /// The codec we send.
    pub codec: Codec,
    /// Codecs we accept (their static payload types); by default PCMU and PCMA.
    pub receive_codecs: Vec<Codec>,
    /// The payload type negotiated for `telephone-event/8000`, if any (often 101).
    pub telephone_event_pt: Option<u8>,
    /// Where to send RTP (from the SDP `c=`/`m=` lines), if known.
    pub remote_rtp: Option<SocketAddr>,
    /// Where to send RTCP (SDP `a=rtcp`); by default the RTP port plus one, or the RTP
    /// address with `rtcp_mux`.
    pub remote_rtcp: Option<SocketAddr>,
    /// RTP and RTCP share one port (RFC 5761; set when both sides offered `a=rtcp-mux`).
    pub rtcp_mux: bool,
    /// Comedia: learn the remote address from the first valid packet and accept packets only
    /// from it afterwards.
    pub latching: bool,
    /// Mean RTCP report interval (RFC 3550 §6.2 minimum: 5 s); each interval is drawn
    /// uniformly in `[0.5, 1.5]` times this, the first one is half of it.
    pub rtcp_interval: Duration,
    /// Our RTCP CNAME (§6.5.1), e.g. `alice@host`; keep it free of secrets.
    pub cname: String,
    /// Jitter buffer settings.
    pub jitter: JitterConfig,
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            codec: Codec::Pcmu,
            receive_codecs: vec![Codec::Pcmu, Codec::Pcma],
            telephone_event_pt: Some(101),
            remote_rtp: None,
            remote_rtcp: None,
            rtcp_mux: false,
            latching: false,
            rtcp_interval: Duration::from_secs(5),
            cname: "sotto".to_owned(),
            jitter: JitterConfig::default(),
        }
    }
}

impl MediaConfig {
    /// The transport part of the settings (for [`RtpStream`]).
    pub fn stream(&self) -> StreamConfig {
        StreamConfig {
            remote_rtp: self.remote_rtp,
            remote_rtcp: self.remote_rtcp,
            rtcp_mux: self.rtcp_mux,
            latching: self.latching,
            rtcp_interval: self.rtcp_interval,
            cname: self.cname.clone(),
        }
    }

    /// The defaults, sending `codec` to `remote_rtp`.
    pub fn to(remote_rtp: SocketAddr, codec: Codec) -> Self {
        MediaConfig {
            codec,
            remote_rtp: Some(remote_rtp),
            ..MediaConfig::default()
        }
    }
}

/// Which of the stream's two local ports (sockets) a packet uses. With rtcp-mux everything
/// uses [`Channel::Rtp`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    /// The RTP port.
    Rtp,
    /// The separate RTCP port (RTP port plus one).
    Rtcp,
}

/// A packet to send, written at the start of the caller's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit {
    /// Destination.
    pub dst: SocketAddr,
    /// Local port (socket) to send from.
    pub channel: Channel,
    /// Length of the packet in the buffer.
    pub len: usize,
}

/// What an accepted incoming packet was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Received {
    /// An audio packet, with what the jitter buffer did with it.
    Audio {
        /// Sequence number.
        seq: u16,
        /// RTP timestamp.
        timestamp: u32,
        /// Payload type.
        payload_type: u8,
        /// Marker bit.
        marker: bool,
        /// Stored, late, or anchoring the playout.
        inserted: Inserted,
    },
    /// A telephone-event packet (RFC 4733).
    Event {
        /// The event block.
        event: TelephoneEvent,
        /// First packet seen of this event (a new event timestamp).
        start: bool,
        /// First end packet seen of this event (retransmitted end packets give `false`).
        end: bool,
    },
    /// A compound RTCP packet.
    Rtcp {
        /// Packets it held.
        packets: usize,
        /// It held a BYE from the remote source.
        bye: bool,
    },
}

/// Why a packet was refused or could not be sent. Incoming refusals are dropped and counted
/// ([`MediaStats::packets_dropped`]), never answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// Not a well-formed RTP packet.
    #[error("malformed RTP: {0}")]
    Malformed(#[from] HeaderError),
    /// Not a well-formed RTCP compound packet.
    #[error("malformed RTCP: {0}")]
    Rtcp(#[from] RtcpError),
    /// SRTP/SRTCP refused the packet (authentication, replay...), or could not protect.
    #[error(transparent)]
    Srtp(#[from] SrtpError),
    /// A payload type that was not negotiated.
    #[error("unexpected payload type {0}")]
    UnknownPayloadType(u8),
    /// A packet from another address than the latched one.
    #[error("packet from an unexpected source")]
    ForeignSource,
    /// A sequence number already received.
    #[error("duplicate packet (seq {seq})")]
    Duplicate {
        /// Its sequence number.
        seq: u16,
    },
    /// A sequence-number jump not (yet) confirmed (RFC 3550 §A.1).
    #[error("sequence jump (seq {seq})")]
    BadSequence {
        /// Its sequence number.
        seq: u16,
    },
    /// The payload is larger than [`MAX_PAYLOAD`].
    #[error("payload too large: {0} bytes")]
    PayloadTooLarge(usize),
    /// The caller's buffer cannot hold the packet.
    #[error("buffer too small: need {need} bytes")]
    BufferTooSmall {
        /// Bytes needed.
        need: usize,
    },
    /// The random source failed.
    #[error("random source: {0}")]
    Random(sotto_crypto::Error),
}

/// Statistics of the stream (the `media_stats` event).
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct MediaStats {
    /// Our SSRC.
    pub local_ssrc: u32,
    /// The remote SSRC, once a packet was accepted.
    pub remote_ssrc: Option<u32>,
    /// RTP packets sent (audio and events).
    pub packets_sent: u64,
    /// Payload octets sent.
    pub octets_sent: u64,
    /// RTP packets accepted (duplicates excluded).
    pub packets_received: u64,
    /// Payload octets accepted.
    pub octets_received: u64,
    /// Packets lost: expected (from sequence numbers) minus received (RFC 3550 §6.4.1).
    pub packets_lost: i64,
    /// Duplicates dropped.
    pub packets_duplicate: u64,
    /// Datagrams refused, RTP or RTCP (malformed, unauthenticated or replayed, foreign
    /// source, unknown payload type, sequence jump, too large); duplicates caught by the
    /// session's own window are counted in `packets_duplicate` instead.
    pub packets_dropped: u64,
    /// Interarrival jitter (RFC 3550 §6.4.1), in milliseconds.
    pub jitter_ms: f64,
    /// Jitter-buffer counters (frames played and concealed, late packets, anchors).
    pub jitter_buffer: JitterStats,
    /// Current target playout delay, in milliseconds.
    pub jitter_buffer_delay_ms: f64,
    /// RTCP compound packets sent.
    pub rtcp_sent: u64,
    /// RTCP compound packets accepted.
    pub rtcp_received: u64,
    /// Fraction of our packets the peer reported lost in its last report (0.0–1.0).
    pub remote_fraction_lost: Option<f64>,
    /// Cumulative loss of our packets the peer reported.
    pub remote_packets_lost: Option<i64>,
    /// Jitter of our packets the peer reported, in milliseconds.
    pub remote_jitter_ms: Option<f64>,
    /// Round-trip time from the peer's last report (RFC 3550 §6.4.1), in milliseconds.
    pub rtt_ms: Option<f64>,
    /// The peer sent an RTCP BYE.
    pub remote_bye: bool,
    /// Where RTP is sent (latched or configured).
    pub remote_rtp: Option<SocketAddr>,
    /// The protection step's name (`none`, `srtp`).
    pub protection: &'static str,
}

/// One audio stream of a call: the transport half ([`RtpStream`]) and the audio half
/// ([`AudioPipeline`]) together; see the [module documentation](self).
pub struct RtpSession {
    config: MediaConfig,
    stream: RtpStream,
    audio: AudioPipeline,
}

impl core::fmt::Debug for RtpSession {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RtpSession")
            .field("stream", &self.stream)
            .finish_non_exhaustive()
    }
}

impl RtpSession {
    /// A new stream. Draws the SSRC, the initial sequence number and timestamp (RFC 3550
    /// §5.1) and the RTCP timing dither from `rng`; `now` and `wall` are the same instant on
    /// the monotonic and wall clocks (the latter only feeds RTCP NTP timestamps).
    pub fn new(
        config: MediaConfig,
        protection: Box<dyn Protection>,
        rng: &dyn SecureRandom,
        now: Instant,
        wall: SystemTime,
    ) -> Result<Self, SessionError> {
        let stream = RtpStream::new(config.stream(), protection, rng, now, wall)?;
        Ok(RtpSession {
            audio: AudioPipeline::new(&config),
            stream,
            config,
        })
    }

    /// Our SSRC.
    pub fn local_ssrc(&self) -> u32 {
        self.stream.local_ssrc()
    }

    /// Where RTP goes: the latched address, else the configured one.
    pub fn remote_rtp(&self) -> Option<SocketAddr> {
        self.stream.remote_rtp()
    }

    /// Where RTCP goes.
    pub fn remote_rtcp(&self) -> Option<SocketAddr> {
        self.stream.remote_rtcp()
    }

    /// The configuration.
    pub fn config(&self) -> &MediaConfig {
        &self.config
    }

    /// Changes the remote addresses (a new SDP offer/answer); forgets latched ones.
    pub fn set_remote(&mut self, rtp: Option<SocketAddr>, rtcp: Option<SocketAddr>) {
        self.config.remote_rtp = rtp;
        self.config.remote_rtcp = rtcp;
        self.stream.set_remote(rtp, rtcp);
    }

    /// Turns RTP/RTCP multiplexing on or off (after an offer/answer).
    pub fn set_rtcp_mux(&mut self, on: bool) {
        self.config.rtcp_mux = on;
        self.stream.set_rtcp_mux(on);
    }

    /// Replaces the protection step (new keys after a re-INVITE or a key exchange).
    pub fn set_protection(&mut self, protection: Box<dyn Protection>) {
        self.stream.set_protection(protection);
    }

    /// Sets the marker bit on the next audio packet (start of a talkspurt after silence).
    pub fn mark_talkspurt(&mut self) {
        self.audio.mark_talkspurt();
    }

    /// The RTP timestamp of the next audio sample we send.
    pub fn next_timestamp(&self) -> u32 {
        self.stream.next_timestamp()
    }

    /// Encodes one frame of audio (normally [`crate::audio::FRAME_SAMPLES`] samples, 20 ms)
    /// into a protected RTP packet at the start of `buf`. Returns `None` (and only advances
    /// the timestamp) while no remote address is known.
    pub fn send_audio(
        &mut self,
        now: Instant,
        pcm: &[i16],
        buf: &mut [u8],
    ) -> Result<Option<Transmit>, SessionError> {
        let timestamp = self.stream.advance(now, pcm.len());
        if self.stream.remote_rtp().is_none() {
            return Ok(None);
        }
        let need = RTP_FIXED_HEADER_LEN + pcm.len() + self.stream.rtp_overhead();
        if buf.len() < need {
            return Err(SessionError::BufferTooSmall { need });
        }
        let payload = buf
            .get_mut(RTP_FIXED_HEADER_LEN..RTP_FIXED_HEADER_LEN + pcm.len())
            .ok_or(SessionError::BufferTooSmall { need })?;
        let (marker, pt, n) = self.audio.encode(pcm, payload);
        self.stream.send(buf, (marker, pt, timestamp), n)
    }

    /// Sends one telephone-event packet (RFC 4733 §2.5). The first packet of an event
    /// (`event.duration` counted from [`RtpSession::next_timestamp`] at that moment) carries
    /// the marker; later packets of the same event (growing `duration`, then `end` set, the
    /// end packet sent three times) reuse its timestamp until a packet with `end` has been
    /// sent and a new event starts. Audio keeps its own timeline. Returns `None` without a
    /// remote address or telephone-event payload type.
    pub fn send_event(
        &mut self,
        event: TelephoneEvent,
        buf: &mut [u8],
    ) -> Result<Option<Transmit>, SessionError> {
        let (Some(_), Some(pt)) = (self.stream.remote_rtp(), self.audio.telephone_event_pt())
        else {
            return Ok(None);
        };
        let need = RTP_FIXED_HEADER_LEN + 4 + self.stream.rtp_overhead();
        if buf.len() < need {
            return Err(SessionError::BufferTooSmall { need });
        }
        buf.get_mut(RTP_FIXED_HEADER_LEN..RTP_FIXED_HEADER_LEN + 4)
            .ok_or(SessionError::BufferTooSmall { need })?
            .copy_from_slice(&event.encode());
        let (timestamp, marker) = self
            .audio
            .event_timing(&event, self.stream.next_timestamp());
        self.stream.send(buf, (marker, pt, timestamp), 4)
    }

    /// Handles one datagram received at `now` from `src` on the local port `channel`. The
    /// packet is unprotected in place. Every error means the packet was dropped (and
    /// counted).
    pub fn handle_receive(
        &mut self,
        now: Instant,
        src: SocketAddr,
        channel: Channel,
        pkt: &mut [u8],
    ) -> Result<Received, SessionError> {
        let audio = &self.audio;
        let kind = |pt: u8| audio.payload_kind(pt);
        match self.stream.receive(now, src, channel, pkt, &kind)? {
            StreamIn::Rtcp { packets, bye } => Ok(Received::Rtcp { packets, bye }),
            StreamIn::Rtp(rtp) => {
                let payload = pkt.get(rtp.payload.0..rtp.payload.1).unwrap_or_default();
                let r = self.audio.receive(now, &rtp, payload);
                if r.is_err() {
                    self.stream.count_dropped();
                }
                r
            }
        }
    }

    /// Plays the next 20 ms of received audio if due at `now` (see [`JitterBuffer::poll`]);
    /// call until `None`.
    pub fn poll_audio(&mut self, now: Instant, out: &mut [i16]) -> Option<FrameKind> {
        self.audio.poll_audio(now, out)
    }

    /// The next instant something is due: an RTCP report or a playout frame.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (
            self.stream.poll_timeout(),
            self.audio.jitter().next_playout(),
        ) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Writes the RTCP report due at `now`, if any, into `buf` (512 octets are plenty).
    pub fn poll_transmit(
        &mut self,
        now: Instant,
        buf: &mut [u8],
    ) -> Result<Option<Transmit>, SessionError> {
        self.stream.poll_transmit(now, buf)
    }

    /// Ends the stream: writes a final report with a BYE (RFC 3550 §6.6) and stops RTCP.
    pub fn close(
        &mut self,
        now: Instant,
        reason: &str,
        buf: &mut [u8],
    ) -> Result<Option<Transmit>, SessionError> {
        self.stream.close(now, reason, buf)
    }

    /// The statistics now.
    pub fn stats(&self) -> MediaStats {
        let mut s = self.stream.stats();
        let jitter = self.audio.jitter();
        s.jitter_buffer = jitter.stats();
        s.jitter_buffer_delay_ms = jitter.target_delay().as_secs_f64() * 1000.0;
        s
    }
}
