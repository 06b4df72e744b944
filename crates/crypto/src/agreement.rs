//! Key agreement: X25519 and X448 (RFC 7748), finite-field Diffie-Hellman on the RFC 3526
//! MODP groups 14 (2048-bit) and 15 (3072-bit) as ZRTP's DH2k and DH3k (RFC 6189 §5.1.5).
//!
//! A private key is created by [`AgreementProvider::generate`] (randomness from the
//! caller's [`SecureRandom`]) or loaded with [`AgreementProvider::from_secret_bytes`]. It
//! exposes its public value and computes a [`SharedSecret`] with a peer's public value.
//!
//! Peer values are checked (RFC 6189 §4.4.1.1, RFC 2631 §2.1.5, RFC 7748 §6): an X25519 or
//! X448 agreement giving the all-zero output (a low-order peer point) is refused, and an FFDH
//! public value outside `[2, p-2]` is refused, both with [`Error::InvalidPublicValue`].
//!
//! Encodings: X25519/X448 values are the RFC 7748 little-endian strings (32/56 octets). FFDH
//! public values and shared secrets are big-endian integers of the prime's length (256/384
//! octets), leading zeros kept, as ZRTP sends them (RFC 6189 §4.4.1.2, §4.4.1.4).

use crate::Error;
use crate::rng::SecureRandom;
use zeroize::Zeroize;

/// A key-agreement algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AgreementAlgorithm {
    /// X25519 (RFC 7748 §5, §6.1). ZRTP `X255`.
    X25519,
    /// X448 (RFC 7748 §5, §6.2). ZRTP `X448`.
    X448,
    /// Finite-field DH on the 2048-bit MODP group 14 (RFC 3526 §3), generator 2. ZRTP `DH2k`.
    Ffdh2048,
    /// Finite-field DH on the 3072-bit MODP group 15 (RFC 3526 §4), generator 2. ZRTP `DH3k`.
    Ffdh3072,
}

impl AgreementAlgorithm {
    /// Length in bytes of a public value (and of a shared secret) for this algorithm.
    pub const fn public_len(self) -> usize {
        match self {
            AgreementAlgorithm::X25519 => 32,
            AgreementAlgorithm::X448 => 56,
            AgreementAlgorithm::Ffdh2048 => 256,
            AgreementAlgorithm::Ffdh3072 => 384,
        }
    }

    /// Length in bytes of the shared secret produced by [`PrivateKey::agree`].
    pub const fn shared_secret_len(self) -> usize {
        self.public_len()
    }

    /// Length in bytes of the encoded private key accepted by
    /// [`AgreementProvider::from_secret_bytes`] and written by [`PrivateKey::write_secret`]
    /// (for FFDH, shorter big-endian exponents are also accepted on input).
    pub const fn secret_len(self) -> usize {
        self.public_len()
    }
}

/// The largest shared secret of any [`AgreementAlgorithm`], in bytes (DH3k).
pub const MAX_SHARED_SECRET_LEN: usize = 384;

/// A secret byte string from a key agreement or a key encapsulation.
///
/// Held on the heap (moving the value does not copy the secret), zeroized on drop, printed
/// as `<redacted>` by `Debug`. Compare it only with [`crate::ct_eq`].
pub struct SharedSecret(Box<[u8]>);

impl SharedSecret {
    /// Copies `bytes` into a new secret. The caller remains responsible for wiping its copy.
    pub fn from_slice(bytes: &[u8]) -> Self {
        SharedSecret(bytes.to_vec().into_boxed_slice())
    }

    /// The secret bytes. Do not log them, and wipe any copy you make.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True if the secret is empty (never the case for a secret from a provider).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Drop for SharedSecret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl zeroize::ZeroizeOnDrop for SharedSecret {}

impl core::fmt::Debug for SharedSecret {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A private key for one [`AgreementAlgorithm`], with its public value.
///
/// Implementations zeroize the secret on drop and print no secret in `Debug`.
pub trait PrivateKey: Send + Sync + core::fmt::Debug {
    /// The algorithm of this key.
    fn algorithm(&self) -> AgreementAlgorithm;

    /// The public value to send to the peer ([`AgreementAlgorithm::public_len`] bytes).
    fn public_key(&self) -> &[u8];

    /// Computes the shared secret with the peer's public value.
    ///
    /// Errors: [`Error::InvalidLength`] if `peer_public` is not exactly
    /// [`AgreementAlgorithm::public_len`] bytes; [`Error::InvalidPublicValue`] if the value
    /// is refused (low-order point / all-zero result, FFDH value outside `[2, p-2]`).
    fn agree(&self, peer_public: &[u8]) -> Result<SharedSecret, Error>;

    /// Writes the encoded private key ([`AgreementAlgorithm::secret_len`] bytes) into the
    /// start of `out` and returns its length, for storage. The caller must wipe `out`.
    ///
    /// Errors: [`Error::BufferTooSmall`] if `out` is shorter than the key.
    fn write_secret(&self, out: &mut [u8]) -> Result<usize, Error>;
}

/// Key agreement (X25519, X448, finite-field DH on the RFC 3526 groups).
pub trait AgreementProvider: Send + Sync + core::fmt::Debug {
    /// Generates a fresh private key with randomness from `rng`.
    ///
    /// Errors: [`Error::Unsupported`] if the algorithm is not offered, or an error of `rng`.
    fn generate(
        &self,
        algorithm: AgreementAlgorithm,
        rng: &dyn SecureRandom,
    ) -> Result<Box<dyn PrivateKey>, Error>;

    /// Like [`AgreementProvider::generate`], but a finite-field DH key's secret exponent is
    /// `exponent_len` random octets instead of full length (RFC 6189 §5.1.5: twice the AES
    /// key length; RFC 3526 §8). Curves ignore the length.
    fn generate_short_exponent(
        &self,
        algorithm: AgreementAlgorithm,
        exponent_len: usize,
        rng: &dyn SecureRandom,
    ) -> Result<Box<dyn PrivateKey>, Error> {
        let _ = exponent_len;
        self.generate(algorithm, rng)
    }

    /// Loads a private key from its encoding (test vectors, stored keys).
    ///
    /// X25519/X448: the RFC 7748 scalar string (32/56 bytes; clamped when used). FFDH: the
    /// exponent as a big-endian integer of at most the prime's length, in `[2, p-2]`.
    ///
    /// Errors: [`Error::InvalidLength`] on a wrong length, [`Error::InvalidPrivateKey`] for
    /// an FFDH exponent outside `[2, p-2]`.
    // A factory on the provider: `self` is the provider, not the value converted.
    #[allow(clippy::wrong_self_convention)]
    fn from_secret_bytes(
        &self,
        algorithm: AgreementAlgorithm,
        secret: &[u8],
    ) -> Result<Box<dyn PrivateKey>, Error>;
}
