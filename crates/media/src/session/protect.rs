//! The protection step between the session and the wire: SRTP/SRTCP, or nothing.
//!
//! [`RtpSession`](super::RtpSession) calls a [`Protection`] on every packet: after building
//! one (protect, in the caller's buffer) and before reading one (unprotect, in place). The
//! agent chooses it from the negotiated media security: [`SrtpProtection`] wraps the two
//! [`SrtpSession`]s of a call (ours to send, the peer's to receive), keyed by SDES, ZRTP or
//! DTLS-SRTP; [`NoProtection`] passes packets through and exists for `--media-encryption
//! none` and tests. Both run the packet-modifier hook ([`crate::hook`]) on packets in clear.
//! Keys can change during a call (re-INVITE, ZRTP after the first packets):
//! [`RtpSession::set_protection`](super::RtpSession::set_protection) swaps the step.

use crate::hook::{PacketModifier, PacketMut};
use crate::srtp::{SrtpError, SrtpSession};

/// Protects outgoing and unprotects incoming RTP/RTCP packets in place.
pub trait Protection: Send {
    /// Protects the RTP packet `buf[..len]` in place (the rest of `buf` is room for the
    /// trailer); returns the protected length.
    fn protect_rtp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError>;
    /// Verifies and decrypts the RTP packet `pkt` in place; returns the length in clear.
    fn unprotect_rtp(&mut self, pkt: &mut [u8]) -> Result<usize, SrtpError>;
    /// Protects the compound RTCP packet `buf[..len]` in place; returns the protected length.
    fn protect_rtcp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError>;
    /// Verifies and decrypts the compound RTCP packet `pkt` in place; returns the length in
    /// clear.
    fn unprotect_rtcp(&mut self, pkt: &mut [u8]) -> Result<usize, SrtpError>;
    /// Octets protection adds to an RTP packet (so the caller sizes buffers).
    fn rtp_overhead(&self) -> usize;
    /// A short name for reports: `none` or `srtp`.
    fn name(&self) -> &'static str;
}

/// No protection: packets go out and come in as they are (RTP/AVP). Only for calls whose
/// policy allows unencrypted media, and for tests.
#[derive(Default)]
pub struct NoProtection {
    modifier: Option<Box<dyn PacketModifier>>,
}

impl core::fmt::Debug for NoProtection {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("NoProtection")
            .field("modifier", &self.modifier.is_some())
            .finish()
    }
}

impl NoProtection {
    /// Pass-through with no modifier.
    pub fn new() -> Self {
        NoProtection { modifier: None }
    }

    /// Installs a packet modifier, called on every packet in both directions.
    pub fn set_modifier(&mut self, modifier: Box<dyn PacketModifier>) {
        self.modifier = Some(modifier);
    }
}

impl Protection for NoProtection {
    fn protect_rtp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        let mut p = PacketMut::new(buf, len);
        if let Some(m) = self.modifier.as_mut() {
            m.outgoing_rtp(&mut p);
        }
        Ok(p.len())
    }

    fn unprotect_rtp(&mut self, pkt: &mut [u8]) -> Result<usize, SrtpError> {
        let len = pkt.len();
        let mut p = PacketMut::new(pkt, len);
        if let Some(m) = self.modifier.as_mut() {
            m.incoming_rtp(&mut p);
        }
        Ok(p.len())
    }

    fn protect_rtcp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        let mut p = PacketMut::new(buf, len);
        if let Some(m) = self.modifier.as_mut() {
            m.outgoing_rtcp(&mut p);
        }
        Ok(p.len())
    }

    fn unprotect_rtcp(&mut self, pkt: &mut [u8]) -> Result<usize, SrtpError> {
        let len = pkt.len();
        let mut p = PacketMut::new(pkt, len);
        if let Some(m) = self.modifier.as_mut() {
            m.incoming_rtcp(&mut p);
        }
        Ok(p.len())
    }

    fn rtp_overhead(&self) -> usize {
        0
    }

    fn name(&self) -> &'static str {
        "none"
    }
}

/// SRTP/SRTCP with one [`SrtpSession`] per direction (RFC 3711 §3.2: each direction has its
/// own master key). Install a packet modifier on the sessions themselves.
#[derive(Debug)]
pub struct SrtpProtection {
    /// Protects what we send (keyed with our key).
    pub outbound: SrtpSession,
    /// Unprotects what the peer sends (keyed with the peer's key).
    pub inbound: SrtpSession,
    /// RTCP's own pair (outbound, inbound), when its keys were agreed apart.
    pub rtcp: Option<(SrtpSession, SrtpSession)>,
}

impl SrtpProtection {
    /// Pairs the two directions; RTCP uses the same sessions.
    pub fn new(outbound: SrtpSession, inbound: SrtpSession) -> Self {
        SrtpProtection {
            outbound,
            inbound,
            rtcp: None,
        }
    }

    /// RTCP protected by its own pair (DTLS-SRTP's handshake on the RTCP port).
    pub fn with_rtcp(mut self, outbound: SrtpSession, inbound: SrtpSession) -> Self {
        self.rtcp = Some((outbound, inbound));
        self
    }
}

impl Protection for SrtpProtection {
    fn protect_rtp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        self.outbound.protect_rtp(buf, len)
    }

    fn unprotect_rtp(&mut self, pkt: &mut [u8]) -> Result<usize, SrtpError> {
        self.inbound.unprotect_rtp(pkt)
    }

    fn protect_rtcp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        match &mut self.rtcp {
            Some((outbound, _)) => outbound.protect_rtcp(buf, len),
            None => self.outbound.protect_rtcp(buf, len),
        }
    }

    fn unprotect_rtcp(&mut self, pkt: &mut [u8]) -> Result<usize, SrtpError> {
        match &mut self.rtcp {
            Some((_, inbound)) => inbound.unprotect_rtcp(pkt),
            None => self.inbound.unprotect_rtcp(pkt),
        }
    }

    fn rtp_overhead(&self) -> usize {
        self.outbound.rtp_overhead()
    }

    fn name(&self) -> &'static str {
        "srtp"
    }
}
