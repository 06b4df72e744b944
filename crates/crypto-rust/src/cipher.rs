//! Backend for [`sotto_crypto::cipher::CipherProvider`] on RustCrypto's `aes`, `ctr`,
//! `aes-gcm` and `cfb-mode` (AES-NI / VAES when the CPU has them, chosen at run time).
//!
//! Keyed objects hold only the encryption key schedule; per call they borrow it (no copy of
//! the round keys, no allocation). The `zeroize` features of these crates wipe the round keys
//! when a keyed object is dropped.

use aes::{Aes128, Aes128Enc, Aes192Enc, Aes256, Aes256Enc};
use aes_gcm::aead::AeadInOut;
use aes_gcm::aead::consts::{U12, U16};
use cfb_mode::cipher::{
    Block, BlockCipherEncrypt, InnerIvInit, KeyInit, StreamCipher, StreamCipherCoreWrapper,
};
use sotto_crypto::Error;
use sotto_crypto::cipher::{
    AES_BLOCK_LEN, AeadIv16Key, AeadKey, AesBlockKey, AesCfbKey, AesCtrKey, CipherProvider,
    GCM_NONCE_LEN, GCM_TAG_LEN,
};

/// RustCrypto implementation of [`CipherProvider`].
#[derive(Debug)]
pub(crate) struct RustCipher;

/// An AES encryption key schedule of any size.
struct Enc<C>(C, usize);

fn key_err(got: usize) -> Error {
    Error::InvalidLength {
        what: "AES key",
        got,
    }
}

fn new_enc<C: KeyInit>(key: &[u8]) -> Result<C, Error> {
    C::new_from_slice(key).map_err(|_| key_err(key.len()))
}

fn enc<C: KeyInit>(key: &[u8]) -> Result<Enc<C>, Error> {
    Ok(Enc(new_enc::<C>(key)?, key.len()))
}

type CtrCore<'a, C> = ctr::CtrCore<&'a C, ctr::flavors::Ctr128BE>;

impl<C: BlockCipherEncrypt<BlockSize = aes::cipher::consts::U16> + Send + Sync> AesCtrKey
    for Enc<C>
{
    fn apply_keystream(&self, iv: &[u8; AES_BLOCK_LEN], data: &mut [u8]) {
        // The counter block wraps modulo 2^128 (RFC 3711 §4.1.1). `ctr` never produces the
        // block for counter 2^128 - 1, so a run is split there and that one keystream block
        // is the block cipher applied to the all-ones counter.
        let mut counter = u128::from_be_bytes(*iv);
        let mut rest = data;
        while !rest.is_empty() {
            if counter == u128::MAX {
                let mut ks = Block::<C>::from(counter.to_be_bytes());
                self.0.encrypt_block(&mut ks);
                let n = rest.len().min(AES_BLOCK_LEN);
                let Some((head, tail)) = rest.split_at_mut_checked(n) else {
                    return;
                };
                for (d, k) in head.iter_mut().zip(ks.iter()) {
                    *d ^= k;
                }
                rest = tail;
                counter = 0;
                continue;
            }
            let avail = usize::try_from(u128::MAX - counter)
                .ok()
                .and_then(|b| b.checked_mul(AES_BLOCK_LEN))
                .unwrap_or(usize::MAX);
            let n = avail.min(rest.len());
            let Some((head, tail)) = rest.split_at_mut_checked(n) else {
                return;
            };
            let core = CtrCore::<C>::inner_iv_init(&self.0, &counter.to_be_bytes().into());
            // `head` stops before counter 2^128 - 1, which is all `ctr` checks for.
            let _ = StreamCipherCoreWrapper::from_core(core).try_apply_keystream(head);
            rest = tail;
            // Only reached with more data when `head` ended exactly at counter 2^128 - 1.
            counter = counter.wrapping_add((n / AES_BLOCK_LEN) as u128);
        }
    }

    fn key_len(&self) -> usize {
        self.1
    }
}

impl<C> AesBlockKey for Enc<C>
where
    C: BlockCipherEncrypt<BlockSize = aes::cipher::consts::U16> + Send + Sync,
{
    fn encrypt_block(&self, block: &mut [u8; AES_BLOCK_LEN]) {
        let b: &mut Block<C> = block.into();
        self.0.encrypt_block(b);
    }
}

impl<C> AesCfbKey for Enc<C>
where
    C: BlockCipherEncrypt<BlockSize = aes::cipher::consts::U16> + Send + Sync,
{
    fn encrypt(&self, iv: &[u8; AES_BLOCK_LEN], data: &mut [u8]) {
        cfb_mode::Encryptor::<&C>::inner_iv_init(&self.0, iv.into()).encrypt(data);
    }
    fn decrypt(&self, iv: &[u8; AES_BLOCK_LEN], data: &mut [u8]) {
        cfb_mode::Decryptor::<&C>::inner_iv_init(&self.0, iv.into()).decrypt(data);
    }
}

/// AES-GCM with an `N`-octet nonce and a 128-bit tag, in place with a detached tag: the
/// work of both keyed types below.
fn gcm_seal<A, N>(
    g: &aes_gcm::AesGcm<A, N>,
    nonce: &[u8],
    aad: &[u8],
    data: &mut [u8],
    tag_out: &mut [u8],
) -> Result<(), Error>
where
    A: BlockCipherEncrypt<BlockSize = aes::cipher::consts::U16>,
    N: aes_gcm::aead::array::ArraySize,
{
    if tag_out.len() != GCM_TAG_LEN {
        return Err(Error::InvalidLength {
            what: "GCM tag",
            got: tag_out.len(),
        });
    }
    let nonce = aes_gcm::Nonce::<N>::try_from(nonce).map_err(|_| Error::InvalidLength {
        what: "GCM nonce",
        got: nonce.len(),
    })?;
    let tag = g
        .encrypt_inout_detached(&nonce, aad, data.into())
        .map_err(|_| Error::InvalidLength {
            what: "GCM input",
            got: data.len(),
        })?;
    tag_out.copy_from_slice(&tag);
    Ok(())
}

fn gcm_open<A, N>(
    g: &aes_gcm::AesGcm<A, N>,
    nonce: &[u8],
    aad: &[u8],
    data: &mut [u8],
    tag: &[u8],
) -> Result<(), Error>
where
    A: BlockCipherEncrypt<BlockSize = aes::cipher::consts::U16>,
    N: aes_gcm::aead::array::ArraySize,
{
    let tag: &[u8; GCM_TAG_LEN] = tag.try_into().map_err(|_| Error::InvalidLength {
        what: "GCM tag",
        got: tag.len(),
    })?;
    let nonce = aes_gcm::Nonce::<N>::try_from(nonce).map_err(|_| Error::InvalidLength {
        what: "GCM nonce",
        got: nonce.len(),
    })?;
    g.decrypt_inout_detached(&nonce, aad, data.into(), tag.into())
        .map_err(|_| Error::AuthenticationFailed)
}

/// AES-GCM with a 96-bit nonce and a 128-bit tag.
struct Gcm<A>(aes_gcm::AesGcm<A, U12>, usize);

impl<A> AeadKey for Gcm<A>
where
    A: BlockCipherEncrypt<BlockSize = aes::cipher::consts::U16> + Send + Sync,
{
    fn seal_in_place_detached(
        &self,
        nonce: &[u8; GCM_NONCE_LEN],
        aad: &[u8],
        data: &mut [u8],
        tag_out: &mut [u8],
    ) -> Result<(), Error> {
        gcm_seal(&self.0, nonce, aad, data, tag_out)
    }

    fn open_in_place_detached(
        &self,
        nonce: &[u8; GCM_NONCE_LEN],
        aad: &[u8],
        data: &mut [u8],
        tag: &[u8],
    ) -> Result<(), Error> {
        gcm_open(&self.0, nonce, aad, data, tag)
    }

    fn key_len(&self) -> usize {
        self.1
    }
}

/// AES-256-GCM with a 128-bit IV (LIME's Double Ratchet).
struct Gcm16(aes_gcm::AesGcm<Aes256, U16>);

impl AeadIv16Key for Gcm16 {
    fn seal_in_place_detached(
        &self,
        iv: &[u8; AES_BLOCK_LEN],
        aad: &[u8],
        data: &mut [u8],
        tag_out: &mut [u8],
    ) -> Result<(), Error> {
        gcm_seal(&self.0, iv, aad, data, tag_out)
    }

    fn open_in_place_detached(
        &self,
        iv: &[u8; AES_BLOCK_LEN],
        aad: &[u8],
        data: &mut [u8],
        tag: &[u8],
    ) -> Result<(), Error> {
        gcm_open(&self.0, iv, aad, data, tag)
    }
}

impl CipherProvider for RustCipher {
    fn aes_ctr(&self, key: &[u8]) -> Result<Box<dyn AesCtrKey>, Error> {
        Ok(match key.len() {
            16 => Box::new(enc::<Aes128Enc>(key)?),
            24 => Box::new(enc::<Aes192Enc>(key)?),
            32 => Box::new(enc::<Aes256Enc>(key)?),
            n => return Err(key_err(n)),
        })
    }

    fn aes_gcm(&self, key: &[u8]) -> Result<Box<dyn AeadKey>, Error> {
        Ok(match key.len() {
            16 => Box::new(Gcm(
                aes_gcm::AesGcm::<Aes128, U12>::from(new_enc::<Aes128>(key)?),
                16,
            )),
            32 => Box::new(Gcm(
                aes_gcm::AesGcm::<Aes256, U12>::from(new_enc::<Aes256>(key)?),
                32,
            )),
            n => return Err(key_err(n)),
        })
    }

    fn aes256_gcm_iv16(&self, key: &[u8]) -> Result<Box<dyn AeadIv16Key>, Error> {
        if key.len() != 32 {
            return Err(key_err(key.len()));
        }
        Ok(Box::new(Gcm16(aes_gcm::AesGcm::<Aes256, U16>::from(
            new_enc::<Aes256>(key)?,
        ))))
    }

    fn aes_cfb(&self, key: &[u8]) -> Result<Box<dyn AesCfbKey>, Error> {
        Ok(match key.len() {
            16 => Box::new(enc::<Aes128Enc>(key)?),
            24 => Box::new(enc::<Aes192Enc>(key)?),
            32 => Box::new(enc::<Aes256Enc>(key)?),
            n => return Err(key_err(n)),
        })
    }

    fn aes_block(&self, key: &[u8]) -> Result<Box<dyn AesBlockKey>, Error> {
        Ok(match key.len() {
            16 => Box::new(enc::<Aes128Enc>(key)?),
            24 => Box::new(enc::<Aes192Enc>(key)?),
            32 => Box::new(enc::<Aes256Enc>(key)?),
            n => return Err(key_err(n)),
        })
    }
}

#[cfg(test)]
mod tests {
    //! Known answers from NIST SP 800-38A (F.1.1 ECB, F.3.13 CFB128) and values computed with
    //! Python `cryptography` (an independent implementation) for GCM, CFB-256 and the
    //! counter wrap.
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    const K128: &str = "2b7e151628aed2a6abf7158809cf4f3c";

    #[test]
    fn ecb_block_sp800_38a() {
        let k = RustCipher.aes_block(&h(K128)).unwrap();
        let mut b: [u8; 16] = h("6bc1bee22e409f96e93d7e117393172a").try_into().unwrap();
        k.encrypt_block(&mut b);
        assert_eq!(b.to_vec(), h("3ad77bb40d7a3660a89ecaf32466ef97"));
    }

    /// AES-256-GCM with a 16-byte IV (GHASHed into J0), as LIME uses it; the known answer
    /// from Python `cryptography` (OpenSSL).
    #[test]
    fn gcm_with_a_16_byte_iv_known_answer() {
        let key: Vec<u8> = (0..32).collect();
        let iv: [u8; 16] = core::array::from_fn(|i| 100 + i as u8);
        let k = RustCipher.aes256_gcm_iv16(&key).unwrap();
        let pt = b"a LIME message seed, 32 bytes!!".to_vec();
        let mut d = pt.clone();
        let mut tag = [0u8; 16];
        k.seal_in_place_detached(&iv, b"lime header", &mut d, &mut tag)
            .unwrap();
        let want = h(concat!(
            "b9930f18a95107b5d78adee820b2cc163f143cecbcdcd22ba7f9600bead626",
            "bf246e9cc3caa3bacf4f7692e7f391e5"
        ));
        assert_eq!([&d[..], &tag[..]].concat(), want);
        k.open_in_place_detached(&iv, b"lime header", &mut d, &tag)
            .unwrap();
        assert_eq!(d, pt);
        tag[0] ^= 1;
        assert_eq!(
            k.open_in_place_detached(&iv, b"lime header", &mut d, &tag),
            Err(Error::AuthenticationFailed)
        );
        assert!(RustCipher.aes256_gcm_iv16(&key[..16]).is_err());
    }

    #[test]
    fn cfb_round_trip_and_known_answer() {
        let iv: [u8; 16] = core::array::from_fn(|i| i as u8);
        let k = RustCipher.aes_cfb(&h(K128)).unwrap();
        let pt = h("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51");
        let mut d = pt.clone();
        k.encrypt(&iv, &mut d);
        assert_eq!(
            d,
            h("3b3fd92eb72dad20333449f8e83cfb4ac8a64537a0b3a93fcde3cdad9f1ce58b")
        );
        k.decrypt(&iv, &mut d);
        assert_eq!(d, pt);
        let k256 = RustCipher.aes_cfb(&(0..32).collect::<Vec<u8>>()).unwrap();
        let mut d = b"zrtp confirm body 123".to_vec();
        k256.encrypt(&iv, &mut d);
        assert_eq!(d, h("201c702728981ef89647275022a1c9f61ae0620ca3"));
    }

    #[test]
    fn ctr_wraps_modulo_2_128() {
        let k = RustCipher.aes_ctr(&h(K128)).unwrap();
        let mut d = [0u8; 48];
        k.apply_keystream(&[0xff; 16], &mut d);
        assert_eq!(
            d.to_vec(),
            h(concat!(
                "8af2860142f786f409307c1a3f7eaaac",
                "7df76b0c1ab899b33e42f047b91b546f",
                "57127d4034b1bebfaef466b9c7726fc6"
            ))
        );
        // Partial blocks and a split call agree with one call.
        let mut a = [0u8; 37];
        k.apply_keystream(&[0xff; 16], &mut a);
        assert_eq!(&a[..], &d[..37]);
        assert_eq!(k.key_len(), 16);
    }

    #[test]
    fn gcm_known_answer_and_tamper() {
        let nonce: [u8; 12] = core::array::from_fn(|i| i as u8);
        let key: Vec<u8> = (0..16).collect();
        let g = RustCipher.aes_gcm(&key).unwrap();
        let mut data = b"hello gcm world!x".to_vec();
        let mut tag = [0u8; 16];
        g.seal_in_place_detached(&nonce, b"hdr", &mut data, &mut tag)
            .unwrap();
        let mut both = data.clone();
        both.extend_from_slice(&tag);
        assert_eq!(
            both,
            h("fb09cba2093b903726f216e544cf1429cbd69bcda22a9b57cf6e9f0b9ed2626226")
        );
        let ct = data.clone();
        data[3] ^= 1;
        assert_eq!(
            g.open_in_place_detached(&nonce, b"hdr", &mut data, &tag),
            Err(Error::AuthenticationFailed)
        );
        assert_eq!(data[3] ^ 1, ct[3], "left unchanged on failure");
        data[3] ^= 1;
        g.open_in_place_detached(&nonce, b"hdr", &mut data, &tag)
            .unwrap();
        assert_eq!(data, b"hello gcm world!x");
        assert!(matches!(
            g.open_in_place_detached(&nonce, b"hdr", &mut data, &tag[..15]),
            Err(Error::InvalidLength { .. })
        ));
        let g256 = RustCipher.aes_gcm(&(0..32).collect::<Vec<u8>>()).unwrap();
        let mut t = [0u8; 16];
        g256.seal_in_place_detached(&nonce, b"only aad", &mut [], &mut t)
            .unwrap();
        assert_eq!(t.to_vec(), h("56a855b1850c1dc6751efab4c59b2aea"));
        assert_eq!(g256.key_len(), 32);
    }

    #[test]
    fn bad_key_lengths() {
        assert!(RustCipher.aes_ctr(&[0; 15]).is_err());
        assert!(RustCipher.aes_gcm(&[0; 24]).is_err());
        assert!(RustCipher.aes_cfb(&[0; 0]).is_err());
        assert!(RustCipher.aes_block(&[0; 33]).is_err());
        assert!(RustCipher.aes_ctr(&[0; 24]).is_ok());
    }
}
