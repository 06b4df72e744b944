//! ZRTP (RFC 6189): media keys agreed end to end by Diffie-Hellman on the media path, a
//! Short Authentication String the users compare, and retained secrets that expose a man in
//! the middle on every later call.
//!
//! - [`engine::ZrtpEngine`]: the sans-IO endpoint (DH mode, and Multistream mode for a
//!   further stream of a secured call: [`engine::ZrtpEngine::multistream_keys`]), driven by
//!   packets and time.
//! - [`exchange::ZrtpExchange`]: the engine behind the media key-exchange seam
//!   ([`crate::keyx::MediaKeyExchange`]), with `a=zrtp-hash` in the SDP.
//! - [`algorithms`], [`messages`], [`packet`], [`keys`], [`sas`], [`cache`]: the parts.
//!
//! Every primitive comes from the [`sotto_crypto::CryptoProvider`]; nothing here reads a
//! clock or a file: the key-continuity cache is an in-memory [`cache::ZidCache`] the
//! application loads and stores.
//!
//! Not here yet: Preshared mode (a Commit naming it is refused with a clear error), SAS
//! signing and relay, and acting as or enrolling with a trusted MitM (RFC 6189 §7.3: the
//! Confirm's E flag is read, the cache keeps a PBX secret and proves it in DHPart as s3, but
//! we never enroll and never act as a PBX).

pub mod algorithms;
pub mod cache;
pub mod crc;
pub mod engine;
pub mod exchange;
pub mod keys;
pub mod messages;
pub mod packet;
pub mod pgp_words;
pub mod sas;

pub use algorithms::{
    ZrtpAuthTag, ZrtpCipher, ZrtpHash, ZrtpKeyAgreement, ZrtpPreferences, ZrtpSasType, ZrtpSuite,
};
pub use cache::{CacheStatus, PeerSecrets, ZidCache};
pub use engine::secrets::Role;
pub use engine::{ZrtpConfig, ZrtpEngine, ZrtpEvent, ZrtpSecured};
pub use exchange::ZrtpExchange;

/// Why a ZRTP packet or step was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ZrtpError {
    /// The packet or message is not well formed (dropped).
    #[error("malformed ZRTP: {0}")]
    Malformed(&'static str),
    /// The CRC does not match (dropped: damage in transit).
    #[error("ZRTP packet with a bad CRC")]
    BadCrc,
    /// A hash-chain value or a chain MAC does not check (dropped: not from the peer).
    #[error("ZRTP hash chain broken: {0}")]
    HashChain(&'static str),
    /// A Confirm whose MAC does not check (dropped).
    #[error("ZRTP Confirm does not authenticate")]
    BadConfirmMac,
    /// The Hello does not match the peer's SDP `a=zrtp-hash` (dropped, and remembered).
    #[error("the ZRTP Hello does not match the zrtp-hash of the peer's SDP")]
    HelloHashMismatch,
    /// An algorithm we do not implement.
    #[error("unsupported ZRTP {0}")]
    Unsupported(&'static str),
    /// The protocol cannot go on; `code` is the Error message sent (§5.9).
    #[error("{reason}")]
    Protocol {
        /// The Error code.
        code: u32,
        /// What went wrong.
        reason: String,
    },
    /// A primitive failed.
    #[error("cryptographic failure: {0}")]
    Crypto(&'static str),
    /// The configuration cannot be used.
    #[error("ZRTP configuration: {0}")]
    Config(&'static str),
    /// The cache lock was poisoned.
    #[error("the ZRTP cache is unusable")]
    Cache,
}

impl ZrtpError {
    /// Whether the exchange must end (otherwise the packet is dropped and the reason kept:
    /// anyone who can send to the port could forge a bad packet, and must not end a call).
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            ZrtpError::Protocol { .. }
                | ZrtpError::Crypto(_)
                | ZrtpError::Config(_)
                | ZrtpError::Cache
        )
    }

    /// The Error code to send, if any.
    pub fn error_code(&self) -> Option<u32> {
        match self {
            ZrtpError::Protocol { code, .. } => Some(*code),
            ZrtpError::Crypto(_) | ZrtpError::Cache => Some(messages::small::code::SOFTWARE),
            _ => None,
        }
    }
}
