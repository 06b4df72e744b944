//! Signatures: Ed25519 and Ed448 (RFC 8032 §5.1 and §5.2, "pure" variants, no context and
//! no pre-hash).
//!
//! A signing key is created from a random seed ([`SignatureProvider::generate`]) or loaded
//! from its seed ([`SignatureProvider::from_seed`]): 32 octets for Ed25519, 57 for Ed448, as
//! the RFC's "private key". Verification is a provider method on public bytes.
//!
//! Ed25519ctx with the empty context ([`SignatureAlgorithm::Ed25519Ctx`], RFC 8032 §5.1 with
//! `dom2(0, "")`, what LIME signs with on Curve25519) is offered beside plain Ed25519;
//! Ed25519ph, Ed448 with a context and Ed448ph are not.
//!
//! An EdDSA key also serves Diffie-Hellman on the birationally equivalent Montgomery curve
//! ([`SignatureProvider::agreement_key`], [`SignatureProvider::agreement_public_key`]):
//! X25519 from Ed25519 (`u = (1+y)/(1−y)`, the private scalar from the hashed seed), X448 from
//! Ed448 (`u = y²(1−dy²)/(1−y²)`, the private key the first 56 octets of SHAKE256(seed)), as
//! LIME does with its identity keys.

use crate::Error;
use crate::rng::SecureRandom;

/// A signature algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SignatureAlgorithm {
    /// Ed25519 (RFC 8032 §5.1), pure, no context.
    Ed25519,
    /// Ed25519ctx (RFC 8032 §5.1) with the empty context: every SHA-512 of signing and
    /// verifying is prefixed with `dom2(0, "")`. Same keys as Ed25519, other signatures.
    Ed25519Ctx,
    /// Ed448 (RFC 8032 §5.2), empty context.
    Ed448,
}

impl SignatureAlgorithm {
    /// Length in bytes of the private seed.
    pub const fn seed_len(self) -> usize {
        match self {
            SignatureAlgorithm::Ed25519 | SignatureAlgorithm::Ed25519Ctx => 32,
            SignatureAlgorithm::Ed448 => 57,
        }
    }

    /// Length in bytes of the encoded public key.
    pub const fn public_key_len(self) -> usize {
        match self {
            SignatureAlgorithm::Ed25519 | SignatureAlgorithm::Ed25519Ctx => 32,
            SignatureAlgorithm::Ed448 => 57,
        }
    }

    /// Length in bytes of a signature.
    pub const fn signature_len(self) -> usize {
        match self {
            SignatureAlgorithm::Ed25519 | SignatureAlgorithm::Ed25519Ctx => 64,
            SignatureAlgorithm::Ed448 => 114,
        }
    }

    /// The Diffie-Hellman of the Montgomery form of its keys (X25519, X448).
    pub const fn agreement(self) -> crate::agreement::AgreementAlgorithm {
        match self {
            SignatureAlgorithm::Ed25519 | SignatureAlgorithm::Ed25519Ctx => {
                crate::agreement::AgreementAlgorithm::X25519
            }
            SignatureAlgorithm::Ed448 => crate::agreement::AgreementAlgorithm::X448,
        }
    }
}

/// The largest signature of any [`SignatureAlgorithm`], in bytes (Ed448).
pub const MAX_SIGNATURE_LEN: usize = 114;

/// A signature value (up to [`MAX_SIGNATURE_LEN`] bytes), held inline.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature {
    bytes: [u8; MAX_SIGNATURE_LEN],
    len: usize,
}

impl Signature {
    /// Wraps the first `sig.len()` bytes (at most [`MAX_SIGNATURE_LEN`]; longer input is
    /// truncated).
    pub fn new(sig: &[u8]) -> Self {
        let len = sig.len().min(MAX_SIGNATURE_LEN);
        let mut bytes = [0u8; MAX_SIGNATURE_LEN];
        bytes[..len].copy_from_slice(&sig[..len]);
        Signature { bytes, len }
    }
}

impl AsRef<[u8]> for Signature {
    fn as_ref(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl core::fmt::Debug for Signature {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for b in self.as_ref() {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// A private signing key, with its public key.
///
/// Implementations zeroize the secret on drop and print no secret in `Debug`.
pub trait SigningKey: Send + Sync + core::fmt::Debug {
    /// The algorithm of this key.
    fn algorithm(&self) -> SignatureAlgorithm;

    /// The encoded public key ([`SignatureAlgorithm::public_key_len`] bytes).
    fn public_key(&self) -> &[u8];

    /// Signs `message` (deterministic, RFC 8032).
    fn sign(&self, message: &[u8]) -> Signature;

    /// Writes the private seed ([`SignatureAlgorithm::seed_len`] bytes) into the start of
    /// `out` and returns its length, for storage. The caller must wipe `out`.
    ///
    /// Errors: [`Error::BufferTooSmall`] if `out` is shorter than the seed.
    fn write_seed(&self, out: &mut [u8]) -> Result<usize, Error>;
}

/// Signatures (Ed25519, Ed448).
pub trait SignatureProvider: Send + Sync + core::fmt::Debug {
    /// Generates a fresh signing key from a seed drawn from `rng`.
    ///
    /// Errors: [`Error::Unsupported`] if the algorithm is not offered, or an error of `rng`.
    fn generate(
        &self,
        algorithm: SignatureAlgorithm,
        rng: &dyn SecureRandom,
    ) -> Result<Box<dyn SigningKey>, Error>;

    /// Loads a signing key from its seed (the RFC 8032 private key).
    ///
    /// Errors: [`Error::InvalidLength`] if `seed` is not [`SignatureAlgorithm::seed_len`]
    /// bytes.
    // A factory on the provider: `self` is the provider, not the value converted.
    #[allow(clippy::wrong_self_convention)]
    fn from_seed(
        &self,
        algorithm: SignatureAlgorithm,
        seed: &[u8],
    ) -> Result<Box<dyn SigningKey>, Error>;

    /// Verifies `signature` on `message` under `public_key`.
    ///
    /// Errors: [`Error::InvalidLength`] on a wrongly sized key or signature,
    /// [`Error::InvalidPublicValue`] if the public key does not decode to a valid point,
    /// [`Error::AuthenticationFailed`] if the signature does not verify.
    fn verify(
        &self,
        algorithm: SignatureAlgorithm,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), Error>;

    /// The Diffie-Hellman private key (X25519 or X448, see the module documentation) of the
    /// signing key whose seed is `seed`.
    ///
    /// Errors: [`Error::InvalidLength`] for a wrongly sized seed.
    fn agreement_key(
        &self,
        algorithm: SignatureAlgorithm,
        seed: &[u8],
    ) -> Result<Box<dyn crate::agreement::PrivateKey>, Error>;

    /// The Diffie-Hellman public key (X25519 or X448) of the EdDSA `public_key`, written
    /// into the start of `out`; returns its length.
    ///
    /// Errors: [`Error::InvalidLength`], [`Error::InvalidPublicValue`] if the key does not
    /// decode to a point, [`Error::BufferTooSmall`].
    fn agreement_public_key(
        &self,
        algorithm: SignatureAlgorithm,
        public_key: &[u8],
        out: &mut [u8],
    ) -> Result<usize, Error>;
}
