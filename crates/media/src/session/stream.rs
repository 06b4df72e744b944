//! The transport half of a media stream (RFC 3550), whatever it carries: our SSRC, sequence
//! numbers and RTP timeline, the protection step (SRTP or none), where packets go and where
//! they may come from (symmetric RTP, comedia latching), reception statistics and RTCP
//! reports. What the payloads mean (codec, jitter buffer, DTMF) is the pipeline's
//! ([`super::pipeline::AudioPipeline`] for audio).

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use sotto_crypto::rng::SecureRandom;

use super::packet::{RtpFields, write_header};
use super::rtcp::{self, ReportBlock, RtcpPacket, SenderInfo};
use super::source::{SeqVerdict, SourceStats};
use super::{Channel, MediaStats, Protection, SessionError, Transmit};
use crate::audio::SAMPLE_RATE;
use crate::rtp::{RTP_FIXED_HEADER_LEN, RtpHeader};

/// Where a stream's packets go and come from, and how it reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamConfig {
    /// Where to send RTP, if known.
    pub remote_rtp: Option<SocketAddr>,
    /// Where to send RTCP; by default the RTP port plus one, or the RTP address with mux.
    pub remote_rtcp: Option<SocketAddr>,
    /// RTP and RTCP share one port (RFC 5761).
    pub rtcp_mux: bool,
    /// Comedia: learn the remote address from the first valid packet.
    pub latching: bool,
    /// Mean RTCP report interval.
    pub rtcp_interval: Duration,
    /// Our RTCP CNAME.
    pub cname: String,
}

/// What the pipeline makes of a payload type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadKind {
    /// Media on the stream's timeline (counts for interarrival jitter).
    Media,
    /// Events (RFC 4733: one timestamp for a whole event, so no jitter sample).
    Event,
    /// Not negotiated: refused before any decryption.
    Refused,
}

/// An accepted RTP packet, unprotected in place: where its payload is, and its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpIn {
    /// Payload type.
    pub payload_type: u8,
    /// Marker bit.
    pub marker: bool,
    /// Sequence number.
    pub seq: u16,
    /// RTP timestamp.
    pub timestamp: u32,
    /// The payload's range in the packet buffer.
    pub payload: (usize, usize),
    /// The source's interarrival jitter after this packet (timestamp units).
    pub jitter: u32,
    /// The first packet of a new remote source (the pipeline starts afresh).
    pub new_source: bool,
}

/// What an accepted incoming datagram was, for the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamIn {
    /// An RTP packet.
    Rtp(RtpIn),
    /// A compound RTCP packet: how many packets it held, and whether one was the remote
    /// source's BYE.
    Rtcp {
        /// Packets it held.
        packets: usize,
        /// It held a BYE from the remote source.
        bye: bool,
    },
}

/// The transport half of one stream; see the [module documentation](self).
pub struct RtpStream {
    config: StreamConfig,
    protection: Box<dyn Protection>,
    start: Instant,
    wall_start: SystemTime,
    local_ssrc: u32,
    seq: u16,
    ts_base: u32,
    /// Samples sent so far (the send timestamp is `ts_base` plus this).
    samples_sent: u64,
    /// Timestamp and time of the last frame, to give SRs the RTP time of `now`.
    last_send: Option<(u32, Instant)>,
    packets_sent: u64,
    octets_sent: u64,
    sent_since_report: bool,
    latched_rtp: Option<SocketAddr>,
    latched_rtcp: Option<SocketAddr>,
    source: Option<SourceStats>,
    /// Middle NTP bits of the peer's last SR and when it arrived.
    last_sr: Option<(u32, Instant)>,
    next_rtcp: Instant,
    dither: u64,
    stats: MediaStats,
    closed: bool,
}

impl core::fmt::Debug for RtpStream {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RtpStream")
            .field("local_ssrc", &self.local_ssrc)
            .field("protection", &self.protection.name())
            .field("remote_rtp", &self.remote_rtp())
            .finish_non_exhaustive()
    }
}

fn ts_to_ms(ts_units: f64) -> f64 {
    ts_units * 1000.0 / f64::from(SAMPLE_RATE)
}

impl RtpStream {
    /// A new stream. Draws the SSRC, the initial sequence number and timestamp (RFC 3550
    /// §5.1) and the RTCP timing dither from `rng`; `now` and `wall` are the same instant on
    /// the monotonic and wall clocks (the latter only feeds RTCP NTP timestamps).
    pub fn new(
        config: StreamConfig,
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
        Ok(RtpStream {
            protection,
            start: now,
            wall_start: wall,
            local_ssrc: stats.local_ssrc,
            seq: u16::from_be_bytes([q0, q1]),
            // Keep the initial timestamp in the lower half so a long call never wraps twice.
            ts_base: u32::from_be_bytes([t0, t1, t2, t3]) >> 1,
            samples_sent: 0,
            last_send: None,
            packets_sent: 0,
            octets_sent: 0,
            sent_since_report: false,
            latched_rtp: None,
            latched_rtcp: None,
            source: None,
            last_sr: None,
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

    /// Replaces the protection step (new keys after a re-INVITE or a key exchange).
    pub fn set_protection(&mut self, protection: Box<dyn Protection>) {
        self.stats.protection = protection.name();
        self.protection = protection;
    }

    /// Bytes the protection adds to an RTP packet.
    pub fn rtp_overhead(&self) -> usize {
        self.protection.rtp_overhead()
    }

    /// The RTP timestamp of the next sample we send.
    pub fn next_timestamp(&self) -> u32 {
        self.ts_base.wrapping_add(self.samples_sent as u32)
    }

    /// Moves our timeline on by `samples` sent (or skipped) at `now`; returns the timestamp
    /// of the first of them.
    pub fn advance(&mut self, now: Instant, samples: usize) -> u32 {
        let timestamp = self.next_timestamp();
        self.last_send = Some((timestamp, now));
        self.samples_sent += samples as u64;
        timestamp
    }

    /// Writes the header of a packet whose payload (`payload_len` bytes) is already at
    /// `buf[12..]`, protects it, and counts it: the packet to send to the remote RTP address.
    /// `None` while no remote address is known.
    pub fn send(
        &mut self,
        buf: &mut [u8],
        (marker, payload_type, timestamp): (bool, u8, u32),
        payload_len: usize,
    ) -> Result<Option<Transmit>, SessionError> {
        let Some(dst) = self.remote_rtp() else {
            return Ok(None);
        };
        let fields = RtpFields {
            marker,
            payload_type,
            seq: self.seq,
            timestamp,
            ssrc: self.local_ssrc,
        };
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
        Ok(Some(Transmit {
            dst,
            channel: Channel::Rtp,
            len,
        }))
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

    /// Handles one datagram received at `now` from `src` on the local port `channel`,
    /// unprotected in place. `kind` says what the pipeline makes of each payload type. Every
    /// error means the packet was dropped (and counted).
    pub fn receive(
        &mut self,
        now: Instant,
        src: SocketAddr,
        channel: Channel,
        pkt: &mut [u8],
        kind: &dyn Fn(u8) -> PayloadKind,
    ) -> Result<StreamIn, SessionError> {
        let r = if channel == Channel::Rtcp || super::is_rtcp(pkt) {
            self.receive_rtcp(now, src, channel, pkt)
        } else {
            self.receive_rtp(now, src, pkt, kind).map(StreamIn::Rtp)
        };
        match &r {
            Ok(_) | Err(SessionError::Duplicate { .. }) => {}
            Err(_) => self.stats.packets_dropped += 1,
        }
        r
    }

    fn receive_rtp(
        &mut self,
        now: Instant,
        src: SocketAddr,
        pkt: &mut [u8],
        kind: &dyn Fn(u8) -> PayloadKind,
    ) -> Result<RtpIn, SessionError> {
        self.check_source(src, Channel::Rtp)?;
        let header = RtpHeader::parse(pkt)?;
        let kind = kind(header.payload_type);
        if kind == PayloadKind::Refused {
            return Err(SessionError::UnknownPayloadType(header.payload_type));
        }
        let n = self.protection.unprotect_rtp(pkt)?;
        let clear = pkt.get(..n).unwrap_or_default();
        let p = super::RtpPacket::parse(clear)?;
        if p.payload.len() > super::MAX_PAYLOAD {
            return Err(SessionError::PayloadTooLarge(p.payload.len()));
        }
        let payload = super::packet::payload_bounds(clear, RtpHeader::parse(clear)?.header_len)?;
        let new_source = match self.source.as_mut() {
            Some(s) if s.ssrc == p.ssrc => match s.update_seq(p.seq) {
                SeqVerdict::Accept(_) => false,
                SeqVerdict::Duplicate => {
                    self.stats.packets_duplicate += 1;
                    return Err(SessionError::Duplicate { seq: p.seq });
                }
                SeqVerdict::BadJump => return Err(SessionError::BadSequence { seq: p.seq }),
            },
            _ => {
                // A first packet, or a new SSRC (the peer restarted its stream).
                self.source = Some(SourceStats::new(p.ssrc, p.seq));
                true
            }
        };
        self.latch(src, Channel::Rtp);
        let arrival = self.arrival_ts(now);
        let (marker, timestamp, seq, pt, len) = (
            p.marker,
            p.timestamp,
            p.seq,
            p.payload_type,
            p.payload.len(),
        );
        let Some(source) = self.source.as_mut() else {
            return Err(SessionError::BadSequence { seq }); // invariant: set above
        };
        source.octets += len as u64;
        if kind == PayloadKind::Media {
            source.update_jitter(arrival, timestamp);
        }
        Ok(RtpIn {
            payload_type: pt,
            marker,
            seq,
            timestamp,
            payload,
            jitter: source.jitter(),
            new_source,
        })
    }

    fn receive_rtcp(
        &mut self,
        now: Instant,
        src: SocketAddr,
        channel: Channel,
        pkt: &mut [u8],
    ) -> Result<StreamIn, SessionError> {
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
        Ok(StreamIn::Rtcp {
            packets: packets.len(),
            bye,
        })
    }

    /// A received packet the pipeline could not use after all (not a valid frame): counted
    /// as dropped.
    pub fn count_dropped(&mut self) {
        self.stats.packets_dropped += 1;
    }

    fn ntp_at(&self, now: Instant) -> u64 {
        rtcp::ntp_timestamp(self.wall_start + now.saturating_duration_since(self.start))
    }

    /// When the next RTCP report is due (none once closed).
    pub fn poll_timeout(&self) -> Option<Instant> {
        (!self.closed).then_some(self.next_rtcp)
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

    /// The transport's statistics now (the pipeline adds its own).
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
        s
    }
}
