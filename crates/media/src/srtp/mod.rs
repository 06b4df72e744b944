//! # SRTP and SRTCP (RFC 3711, RFC 6188, RFC 7714)
//!
//! An [`SrtpSession`] holds the cryptographic context of one direction of a media session:
//! its master key(s) (selected by MKI when there are several), the session keys derived from
//! them (§4.3, key derivation rate 0), and one stream per SSRC created on demand, each with
//! its roll-over counter (§3.3.1), SRTCP index (§3.4) and replay windows (§3.3.2).
//!
//! It is sans-IO and allocation-free per packet: [`SrtpSession::protect_rtp`] takes a
//! caller-owned buffer holding the packet and room for the trailer, and transforms it in
//! place; [`SrtpSession::unprotect_rtp`] verifies and decrypts in place and returns the
//! plaintext length. The keyed AES and HMAC states are computed once per master key.
//!
//! Every rejection has its own [`SrtpError`]: a flipped bit is
//! [`SrtpError::AuthenticationFailed`], a repeated packet [`SrtpError::Replayed`], one behind
//! the window [`SrtpError::TooOld`], a short one [`SrtpError::Truncated`]. A key that
//! reached its usage limit answers [`SrtpError::KeyLimitReached`]: rekey.
//!
//! ```
//! use sotto_media::srtp::{SrtpPolicy, SrtpSession, SrtpSuite};
//! let provider = sotto_crypto_rust::provider();
//! let policy = SrtpPolicy::new(SrtpSuite::AeadAes128Gcm, &[1; 16], &[2; 12]);
//! let mut sender = SrtpSession::new(provider, policy.clone()).unwrap();
//! let mut receiver = SrtpSession::new(provider, policy).unwrap();
//!
//! let rtp = [0x80, 0, 0, 7, 0, 0, 0, 0, 0x11, 0x22, 0x33, 0x44, b'h', b'i'];
//! let mut buf = [0u8; 64];
//! buf[..rtp.len()].copy_from_slice(&rtp);
//! let n = sender.protect_rtp(&mut buf, rtp.len()).unwrap();
//! assert_eq!(n, rtp.len() + 16);
//! let m = receiver.unprotect_rtp(&mut buf[..n]).unwrap();
//! assert_eq!(&buf[..m], &rtp);
//! ```

mod error;
pub mod kdf;
mod policy;
mod replay;
mod session;
mod suite;

pub use error::SrtpError;
pub use policy::{
    DEFAULT_MAX_STREAMS, DEFAULT_REPLAY_WINDOW, KeyLimits, MAX_MKI_LEN, MAX_SRTCP_PACKETS_PER_KEY,
    MAX_SRTP_PACKETS_PER_KEY, SrtpPolicy,
};
pub use replay::{MAX_REPLAY_WINDOW, MIN_REPLAY_WINDOW};
pub use session::{SessionKeys, SrtpSession};
pub use suite::SrtpSuite;
