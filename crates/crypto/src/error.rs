//! Errors of the crypto API.

/// An error from a cryptographic operation. Carries no secret data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A key, IV or nonce had the wrong length for the algorithm.
    #[error("invalid length for {what}: got {got} bytes")]
    InvalidLength {
        /// What was being sized (key, iv, nonce, ...).
        what: &'static str,
        /// The length given.
        got: usize,
    },
    /// The algorithm is not offered by this provider.
    #[error("algorithm not supported by this provider: {0}")]
    Unsupported(&'static str),
    /// Authentication (tag or signature) failed.
    #[error("authentication failed")]
    AuthenticationFailed,
    /// A peer's public value was invalid (low order point, out of range, ...).
    #[error("invalid public value from peer")]
    InvalidPublicValue,
    /// A private key given to the API was invalid (e.g. an FFDH exponent outside [2, p-2]).
    #[error("invalid private key")]
    InvalidPrivateKey,
    /// The output buffer given by the caller is too small.
    #[error("output buffer too small: need {need} bytes")]
    BufferTooSmall {
        /// Bytes needed.
        need: usize,
    },
    /// The backend failed for a reason of its own (its message, no secret in it).
    #[error("crypto backend: {0}")]
    Backend(String),
}
