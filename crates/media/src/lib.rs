//! # sotto-media: the sans-IO media core
//!
//! RTP/RTCP packets, SRTP/SRTCP protection (RFC 3711, RFC 6188, RFC 7714) over the
//! [`sotto_crypto`] API, and the packet-modifier hook through which an application can
//! observe or transform packets. A call's media is a [`call::CallMedia`]: its streams
//! ([`session`]: each a transport half and an audio half) and its key exchange, behind the
//! [`keyx::MediaKeyExchange`] seam (SDES, ZRTP, DTLS-SRTP side by side); [`zrtp`] is the
//! ZRTP engine (RFC 6189).
//!
//! Nothing here performs IO, reads a clock or draws randomness: an [`srtp::SrtpSession`] is
//! keyed by its caller and transforms packets in buffers the caller owns, so the steady-state
//! path allocates nothing.

#![forbid(unsafe_code)]

pub mod audio;
pub mod call;
pub mod dtls;
pub mod hook;
pub mod keyx;
pub mod rtp;
pub mod session;
pub mod srtp;
pub mod zrtp;

pub use hook::{PacketModifier, PacketMut};
pub use srtp::{SrtpError, SrtpPolicy, SrtpSession, SrtpSuite};

/// The one error type of this crate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An SRTP/SRTCP error.
    #[error(transparent)]
    Srtp(#[from] SrtpError),
}
