//! Backend for [`sotto_crypto::signature::SignatureProvider`]: Ed25519 on `ed25519-dalek`,
//! Ed448 on the pinned pre-release `ed448-goldilocks` (RFC 8032 §5.1, §5.2).
//!
//! Ed25519 verification is `verify_strict` (rejects small-order keys and `R`, and
//! non-canonical `S`). `ed25519-dalek` 3.0 offers Ed25519ph (with a context, feature
//! `digest`) but not Ed25519ctx; `ed448-goldilocks` offers Ed448 with a context and Ed448ph.
//! None of these variants is exposed by the sotto API.

use sotto_crypto::Error;
use sotto_crypto::rng::SecureRandom;
use sotto_crypto::signature::{Signature, SignatureAlgorithm, SignatureProvider, SigningKey};
use zeroize::Zeroizing;

/// RustCrypto / dalek implementation of [`SignatureProvider`].
#[derive(Debug)]
pub(crate) struct RustSignature;

/// An Ed25519 signing key (zeroized on drop by `ed25519-dalek`).
struct Ed25519Key {
    key: ed25519_dalek::SigningKey,
    public: [u8; 32],
}

/// An Ed448 signing key (zeroized on drop by `ed448-goldilocks`).
struct Ed448Key {
    key: ed448_goldilocks::SigningKey,
    public: [u8; 57],
}

impl core::fmt::Debug for Ed25519Key {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Ed25519Key(<redacted>)")
    }
}

impl core::fmt::Debug for Ed448Key {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Ed448Key(<redacted>)")
    }
}

/// Copies `secret` into the start of `out`.
fn write_into(secret: &[u8], out: &mut [u8]) -> Result<usize, Error> {
    let dst = out
        .get_mut(..secret.len())
        .ok_or(Error::BufferTooSmall { need: secret.len() })?;
    dst.copy_from_slice(secret);
    Ok(secret.len())
}

impl SigningKey for Ed25519Key {
    fn algorithm(&self) -> SignatureAlgorithm {
        SignatureAlgorithm::Ed25519
    }

    fn public_key(&self) -> &[u8] {
        &self.public
    }

    fn sign(&self, message: &[u8]) -> Signature {
        use ed25519_dalek::Signer;
        Signature::new(&self.key.sign(message).to_bytes())
    }

    fn write_seed(&self, out: &mut [u8]) -> Result<usize, Error> {
        write_into(self.key.as_bytes(), out)
    }
}

impl SigningKey for Ed448Key {
    fn algorithm(&self) -> SignatureAlgorithm {
        SignatureAlgorithm::Ed448
    }

    fn public_key(&self) -> &[u8] {
        &self.public
    }

    fn sign(&self, message: &[u8]) -> Signature {
        Signature::new(&self.key.sign_raw(message).to_bytes())
    }

    fn write_seed(&self, out: &mut [u8]) -> Result<usize, Error> {
        write_into(self.key.as_bytes(), out)
    }
}

fn ed25519_from_seed(seed: &[u8]) -> Result<Box<dyn SigningKey>, Error> {
    let seed: Zeroizing<[u8; 32]> =
        Zeroizing::new(seed.try_into().map_err(|_| Error::InvalidLength {
            what: "ed25519 seed",
            got: seed.len(),
        })?);
    let key = ed25519_dalek::SigningKey::from_bytes(&seed);
    let public = key.verifying_key().to_bytes();
    Ok(Box::new(Ed25519Key { key, public }))
}

fn ed448_from_seed(seed: &[u8]) -> Result<Box<dyn SigningKey>, Error> {
    let key = ed448_goldilocks::SigningKey::try_from(seed).map_err(|_| Error::InvalidLength {
        what: "ed448 seed",
        got: seed.len(),
    })?;
    let public = key.verifying_key().to_bytes();
    Ok(Box::new(Ed448Key { key, public }))
}

fn ed25519_verify(public_key: &[u8], message: &[u8], signature: &[u8]) -> Result<(), Error> {
    let pk: &[u8; 32] = public_key.try_into().map_err(|_| Error::InvalidLength {
        what: "ed25519 public key",
        got: public_key.len(),
    })?;
    let sig: &[u8; 64] = signature.try_into().map_err(|_| Error::InvalidLength {
        what: "ed25519 signature",
        got: signature.len(),
    })?;
    let vk = ed25519_dalek::VerifyingKey::from_bytes(pk).map_err(|_| Error::InvalidPublicValue)?;
    let sig = ed25519_dalek::Signature::from_bytes(sig);
    vk.verify_strict(message, &sig)
        .map_err(|_| Error::AuthenticationFailed)
}

fn ed448_verify(public_key: &[u8], message: &[u8], signature: &[u8]) -> Result<(), Error> {
    let pk: &[u8; 57] = public_key.try_into().map_err(|_| Error::InvalidLength {
        what: "ed448 public key",
        got: public_key.len(),
    })?;
    let sig: &[u8; 114] = signature.try_into().map_err(|_| Error::InvalidLength {
        what: "ed448 signature",
        got: signature.len(),
    })?;
    let vk =
        ed448_goldilocks::VerifyingKey::from_bytes(pk).map_err(|_| Error::InvalidPublicValue)?;
    let sig = ed448_goldilocks::Signature::from_bytes(sig);
    vk.verify_raw(&sig, message)
        .map_err(|_| Error::AuthenticationFailed)
}

impl SignatureProvider for RustSignature {
    fn generate(
        &self,
        algorithm: SignatureAlgorithm,
        rng: &dyn SecureRandom,
    ) -> Result<Box<dyn SigningKey>, Error> {
        let mut seed = Zeroizing::new([0u8; 57]);
        let seed = seed
            .get_mut(..algorithm.seed_len())
            .ok_or(Error::Unsupported("signature algorithm"))?;
        rng.fill(seed)?;
        self.from_seed(algorithm, seed)
    }

    fn from_seed(
        &self,
        algorithm: SignatureAlgorithm,
        seed: &[u8],
    ) -> Result<Box<dyn SigningKey>, Error> {
        match algorithm {
            SignatureAlgorithm::Ed25519 => ed25519_from_seed(seed),
            SignatureAlgorithm::Ed448 => ed448_from_seed(seed),
            _ => Err(Error::Unsupported("signature algorithm")),
        }
    }

    fn verify(
        &self,
        algorithm: SignatureAlgorithm,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), Error> {
        match algorithm {
            SignatureAlgorithm::Ed25519 => ed25519_verify(public_key, message, signature),
            SignatureAlgorithm::Ed448 => ed448_verify(public_key, message, signature),
            _ => Err(Error::Unsupported("signature algorithm")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted_and_seed_round_trips() {
        for alg in [SignatureAlgorithm::Ed25519, SignatureAlgorithm::Ed448] {
            let seed: Vec<u8> = (0..alg.seed_len() as u8).collect();
            let key = RustSignature.from_seed(alg, &seed).unwrap();
            let dbg = format!("{key:?}");
            assert!(dbg.contains("<redacted>"), "{dbg}");
            let mut out = [0u8; 64];
            assert_eq!(
                key.write_seed(&mut out[..alg.seed_len() - 1]),
                Err(Error::BufferTooSmall {
                    need: alg.seed_len()
                })
            );
            let n = key.write_seed(&mut out).unwrap();
            assert_eq!(&out[..n], &seed[..]);
            assert_eq!(key.public_key().len(), alg.public_key_len());
        }
    }
}
