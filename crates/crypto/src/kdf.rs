//! Key derivation: HKDF (RFC 5869) with SHA-256, SHA-384 and SHA-512.
//!
//! Outputs go into caller-owned buffers (no allocation); the caller wipes them. An empty
//! `salt` is RFC 5869's "not provided" (HashLen zero octets give the same HMAC key).
//! `info` is given as parts that are hashed as their concatenation.

use crate::Error;
use crate::hash::HashAlgorithm;

/// Key derivation (HKDF).
pub trait KdfProvider: Send + Sync + core::fmt::Debug {
    /// HKDF-Extract (RFC 5869 §2.2): writes `PRK = HMAC-Hash(salt, ikm)` into the start of
    /// `prk_out` and returns its length (the hash output length).
    ///
    /// Errors: [`Error::Unsupported`] for a hash other than SHA-256/384/512,
    /// [`Error::BufferTooSmall`] if `prk_out` is shorter than the hash output.
    fn hkdf_extract(
        &self,
        hash: HashAlgorithm,
        salt: &[u8],
        ikm: &[u8],
        prk_out: &mut [u8],
    ) -> Result<usize, Error>;

    /// HKDF-Expand (RFC 5869 §2.3): fills all of `okm` from `prk` and the concatenation of
    /// `info`.
    ///
    /// Errors: [`Error::Unsupported`] for a hash other than SHA-256/384/512,
    /// [`Error::InvalidLength`] if `prk` is shorter than the hash output (`what: "hkdf
    /// prk"`) or `okm` is longer than 255 hash outputs (`what: "hkdf output"`).
    fn hkdf_expand(
        &self,
        hash: HashAlgorithm,
        prk: &[u8],
        info: &[&[u8]],
        okm: &mut [u8],
    ) -> Result<(), Error>;

    /// HKDF (extract then expand) in one call: fills all of `okm`.
    ///
    /// Errors: as [`KdfProvider::hkdf_extract`] and [`KdfProvider::hkdf_expand`].
    fn hkdf(
        &self,
        hash: HashAlgorithm,
        salt: &[u8],
        ikm: &[u8],
        info: &[&[u8]],
        okm: &mut [u8],
    ) -> Result<(), Error>;
}
