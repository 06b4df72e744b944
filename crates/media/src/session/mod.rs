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
mod protect;
pub mod rtcp;
mod source;

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use sotto_crypto::rng::SecureRandom;

use crate::audio::{Codec, SAMPLE_RATE, TelephoneEvent};
use crate::rtp::{HeaderError, RTP_FIXED_HEADER_LEN, RtpHeader};
use crate::srtp::SrtpError;

pub use jitter::{FrameKind, Inserted, JitterBuffer, JitterConfig, JitterStats};
pub use packet::{PacketClass, RtpPacket, classify, is_rtcp};
pub use protect::{NoProtection, Protection, SrtpProtection};
pub use rtcp::{ReportBlock, RtcpError, RtcpPacket, SenderInfo};

use packet::{RtpFields, write_header};
use source::{SeqVerdict, SourceStats};

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

fn ts_to_ms(ts_units: f64) -> f64 {
    ts_units * 1000.0 / f64::from(SAMPLE_RATE)
}

/// One audio stream of a call; see the [module documentation](self).
pub struct RtpSession {
    config: MediaConfig,
    protection: Box<dyn Protection>,
    start: Instant,
    wall_start: SystemTime,
    local_ssrc: u32,
    seq: u16,
    ts_base: u32,
    /// Samples sent so far (the send timestamp is `ts_base` plus this).
    samples_sent: u64,
    marker_next: bool,
    /// Timestamp and time of the last audio frame, to give SRs the RTP time of `now`.
    last_send: Option<(u32, Instant)>,
    /// Timestamp of the last telephone-event sent, and whether its end was sent.
    event_ts: Option<(u32, bool)>,
    packets_sent: u64,
    octets_sent: u64,
    sent_since_report: bool,
    latched_rtp: Option<SocketAddr>,
    latched_rtcp: Option<SocketAddr>,
    source: Option<SourceStats>,
    /// Middle NTP bits of the peer's last SR and when it arrived.
    last_sr: Option<(u32, Instant)>,
    /// Timestamp of the last telephone-event seen, and whether its end was seen.
    last_event: Option<(u32, bool)>,
    jitter: JitterBuffer,
    scratch: Vec<i16>,
    next_rtcp: Instant,
    dither: u64,
    stats: MediaStats,
    closed: bool,
}

impl core::fmt::Debug for RtpSession {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RtpSession")
            .field("local_ssrc", &self.local_ssrc)
            .field("protection", &self.protection.name())
            .field("remote_rtp", &self.remote_rtp())
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
        let mut r = [0u8; 18];
        rng.fill(&mut r).map_err(SessionError::Random)?;
        let [s0, s1, s2, s3, q0, q1, t0, t1, t2, t3, d @ ..] = r;
        let stats = MediaStats {
            local_ssrc: u32::from_be_bytes([s0, s1, s2, s3]),
            protection: protection.name(),
            remote_rtp: config.remote_rtp,
            ..MediaStats::default()
        };
        let first_rtcp = now + config.rtcp_interval / 2;
        Ok(RtpSession {
            jitter: JitterBuffer::new(config.jitter),
            protection,
            start: now,
            wall_start: wall,
            local_ssrc: stats.local_ssrc,
            seq: u16::from_be_bytes([q0, q1]),
            // Keep the initial timestamp in the lower half so a long call never wraps twice.
            ts_base: u32::from_be_bytes([t0, t1, t2, t3]) >> 1,
            samples_sent: 0,
            marker_next: true,
            last_send: None,
            event_ts: None,
            packets_sent: 0,
            octets_sent: 0,
            sent_since_report: false,
            latched_rtp: None,
            latched_rtcp: None,
            source: None,
            last_sr: None,
            last_event: None,
            scratch: vec![0; MAX_PAYLOAD],
            next_rtcp: first_rtcp,
            dither: u64::from_be_bytes(d) | 1,
            stats,
            closed: false,
            config,
        })
    }

    /// Our SSRC.
    pub fn local_ssrc(&self) -> u32 {
        self.local_ssrc
    }

    /// Where RTP goes: the latched address, else the configured one.
    pub fn remote_rtp(&self) -> Option<SocketAddr> {
        self.latched_rtp.or(self.config.remote_rtp)
    }

    /// Where RTCP goes.
    pub fn remote_rtcp(&self) -> Option<SocketAddr> {
        if self.config.rtcp_mux {
            return self.remote_rtp();
        }
        self.latched_rtcp.or(self.config.remote_rtcp).or_else(|| {
            self.remote_rtp().map(|mut a| {
                a.set_port(a.port().wrapping_add(1));
                a
            })
        })
    }

    /// The configuration.
    pub fn config(&self) -> &MediaConfig {
        &self.config
    }

    /// Changes the remote addresses (a new SDP offer/answer); forgets latched ones.
    pub fn set_remote(&mut self, rtp: Option<SocketAddr>, rtcp: Option<SocketAddr>) {
        self.config.remote_rtp = rtp;
        self.config.remote_rtcp = rtcp;
        self.latched_rtp = None;
        self.latched_rtcp = None;
    }

    /// Turns RTP/RTCP multiplexing on or off (after an offer/answer).
    pub fn set_rtcp_mux(&mut self, on: bool) {
        self.config.rtcp_mux = on;
    }

    /// Replaces the protection step (new keys after a re-INVITE or a ZRTP exchange).
    pub fn set_protection(&mut self, protection: Box<dyn Protection>) {
        self.stats.protection = protection.name();
        self.protection = protection;
    }

    /// Sets the marker bit on the next audio packet (start of a talkspurt after silence).
    pub fn mark_talkspurt(&mut self) {
        self.marker_next = true;
    }

    /// The RTP timestamp of the next audio sample we send.
    pub fn next_timestamp(&self) -> u32 {
        self.ts_base.wrapping_add(self.samples_sent as u32)
    }

    fn write_packet(
        &mut self,
        buf: &mut [u8],
        fields: RtpFields,
        payload_len: usize,
        dst: SocketAddr,
    ) -> Result<Transmit, SessionError> {
        write_header(buf, fields).ok_or(SessionError::BufferTooSmall {
            need: RTP_FIXED_HEADER_LEN + payload_len,
        })?;
        let len = self
            .protection
            .protect_rtp(buf, RTP_FIXED_HEADER_LEN + payload_len)?;
        self.seq = self.seq.wrapping_add(1);
        self.packets_sent += 1;
        self.octets_sent += payload_len as u64;
        self.sent_since_report = true;
        Ok(Transmit {
            dst,
            channel: Channel::Rtp,
            len,
        })
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
        let timestamp = self.next_timestamp();
        self.last_send = Some((timestamp, now));
        self.samples_sent += pcm.len() as u64;
        let Some(dst) = self.remote_rtp() else {
            return Ok(None);
        };
        let need = RTP_FIXED_HEADER_LEN + pcm.len() + self.protection.rtp_overhead();
        if buf.len() < need {
            return Err(SessionError::BufferTooSmall { need });
        }
        let payload = buf
            .get_mut(RTP_FIXED_HEADER_LEN..RTP_FIXED_HEADER_LEN + pcm.len())
            .ok_or(SessionError::BufferTooSmall { need })?;
        let n = self.config.codec.encode(pcm, payload);
        let fields = RtpFields {
            marker: self.marker_next,
            payload_type: self.config.codec.payload_type(),
            seq: self.seq,
            timestamp,
            ssrc: self.local_ssrc,
        };
        let t = self.write_packet(buf, fields, n, dst)?;
        self.marker_next = false;
        Ok(Some(t))
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
        let (Some(dst), Some(pt)) = (self.remote_rtp(), self.config.telephone_event_pt) else {
            return Ok(None);
        };
        // A call with `end` after an end packet retransmits it; a call without `end` after
        // an end packet starts a new event.
        let (timestamp, marker) = match self.event_ts {
            Some((ts, ended)) if !ended || event.end => (ts, false),
            _ => (self.next_timestamp(), true),
        };
        let need = RTP_FIXED_HEADER_LEN + 4 + self.protection.rtp_overhead();
        if buf.len() < need {
            return Err(SessionError::BufferTooSmall { need });
        }
        buf.get_mut(RTP_FIXED_HEADER_LEN..RTP_FIXED_HEADER_LEN + 4)
            .ok_or(SessionError::BufferTooSmall { need })?
            .copy_from_slice(&event.encode());
        let fields = RtpFields {
            marker,
            payload_type: pt,
            seq: self.seq,
            timestamp,
            ssrc: self.local_ssrc,
        };
        let t = self.write_packet(buf, fields, 4, dst)?;
        self.event_ts = Some((timestamp, event.end));
        Ok(Some(t))
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
        let r = if channel == Channel::Rtcp || is_rtcp(pkt) {
            self.receive_rtcp(now, src, channel, pkt)
        } else {
            self.receive_rtp(now, src, pkt)
        };
        match &r {
            Ok(_) | Err(SessionError::Duplicate { .. }) => {}
            Err(_) => self.stats.packets_dropped += 1,
        }
        r
    }

    fn check_source(&self, src: SocketAddr, channel: Channel) -> Result<(), SessionError> {
        let latched = match channel {
            Channel::Rtp => self.latched_rtp,
            Channel::Rtcp => self.latched_rtcp,
        };
        match latched {
            Some(a) if a != src => Err(SessionError::ForeignSource),
            _ => Ok(()),
        }
    }

    fn latch(&mut self, src: SocketAddr, channel: Channel) {
        if !self.config.latching {
            return;
        }
        match channel {
            Channel::Rtp if self.latched_rtp.is_none() => self.latched_rtp = Some(src),
            Channel::Rtcp if self.latched_rtcp.is_none() => self.latched_rtcp = Some(src),
            _ => {}
        }
    }

    fn arrival_ts(&self, now: Instant) -> u64 {
        let ns = now.saturating_duration_since(self.start).as_nanos();
        (ns * u128::from(SAMPLE_RATE) / 1_000_000_000) as u64
    }

    fn receive_rtp(
        &mut self,
        now: Instant,
        src: SocketAddr,
        pkt: &mut [u8],
    ) -> Result<Received, SessionError> {
        self.check_source(src, Channel::Rtp)?;
        let header = RtpHeader::parse(pkt)?;
        let pt = header.payload_type;
        let codec = Codec::from_payload_type(pt).filter(|c| self.config.receive_codecs.contains(c));
        let is_event = self.config.telephone_event_pt == Some(pt);
        if codec.is_none() && !is_event {
            return Err(SessionError::UnknownPayloadType(pt));
        }
        let n = self.protection.unprotect_rtp(pkt)?;
        let p = RtpPacket::parse(pkt.get(..n).unwrap_or_default())?;
        if p.payload.len() > MAX_PAYLOAD {
            return Err(SessionError::PayloadTooLarge(p.payload.len()));
        }
        match self.source.as_mut() {
            Some(s) if s.ssrc == p.ssrc => match s.update_seq(p.seq) {
                SeqVerdict::Accept(_) => {}
                SeqVerdict::Duplicate => {
                    self.stats.packets_duplicate += 1;
                    return Err(SessionError::Duplicate { seq: p.seq });
                }
                SeqVerdict::BadJump => return Err(SessionError::BadSequence { seq: p.seq }),
            },
            _ => {
                // A first packet, or a new SSRC (the peer restarted its stream).
                self.source = Some(SourceStats::new(p.ssrc, p.seq));
                self.jitter = JitterBuffer::new(self.config.jitter);
                self.last_event = None;
            }
        }
        self.latch(src, Channel::Rtp);
        let arrival = self.arrival_ts(now);
        let (marker, timestamp, seq, len) = (p.marker, p.timestamp, p.seq, p.payload.len());
        let Some(source) = self.source.as_mut() else {
            return Err(SessionError::BadSequence { seq }); // invariant: set above
        };
        source.octets += len as u64;
        if is_event {
            let event = TelephoneEvent::parse(p.payload)
                .map_err(|_| HeaderError::Truncated { len, need: 4 })?;
            let (start, end) = match self.last_event {
                Some((ts, seen_end)) if ts == timestamp => (false, event.end && !seen_end),
                _ => (true, event.end),
            };
            let seen_end = end || matches!(self.last_event, Some((ts, true)) if ts == timestamp);
            self.last_event = Some((timestamp, seen_end));
            return Ok(Received::Event { event, start, end });
        }
        source.update_jitter(arrival, timestamp);
        let jitter = source.jitter();
        let samples = match codec {
            Some(c) => c.decode(p.payload, &mut self.scratch),
            None => 0,
        };
        let inserted = match self.scratch.get(..samples) {
            Some(s) if !s.is_empty() => self.jitter.insert(now, timestamp, marker, jitter, s),
            _ => Inserted::Stored,
        };
        Ok(Received::Audio {
            seq,
            timestamp,
            payload_type: pt,
            marker,
            inserted,
        })
    }

    fn receive_rtcp(
        &mut self,
        now: Instant,
        src: SocketAddr,
        channel: Channel,
        pkt: &mut [u8],
    ) -> Result<Received, SessionError> {
        self.check_source(src, channel)?;
        crate::rtp::RtcpHeader::parse(pkt)?;
        let n = self.protection.unprotect_rtcp(pkt)?;
        let packets = rtcp::parse_compound(pkt.get(..n).unwrap_or_default())?;
        self.latch(src, channel);
        self.stats.rtcp_received += 1;
        let remote = self.source.as_ref().map(|s| s.ssrc);
        let mut bye = false;
        for p in &packets {
            let reports = match p {
                RtcpPacket::SenderReport {
                    ssrc,
                    info,
                    reports,
                } => {
                    if remote.is_none_or(|r| r == *ssrc) {
                        self.last_sr = Some((rtcp::ntp_middle(info.ntp), now));
                    }
                    reports.as_slice()
                }
                RtcpPacket::ReceiverReport { reports, .. } => reports.as_slice(),
                RtcpPacket::Bye { ssrcs, .. } => {
                    if remote.is_none_or(|r| ssrcs.contains(&r)) {
                        bye = true;
                        self.stats.remote_bye = true;
                    }
                    &[]
                }
                _ => &[],
            };
            for b in reports.iter().filter(|b| b.ssrc == self.local_ssrc) {
                self.stats.remote_fraction_lost = Some(f64::from(b.fraction_lost) / 256.0);
                self.stats.remote_packets_lost = Some(i64::from(b.cumulative_lost));
                self.stats.remote_jitter_ms = Some(ts_to_ms(f64::from(b.jitter)));
                if b.lsr != 0 {
                    let a = rtcp::ntp_middle(self.ntp_at(now));
                    let rtt = a.wrapping_sub(b.lsr).wrapping_sub(b.dlsr);
                    // A negative (wrapped) value means clock trouble: ignore it.
                    if (rtt as i32) >= 0 {
                        self.stats.rtt_ms = Some(f64::from(rtt) * 1000.0 / 65536.0);
                    }
                }
            }
        }
        Ok(Received::Rtcp {
            packets: packets.len(),
            bye,
        })
    }

    fn ntp_at(&self, now: Instant) -> u64 {
        rtcp::ntp_timestamp(self.wall_start + now.saturating_duration_since(self.start))
    }

    /// Plays the next 20 ms of received audio if due at `now` (see [`JitterBuffer::poll`]);
    /// call until `None`.
    pub fn poll_audio(&mut self, now: Instant, out: &mut [i16]) -> Option<FrameKind> {
        self.jitter.poll(now, out)
    }

    /// The next instant something is due: an RTCP report or a playout frame.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let rtcp = (!self.closed).then_some(self.next_rtcp);
        match (rtcp, self.jitter.next_playout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn next_interval(&mut self) -> Duration {
        // xorshift64: RTCP timing only needs to be spread, not unpredictable (§6.2).
        let mut x = self.dither;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.dither = x;
        let factor = 0.5 + (x >> 11) as f64 / (1u64 << 53) as f64; // [0.5, 1.5)
        self.config.rtcp_interval.mul_f64(factor)
    }

    /// Writes a compound report (SR or RR, then SDES CNAME, then BYE if `bye`).
    fn write_report(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        bye: Option<&str>,
    ) -> Result<usize, SessionError> {
        let blocks: Vec<ReportBlock> = match self.source.as_mut() {
            Some(s) => {
                let lsr_dlsr = match self.last_sr {
                    Some((mid, at)) => {
                        let d = now.saturating_duration_since(at);
                        (mid, (d.as_secs_f64() * 65536.0) as u32)
                    }
                    None => (0, 0),
                };
                vec![s.report_block(lsr_dlsr)]
            }
            None => Vec::new(),
        };
        let small = || SessionError::BufferTooSmall { need: 128 };
        let mut len = if self.sent_since_report {
            // The RTP timestamp of `now` on our sending timeline (§6.4.1): the last frame's,
            // plus the time since it was sent.
            let rtp_timestamp = match self.last_send {
                Some((ts, at)) => {
                    let d = now.saturating_duration_since(at).as_nanos();
                    ts.wrapping_add((d * u128::from(SAMPLE_RATE) / 1_000_000_000) as u32)
                }
                None => self.next_timestamp(),
            };
            let info = SenderInfo {
                ntp: self.ntp_at(now),
                rtp_timestamp,
                packet_count: self.packets_sent as u32,
                octet_count: self.octets_sent as u32,
            };
            rtcp::write_sr(buf, self.local_ssrc, &info, &blocks).ok_or_else(small)?
        } else {
            rtcp::write_rr(buf, self.local_ssrc, &blocks).ok_or_else(small)?
        };
        len += rtcp::write_sdes_cname(
            buf.get_mut(len..).ok_or_else(small)?,
            self.local_ssrc,
            &self.config.cname,
        )
        .ok_or_else(small)?;
        if let Some(reason) = bye {
            let reason = (!reason.is_empty()).then_some(reason);
            len += rtcp::write_bye(
                buf.get_mut(len..).ok_or_else(small)?,
                self.local_ssrc,
                reason,
            )
            .ok_or_else(small)?;
        }
        self.sent_since_report = false;
        let len = self.protection.protect_rtcp(buf, len)?;
        self.stats.rtcp_sent += 1;
        Ok(len)
    }

    /// Writes the RTCP report due at `now`, if any, into `buf` (512 octets are plenty).
    pub fn poll_transmit(
        &mut self,
        now: Instant,
        buf: &mut [u8],
    ) -> Result<Option<Transmit>, SessionError> {
        if self.closed || now < self.next_rtcp {
            return Ok(None);
        }
        self.next_rtcp = now + self.next_interval();
        let Some(dst) = self.remote_rtcp() else {
            return Ok(None);
        };
        let len = self.write_report(now, buf, None)?;
        Ok(Some(Transmit {
            dst,
            channel: self.rtcp_channel(),
            len,
        }))
    }

    fn rtcp_channel(&self) -> Channel {
        if self.config.rtcp_mux {
            Channel::Rtp
        } else {
            Channel::Rtcp
        }
    }

    /// Ends the stream: writes a final report with a BYE (RFC 3550 §6.6) and stops RTCP.
    pub fn close(
        &mut self,
        now: Instant,
        reason: &str,
        buf: &mut [u8],
    ) -> Result<Option<Transmit>, SessionError> {
        if self.closed {
            return Ok(None);
        }
        self.closed = true;
        let Some(dst) = self.remote_rtcp() else {
            return Ok(None);
        };
        let len = self.write_report(now, buf, Some(reason))?;
        Ok(Some(Transmit {
            dst,
            channel: self.rtcp_channel(),
            len,
        }))
    }

    /// The statistics now.
    pub fn stats(&self) -> MediaStats {
        let mut s = self.stats.clone();
        s.packets_sent = self.packets_sent;
        s.octets_sent = self.octets_sent;
        s.remote_rtp = self.remote_rtp();
        if let Some(src) = &self.source {
            s.remote_ssrc = Some(src.ssrc);
            s.packets_received = src.received;
            s.octets_received = src.octets;
            s.packets_lost = src.lost();
            s.jitter_ms = ts_to_ms(f64::from(src.jitter()));
        }
        s.jitter_buffer = self.jitter.stats();
        s.jitter_buffer_delay_ms = self.jitter.target_delay().as_secs_f64() * 1000.0;
        s
    }
}
