//! SRTP key derivation: the AES-CM PRF of RFC 3711 §4.3.1/§4.3.3 (and RFC 6188 §3 for
//! AES-192/256), with key derivation rate 0. A 96-bit GCM master salt is extended with two
//! zero octets to 112 bits (RFC 7714 §11, errata 4938).

use sotto_crypto::CryptoProvider;
use sotto_crypto::cipher::AES_BLOCK_LEN;

use super::SrtpError;

/// SRTP encryption key label.
pub const LABEL_RTP_ENCRYPTION: u8 = 0x00;
/// SRTP authentication key label.
pub const LABEL_RTP_AUTH: u8 = 0x01;
/// SRTP salt label.
pub const LABEL_RTP_SALT: u8 = 0x02;
/// SRTCP encryption key label.
pub const LABEL_RTCP_ENCRYPTION: u8 = 0x03;
/// SRTCP authentication key label.
pub const LABEL_RTCP_AUTH: u8 = 0x04;
/// SRTCP salt label.
pub const LABEL_RTCP_SALT: u8 = 0x05;

/// A keyed PRF for one master key.
pub(crate) struct Kdf {
    prf: Box<dyn sotto_crypto::cipher::AesCtrKey>,
    salt: zeroize::Zeroizing<[u8; 14]>,
}

impl Kdf {
    /// Keys the PRF with `master_key`; `master_salt` is 14 bytes, or 12 (GCM: zero-padded).
    pub(crate) fn new(
        provider: &CryptoProvider,
        master_key: &[u8],
        master_salt: &[u8],
    ) -> Result<Self, SrtpError> {
        let prf = provider.cipher.aes_ctr(master_key)?;
        let mut salt = zeroize::Zeroizing::new([0u8; 14]);
        match salt.get_mut(..master_salt.len()) {
            Some(dst) if master_salt.len() == 14 || master_salt.len() == 12 => {
                dst.copy_from_slice(master_salt);
            }
            _ => {
                return Err(SrtpError::InvalidKeyLength {
                    what: "master salt",
                    got: master_salt.len(),
                });
            }
        }
        Ok(Kdf { prf, salt })
    }

    /// Fills `out` with the PRF output for `label` (index DIV kdr = 0).
    pub(crate) fn derive(&self, label: u8, out: &mut [u8]) {
        // x = key_id XOR master_salt, key_id = label || r (r = 0, 48 bits): the label sits 7
        // octets from the end of the 14-octet salt. IV = x · 2^16.
        let mut iv = zeroize::Zeroizing::new([0u8; AES_BLOCK_LEN]);
        if let Some(dst) = iv.get_mut(..14) {
            dst.copy_from_slice(&self.salt[..]);
        }
        if let Some(b) = iv.get_mut(7) {
            *b ^= label;
        }
        out.fill(0);
        self.prf.apply_keystream(&iv, out);
    }
}

/// Derives `out.len()` bytes for `label` from a master key and salt with the AES-CM PRF
/// (RFC 3711 §4.3.1, key derivation rate 0; RFC 6188 §3 for 192/256-bit master keys). A
/// 12-byte (GCM) master salt is extended with two zero bytes.
///
/// The labels are [`LABEL_RTP_ENCRYPTION`], [`LABEL_RTP_AUTH`], [`LABEL_RTP_SALT`] and their
/// SRTCP counterparts.
pub fn derive_session_key(
    provider: &CryptoProvider,
    master_key: &[u8],
    master_salt: &[u8],
    label: u8,
    out: &mut [u8],
) -> Result<(), SrtpError> {
    Kdf::new(provider, master_key, master_salt)?.derive(label, out);
    Ok(())
}
