//! # sotto-crypto-rust: the default backend of the sotto crypto API
//!
//! Implements every part of [`sotto_crypto::CryptoProvider`] on well-kept crates: RustCrypto
//! (AES, GCM, CFB, HMAC, SHA-1/2, MD5, HKDF, ML-KEM; OpenSSL for finite-field DH) and
//! the dalek crates (X25519, Ed25519), plus the pinned pre-release `x448` and
//! `ed448-goldilocks` crates (covered by the RFC 7748/8032 vectors in this crate's tests).
//! DTLS for DTLS-SRTP is OpenSSL's, driven through memory buffers (`dtls/`).
//! No primitive is implemented by hand here.

#![forbid(unsafe_code)]

mod agreement;
mod cipher;
mod dtls;
mod ffdh;
mod hash;
mod kdf;
mod kem;
mod mac;
mod rng;
mod signature;

use sotto_crypto::CryptoProvider;

/// The default provider: RustCrypto + dalek.
pub static PROVIDER: CryptoProvider = CryptoProvider {
    name: "rustcrypto",
    cipher: &cipher::RustCipher,
    mac: &mac::RustMac,
    hash: &hash::RustHash,
    kdf: &kdf::RustKdf,
    agreement: &agreement::RustAgreement,
    signature: &signature::RustSignature,
    kem: &kem::RustKem,
    rng: &rng::RustRng,
    dtls: &dtls::OpensslDtls,
};

/// Returns the default provider.
pub fn provider() -> &'static CryptoProvider {
    &PROVIDER
}
