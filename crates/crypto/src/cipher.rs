//! Block ciphers and AEADs (AES-CM/CTR, AES-GCM, AES-CFB).
//!
//! A [`CipherProvider`] turns a key into a keyed object once (the AES key schedule is
//! computed at that point); the keyed object is then used per packet with caller-owned
//! buffers and no heap allocation. Keyed objects zeroize the key material they hold when
//! dropped.
//!
//! - [`AesCtrKey`]: AES in counter mode with a 128-bit big-endian counter block, which is
//!   AES-CM as SRTP uses it (RFC 3711 §4.1.1; 128, 192 and 256-bit keys, RFC 6188).
//! - [`AeadKey`]: AES-GCM with a 96-bit nonce and a 128-bit tag (RFC 5116, as used by
//!   RFC 7714), in place with a detached tag.
//! - [`AeadIv16Key`]: AES-256-GCM with a 128-bit IV (the IV is GHASHed, NIST SP 800-38D
//!   §7.1), as LIME's Double Ratchet uses it.
//! - [`AesCfbKey`]: AES in full-block CFB mode (CFB-128), as ZRTP's Confirm messages use it.
//! - [`AesBlockKey`]: single-block AES encryption (key derivation functions built on AES).

use crate::Error;

/// The length of an AES block, counter block or CFB IV, in bytes.
pub const AES_BLOCK_LEN: usize = 16;
/// The length of an AES-GCM nonce as used by sotto (96 bits), in bytes.
pub const GCM_NONCE_LEN: usize = 12;
/// The length of an AES-GCM tag (128 bits), in bytes.
pub const GCM_TAG_LEN: usize = 16;

/// A keyed AES counter-mode (AES-CM) cipher.
pub trait AesCtrKey: Send + Sync {
    /// XORs `data` in place with the keystream `AES(K, iv) || AES(K, iv + 1) || ...`, where
    /// the whole 128-bit block is the big-endian counter. Encryption and decryption are the
    /// same operation.
    fn apply_keystream(&self, iv: &[u8; AES_BLOCK_LEN], data: &mut [u8]);

    /// Key length in bytes (16, 24 or 32).
    fn key_len(&self) -> usize;
}

/// A keyed AEAD (AES-GCM with a 96-bit nonce and a 16-byte tag).
pub trait AeadKey: Send + Sync {
    /// Encrypts `data` in place and writes the tag into `tag_out`, which must be exactly
    /// [`AeadKey::tag_len`] bytes ([`Error::InvalidLength`] otherwise).
    fn seal_in_place_detached(
        &self,
        nonce: &[u8; GCM_NONCE_LEN],
        aad: &[u8],
        data: &mut [u8],
        tag_out: &mut [u8],
    ) -> Result<(), Error>;

    /// Checks `tag` (constant time) and decrypts `data` in place. On
    /// [`Error::AuthenticationFailed`], `data` is left unchanged.
    fn open_in_place_detached(
        &self,
        nonce: &[u8; GCM_NONCE_LEN],
        aad: &[u8],
        data: &mut [u8],
        tag: &[u8],
    ) -> Result<(), Error>;

    /// Tag length in bytes.
    fn tag_len(&self) -> usize {
        GCM_TAG_LEN
    }

    /// Key length in bytes (16 or 32).
    fn key_len(&self) -> usize;
}

/// A keyed AES-GCM with a 128-bit IV and a 16-byte tag.
pub trait AeadIv16Key: Send + Sync {
    /// Encrypts `data` in place and writes the tag into `tag_out` (exactly 16 bytes).
    fn seal_in_place_detached(
        &self,
        iv: &[u8; AES_BLOCK_LEN],
        aad: &[u8],
        data: &mut [u8],
        tag_out: &mut [u8],
    ) -> Result<(), Error>;

    /// Checks `tag` (constant time) and decrypts `data` in place; on
    /// [`Error::AuthenticationFailed`] `data` is left unchanged.
    fn open_in_place_detached(
        &self,
        iv: &[u8; AES_BLOCK_LEN],
        aad: &[u8],
        data: &mut [u8],
        tag: &[u8],
    ) -> Result<(), Error>;
}

/// A keyed AES cipher in full-block cipher feedback mode (CFB-128).
pub trait AesCfbKey: Send + Sync {
    /// Encrypts `data` in place.
    fn encrypt(&self, iv: &[u8; AES_BLOCK_LEN], data: &mut [u8]);
    /// Decrypts `data` in place.
    fn decrypt(&self, iv: &[u8; AES_BLOCK_LEN], data: &mut [u8]);
}

/// A keyed AES block cipher (single-block encryption only).
pub trait AesBlockKey: Send + Sync {
    /// Encrypts one block in place.
    fn encrypt_block(&self, block: &mut [u8; AES_BLOCK_LEN]);
}

/// Block ciphers and AEADs (AES-CM/CTR, AES-GCM, AES-CFB).
pub trait CipherProvider: Send + Sync + core::fmt::Debug {
    /// AES in counter mode keyed with `key` (16, 24 or 32 bytes).
    fn aes_ctr(&self, key: &[u8]) -> Result<Box<dyn AesCtrKey>, Error>;
    /// AES-GCM keyed with `key` (16 or 32 bytes).
    fn aes_gcm(&self, key: &[u8]) -> Result<Box<dyn AeadKey>, Error>;
    /// AES-256-GCM with a 128-bit IV; `key` is 32 bytes.
    fn aes256_gcm_iv16(&self, key: &[u8]) -> Result<Box<dyn AeadIv16Key>, Error>;
    /// AES-CFB-128 keyed with `key` (16, 24 or 32 bytes).
    fn aes_cfb(&self, key: &[u8]) -> Result<Box<dyn AesCfbKey>, Error>;
    /// Single-block AES keyed with `key` (16, 24 or 32 bytes).
    fn aes_block(&self, key: &[u8]) -> Result<Box<dyn AesBlockKey>, Error>;
}
