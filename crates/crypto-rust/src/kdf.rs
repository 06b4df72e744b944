//! Backend for [`sotto_crypto::kdf::KdfProvider`]: HKDF (RFC 5869) on RustCrypto's `hkdf`
//! and `sha2`.

use sotto_crypto::Error;
use sotto_crypto::hash::HashAlgorithm;
use sotto_crypto::kdf::KdfProvider;

/// RustCrypto implementation of [`KdfProvider`].
#[derive(Debug)]
pub(crate) struct RustKdf;

use hkdf::hmac::digest::OutputSizeUser;
use hkdf::{GenericHkdf, HmacImpl};

type HmacSha256 = hkdf::hmac::Hmac<sha2::Sha256>;
type HmacSha384 = hkdf::hmac::Hmac<sha2::Sha384>;
type HmacSha512 = hkdf::hmac::Hmac<sha2::Sha512>;

/// HKDF-Extract with the HMAC `M` into `prk_out`; returns the PRK length.
fn extract<M: HmacImpl>(salt: &[u8], ikm: &[u8], prk_out: &mut [u8]) -> Result<usize, Error> {
    let len = <M as OutputSizeUser>::output_size();
    let out = prk_out
        .get_mut(..len)
        .ok_or(Error::BufferTooSmall { need: len })?;
    let (mut prk, _) = GenericHkdf::<M>::extract(Some(salt), ikm);
    out.copy_from_slice(&prk);
    zeroize::Zeroize::zeroize(prk.as_mut_slice());
    Ok(len)
}

/// HKDF-Expand with the HMAC `M` from `prk` into `okm`.
fn expand<M: HmacImpl>(prk: &[u8], info: &[&[u8]], okm: &mut [u8]) -> Result<(), Error> {
    let hk = GenericHkdf::<M>::from_prk(prk).map_err(|_| Error::InvalidLength {
        what: "hkdf prk",
        got: prk.len(),
    })?;
    hk.expand_multi_info(info, okm)
        .map_err(|_| Error::InvalidLength {
            what: "hkdf output",
            got: okm.len(),
        })
}

impl KdfProvider for RustKdf {
    fn hkdf_extract(
        &self,
        hash: HashAlgorithm,
        salt: &[u8],
        ikm: &[u8],
        prk_out: &mut [u8],
    ) -> Result<usize, Error> {
        match hash {
            HashAlgorithm::Sha256 => extract::<HmacSha256>(salt, ikm, prk_out),
            HashAlgorithm::Sha384 => extract::<HmacSha384>(salt, ikm, prk_out),
            HashAlgorithm::Sha512 => extract::<HmacSha512>(salt, ikm, prk_out),
            _ => Err(Error::Unsupported("hkdf hash")),
        }
    }

    fn hkdf_expand(
        &self,
        hash: HashAlgorithm,
        prk: &[u8],
        info: &[&[u8]],
        okm: &mut [u8],
    ) -> Result<(), Error> {
        match hash {
            HashAlgorithm::Sha256 => expand::<HmacSha256>(prk, info, okm),
            HashAlgorithm::Sha384 => expand::<HmacSha384>(prk, info, okm),
            HashAlgorithm::Sha512 => expand::<HmacSha512>(prk, info, okm),
            _ => Err(Error::Unsupported("hkdf hash")),
        }
    }

    fn hkdf(
        &self,
        hash: HashAlgorithm,
        salt: &[u8],
        ikm: &[u8],
        info: &[&[u8]],
        okm: &mut [u8],
    ) -> Result<(), Error> {
        let mut prk = zeroize::Zeroizing::new([0u8; sotto_crypto::hash::MAX_HASH_LEN]);
        let len = self.hkdf_extract(hash, salt, ikm, &mut prk[..])?;
        let prk = prk.get(..len).ok_or(Error::BufferTooSmall { need: len })?;
        self.hkdf_expand(hash, prk, info, okm)
    }
}
