//! Confirm1 and Confirm2 (§5.7): confirm_mac, the CFB IV, and an AES-CFB encrypted part (H0,
//! the flags, the cache expiry; no SAS signature from us). The MAC (negotiated HMAC keyed by
//! the sender's mackey) covers the encrypted part; the cipher is keyed by the sender's zrtpkey.

use sotto_crypto::CryptoProvider;

use crate::zrtp::ZrtpError;
use crate::zrtp::algorithms::ZrtpHash;
use crate::zrtp::packet::{MessageType, Reader, finish_message, start_message};

/// The encrypted part of a Confirm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfirmBody {
    /// H0 of the sender's chain.
    pub h0: [u8; 32],
    /// E: PBX enrollment (§7.3.1).
    pub enrollment: bool,
    /// V: the sender's cache says the SAS was verified.
    pub sas_verified: bool,
    /// A: the sender allows GoClear.
    pub allow_clear: bool,
    /// D: disclosure (§11).
    pub disclosure: bool,
    /// Cache expiration interval in seconds (`0xFFFFFFFF`: never).
    pub cache_expiry: u32,
}

/// The keys one side protects its Confirm with.
pub struct ConfirmKeys<'a> {
    /// The negotiated hash (its HMAC computes confirm_mac).
    pub hash: ZrtpHash,
    /// mackeyi or mackeyr.
    pub mac_key: &'a [u8],
    /// zrtpkeyi or zrtpkeyr.
    pub cipher_key: &'a [u8],
}

const BODY_LEN: usize = 40;

fn confirm_mac(
    provider: &CryptoProvider,
    keys: &ConfirmKeys<'_>,
    data: &[u8],
) -> Result<[u8; 8], ZrtpError> {
    crate::zrtp::keys::mac64(provider, keys.hash, keys.mac_key, data)
}

/// Writes Confirm1 (`first`) or Confirm2 with the random `iv`.
pub fn encode(
    provider: &CryptoProvider,
    first: bool,
    body: &ConfirmBody,
    keys: &ConfirmKeys<'_>,
    iv: &[u8; 16],
) -> Result<Vec<u8>, ZrtpError> {
    let mut plain = [0u8; BODY_LEN];
    plain[..32].copy_from_slice(&body.h0);
    plain[35] = (u8::from(body.enrollment) << 3)
        | (u8::from(body.sas_verified) << 2)
        | (u8::from(body.allow_clear) << 1)
        | u8::from(body.disclosure);
    plain[36..40].copy_from_slice(&body.cache_expiry.to_be_bytes());
    let cfb = provider
        .cipher
        .aes_cfb(keys.cipher_key)
        .map_err(|_| ZrtpError::Crypto("AES-CFB"))?;
    cfb.encrypt(iv, &mut plain);
    let mac = confirm_mac(provider, keys, &plain)?;
    let kind = if first {
        MessageType::Confirm1
    } else {
        MessageType::Confirm2
    };
    let mut m = start_message(kind);
    m.extend_from_slice(&mac);
    m.extend_from_slice(iv);
    m.extend_from_slice(&plain);
    Ok(finish_message(m))
}

/// Checks a Confirm's MAC and decrypts it. A signature block, if any, is skipped.
pub fn open(
    provider: &CryptoProvider,
    message: &[u8],
    keys: &ConfirmKeys<'_>,
) -> Result<ConfirmBody, ZrtpError> {
    let mut r = Reader::new(message);
    let mac = r.array::<8>()?;
    let iv = r.array::<16>()?;
    let mut enc = r.take(r.remaining())?.to_vec();
    if enc.len() < BODY_LEN {
        return Err(ZrtpError::Malformed("Confirm too short"));
    }
    let expect = confirm_mac(provider, keys, &enc)?;
    if !sotto_crypto::ct_eq(&expect, &mac) {
        return Err(ZrtpError::BadConfirmMac);
    }
    let cfb = provider
        .cipher
        .aes_cfb(keys.cipher_key)
        .map_err(|_| ZrtpError::Crypto("AES-CFB"))?;
    cfb.decrypt(&iv, &mut enc);
    let sig_words = (usize::from(enc[33] & 1) << 8) | usize::from(enc[34]);
    if enc.len() != BODY_LEN + 4 * sig_words {
        return Err(ZrtpError::Malformed("Confirm signature length disagrees"));
    }
    let mut h0 = [0u8; 32];
    h0.copy_from_slice(&enc[..32]);
    let flags = enc[35];
    let body = ConfirmBody {
        h0,
        enrollment: flags & 0x08 != 0,
        sas_verified: flags & 0x04 != 0,
        allow_clear: flags & 0x02 != 0,
        disclosure: flags & 0x01 != 0,
        cache_expiry: u32::from_be_bytes([enc[36], enc[37], enc[38], enc[39]]),
    };
    zeroize::Zeroize::zeroize(&mut enc);
    Ok(body)
}
