//! # RTCP packets: SR, RR, SDES, BYE (RFC 3550 §6.4–§6.6) and compound packets (§6.1)
//!
//! [`parse_compound`] walks a compound packet by the length fields: every packet must be
//! version 2 and fit; only the last may be padded; packet types other than SR, RR, SDES and
//! BYE are kept as [`RtcpPacket::Other`]. The writers put one packet at a time into a
//! caller-owned buffer and return its length, so a compound packet is built by appending.
//! Report blocks carry the cumulative loss as a signed 24-bit value (§6.4.1).

/// RTCP packet type of a sender report.
pub const PT_SR: u8 = 200;
/// RTCP packet type of a receiver report.
pub const PT_RR: u8 = 201;
/// RTCP packet type of source description.
pub const PT_SDES: u8 = 202;
/// RTCP packet type of goodbye.
pub const PT_BYE: u8 = 203;
/// Most report blocks (or SSRCs in a BYE) one packet can hold (5-bit count).
pub const MAX_REPORTS: usize = 31;
/// Length of one report block.
pub const REPORT_BLOCK_LEN: usize = 24;

/// Why an RTCP compound packet could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RtcpError {
    /// A packet is shorter than its header or than its length field says.
    #[error("RTCP packet truncated at offset {offset}")]
    Truncated {
        /// Offset of the packet within the compound packet.
        offset: usize,
    },
    /// A version other than 2.
    #[error("RTCP version {0}, expected 2")]
    BadVersion(u8),
    /// Padding on a packet that is not the last, or a padding count that does not fit.
    #[error("bad RTCP padding at offset {offset}")]
    BadPadding {
        /// Offset of the packet within the compound packet.
        offset: usize,
    },
    /// An empty compound packet.
    #[error("empty RTCP packet")]
    Empty,
}

/// A reception report block (§6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReportBlock {
    /// The source this block reports on.
    pub ssrc: u32,
    /// Fraction lost since the previous report, in 1/256.
    pub fraction_lost: u8,
    /// Cumulative packets lost (signed 24-bit: duplicates can make it negative).
    pub cumulative_lost: i32,
    /// Extended highest sequence number received (cycles in the high 16 bits).
    pub highest_seq: u32,
    /// Interarrival jitter, in timestamp units.
    pub jitter: u32,
    /// Middle 32 bits of the NTP timestamp of the last SR received from the source (0: none).
    pub lsr: u32,
    /// Delay since that SR, in 1/65536 s.
    pub dlsr: u32,
}

/// The sender information of an SR (§6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SenderInfo {
    /// NTP timestamp (seconds since 1900 in the high 32 bits, fraction in the low 32).
    pub ntp: u64,
    /// The RTP timestamp of the same instant.
    pub rtp_timestamp: u32,
    /// Packets sent since the start.
    pub packet_count: u32,
    /// Payload octets sent since the start.
    pub octet_count: u32,
}

/// One RTCP packet of a compound packet.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RtcpPacket {
    /// Sender report.
    SenderReport {
        /// SSRC of the sender.
        ssrc: u32,
        /// Sender information.
        info: SenderInfo,
        /// Reception report blocks.
        reports: Vec<ReportBlock>,
    },
    /// Receiver report.
    ReceiverReport {
        /// SSRC of the packet's sender.
        ssrc: u32,
        /// Reception report blocks.
        reports: Vec<ReportBlock>,
    },
    /// Source description: the CNAME of each chunk that has one (other items skipped).
    SourceDescription {
        /// `(ssrc, cname)` per chunk; the CNAME is lossily decoded as UTF-8.
        chunks: Vec<(u32, Option<String>)>,
    },
    /// Goodbye.
    Bye {
        /// Sources leaving.
        ssrcs: Vec<u32>,
        /// Optional reason, lossily decoded as UTF-8.
        reason: Option<String>,
    },
    /// Another packet type (APP, feedback, XR...), skipped.
    Other {
        /// Its packet type.
        packet_type: u8,
    },
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes([
        *b.get(at)?,
        *b.get(at + 1)?,
        *b.get(at + 2)?,
        *b.get(at + 3)?,
    ]))
}

fn parse_block(b: &[u8]) -> Option<ReportBlock> {
    let lost = be32(b, 4)?;
    // Sign-extend the 24-bit cumulative loss.
    let cumulative_lost = ((lost << 8) as i32) >> 8;
    Some(ReportBlock {
        ssrc: be32(b, 0)?,
        fraction_lost: (lost >> 24) as u8,
        cumulative_lost,
        highest_seq: be32(b, 8)?,
        jitter: be32(b, 12)?,
        lsr: be32(b, 16)?,
        dlsr: be32(b, 20)?,
    })
}

fn parse_blocks(body: &[u8], count: usize) -> Option<Vec<ReportBlock>> {
    (0..count)
        .map(|i| parse_block(body.get(i * REPORT_BLOCK_LEN..(i + 1) * REPORT_BLOCK_LEN)?))
        .collect()
}

fn parse_sdes(body: &[u8], count: usize) -> Option<Vec<(u32, Option<String>)>> {
    let mut chunks = Vec::with_capacity(count);
    let mut at = 0usize;
    for _ in 0..count {
        let ssrc = be32(body, at)?;
        at += 4;
        let mut cname = None;
        loop {
            let item = *body.get(at)?;
            if item == 0 {
                // End of the item list; the chunk is padded to a 32-bit boundary.
                at = (at + 4) & !3;
                break;
            }
            let len = usize::from(*body.get(at + 1)?);
            let text = body.get(at + 2..at + 2 + len)?;
            if item == 1 {
                cname = Some(String::from_utf8_lossy(text).into_owned());
            }
            at += 2 + len;
        }
        chunks.push((ssrc, cname));
    }
    Some(chunks)
}

fn parse_bye(body: &[u8], count: usize) -> Option<(Vec<u32>, Option<String>)> {
    let ssrcs = (0..count)
        .map(|i| be32(body, 4 * i))
        .collect::<Option<Vec<_>>>()?;
    let reason = match body.get(4 * count) {
        Some(&len) => {
            let text = body.get(4 * count + 1..4 * count + 1 + usize::from(len))?;
            Some(String::from_utf8_lossy(text).into_owned())
        }
        None => None,
    };
    Some((ssrcs, reason))
}

/// Reads every packet of a compound RTCP packet (in clear).
pub fn parse_compound(buf: &[u8]) -> Result<Vec<RtcpPacket>, RtcpError> {
    if buf.is_empty() {
        return Err(RtcpError::Empty);
    }
    let mut out = Vec::new();
    let mut at = 0usize;
    while at < buf.len() {
        let trunc = RtcpError::Truncated { offset: at };
        let head = buf.get(at..at + 4).ok_or(trunc)?;
        let (b0, pt) = (head[0], head[1]); // invariant: head has 4 octets
        if b0 >> 6 != 2 {
            return Err(RtcpError::BadVersion(b0 >> 6));
        }
        let words = usize::from(u16::from_be_bytes([head[2], head[3]]));
        let end = at + 4 * (words + 1);
        let pkt = buf.get(at..end).ok_or(trunc)?;
        let mut body_end = pkt.len();
        if b0 & 0x20 != 0 {
            let pad = usize::from(pkt.last().copied().unwrap_or(0));
            if end != buf.len() || pad == 0 || pad + 4 > pkt.len() {
                return Err(RtcpError::BadPadding { offset: at });
            }
            body_end -= pad;
        }
        let count = usize::from(b0 & 0x1f);
        let body = pkt.get(4..body_end).unwrap_or_default();
        let parsed = match pt {
            PT_SR => {
                let info = SenderInfo {
                    ntp: (u64::from(be32(body, 4).ok_or(trunc)?) << 32)
                        | u64::from(be32(body, 8).ok_or(trunc)?),
                    rtp_timestamp: be32(body, 12).ok_or(trunc)?,
                    packet_count: be32(body, 16).ok_or(trunc)?,
                    octet_count: be32(body, 20).ok_or(trunc)?,
                };
                RtcpPacket::SenderReport {
                    ssrc: be32(body, 0).ok_or(trunc)?,
                    info,
                    reports: parse_blocks(body.get(24..).unwrap_or_default(), count)
                        .ok_or(trunc)?,
                }
            }
            PT_RR => RtcpPacket::ReceiverReport {
                ssrc: be32(body, 0).ok_or(trunc)?,
                reports: parse_blocks(body.get(4..).unwrap_or_default(), count).ok_or(trunc)?,
            },
            PT_SDES => RtcpPacket::SourceDescription {
                chunks: parse_sdes(body, count).ok_or(trunc)?,
            },
            PT_BYE => {
                let (ssrcs, reason) = parse_bye(body, count).ok_or(trunc)?;
                RtcpPacket::Bye { ssrcs, reason }
            }
            other => RtcpPacket::Other { packet_type: other },
        };
        out.push(parsed);
        at = end;
    }
    Ok(out)
}

/// Writes a common header (no padding) for a packet of `len` octets (a multiple of 4).
fn put_header(buf: &mut [u8], count: usize, pt: u8, len: usize) -> Option<()> {
    let words = u16::try_from(len / 4 - 1).ok()?;
    let h = buf.get_mut(..4)?;
    h[0] = 0x80 | (count.min(MAX_REPORTS) as u8); // invariant: h has 4 octets
    h[1] = pt;
    h[2..4].copy_from_slice(&words.to_be_bytes());
    Some(())
}

fn put32(buf: &mut [u8], at: usize, v: u32) -> Option<()> {
    buf.get_mut(at..at + 4)?.copy_from_slice(&v.to_be_bytes());
    Some(())
}

fn put_blocks(buf: &mut [u8], at: usize, reports: &[ReportBlock]) -> Option<()> {
    for (i, r) in reports.iter().enumerate() {
        let o = at + i * REPORT_BLOCK_LEN;
        let lost = (u32::from(r.fraction_lost) << 24)
            | (r.cumulative_lost.clamp(-0x80_0000, 0x7f_ffff) as u32 & 0x00ff_ffff);
        put32(buf, o, r.ssrc)?;
        put32(buf, o + 4, lost)?;
        put32(buf, o + 8, r.highest_seq)?;
        put32(buf, o + 12, r.jitter)?;
        put32(buf, o + 16, r.lsr)?;
        put32(buf, o + 20, r.dlsr)?;
    }
    Some(())
}

/// Writes a sender report (at most [`MAX_REPORTS`] blocks are written); returns its length.
pub fn write_sr(
    buf: &mut [u8],
    ssrc: u32,
    info: &SenderInfo,
    reports: &[ReportBlock],
) -> Option<usize> {
    let reports = reports.get(..reports.len().min(MAX_REPORTS))?;
    let len = 28 + REPORT_BLOCK_LEN * reports.len();
    put_header(buf, reports.len(), PT_SR, len)?;
    put32(buf, 4, ssrc)?;
    put32(buf, 8, (info.ntp >> 32) as u32)?;
    put32(buf, 12, info.ntp as u32)?;
    put32(buf, 16, info.rtp_timestamp)?;
    put32(buf, 20, info.packet_count)?;
    put32(buf, 24, info.octet_count)?;
    put_blocks(buf, 28, reports)?;
    Some(len)
}

/// Writes a receiver report (at most [`MAX_REPORTS`] blocks are written); returns its length.
pub fn write_rr(buf: &mut [u8], ssrc: u32, reports: &[ReportBlock]) -> Option<usize> {
    let reports = reports.get(..reports.len().min(MAX_REPORTS))?;
    let len = 8 + REPORT_BLOCK_LEN * reports.len();
    put_header(buf, reports.len(), PT_RR, len)?;
    put32(buf, 4, ssrc)?;
    put_blocks(buf, 8, reports)?;
    Some(len)
}

/// Writes an SDES packet with one chunk holding a CNAME (truncated to 255 octets); returns
/// its length.
pub fn write_sdes_cname(buf: &mut [u8], ssrc: u32, cname: &str) -> Option<usize> {
    let name = cname.as_bytes();
    let name = name.get(..name.len().min(255))?;
    // SSRC, CNAME item (type, length, text), then at least one null octet, to a multiple of 4.
    let items = 2 + name.len();
    let len = 4 + ((4 + items + 1 + 3) & !3);
    put_header(buf, 1, PT_SDES, len)?;
    put32(buf, 4, ssrc)?;
    let rest = buf.get_mut(8..len)?;
    rest.fill(0);
    rest[0] = 1; // invariant: rest holds items + 1 >= 3 octets
    rest[1] = name.len() as u8; // invariant: <= 255
    rest.get_mut(2..items)?.copy_from_slice(name);
    Some(len)
}

/// Writes a BYE for `ssrc` with an optional reason (truncated to 255 octets); returns its
/// length.
pub fn write_bye(buf: &mut [u8], ssrc: u32, reason: Option<&str>) -> Option<usize> {
    let reason = reason.map(str::as_bytes).unwrap_or_default();
    let reason = reason.get(..reason.len().min(255))?;
    let extra = if reason.is_empty() {
        0
    } else {
        (1 + reason.len() + 3) & !3
    };
    let len = 8 + extra;
    put_header(buf, 1, PT_BYE, len)?;
    put32(buf, 4, ssrc)?;
    if !reason.is_empty() {
        let rest = buf.get_mut(8..len)?;
        rest.fill(0);
        rest[0] = reason.len() as u8; // invariant: rest is non-empty, len <= 255
        rest.get_mut(1..1 + reason.len())?.copy_from_slice(reason);
    }
    Some(len)
}

/// Seconds between 1900-01-01 (NTP era 0) and 1970-01-01.
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// The 64-bit NTP timestamp of a wall-clock time (times before 1970 give the 1970 value).
pub fn ntp_timestamp(wall: std::time::SystemTime) -> u64 {
    let d = wall
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = d.as_secs().wrapping_add(NTP_UNIX_OFFSET);
    let frac = (u64::from(d.subsec_nanos()) << 32) / 1_000_000_000;
    (secs << 32) | frac
}

/// The middle 32 bits of an NTP timestamp (the LSR field, §6.4.1).
pub fn ntp_middle(ntp: u64) -> u32 {
    (ntp >> 16) as u32
}
