//! The packet-modifier hook: the extension point through which an application observes or
//! transforms RTP/RTCP packets in clear, right before they are protected and right after they
//! are unprotected (Linphone calls this an `RtpModifier`).
//!
//! Install one with [`crate::srtp::SrtpSession::set_modifier`]. Outgoing packets reach the
//! modifier before SRTP protection; incoming packets reach it after successful
//! authentication, decryption and replay checks, so a modifier only ever sees genuine
//! packets. A modifier may change the bytes and the length (within the buffer); the session
//! protects whatever the modifier leaves.
//!
//! ```
//! use sotto_media::hook::{PacketModifier, PacketMut};
//! use sotto_media::srtp::{SrtpPolicy, SrtpSession, SrtpSuite};
//!
//! /// Counts packets and rewrites the payload type of outgoing RTP to 96.
//! #[derive(Default)]
//! struct Retype {
//!     seen_in: u32,
//! }
//!
//! impl PacketModifier for Retype {
//!     fn outgoing_rtp(&mut self, pkt: &mut PacketMut<'_>) {
//!         if let Some(b) = pkt.as_bytes_mut().get_mut(1) {
//!             *b = (*b & 0x80) | 96;
//!         }
//!     }
//!     fn incoming_rtp(&mut self, _pkt: &mut PacketMut<'_>) {
//!         self.seen_in += 1;
//!     }
//! }
//!
//! let provider = sotto_crypto_rust::provider();
//! let policy = SrtpPolicy::new(SrtpSuite::AesCm128HmacSha1_80, &[7; 16], &[9; 14]);
//! let mut tx = SrtpSession::new(provider, policy.clone()).unwrap();
//! let mut rx = SrtpSession::new(provider, policy).unwrap();
//! tx.set_modifier(Box::new(Retype::default()));
//! rx.set_modifier(Box::new(Retype::default()));
//!
//! let mut buf = [0u8; 64];
//! let rtp = [0x80, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0, 42, 0xaa, 0xbb];
//! buf[..rtp.len()].copy_from_slice(&rtp);
//! let n = tx.protect_rtp(&mut buf, rtp.len()).unwrap();
//! let m = rx.unprotect_rtp(&mut buf[..n]).unwrap();
//! assert_eq!(buf[1], 96); // rewritten before protection, authenticated as such
//! assert_eq!(&buf[12..m], &[0xaa, 0xbb]);
//! ```

/// A packet in clear inside a caller-owned buffer: bytes `[..len]` are the packet, and the
/// rest of the buffer is room the packet may grow into.
#[derive(Debug)]
pub struct PacketMut<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl<'a> PacketMut<'a> {
    /// Wraps `buf[..len]` (`len` is clamped to the buffer length).
    pub fn new(buf: &'a mut [u8], len: usize) -> Self {
        let len = len.min(buf.len());
        PacketMut { buf, len }
    }

    /// The packet bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }

    /// The packet bytes, mutable.
    pub fn as_bytes_mut(&mut self) -> &mut [u8] {
        self.buf.get_mut(..self.len).unwrap_or_default()
    }

    /// Packet length.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the packet is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The whole buffer (packet plus room), to write a longer packet before
    /// [`PacketMut::set_len`].
    pub fn buffer_mut(&mut self) -> &mut [u8] {
        self.buf
    }

    /// Sets the packet length. Returns `false` (and changes nothing) if `len` exceeds the
    /// buffer.
    pub fn set_len(&mut self, len: usize) -> bool {
        if len <= self.buf.len() {
            self.len = len;
            true
        } else {
            false
        }
    }
}

/// Observes or transforms packets in clear. Every method has a do-nothing default, so a
/// modifier implements only what it needs.
pub trait PacketModifier: Send {
    /// An RTP packet about to be protected.
    fn outgoing_rtp(&mut self, _pkt: &mut PacketMut<'_>) {}
    /// An RTP packet just unprotected (authenticated, decrypted, not a replay).
    fn incoming_rtp(&mut self, _pkt: &mut PacketMut<'_>) {}
    /// A compound RTCP packet about to be protected.
    fn outgoing_rtcp(&mut self, _pkt: &mut PacketMut<'_>) {}
    /// A compound RTCP packet just unprotected.
    fn incoming_rtcp(&mut self, _pkt: &mut PacketMut<'_>) {}
}
