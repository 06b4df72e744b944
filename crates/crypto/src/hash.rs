//! Hash functions (SHA-1 for legacy protocols, SHA-2, MD5 for SIP digest only).

/// A hash algorithm offered through the crypto API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HashAlgorithm {
    /// MD5: only for SIP digest authentication (RFC 3261 / RFC 7616), never for integrity.
    Md5,
    /// SHA-1: only where a protocol mandates it (SRTP HMAC-SHA1, ZRTP legacy).
    Sha1,
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl HashAlgorithm {
    /// Output length in bytes.
    pub const fn output_len(self) -> usize {
        match self {
            HashAlgorithm::Md5 => 16,
            HashAlgorithm::Sha1 => 20,
            HashAlgorithm::Sha256 => 32,
            HashAlgorithm::Sha384 => 48,
            HashAlgorithm::Sha512 => 64,
        }
    }
}

/// The largest output of any [`HashAlgorithm`], in bytes.
pub const MAX_HASH_LEN: usize = 64;

/// A finished hash value (up to [`MAX_HASH_LEN`] bytes), held inline: no heap allocation.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct HashOutput {
    bytes: [u8; MAX_HASH_LEN],
    len: usize,
}

impl HashOutput {
    /// Wraps the first `out.len()` bytes (at most [`MAX_HASH_LEN`]; longer input is truncated).
    pub fn new(out: &[u8]) -> Self {
        let len = out.len().min(MAX_HASH_LEN);
        let mut bytes = [0u8; MAX_HASH_LEN];
        bytes[..len].copy_from_slice(&out[..len]);
        HashOutput { bytes, len }
    }
}

impl AsRef<[u8]> for HashOutput {
    fn as_ref(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl core::fmt::Debug for HashOutput {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for b in self.as_ref() {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// An incremental hash computation.
pub trait Hasher: Send {
    /// Feeds more input.
    fn update(&mut self, data: &[u8]);
    /// Finishes and returns the hash value.
    fn finish(self: Box<Self>) -> HashOutput;
}

/// Hash functions.
pub trait HashProvider: Send + Sync + core::fmt::Debug {
    /// Starts an incremental hash. Returns `None` if the algorithm is not offered.
    fn start(&self, algorithm: HashAlgorithm) -> Option<Box<dyn Hasher>>;

    /// Hashes the concatenation of `parts` in one call (no allocation in the default
    /// backend beyond the hasher itself).
    fn hash(&self, algorithm: HashAlgorithm, parts: &[&[u8]]) -> Option<HashOutput> {
        let mut h = self.start(algorithm)?;
        for p in parts {
            h.update(p);
        }
        Some(h.finish())
    }
}
