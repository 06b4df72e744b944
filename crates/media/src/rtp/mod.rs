//! Minimal RTP (RFC 3550 §5.1) and RTCP (RFC 3550 §6.4) header views: just what SRTP needs
//! (header length, SSRC, sequence number). Every read is bounds-checked; no input panics.

/// Length of the fixed RTP header.
pub const RTP_FIXED_HEADER_LEN: usize = 12;
/// Length of the RTCP header SRTCP leaves in clear (common header + sender SSRC).
pub const RTCP_HEADER_LEN: usize = 8;

/// Why an RTP/RTCP header could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeaderError {
    /// Shorter than the fixed header, or than the length the header announces.
    #[error("packet truncated: {len} bytes, header needs {need}")]
    Truncated {
        /// Bytes available.
        len: usize,
        /// Bytes the header needs.
        need: usize,
    },
    /// The version field is not 2.
    #[error("RTP/RTCP version {0}, expected 2")]
    BadVersion(u8),
}

/// The fields of an RTP header that SRTP uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpHeader {
    /// Header length in bytes: fixed part, CSRCs and header extension.
    pub header_len: usize,
    /// Sequence number.
    pub seq: u16,
    /// Synchronization source.
    pub ssrc: u32,
    /// Payload type.
    pub payload_type: u8,
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes([
        *b.get(at)?,
        *b.get(at + 1)?,
        *b.get(at + 2)?,
        *b.get(at + 3)?,
    ]))
}

impl RtpHeader {
    /// Reads the header at the start of `pkt`.
    pub fn parse(pkt: &[u8]) -> Result<Self, HeaderError> {
        let trunc = |need| HeaderError::Truncated {
            len: pkt.len(),
            need,
        };
        let b0 = *pkt.first().ok_or(trunc(RTP_FIXED_HEADER_LEN))?;
        if pkt.len() < RTP_FIXED_HEADER_LEN {
            return Err(trunc(RTP_FIXED_HEADER_LEN));
        }
        if b0 >> 6 != 2 {
            return Err(HeaderError::BadVersion(b0 >> 6));
        }
        let cc = usize::from(b0 & 0x0f);
        let mut header_len = RTP_FIXED_HEADER_LEN + 4 * cc;
        if b0 & 0x10 != 0 {
            let words = be16(pkt, header_len + 2).ok_or(trunc(header_len + 4))?;
            header_len += 4 + 4 * usize::from(words);
        }
        if header_len > pkt.len() {
            return Err(trunc(header_len));
        }
        let pt = pkt.get(1).map_or(0, |b| b & 0x7f);
        let seq = be16(pkt, 2).ok_or(trunc(RTP_FIXED_HEADER_LEN))?;
        let ssrc = be32(pkt, 8).ok_or(trunc(RTP_FIXED_HEADER_LEN))?;
        Ok(RtpHeader {
            header_len,
            seq,
            ssrc,
            payload_type: pt,
        })
    }
}

/// The fields of the first RTCP header of a compound packet that SRTCP uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtcpHeader {
    /// Packet type (200 SR, 201 RR, ...).
    pub packet_type: u8,
    /// SSRC of the sender of the compound packet.
    pub ssrc: u32,
}

impl RtcpHeader {
    /// Reads the first header of a compound RTCP packet.
    pub fn parse(pkt: &[u8]) -> Result<Self, HeaderError> {
        let trunc = HeaderError::Truncated {
            len: pkt.len(),
            need: RTCP_HEADER_LEN,
        };
        if pkt.len() < RTCP_HEADER_LEN {
            return Err(trunc);
        }
        let b0 = *pkt.first().ok_or(trunc)?;
        if b0 >> 6 != 2 {
            return Err(HeaderError::BadVersion(b0 >> 6));
        }
        Ok(RtcpHeader {
            packet_type: *pkt.get(1).ok_or(trunc)?,
            ssrc: be32(pkt, 4).ok_or(trunc)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_csrc_and_extension() {
        // V=2, X=1, CC=1; one CSRC; extension header with 1 word.
        let mut p = vec![0x91, 0x60, 0x12, 0x34, 0, 0, 0, 1, 0xca, 0xfe, 0xba, 0xbe];
        p.extend_from_slice(&[1, 2, 3, 4]); // CSRC
        p.extend_from_slice(&[0xbe, 0xde, 0, 1, 9, 9, 9, 9]); // extension
        p.extend_from_slice(b"payload");
        let h = RtpHeader::parse(&p).unwrap();
        assert_eq!(h.header_len, 24);
        assert_eq!(h.seq, 0x1234);
        assert_eq!(h.ssrc, 0xcafe_babe);
        assert_eq!(h.payload_type, 0x60);
        assert!(matches!(
            RtpHeader::parse(&p[..20]),
            Err(HeaderError::Truncated { need: 24, .. })
        ));
        assert!(RtpHeader::parse(&p[..17]).is_err());
        p[0] = 0x51;
        assert_eq!(RtpHeader::parse(&p), Err(HeaderError::BadVersion(1)));
        for n in 0..p.len() {
            let _ = RtpHeader::parse(&p[..n]);
            let _ = RtcpHeader::parse(&p[..n]);
        }
    }
}
