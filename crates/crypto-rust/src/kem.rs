//! Backend for [`sotto_crypto::kem::KemProvider`]: ML-KEM-768 (FIPS 203) on RustCrypto's
//! `ml-kem` (feature `zeroize`: the decapsulation key is wiped on drop).
//!
//! Randomness comes from the caller's [`SecureRandom`]: the 64-byte key seed `d ‖ z`
//! (FIPS 203 §7.1) and the 32-byte encapsulation message `m` (FIPS 203 §7.2) are drawn from
//! it and handed to the crate's deterministic entry points.

use ml_kem::array::Array;
use ml_kem::{Decapsulate, KeyExport, MlKem768};
use sotto_crypto::Error;
use sotto_crypto::agreement::SharedSecret;
use sotto_crypto::kem::{DecapsulationKey, Encapsulation, KemAlgorithm, KemProvider};
use sotto_crypto::rng::SecureRandom;
use zeroize::{Zeroize, Zeroizing};

/// RustCrypto implementation of [`KemProvider`].
#[derive(Debug)]
pub(crate) struct RustKem;

/// An ML-KEM-768 decapsulation key with its seed and encoded encapsulation key.
struct MlKem768Key {
    key: ml_kem::DecapsulationKey<MlKem768>,
    seed: Zeroizing<[u8; 64]>,
    encapsulation_key: Vec<u8>,
}

impl core::fmt::Debug for MlKem768Key {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("MlKem768Key(<redacted>)")
    }
}

impl DecapsulationKey for MlKem768Key {
    fn algorithm(&self) -> KemAlgorithm {
        KemAlgorithm::MlKem768
    }

    fn encapsulation_key(&self) -> &[u8] {
        &self.encapsulation_key
    }

    fn decapsulate(&self, ciphertext: &[u8]) -> Result<SharedSecret, Error> {
        let ct = ml_kem::Ciphertext::<MlKem768>::try_from(ciphertext).map_err(|_| {
            Error::InvalidLength {
                what: "ml-kem-768 ciphertext",
                got: ciphertext.len(),
            }
        })?;
        let mut k = self.key.decapsulate(&ct);
        let secret = SharedSecret::from_slice(&k);
        k.zeroize();
        Ok(secret)
    }

    fn write_seed(&self, out: &mut [u8]) -> Result<usize, Error> {
        let dst = out
            .get_mut(..self.seed.len())
            .ok_or(Error::BufferTooSmall {
                need: self.seed.len(),
            })?;
        dst.copy_from_slice(&self.seed[..]);
        Ok(self.seed.len())
    }
}

fn mlkem768_from_seed(seed: &[u8]) -> Result<Box<dyn DecapsulationKey>, Error> {
    let seed: Zeroizing<[u8; 64]> =
        Zeroizing::new(seed.try_into().map_err(|_| Error::InvalidLength {
            what: "ml-kem seed",
            got: seed.len(),
        })?);
    let mut arr = ml_kem::Seed::from(*seed);
    let key = ml_kem::DecapsulationKey::<MlKem768>::from_seed(arr);
    arr.zeroize();
    let encapsulation_key = key.encapsulation_key().to_bytes().to_vec();
    Ok(Box::new(MlKem768Key {
        key,
        seed,
        encapsulation_key,
    }))
}

fn mlkem768_encapsulate(
    encapsulation_key: &[u8],
    rng: &dyn SecureRandom,
) -> Result<Encapsulation, Error> {
    let ek_bytes = ml_kem::Key::<ml_kem::EncapsulationKey<MlKem768>>::try_from(encapsulation_key)
        .map_err(|_| Error::InvalidLength {
        what: "ml-kem-768 encapsulation key",
        got: encapsulation_key.len(),
    })?;
    let ek = ml_kem::EncapsulationKey::<MlKem768>::new(&ek_bytes)
        .map_err(|_| Error::InvalidPublicValue)?;
    let mut m: Array<u8, _> = ml_kem::B32::default();
    rng.fill(&mut m)?;
    let (ct, mut k) = ek.encapsulate_deterministic(&m);
    m.zeroize();
    let shared_secret = SharedSecret::from_slice(&k);
    k.zeroize();
    Ok(Encapsulation {
        ciphertext: ct.to_vec(),
        shared_secret,
    })
}

impl KemProvider for RustKem {
    fn generate(
        &self,
        algorithm: KemAlgorithm,
        rng: &dyn SecureRandom,
    ) -> Result<Box<dyn DecapsulationKey>, Error> {
        let mut seed = Zeroizing::new([0u8; 64]);
        let seed = seed
            .get_mut(..algorithm.seed_len())
            .ok_or(Error::Unsupported("kem algorithm"))?;
        rng.fill(seed)?;
        self.from_seed(algorithm, seed)
    }

    fn from_seed(
        &self,
        algorithm: KemAlgorithm,
        seed: &[u8],
    ) -> Result<Box<dyn DecapsulationKey>, Error> {
        match algorithm {
            KemAlgorithm::MlKem768 => mlkem768_from_seed(seed),
            _ => Err(Error::Unsupported("kem algorithm")),
        }
    }

    fn encapsulate(
        &self,
        algorithm: KemAlgorithm,
        encapsulation_key: &[u8],
        rng: &dyn SecureRandom,
    ) -> Result<Encapsulation, Error> {
        match algorithm {
            KemAlgorithm::MlKem768 => mlkem768_encapsulate(encapsulation_key, rng),
            _ => Err(Error::Unsupported("kem algorithm")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// FIPS 203 §8 Table 3: the expanded decapsulation key of ML-KEM-768 is 2400 bytes.
    #[test]
    #[allow(deprecated)]
    fn expanded_decapsulation_key_size_matches_fips203() {
        use ml_kem::ExpandedKeyEncoding;
        let seed = [7u8; 64];
        let key = ml_kem::DecapsulationKey::<MlKem768>::from_seed(ml_kem::Seed::from(seed));
        let expanded = key.to_expanded_bytes();
        assert_eq!(
            expanded.len(),
            KemAlgorithm::MlKem768.expanded_decapsulation_key_len()
        );
    }

    #[test]
    fn debug_is_redacted() {
        let key = RustKem
            .from_seed(KemAlgorithm::MlKem768, &[1u8; 64])
            .unwrap();
        assert_eq!(format!("{key:?}"), "MlKem768Key(<redacted>)");
    }
}
