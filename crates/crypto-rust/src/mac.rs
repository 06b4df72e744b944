//! Backend for [`sotto_crypto::mac::MacProvider`] on RustCrypto's `hmac` with `sha1`/`sha2`.
//!
//! The keyed [`hmac::Hmac`] value holds the hash states after the inner and outer padded key
//! blocks; each computation clones that state (a few hundred bytes on the stack, no heap) and
//! hashes only the message. The `zeroize` features wipe the keyed states on drop.

use hmac::digest::{FixedOutput, KeyInit, Update};
use hmac::{EagerHash, Hmac};
use sotto_crypto::Error;
use sotto_crypto::mac::{MacAlgorithm, MacKey, MacProvider};

/// RustCrypto implementation of [`MacProvider`].
#[derive(Debug)]
pub(crate) struct RustMac;

struct Keyed<D: EagerHash> {
    mac: Hmac<D>,
    algorithm: MacAlgorithm,
}

impl<D> MacKey for Keyed<D>
where
    D: EagerHash + Send + Sync,
    Hmac<D>: Clone + Send + Sync,
{
    fn algorithm(&self) -> MacAlgorithm {
        self.algorithm
    }

    fn compute(&self, parts: &[&[u8]], out: &mut [u8]) -> Result<(), Error> {
        let full_len = self.algorithm.output_len();
        if out.is_empty() || out.len() > full_len {
            return Err(Error::InvalidLength {
                what: "MAC output",
                got: out.len(),
            });
        }
        let mut m = self.mac.clone();
        for p in parts {
            m.update(p);
        }
        let full = m.finalize_fixed();
        let n = out.len();
        out.copy_from_slice(full.get(..n).unwrap_or_default());
        Ok(())
    }
}

fn keyed<D>(algorithm: MacAlgorithm, key: &[u8]) -> Result<Box<dyn MacKey>, Error>
where
    D: EagerHash + Send + Sync + 'static,
    Hmac<D>: Clone + Send + Sync,
{
    let mac = <Hmac<D> as KeyInit>::new_from_slice(key).map_err(|_| Error::InvalidLength {
        what: "HMAC key",
        got: key.len(),
    })?;
    Ok(Box::new(Keyed { mac, algorithm }))
}

impl MacProvider for RustMac {
    fn hmac(&self, algorithm: MacAlgorithm, key: &[u8]) -> Result<Box<dyn MacKey>, Error> {
        match algorithm {
            MacAlgorithm::Sha1 => keyed::<sha1::Sha1>(algorithm, key),
            MacAlgorithm::Sha256 => keyed::<sha2::Sha256>(algorithm, key),
            MacAlgorithm::Sha384 => keyed::<sha2::Sha384>(algorithm, key),
            MacAlgorithm::Sha512 => keyed::<sha2::Sha512>(algorithm, key),
            _ => Err(Error::Unsupported("MAC algorithm")),
        }
    }
}

#[cfg(test)]
mod tests {
    //! RFC 2202 (HMAC-SHA1) and RFC 4231 (HMAC-SHA-2) test case 1, RFC 2202 case 2.
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn known_answers_and_truncation() {
        let cases = [
            (
                MacAlgorithm::Sha1,
                "b617318655057264e28bc0b6fb378c8ef146be00",
            ),
            (
                MacAlgorithm::Sha256,
                "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
            ),
            (
                MacAlgorithm::Sha384,
                "afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59cfaea9ea9076ede7f4af152e8b2fa9cb6",
            ),
            (
                MacAlgorithm::Sha512,
                "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cdedaa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854",
            ),
        ];
        for (alg, want) in cases {
            let k = RustMac.hmac(alg, &[0x0b; 20]).unwrap();
            assert_eq!(k.algorithm(), alg);
            let mut out = vec![0u8; alg.output_len()];
            // Parts are concatenated.
            k.compute(&[b"Hi ", b"", b"There"], &mut out).unwrap();
            assert_eq!(hex(&out), want);
            // The keyed state is reusable: a second computation gives the same value.
            let mut again = vec![0u8; alg.output_len()];
            k.compute(&[b"Hi There"], &mut again).unwrap();
            assert_eq!(again, out);
            assert!(k.verify(&[b"Hi There"], &out));
            assert!(k.verify(&[b"Hi There"], &out[..10]), "truncated tag");
            assert!(!k.verify(&[b"Hi There!"], &out[..10]));
            let mut bad = out.clone();
            bad[0] ^= 0x80;
            assert!(!k.verify(&[b"Hi There"], &bad));
            assert!(!k.verify(&[b"Hi There"], &[]), "empty tag never verifies");
            let mut too_long = vec![0u8; alg.output_len() + 1];
            assert!(k.compute(&[b"x"], &mut too_long).is_err());
            assert!(!k.verify(&[b"Hi There"], &too_long));
        }
        let k = RustMac.hmac(MacAlgorithm::Sha1, b"Jefe").unwrap();
        let mut t4 = [0u8; 4];
        k.compute(&[b"what do ya want ", b"for nothing?"], &mut t4)
            .unwrap();
        assert_eq!(hex(&t4), "effcdf6a");
    }
}
