//! Backend for [`sotto_crypto::agreement::AgreementProvider`]: X25519 on `x25519-dalek`,
//! X448 on OpenSSL, and finite-field DH on the RFC 3526 groups 14 and
//! 15 with OpenSSL's constant-time Montgomery exponentiation ([`crate::ffdh`]).
//!
//! Checks (RFC 7748 §6, RFC 6189 §4.4.1.1, RFC 2631 §2.1.5): an all-zero X25519/X448
//! result is refused, as is an FFDH peer value outside `[2, p-2]` or a shared value of 1.
//! FFDH exponents are drawn uniformly from `[2, p-2]` (full length), or, where the protocol
//! asks for it ([`AgreementProvider::generate_short_exponent`]: ZRTP, RFC 6189 §5.1.5), as a
//! random exponent of a given length; the exponentiation then runs over that many bits, in
//! time that depends on the length only, never on the exponent's value.

use sotto_crypto::Error;
use sotto_crypto::agreement::{AgreementAlgorithm, AgreementProvider, PrivateKey, SharedSecret};
use sotto_crypto::rng::SecureRandom;

use crate::ffdh;
use zeroize::Zeroizing;

/// RustCrypto / dalek implementation of [`AgreementProvider`].
#[derive(Debug)]
pub(crate) struct RustAgreement;

/// Copies `secret` into the start of `out`.
fn write_into(secret: &[u8], out: &mut [u8]) -> Result<usize, Error> {
    let dst = out
        .get_mut(..secret.len())
        .ok_or(Error::BufferTooSmall { need: secret.len() })?;
    dst.copy_from_slice(secret);
    Ok(secret.len())
}

/// An X25519 private key (wiped on drop by `x25519-dalek`).
struct X25519Key {
    secret: x25519_dalek::StaticSecret,
    public: [u8; 32],
}

impl core::fmt::Debug for X25519Key {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("X25519Key(<redacted>)")
    }
}

impl PrivateKey for X25519Key {
    fn algorithm(&self) -> AgreementAlgorithm {
        AgreementAlgorithm::X25519
    }

    fn public_key(&self) -> &[u8] {
        &self.public
    }

    fn agree(&self, peer_public: &[u8]) -> Result<SharedSecret, Error> {
        let peer: [u8; 32] = peer_public.try_into().map_err(|_| Error::InvalidLength {
            what: "x25519 public value",
            got: peer_public.len(),
        })?;
        let shared = self
            .secret
            .diffie_hellman(&x25519_dalek::PublicKey::from(peer));
        if !shared.was_contributory() {
            return Err(Error::InvalidPublicValue);
        }
        Ok(SharedSecret::from_slice(shared.as_bytes()))
    }

    fn write_secret(&self, out: &mut [u8]) -> Result<usize, Error> {
        write_into(self.secret.as_bytes(), out)
    }
}

/// An X448 key on OpenSSL (its private key is wiped when OpenSSL frees it); the scalar
/// string is kept, zeroized, for `write_secret`.
struct X448Key {
    scalar: Zeroizing<[u8; 56]>,
    key: openssl::pkey::PKey<openssl::pkey::Private>,
    public: [u8; 56],
}

impl core::fmt::Debug for X448Key {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("X448Key(<redacted>)")
    }
}

impl X448Key {
    fn boxed(scalar: Zeroizing<[u8; 56]>) -> Result<Box<dyn PrivateKey>, Error> {
        let key =
            openssl::pkey::PKey::private_key_from_raw_bytes(&scalar[..], openssl::pkey::Id::X448)
                .map_err(|_| Error::InvalidPrivateKey)?;
        let raw = key.raw_public_key().map_err(|_| Error::InvalidPrivateKey)?;
        let public: [u8; 56] = raw
            .as_slice()
            .try_into()
            .map_err(|_| Error::InvalidPrivateKey)?;
        Ok(Box::new(X448Key {
            scalar,
            key,
            public,
        }))
    }
}

impl PrivateKey for X448Key {
    fn algorithm(&self) -> AgreementAlgorithm {
        AgreementAlgorithm::X448
    }

    fn public_key(&self) -> &[u8] {
        &self.public
    }

    fn agree(&self, peer_public: &[u8]) -> Result<SharedSecret, Error> {
        if peer_public.len() != 56 {
            return Err(Error::InvalidLength {
                what: "x448 public value",
                got: peer_public.len(),
            });
        }
        let peer =
            openssl::pkey::PKey::public_key_from_raw_bytes(peer_public, openssl::pkey::Id::X448)
                .map_err(|_| Error::InvalidPublicValue)?;
        // OpenSSL refuses a low-order peer point (an all-zero result, RFC 7748 §6.2).
        let mut shared = Zeroizing::new([0u8; 56]);
        let n = openssl::derive::Deriver::new(&self.key)
            .and_then(|mut d| {
                d.set_peer(&peer)?;
                d.derive(&mut shared[..])
            })
            .map_err(|_| Error::InvalidPublicValue)?;
        if n != 56 || sotto_crypto::ct_eq(&shared[..], &[0u8; 56]) {
            return Err(Error::InvalidPublicValue);
        }
        Ok(SharedSecret::from_slice(&shared[..]))
    }

    fn write_secret(&self, out: &mut [u8]) -> Result<usize, Error> {
        write_into(&self.scalar[..], out)
    }
}

fn x25519_from_secret(secret: &[u8]) -> Result<Box<dyn PrivateKey>, Error> {
    let bytes: Zeroizing<[u8; 32]> =
        Zeroizing::new(secret.try_into().map_err(|_| Error::InvalidLength {
            what: "x25519 private key",
            got: secret.len(),
        })?);
    let secret = x25519_dalek::StaticSecret::from(*bytes);
    let public = x25519_dalek::PublicKey::from(&secret).to_bytes();
    Ok(Box::new(X25519Key { secret, public }))
}

fn x448_from_secret(secret: &[u8]) -> Result<Box<dyn PrivateKey>, Error> {
    let bytes: Zeroizing<[u8; 56]> =
        Zeroizing::new(secret.try_into().map_err(|_| Error::InvalidLength {
            what: "x448 private key",
            got: secret.len(),
        })?);
    X448Key::boxed(bytes)
}

impl AgreementProvider for RustAgreement {
    fn generate(
        &self,
        algorithm: AgreementAlgorithm,
        rng: &dyn SecureRandom,
    ) -> Result<Box<dyn PrivateKey>, Error> {
        match algorithm {
            AgreementAlgorithm::X25519 => {
                let mut b = Zeroizing::new([0u8; 32]);
                rng.fill(&mut b[..])?;
                x25519_from_secret(&b[..])
            }
            AgreementAlgorithm::X448 => {
                let mut b = Zeroizing::new([0u8; 56]);
                rng.fill(&mut b[..])?;
                X448Key::boxed(b)
            }
            AgreementAlgorithm::Ffdh2048 | AgreementAlgorithm::Ffdh3072 => {
                ffdh::generate(algorithm, None, rng)
            }
            _ => Err(Error::Unsupported("agreement algorithm")),
        }
    }

    fn generate_short_exponent(
        &self,
        algorithm: AgreementAlgorithm,
        exponent_len: usize,
        rng: &dyn SecureRandom,
    ) -> Result<Box<dyn PrivateKey>, Error> {
        match algorithm {
            AgreementAlgorithm::Ffdh2048 | AgreementAlgorithm::Ffdh3072 => {
                ffdh::generate(algorithm, Some(exponent_len), rng)
            }
            other => self.generate(other, rng),
        }
    }

    fn from_secret_bytes(
        &self,
        algorithm: AgreementAlgorithm,
        secret: &[u8],
    ) -> Result<Box<dyn PrivateKey>, Error> {
        match algorithm {
            AgreementAlgorithm::X25519 => x25519_from_secret(secret),
            AgreementAlgorithm::X448 => x448_from_secret(secret),
            AgreementAlgorithm::Ffdh2048 | AgreementAlgorithm::Ffdh3072 => {
                ffdh::load(algorithm, secret)
            }
            _ => Err(Error::Unsupported("agreement algorithm")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        for (alg, len) in [
            (AgreementAlgorithm::X25519, 32),
            (AgreementAlgorithm::X448, 56),
            (AgreementAlgorithm::Ffdh2048, 32),
        ] {
            let key = RustAgreement
                .from_secret_bytes(alg, &vec![0xa7; len])
                .unwrap();
            let dbg = format!("{key:?}");
            assert!(dbg.contains("<redacted>") && !dbg.contains("a7"), "{dbg}");
        }
    }

    #[test]
    fn secret_round_trips_and_buffer_checked() {
        let key = RustAgreement
            .from_secret_bytes(AgreementAlgorithm::X448, &[9u8; 56])
            .unwrap();
        let mut out = [0u8; 56];
        assert_eq!(
            key.write_secret(&mut out[..55]),
            Err(Error::BufferTooSmall { need: 56 })
        );
        assert_eq!(key.write_secret(&mut out), Ok(56));
        assert_eq!(out, [9u8; 56]);
    }
}
