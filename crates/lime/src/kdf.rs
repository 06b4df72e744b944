//! LIME's key derivations: HKDF-SHA512 (RFC 5869) with LIME's info strings, and the Double
//! Ratchet's KDF_RK and KDF_CK.

use sotto_crypto::CryptoProvider;
use sotto_crypto::hash::HashAlgorithm;
use sotto_crypto::mac::MacAlgorithm;
use zeroize::Zeroizing;

use crate::LimeError;

/// Info of the X3DH shared secret.
pub const X3DH_SK_INFO: &[u8] = b"Lime";
/// Info of the X3DH associated data.
pub const X3DH_AD_INFO: &[u8] = b"X3DH Associated Data";
/// Info of the root chain derivation.
pub const DR_ROOT_INFO: &[u8] = b"DR Root Chain Key Derivation";
/// Info of the cipher-message key derivation from its random seed.
pub const MESSAGE_KEY_INFO: &[u8] = b"DR Message Key Derivation";

/// A chain or root key.
pub type ChainKey = Zeroizing<[u8; 32]>;

/// A message key and its IV: key(32) ‖ IV(16).
pub type MessageKey = Zeroizing<[u8; 48]>;

/// HKDF-SHA512 of `ikm` with `salt` and `info` into `out`.
pub fn hkdf(
    p: &CryptoProvider,
    salt: &[u8],
    ikm: &[u8],
    info: &[u8],
    out: &mut [u8],
) -> Result<(), LimeError> {
    Ok(p.kdf.hkdf(HashAlgorithm::Sha512, salt, ikm, &[info], out)?)
}

/// KDF_RK: `RK' ‖ CK = HKDF(salt = RK, ikm = dh, info = "DR Root Chain Key Derivation")`;
/// `rk` is replaced, the new chain key returned.
pub fn kdf_rk(p: &CryptoProvider, rk: &mut ChainKey, dh: &[u8]) -> Result<ChainKey, LimeError> {
    let mut out = Zeroizing::new([0u8; 64]);
    hkdf(p, &rk[..], dh, DR_ROOT_INFO, &mut out[..])?;
    rk.copy_from_slice(&out[..32]);
    let mut ck = ChainKey::default();
    ck.copy_from_slice(&out[32..]);
    Ok(ck)
}

/// KDF_CK: `MK ‖ IV = HMAC-SHA512(CK, 0x01)[..48]`, `CK' = HMAC-SHA512(CK, 0x02)[..32]`;
/// `ck` is replaced, the message key returned.
pub fn kdf_ck(p: &CryptoProvider, ck: &mut ChainKey) -> Result<MessageKey, LimeError> {
    let mac = p.mac.hmac(MacAlgorithm::Sha512, &ck[..])?;
    let mut out = Zeroizing::new([0u8; 64]);
    mac.compute(&[&[0x01]], &mut out[..])?;
    let mut mk = Zeroizing::new([0u8; 48]);
    mk.copy_from_slice(&out[..48]);
    mac.compute(&[&[0x02]], &mut out[..])?;
    ck.copy_from_slice(&out[..32]);
    Ok(mk)
}
