//! SRTP/SRTCP errors. Authentication, replay and age failures are meant to be dropped and
//! counted, never answered (RFC 3711 §3.3, §3.4).

/// An error from SRTP/SRTCP processing. Each rejection reason is its own variant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SrtpError {
    /// The packet is shorter than its header, or than header plus SRTP trailer.
    #[error("packet truncated: {len} bytes, need at least {need}")]
    Truncated {
        /// Bytes given.
        len: usize,
        /// Bytes needed.
        need: usize,
    },
    /// The packet is not RTP/RTCP version 2.
    #[error("malformed packet: version {version}")]
    BadVersion {
        /// The version field found.
        version: u8,
    },
    /// The authentication tag (HMAC or AEAD tag) did not verify.
    #[error("authentication failed")]
    AuthenticationFailed,
    /// The packet index was already received (inside the replay window).
    #[error("replayed packet (index {index})")]
    Replayed {
        /// The packet index (SRTP: ROC·2^16 + SEQ; SRTCP: the SRTCP index).
        index: u64,
    },
    /// The packet index is behind the replay window.
    #[error("packet too old for the replay window (index {index})")]
    TooOld {
        /// The packet index.
        index: u64,
    },
    /// The MKI of the packet names no key of this session.
    #[error("unknown MKI")]
    UnknownMki,
    /// The master key reached its usage limit (2^48 SRTP / 2^31 SRTCP packets, or the lower
    /// limit of the policy), or the packet index space is exhausted: rekeying is needed.
    #[error("master key usage limit reached: rekey needed")]
    KeyLimitReached,
    /// The session already has its configured maximum number of streams (SSRCs).
    #[error("too many streams (limit {max})")]
    TooManyStreams {
        /// The configured limit.
        max: usize,
    },
    /// The caller's buffer cannot hold the protected packet.
    #[error("buffer too small: need {need} bytes")]
    BufferTooSmall {
        /// Bytes needed.
        need: usize,
    },
    /// A key or salt has the wrong length for the suite.
    #[error("invalid {what} length {got} for the suite")]
    InvalidKeyLength {
        /// `master key`, `master salt`, `MKI`, ...
        what: &'static str,
        /// The length given.
        got: usize,
    },
    /// The policy is inconsistent (replay window out of range, MKI misuse, ...).
    #[error("invalid SRTP policy: {0}")]
    InvalidPolicy(&'static str),
    /// A NULL-cipher suite was requested without `danger_allow_null_cipher`.
    #[error("NULL cipher refused: set danger_allow_null_cipher to allow it for tests")]
    NullCipherNotAllowed,
    /// An unknown suite name.
    #[error("unknown SRTP suite name")]
    UnknownSuite,
    /// The crypto provider failed.
    #[error("crypto provider: {0}")]
    Crypto(#[from] sotto_crypto::Error),
}

impl From<crate::rtp::HeaderError> for SrtpError {
    fn from(e: crate::rtp::HeaderError) -> Self {
        match e {
            crate::rtp::HeaderError::Truncated { len, need } => SrtpError::Truncated { len, need },
            crate::rtp::HeaderError::BadVersion(version) => SrtpError::BadVersion { version },
        }
    }
}
