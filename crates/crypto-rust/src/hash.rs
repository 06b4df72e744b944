//! Backend for [`sotto_crypto::hash::HashProvider`] on RustCrypto's `sha1`, `sha2` and `md-5`.

use sha2::Digest;
use sotto_crypto::hash::{HashAlgorithm, HashOutput, HashProvider, Hasher};

/// RustCrypto implementation of [`HashProvider`].
#[derive(Debug)]
pub(crate) struct RustHash;

struct Wrap<D>(D);

impl<D: Digest + Send> Hasher for Wrap<D> {
    fn update(&mut self, data: &[u8]) {
        Digest::update(&mut self.0, data);
    }
    fn finish(self: Box<Self>) -> HashOutput {
        HashOutput::new(&self.0.finalize())
    }
}

impl HashProvider for RustHash {
    fn start(&self, algorithm: HashAlgorithm) -> Option<Box<dyn Hasher>> {
        Some(match algorithm {
            HashAlgorithm::Md5 => Box::new(Wrap(md5::Md5::new())),
            HashAlgorithm::Sha1 => Box::new(Wrap(sha1::Sha1::new())),
            HashAlgorithm::Sha256 => Box::new(Wrap(sha2::Sha256::new())),
            HashAlgorithm::Sha384 => Box::new(Wrap(sha2::Sha384::new())),
            HashAlgorithm::Sha512 => Box::new(Wrap(sha2::Sha512::new())),
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn known_answers() {
        let h = RustHash;
        let abc: &[&[u8]] = &[b"a", b"bc"];
        assert_eq!(
            hex(h.hash(HashAlgorithm::Md5, abc).unwrap().as_ref()),
            "900150983cd24fb0d6963f7d28e17f72"
        );
        assert_eq!(
            hex(h.hash(HashAlgorithm::Sha1, abc).unwrap().as_ref()),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            hex(h.hash(HashAlgorithm::Sha256, abc).unwrap().as_ref()),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            h.hash(HashAlgorithm::Sha384, abc).unwrap().as_ref().len(),
            48
        );
        assert_eq!(
            h.hash(HashAlgorithm::Sha512, abc).unwrap().as_ref().len(),
            64
        );
    }
}
