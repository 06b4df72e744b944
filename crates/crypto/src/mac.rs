//! Message authentication codes (HMAC with SHA-1 and SHA-2, RFC 2104).
//!
//! A [`MacProvider`] keys an HMAC once: the inner and outer padded key blocks are hashed at
//! that point, and each [`MacKey::compute`] starts from a copy of that state, so a per-packet
//! MAC costs only the message blocks. The message is given as several parts (for SRTP: the
//! packet and the roll-over counter) so no caller has to concatenate into a new buffer.
//! Truncated tags (SRTP's 80 and 32-bit tags) are the leading bytes of the full output.

use crate::Error;

/// The largest HMAC output of any [`MacAlgorithm`], in bytes.
pub const MAX_MAC_LEN: usize = 64;

/// An HMAC algorithm, named by its hash function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MacAlgorithm {
    /// HMAC-SHA1: only where a protocol mandates it (SRTP, ZRTP legacy).
    Sha1,
    /// HMAC-SHA-256.
    Sha256,
    /// HMAC-SHA-384.
    Sha384,
    /// HMAC-SHA-512.
    Sha512,
}

impl MacAlgorithm {
    /// Full (untruncated) output length in bytes.
    pub const fn output_len(self) -> usize {
        match self {
            MacAlgorithm::Sha1 => 20,
            MacAlgorithm::Sha256 => 32,
            MacAlgorithm::Sha384 => 48,
            MacAlgorithm::Sha512 => 64,
        }
    }
}

/// A keyed HMAC.
pub trait MacKey: Send + Sync {
    /// The algorithm this key was made for.
    fn algorithm(&self) -> MacAlgorithm;

    /// Computes the MAC of the concatenation of `parts` and writes its first `out.len()`
    /// bytes into `out` (a truncated tag when `out` is shorter than the full output).
    /// Fails with [`Error::InvalidLength`] if `out` is empty or longer than the full output.
    fn compute(&self, parts: &[&[u8]], out: &mut [u8]) -> Result<(), Error>;

    /// Whether `tag` is the (possibly truncated, non-empty) MAC of the concatenation of
    /// `parts`. The comparison is constant time ([`crate::ct_eq`]).
    fn verify(&self, parts: &[&[u8]], tag: &[u8]) -> bool {
        let mut full = [0u8; MAX_MAC_LEN];
        let n = tag.len();
        match full.get_mut(..n) {
            Some(out) if n > 0 => {
                if self.compute(parts, out).is_err() {
                    return false;
                }
                crate::ct_eq(out, tag)
            }
            _ => false,
        }
    }
}

/// Message authentication codes (HMAC with SHA-1 and SHA-2).
pub trait MacProvider: Send + Sync + core::fmt::Debug {
    /// HMAC with `algorithm`, keyed with `key` (any length, per RFC 2104).
    fn hmac(&self, algorithm: MacAlgorithm, key: &[u8]) -> Result<Box<dyn MacKey>, Error>;
}
