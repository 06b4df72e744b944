//! Backend for [`sotto_crypto::agreement::AgreementProvider`]: X25519 on `x25519-dalek`,
//! X448 on the pinned pre-release `x448`, and finite-field DH on the RFC 3526 groups 14 and
//! 15 with `crypto-bigint`'s constant-time Montgomery exponentiation.
//!
//! Checks (RFC 7748 §6, RFC 6189 §4.4.1.1, RFC 2631 §2.1.5): an all-zero X25519/X448
//! result is refused, as is an FFDH peer value outside `[2, p-2]` or a shared value of 1.
//! FFDH exponents are drawn uniformly from `[2, p-2]` (full length), or, where the protocol
//! asks for it ([`AgreementProvider::generate_short_exponent`]: ZRTP, RFC 6189 §5.1.5), as a
//! random exponent of a given length; the exponentiation then runs over that many bits, in
//! time that depends on the length only, never on the exponent's value.

use crypto_bigint::modular::{FixedMontyForm, FixedMontyParams};
use crypto_bigint::{Odd, U2048, U3072, Uint};
use sotto_crypto::Error;
use sotto_crypto::agreement::{AgreementAlgorithm, AgreementProvider, PrivateKey, SharedSecret};
use sotto_crypto::rng::SecureRandom;
use std::sync::LazyLock;
use zeroize::{Zeroize, Zeroizing};

/// RustCrypto / dalek implementation of [`AgreementProvider`].
#[derive(Debug)]
pub(crate) struct RustAgreement;

/// RFC 3526 §3: the 2048-bit MODP group 14 prime (ZRTP DH2k).
const MODP2048_P: &str = concat!(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD1",
    "29024E088A67CC74020BBEA63B139B22514A08798E3404DD",
    "EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245",
    "E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED",
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3D",
    "C2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F",
    "83655D23DCA3AD961C62F356208552BB9ED529077096966D",
    "670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B",
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9",
    "DE2BCBF6955817183995497CEA956AE515D2261898FA0510",
    "15728E5A8AACAA68FFFFFFFFFFFFFFFF",
);

/// RFC 3526 §4: the 3072-bit MODP group 15 prime (ZRTP DH3k).
const MODP3072_P: &str = concat!(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD1",
    "29024E088A67CC74020BBEA63B139B22514A08798E3404DD",
    "EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245",
    "E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED",
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3D",
    "C2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F",
    "83655D23DCA3AD961C62F356208552BB9ED529077096966D",
    "670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B",
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9",
    "DE2BCBF6955817183995497CEA956AE515D2261898FA0510",
    "15728E5A8AAAC42DAD33170D04507A33A85521ABDF1CBA64",
    "ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7",
    "ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6B",
    "F12FFA06D98A0864D87602733EC86A64521F2B18177B200C",
    "BBE117577A615D6C770988C0BAD946E208E24FA074E5AB31",
    "43DB5BFCE0FD108E4B82D120A93AD2CAFFFFFFFFFFFFFFFF",
);

/// The FFDH generator of both groups (RFC 3526 §3, §4).
const GENERATOR: u64 = 2;

/// Draws of a random exponent before giving up (each draw fails with probability < 2^-64).
const MAX_EXPONENT_DRAWS: usize = 16;

/// A MODP group with its precomputed Montgomery parameters.
struct Group<const LIMBS: usize> {
    algorithm: AgreementAlgorithm,
    /// p - 2: the largest acceptable public value and exponent.
    p_minus_2: Uint<LIMBS>,
    params: FixedMontyParams<LIMBS>,
}

impl<const LIMBS: usize> Group<LIMBS> {
    fn new(algorithm: AgreementAlgorithm, p_hex: &str) -> Self {
        // invariant: the RFC 3526 primes are odd and of exactly LIMBS words (checked by the
        // tests against rfc3526_modp.json).
        let p = Odd::<Uint<LIMBS>>::from_be_hex(p_hex);
        let p_minus_2 = p.as_ref().wrapping_sub(&Uint::from_u64(2));
        Group {
            algorithm,
            p_minus_2,
            params: FixedMontyParams::new_vartime(p),
        }
    }

    fn octets(&self) -> usize {
        self.algorithm.public_len()
    }

    /// True if `2 <= v <= p - 2`.
    fn in_range(&self, v: &Uint<LIMBS>) -> bool {
        *v >= Uint::from_u64(2) && *v <= self.p_minus_2
    }

    /// Decodes a big-endian value of at most the prime's length (left-padded).
    fn decode(&self, bytes: &[u8]) -> Option<Uint<LIMBS>> {
        let octets = self.octets();
        let pad = octets.checked_sub(bytes.len())?;
        let mut buf = Zeroizing::new(vec![0u8; octets]);
        buf.get_mut(pad..)?.copy_from_slice(bytes);
        // invariant: `buf` is `octets` long, the byte size of `Uint<LIMBS>` (asserted at
        // compile time below for both groups), so `from_be_slice` cannot panic.
        Some(Uint::from_be_slice(&buf))
    }

    /// `base^exponent mod p` (constant time in `exponent`), big-endian, fixed length.
    fn pow_to_bytes(
        &self,
        base: &Uint<LIMBS>,
        exponent: &Uint<LIMBS>,
        exponent_bits: u32,
    ) -> Zeroizing<Vec<u8>> {
        let mut m =
            FixedMontyForm::new(base, &self.params).pow_bounded_exp(exponent, exponent_bits);
        let mut v = m.retrieve();
        m.zeroize();
        let mut enc = v.to_be_bytes();
        v.zeroize();
        let out = Zeroizing::new(enc.as_ref().to_vec());
        enc.zeroize();
        out
    }

    fn key_from_exponent(
        &'static self,
        x: Uint<LIMBS>,
        bits: u32,
    ) -> Result<Box<dyn PrivateKey>, Error> {
        let mut key = FfdhKey {
            group: self,
            x,
            bits,
            public: Vec::new(),
        };
        if !self.in_range(&key.x) {
            return Err(Error::InvalidPrivateKey);
        }
        key.public = self
            .pow_to_bytes(&Uint::from_u64(GENERATOR), &key.x, bits)
            .to_vec();
        Ok(Box::new(key))
    }

    fn load_secret(&'static self, secret: &[u8]) -> Result<Box<dyn PrivateKey>, Error> {
        if secret.is_empty() || secret.len() > self.octets() {
            return Err(Error::InvalidLength {
                what: "ffdh exponent",
                got: secret.len(),
            });
        }
        let x = self.decode(secret).ok_or(Error::InvalidLength {
            what: "ffdh exponent",
            got: secret.len(),
        })?;
        self.key_from_exponent(x, Uint::<LIMBS>::BITS)
    }

    /// A key whose exponent is `len` random octets (at least 2, at most the group's size).
    fn generate_short(
        &'static self,
        len: usize,
        rng: &dyn SecureRandom,
    ) -> Result<Box<dyn PrivateKey>, Error> {
        if len < 2 || len >= self.octets() {
            return Err(Error::InvalidLength {
                what: "ffdh exponent length",
                got: len,
            });
        }
        let mut buf = Zeroizing::new(vec![0u8; self.octets()]);
        let at = self.octets() - len;
        for _ in 0..MAX_EXPONENT_DRAWS {
            rng.fill(&mut buf[at..])?;
            // invariant: `buf` has the byte size of `Uint<LIMBS>` (see `decode`).
            let mut x = Uint::from_be_slice(&buf);
            if self.in_range(&x) {
                return self.key_from_exponent(x, (len * 8) as u32);
            }
            x.zeroize();
        }
        Err(Error::Unsupported("rng gave no usable ffdh exponent"))
    }

    fn generate(&'static self, rng: &dyn SecureRandom) -> Result<Box<dyn PrivateKey>, Error> {
        let mut buf = Zeroizing::new(vec![0u8; self.octets()]);
        for _ in 0..MAX_EXPONENT_DRAWS {
            rng.fill(&mut buf)?;
            // invariant: `buf` has the byte size of `Uint<LIMBS>` (see `decode`).
            let mut x = Uint::from_be_slice(&buf);
            if self.in_range(&x) {
                return self.key_from_exponent(x, Uint::<LIMBS>::BITS);
            }
            x.zeroize();
        }
        Err(Error::Unsupported("rng gave no usable ffdh exponent"))
    }
}

// The fixed-length encodings rely on these sizes (`from_be_slice` panics on any other).
const _: () = assert!(U2048::BYTES == 256 && U3072::BYTES == 384);

static MODP2048: LazyLock<Group<{ U2048::LIMBS }>> =
    LazyLock::new(|| Group::new(AgreementAlgorithm::Ffdh2048, MODP2048_P));
static MODP3072: LazyLock<Group<{ U3072::LIMBS }>> =
    LazyLock::new(|| Group::new(AgreementAlgorithm::Ffdh3072, MODP3072_P));

/// An FFDH private exponent (wiped on drop) and its public value.
struct FfdhKey<const LIMBS: usize> {
    group: &'static Group<LIMBS>,
    x: Uint<LIMBS>,
    /// Bits of `x` the exponentiation runs over (its drawn length).
    bits: u32,
    public: Vec<u8>,
}

impl<const LIMBS: usize> Drop for FfdhKey<LIMBS> {
    fn drop(&mut self) {
        self.x.zeroize();
    }
}

impl<const LIMBS: usize> core::fmt::Debug for FfdhKey<LIMBS> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "FfdhKey({:?}, <redacted>)", self.group.algorithm)
    }
}

impl<const LIMBS: usize> PrivateKey for FfdhKey<LIMBS> {
    fn algorithm(&self) -> AgreementAlgorithm {
        self.group.algorithm
    }

    fn public_key(&self) -> &[u8] {
        &self.public
    }

    fn agree(&self, peer_public: &[u8]) -> Result<SharedSecret, Error> {
        if peer_public.len() != self.group.octets() {
            return Err(Error::InvalidLength {
                what: "ffdh public value",
                got: peer_public.len(),
            });
        }
        let y = self
            .group
            .decode(peer_public)
            .ok_or(Error::InvalidPublicValue)?;
        if !self.group.in_range(&y) {
            return Err(Error::InvalidPublicValue);
        }
        let shared = self.group.pow_to_bytes(&y, &self.x, self.bits);
        // A result of 1 means y has an order dividing x: refuse it rather than key with it.
        let is_one = shared
            .split_last()
            .is_some_and(|(last, rest)| *last == 1 && rest.iter().all(|b| *b == 0));
        if is_one {
            return Err(Error::InvalidPublicValue);
        }
        Ok(SharedSecret::from_slice(&shared))
    }

    fn write_secret(&self, out: &mut [u8]) -> Result<usize, Error> {
        let mut enc = self.x.to_be_bytes();
        let r = write_into(enc.as_ref(), out);
        enc.zeroize();
        r
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

/// An X448 private scalar string (wiped on drop; clamped by `x448` at each use).
struct X448Key {
    scalar: Zeroizing<[u8; 56]>,
    public: [u8; 56],
}

impl core::fmt::Debug for X448Key {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("X448Key(<redacted>)")
    }
}

impl X448Key {
    fn boxed(scalar: Zeroizing<[u8; 56]>) -> Result<Box<dyn PrivateKey>, Error> {
        // The base point is not of low order, so `x448` always answers for it.
        let public =
            x448::x448(*scalar, x448::X448_BASEPOINT_BYTES).ok_or(Error::InvalidPrivateKey)?;
        Ok(Box::new(X448Key { scalar, public }))
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
        let peer: [u8; 56] = peer_public.try_into().map_err(|_| Error::InvalidLength {
            what: "x448 public value",
            got: peer_public.len(),
        })?;
        // `x448` refuses low-order peer points (None); the all-zero check is kept as the
        // RFC 7748 §6.2 rule in case the crate's notion of low order ever narrows.
        let shared =
            Zeroizing::new(x448::x448(*self.scalar, peer).ok_or(Error::InvalidPublicValue)?);
        if sotto_crypto::ct_eq(&shared[..], &[0u8; 56]) {
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
            AgreementAlgorithm::Ffdh2048 => MODP2048.generate(rng),
            AgreementAlgorithm::Ffdh3072 => MODP3072.generate(rng),
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
            AgreementAlgorithm::Ffdh2048 => MODP2048.generate_short(exponent_len, rng),
            AgreementAlgorithm::Ffdh3072 => MODP3072.generate_short(exponent_len, rng),
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
            AgreementAlgorithm::Ffdh2048 => MODP2048.load_secret(secret),
            AgreementAlgorithm::Ffdh3072 => MODP3072.load_secret(secret),
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
