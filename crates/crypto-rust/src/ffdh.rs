//! Finite-field Diffie-Hellman on the RFC 3526 groups 14 (2048-bit, ZRTP `DH2k`) and 15
//! (3072-bit, `DH3k`), generator 2, on OpenSSL's `BN_mod_exp_mont_consttime` (the exponent is
//! flagged `BN_FLG_CONSTTIME`; its running time depends on the exponent's bit length, never
//! on its bits).
//!
//! Exponents are drawn uniformly from `[2, p-2]` (full length), or for a short key
//! (RFC 6189 §5.1.5: twice the AES key length) as `len` random octets with the top bit set,
//! so every key of one length takes the same time. Secrets are kept as zeroized bytes; the
//! OpenSSL numbers built from them for one exponentiation are cleared (`BN_clear`) before
//! they are freed. Peer values outside `[2, p-2]` and a shared value of 1 are refused.

use openssl::bn::{BigNum, BigNumContext};
use sotto_crypto::Error;
use sotto_crypto::agreement::{AgreementAlgorithm, PrivateKey, SharedSecret};
use sotto_crypto::rng::SecureRandom;
use zeroize::Zeroizing;

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

/// Draws of a full-length exponent before giving up (each lands in range with probability
/// above 1 - 2^-64).
const MAX_EXPONENT_DRAWS: usize = 16;

fn ossl(_: openssl::error::ErrorStack) -> Error {
    Error::Unsupported("OpenSSL big-number operation failed")
}

/// The prime of `algorithm`, big-endian.
fn prime(algorithm: AgreementAlgorithm) -> Result<Vec<u8>, Error> {
    let hex = match algorithm {
        AgreementAlgorithm::Ffdh2048 => MODP2048_P,
        AgreementAlgorithm::Ffdh3072 => MODP3072_P,
        _ => return Err(Error::Unsupported("agreement algorithm")),
    };
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).map_err(|_| Error::Unsupported("prime")))
        .collect()
}

/// Whether `v` (big-endian, the prime's length) lies in `[2, p-2]`. Both RFC 3526 primes
/// end in 0xFF, so p - 2 is p with its last octet 0xFD.
fn in_range(v: &[u8], p: &[u8]) -> bool {
    let mut p_minus_2 = p.to_vec();
    let mut two = vec![0u8; p.len()];
    match (p_minus_2.last_mut(), two.last_mut()) {
        (Some(l), Some(t)) if *l == 0xff => {
            *l = 0xfd;
            *t = 2;
        }
        _ => return false,
    }
    v.len() == p.len() && v >= two.as_slice() && v <= p_minus_2.as_slice()
}

/// `base^exponent mod p`, constant time in the exponent's bits, padded to the prime's length.
fn mod_exp(base: &[u8], exponent: &[u8], p: &[u8]) -> Result<Zeroizing<Vec<u8>>, Error> {
    let mut ctx = BigNumContext::new_secure().map_err(ossl)?;
    let b = BigNum::from_slice(base).map_err(ossl)?;
    let m = BigNum::from_slice(p).map_err(ossl)?;
    let mut e = BigNum::from_slice(exponent).map_err(ossl)?;
    e.set_const_time();
    let mut r = BigNum::new_secure().map_err(ossl)?;
    r.set_const_time();
    let done = r.mod_exp(&b, &e, &m, &mut ctx);
    let out = done.and_then(|()| r.to_vec_padded(p.len() as i32));
    e.clear();
    r.clear();
    out.map(Zeroizing::new).map_err(ossl)
}

/// An FFDH private exponent (zeroized bytes) and its public value.
pub(crate) struct FfdhKey {
    algorithm: AgreementAlgorithm,
    x: Zeroizing<Vec<u8>>,
    public: Vec<u8>,
}

impl core::fmt::Debug for FfdhKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "FfdhKey({:?}, <redacted>)", self.algorithm)
    }
}

fn key(algorithm: AgreementAlgorithm, x: Zeroizing<Vec<u8>>) -> Result<Box<dyn PrivateKey>, Error> {
    let p = prime(algorithm)?;
    let public = mod_exp(&[2], &x, &p)?.to_vec();
    Ok(Box::new(FfdhKey {
        algorithm,
        x,
        public,
    }))
}

/// A fresh key: a full-length exponent in `[2, p-2]`, or `short` random octets with the top
/// bit set (at least 2, less than the prime's length).
pub(crate) fn generate(
    algorithm: AgreementAlgorithm,
    short: Option<usize>,
    rng: &dyn SecureRandom,
) -> Result<Box<dyn PrivateKey>, Error> {
    let p = prime(algorithm)?;
    if let Some(len) = short {
        if len < 2 || len >= p.len() {
            return Err(Error::InvalidLength {
                what: "ffdh exponent length",
                got: len,
            });
        }
        let mut x = Zeroizing::new(vec![0u8; len]);
        rng.fill(&mut x)?;
        x[0] |= 0x80;
        return key(algorithm, x);
    }
    let mut x = Zeroizing::new(vec![0u8; p.len()]);
    for _ in 0..MAX_EXPONENT_DRAWS {
        rng.fill(&mut x)?;
        if in_range(&x, &p) {
            return key(algorithm, x);
        }
    }
    Err(Error::Unsupported("rng gave no usable ffdh exponent"))
}

/// A key from its exponent (big-endian, at most the prime's length, in `[2, p-2]`).
pub(crate) fn load(
    algorithm: AgreementAlgorithm,
    secret: &[u8],
) -> Result<Box<dyn PrivateKey>, Error> {
    let p = prime(algorithm)?;
    if secret.is_empty() || secret.len() > p.len() {
        return Err(Error::InvalidLength {
            what: "ffdh exponent",
            got: secret.len(),
        });
    }
    let mut x = Zeroizing::new(vec![0u8; p.len()]);
    x[p.len() - secret.len()..].copy_from_slice(secret);
    if !in_range(&x, &p) {
        return Err(Error::InvalidPrivateKey);
    }
    // The exponent without its leading zero octets: its bit length sets the running time.
    let lead = x.iter().take_while(|b| **b == 0).count();
    key(algorithm, Zeroizing::new(x[lead..].to_vec()))
}

impl PrivateKey for FfdhKey {
    fn algorithm(&self) -> AgreementAlgorithm {
        self.algorithm
    }

    fn public_key(&self) -> &[u8] {
        &self.public
    }

    fn agree(&self, peer_public: &[u8]) -> Result<SharedSecret, Error> {
        let p = prime(self.algorithm)?;
        if peer_public.len() != p.len() {
            return Err(Error::InvalidLength {
                what: "ffdh public value",
                got: peer_public.len(),
            });
        }
        if !in_range(peer_public, &p) {
            return Err(Error::InvalidPublicValue);
        }
        let shared = mod_exp(peer_public, &self.x, &p)?;
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
        let dst = out
            .get_mut(..self.x.len())
            .ok_or(Error::BufferTooSmall { need: self.x.len() })?;
        dst.copy_from_slice(&self.x);
        Ok(self.x.len())
    }
}
