//! Key encapsulation: ML-KEM-768 (FIPS 203), for the hybrid post-quantum key agreements.
//!
//! A decapsulation key is generated from a 64-byte seed `d ‖ z` (FIPS 203 §6.1,
//! `ML-KEM.KeyGen_internal`), drawn from the caller's [`SecureRandom`] or given explicitly
//! (tests, stored keys). Sizes for ML-KEM-768 (FIPS 203 §8, Table 3): encapsulation key 1184
//! bytes, ciphertext 1088 bytes, shared secret 32 bytes; the expanded decapsulation key
//! would be 2400 bytes, but keys are stored as their 64-byte seed.

use crate::Error;
use crate::agreement::SharedSecret;
use crate::rng::SecureRandom;

/// A key-encapsulation mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KemAlgorithm {
    /// ML-KEM-768 (FIPS 203, security category 3).
    MlKem768,
}

impl KemAlgorithm {
    /// Length in bytes of the encapsulation (public) key.
    pub const fn encapsulation_key_len(self) -> usize {
        match self {
            KemAlgorithm::MlKem768 => 1184,
        }
    }

    /// Length in bytes of a ciphertext.
    pub const fn ciphertext_len(self) -> usize {
        match self {
            KemAlgorithm::MlKem768 => 1088,
        }
    }

    /// Length in bytes of the shared secret.
    pub const fn shared_secret_len(self) -> usize {
        match self {
            KemAlgorithm::MlKem768 => 32,
        }
    }

    /// Length in bytes of the private seed `d ‖ z`.
    pub const fn seed_len(self) -> usize {
        match self {
            KemAlgorithm::MlKem768 => 64,
        }
    }

    /// Length in bytes of the expanded decapsulation key of FIPS 203 (not used for storage).
    pub const fn expanded_decapsulation_key_len(self) -> usize {
        match self {
            KemAlgorithm::MlKem768 => 2400,
        }
    }
}

/// The result of an encapsulation: the ciphertext for the peer, the shared secret to keep.
#[derive(Debug)]
pub struct Encapsulation {
    /// The ciphertext to send ([`KemAlgorithm::ciphertext_len`] bytes).
    pub ciphertext: Vec<u8>,
    /// The shared secret ([`KemAlgorithm::shared_secret_len`] bytes).
    pub shared_secret: SharedSecret,
}

/// A private decapsulation key, with its encapsulation key.
///
/// Implementations zeroize the secret on drop and print no secret in `Debug`.
pub trait DecapsulationKey: Send + Sync + core::fmt::Debug {
    /// The algorithm of this key.
    fn algorithm(&self) -> KemAlgorithm;

    /// The encoded encapsulation key to publish ([`KemAlgorithm::encapsulation_key_len`]).
    fn encapsulation_key(&self) -> &[u8];

    /// Recovers the shared secret from `ciphertext`.
    ///
    /// A well-sized but forged or corrupted ciphertext does not fail: ML-KEM's implicit
    /// rejection returns an unrelated pseudo-random secret (FIPS 203 §6.3), so the mismatch
    /// shows up later as an authentication failure of the protocol.
    ///
    /// Errors: [`Error::InvalidLength`] if `ciphertext` is not
    /// [`KemAlgorithm::ciphertext_len`] bytes.
    fn decapsulate(&self, ciphertext: &[u8]) -> Result<SharedSecret, Error>;

    /// Writes the private seed ([`KemAlgorithm::seed_len`] bytes) into the start of `out`
    /// and returns its length, for storage. The caller must wipe `out`.
    ///
    /// Errors: [`Error::BufferTooSmall`] if `out` is shorter than the seed.
    fn write_seed(&self, out: &mut [u8]) -> Result<usize, Error>;
}

/// Key encapsulation (ML-KEM-768).
pub trait KemProvider: Send + Sync + core::fmt::Debug {
    /// Generates a fresh decapsulation key from a seed drawn from `rng`.
    ///
    /// Errors: [`Error::Unsupported`] if the algorithm is not offered, or an error of `rng`.
    fn generate(
        &self,
        algorithm: KemAlgorithm,
        rng: &dyn SecureRandom,
    ) -> Result<Box<dyn DecapsulationKey>, Error>;

    /// Derives the decapsulation key from its seed `d ‖ z` (deterministic).
    ///
    /// Errors: [`Error::InvalidLength`] if `seed` is not [`KemAlgorithm::seed_len`] bytes.
    // A factory on the provider: `self` is the provider, not the value converted.
    #[allow(clippy::wrong_self_convention)]
    fn from_seed(
        &self,
        algorithm: KemAlgorithm,
        seed: &[u8],
    ) -> Result<Box<dyn DecapsulationKey>, Error>;

    /// Encapsulates a fresh shared secret to the peer's `encapsulation_key`, with the
    /// message randomness drawn from `rng`.
    ///
    /// Errors: [`Error::InvalidLength`] on a wrongly sized key, [`Error::InvalidPublicValue`]
    /// if the key fails the FIPS 203 §7.2 modulus check, or an error of `rng`.
    fn encapsulate(
        &self,
        algorithm: KemAlgorithm,
        encapsulation_key: &[u8],
        rng: &dyn SecureRandom,
    ) -> Result<Encapsulation, Error>;
}
