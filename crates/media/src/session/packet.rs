//! RTP packets (RFC 3550 §5.1) read and written whole, and the demultiplexing of packets that
//! share one port: RTP/RTCP mux (RFC 5761 §4) and the first-octet ranges of RFC 7983 §7.

use crate::rtp::{HeaderError, RTP_FIXED_HEADER_LEN, RtpHeader};

/// An RTP packet in clear, borrowed from its buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    /// M bit (start of a talkspurt for audio, RFC 3551 §4.1).
    pub marker: bool,
    /// Payload type (7 bits).
    pub payload_type: u8,
    /// Sequence number.
    pub seq: u16,
    /// Media timestamp.
    pub timestamp: u32,
    /// Synchronization source.
    pub ssrc: u32,
    /// Payload, without header, CSRCs, extension or padding.
    pub payload: &'a [u8],
}

impl<'a> RtpPacket<'a> {
    /// Reads a whole RTP packet: header (with CSRCs and extension), payload and padding
    /// (§5.1: the last octet counts the padding, itself included).
    pub fn parse(pkt: &'a [u8]) -> Result<Self, HeaderError> {
        let h = RtpHeader::parse(pkt)?;
        let (start, end) = payload_bounds(pkt, h.header_len)?;
        let b1 = pkt.get(1).copied().unwrap_or(0);
        let timestamp = pkt
            .get(4..8)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]])) // invariant: 4 octets
            .unwrap_or(0);
        Ok(RtpPacket {
            marker: b1 & 0x80 != 0,
            payload_type: h.payload_type,
            seq: h.seq,
            timestamp,
            ssrc: h.ssrc,
            payload: pkt.get(start..end).unwrap_or_default(),
        })
    }

    /// Writes the packet (12-octet header, no CSRC, no extension, no padding) at the start of
    /// `buf`; returns its length, or `None` if `buf` is too small.
    pub fn write(&self, buf: &mut [u8]) -> Option<usize> {
        write_rtp(
            buf,
            RtpFields {
                marker: self.marker,
                payload_type: self.payload_type,
                seq: self.seq,
                timestamp: self.timestamp,
                ssrc: self.ssrc,
            },
            self.payload,
        )
    }
}

/// Where the payload of an RTP packet whose header is `header_len` octets starts and ends,
/// padding excluded (§5.1: the last octet counts the padding, itself included).
pub(crate) fn payload_bounds(pkt: &[u8], header_len: usize) -> Result<(usize, usize), HeaderError> {
    let b0 = pkt.first().copied().unwrap_or(0);
    let mut end = pkt.len();
    if b0 & 0x20 != 0 {
        let pad = usize::from(pkt.last().copied().unwrap_or(0));
        if pad == 0 || header_len + pad > end {
            return Err(HeaderError::Truncated {
                len: pkt.len(),
                need: header_len + pad.max(1),
            });
        }
        end -= pad;
    }
    Ok((header_len, end))
}

/// The header fields of an outgoing packet.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RtpFields {
    pub(crate) marker: bool,
    pub(crate) payload_type: u8,
    pub(crate) seq: u16,
    pub(crate) timestamp: u32,
    pub(crate) ssrc: u32,
}

/// Writes the 12-octet header of `f` into `buf`; returns `None` if `buf` is too short.
pub(crate) fn write_header(buf: &mut [u8], f: RtpFields) -> Option<()> {
    let h = buf.get_mut(..RTP_FIXED_HEADER_LEN)?;
    h[0] = 0x80; // invariant (all indexing below): h has exactly 12 octets
    h[1] = (u8::from(f.marker) << 7) | (f.payload_type & 0x7f);
    h[2..4].copy_from_slice(&f.seq.to_be_bytes());
    h[4..8].copy_from_slice(&f.timestamp.to_be_bytes());
    h[8..12].copy_from_slice(&f.ssrc.to_be_bytes());
    Some(())
}

fn write_rtp(buf: &mut [u8], f: RtpFields, payload: &[u8]) -> Option<usize> {
    let len = RTP_FIXED_HEADER_LEN + payload.len();
    buf.get_mut(RTP_FIXED_HEADER_LEN..len)?
        .copy_from_slice(payload);
    write_header(buf, f)?;
    Some(len)
}

/// What a datagram arriving on a shared port is (RFC 7983 §7, RFC 5761 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketClass {
    /// STUN (first octet 0–3).
    Stun,
    /// ZRTP (first octet 16–19 and the `ZRTP` magic cookie, RFC 6189 §5).
    Zrtp,
    /// DTLS (first octet 20–63).
    Dtls,
    /// TURN channel data (first octet 64–79).
    TurnChannel,
    /// RTP (first octet 128–191, second octet outside 192–223).
    Rtp,
    /// RTCP (first octet 128–191, second octet 192–223).
    Rtcp,
    /// Anything else (to drop).
    Unknown,
}

/// Classifies a datagram by its first octets.
pub fn classify(pkt: &[u8]) -> PacketClass {
    match pkt.first() {
        Some(0..=3) => PacketClass::Stun,
        Some(16..=19) if pkt.get(4..8) == Some(b"ZRTP") => PacketClass::Zrtp,
        Some(20..=63) => PacketClass::Dtls,
        Some(64..=79) => PacketClass::TurnChannel,
        Some(128..=191) => {
            if is_rtcp(pkt) {
                PacketClass::Rtcp
            } else {
                PacketClass::Rtp
            }
        }
        _ => PacketClass::Unknown,
    }
}

/// RFC 5761 §4: on a multiplexed port, a packet whose second octet is 192–223 (RTCP packet
/// types; the RTP payload types 64–95 that would collide are not used) is RTCP.
pub fn is_rtcp(pkt: &[u8]) -> bool {
    matches!(pkt.get(1), Some(192..=223))
}
