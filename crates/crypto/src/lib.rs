//! # sotto-crypto: the one cryptographic API
//!
//! Every protocol core of sotto (SRTP, ZRTP, DTLS-SRTP, the messaging ratchet, SIP digest)
//! reaches cryptography only through a [`CryptoProvider`]. The provider is a plain struct of
//! `&'static dyn` parts, one per family of primitives, so an alternate backend (another
//! library, a secure element, a fuzzing provider with no security) can be plugged in without
//! touching protocol code. Backends live in sibling crates (`sotto-crypto-rust` is the
//! default). No primitive is implemented here: this crate only defines the interfaces, the
//! secret-holding types and constant-time helpers.
//!
//! Design rules:
//! - Keyed objects are created once (key schedule, HMAC pads precomputed) and then used per
//!   packet without heap allocation: hot-path methods take caller-owned buffers.
//! - Secret material is held in zeroize-on-drop types whose `Debug` prints `<redacted>`.
//! - MAC and tag comparisons go through [`ct_eq`] (constant time).

#![forbid(unsafe_code)]

pub mod agreement;
pub mod cipher;
pub mod dtls;
pub mod error;
pub mod hash;
pub mod hex;
pub mod kdf;
pub mod kem;
pub mod mac;
pub mod rng;
pub mod secret;
pub mod signature;

pub use error::Error;

/// A complete set of cryptographic primitives, chosen by the application at the edge
/// (binary, server, agent) and handed to every core as `&'static CryptoProvider` or
/// `Arc<CryptoProvider>`.
#[derive(Debug, Clone, Copy)]
pub struct CryptoProvider {
    /// Human-readable backend name, reported in security reports and benchmarks.
    pub name: &'static str,
    /// Block ciphers and AEADs: AES-CM/CTR, AES-GCM, AES-CFB.
    pub cipher: &'static dyn cipher::CipherProvider,
    /// Message authentication codes: HMAC-SHA1/SHA-256/SHA-384/SHA-512.
    pub mac: &'static dyn mac::MacProvider,
    /// Hash functions: SHA-1 (legacy protocols only), SHA-256/384/512, MD5 (SIP digest only).
    pub hash: &'static dyn hash::HashProvider,
    /// Key derivation: HKDF.
    pub kdf: &'static dyn kdf::KdfProvider,
    /// Key agreement: X25519, X448, finite-field DH on RFC 3526 groups.
    pub agreement: &'static dyn agreement::AgreementProvider,
    /// Signatures: Ed25519, Ed448.
    pub signature: &'static dyn signature::SignatureProvider,
    /// Key encapsulation: ML-KEM-768.
    pub kem: &'static dyn kem::KemProvider,
    /// Cryptographically secure random numbers.
    pub rng: &'static dyn rng::SecureRandom,
    /// DTLS 1.2 with `use_srtp`, for DTLS-SRTP.
    pub dtls: &'static dyn dtls::DtlsProvider,
}

/// Constant-time equality of two byte strings (length is not secret).
///
/// Use this for every MAC, tag, SAS hash or digest-response comparison.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}
