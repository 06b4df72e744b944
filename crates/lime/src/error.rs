//! Errors of the LIME core. None carries secret data.

/// What went wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LimeError {
    /// A message or key of the wrong shape (truncated, wrong curve, unknown version).
    #[error("malformed {0}")]
    Malformed(&'static str),
    /// A signed prekey whose signature does not verify under the peer's identity key.
    #[error("the signed prekey of {0} does not verify")]
    BadSignature(String),
    /// A message that does not authenticate (wrong keys, tampered, replayed).
    #[error("the message does not decrypt")]
    DecryptFailed,
    /// A message too far ahead of its chain (more than the skipped-key bound).
    #[error("the message is too far ahead of its chain ({0} keys to skip)")]
    TooManySkipped(usize),
    /// The prekey a first message names is not ours (any more).
    #[error("unknown {0} prekey {1}")]
    UnknownPrekey(&'static str, u32),
    /// No session with a device, and no bundle to start one.
    #[error("no session with {0}: fetch its key bundle first")]
    NoSession(String),
    /// The key server answered with an error.
    #[error("key server error {code}: {text}")]
    Server {
        /// Its error code.
        code: u8,
        /// Its text.
        text: String,
    },
    /// The cryptographic provider failed.
    #[error("crypto: {0}")]
    Crypto(#[from] sotto_crypto::Error),
    /// The store failed.
    #[error("store: {0}")]
    Store(String),
}
