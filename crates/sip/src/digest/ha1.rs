//! HA1 values and user records (RFC 7616 §3.4.2): what a server stores instead of passwords.

use super::{Algorithm, DigestError, hash_hex_joined};
use sotto_crypto::CryptoProvider;
use zeroize::Zeroizing;

/// `H(username:realm:password)` in lower-case hex for one base algorithm (`MD5` or `SHA-256`).
///
/// Password-equivalent for its realm: zeroized on drop and redacted in `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Ha1 {
    algorithm: Algorithm,
    hex: Zeroizing<String>,
}

impl Ha1 {
    /// Computes HA1 from a clear password. `-sess` algorithms are reduced to their base.
    pub fn from_password(
        provider: &CryptoProvider,
        algorithm: Algorithm,
        username: &str,
        realm: &str,
        password: &str,
    ) -> Result<Self, DigestError> {
        let algorithm = algorithm.base();
        let hex = hash_hex_joined(
            provider,
            algorithm,
            &[username.as_bytes(), realm.as_bytes(), password.as_bytes()],
        )?;
        Ok(Ha1 {
            algorithm,
            hex: Zeroizing::new(hex),
        })
    }

    /// Loads a stored HA1 (hex, either case; checked for length and digits).
    pub fn from_hex(algorithm: Algorithm, hex: &str) -> Result<Self, DigestError> {
        let algorithm = algorithm.base();
        let ok = hex.len() == algorithm.hex_len() && hex.bytes().all(|b| b.is_ascii_hexdigit());
        if !ok {
            return Err(DigestError::InvalidParam("ha1"));
        }
        Ok(Ha1 {
            algorithm,
            hex: Zeroizing::new(hex.to_ascii_lowercase()),
        })
    }

    /// The base algorithm (`MD5` or `SHA-256`).
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The lower-case hex value, for storage. Treat it as a password.
    pub fn as_hex(&self) -> &str {
        self.hex.as_str()
    }
}

impl core::fmt::Debug for Ha1 {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Ha1({}, <redacted>)", self.algorithm)
    }
}

/// A user's digest secrets: one [`Ha1`] per realm and base algorithm, never the password.
#[derive(Debug, Clone)]
pub struct UserRecord {
    username: String,
    entries: Vec<(String, Ha1)>,
}

impl UserRecord {
    /// An empty record for `username`.
    pub fn new(username: impl Into<String>) -> Self {
        UserRecord {
            username: username.into(),
            entries: Vec::new(),
        }
    }

    /// The user name.
    pub fn username(&self) -> &str {
        &self.username
    }

    /// Derives and stores HA1 for `realm` under each algorithm in `algorithms`; the password is
    /// not kept. Replaces existing entries for the same realm and algorithm.
    pub fn set_password(
        &mut self,
        provider: &CryptoProvider,
        realm: &str,
        password: &str,
        algorithms: &[Algorithm],
    ) -> Result<(), DigestError> {
        for &a in algorithms {
            let ha1 = Ha1::from_password(provider, a, &self.username, realm, password)?;
            self.insert(realm, ha1);
        }
        Ok(())
    }

    /// Stores a precomputed HA1 for `realm`, replacing one of the same algorithm.
    pub fn insert(&mut self, realm: &str, ha1: Ha1) {
        self.entries
            .retain(|(r, h)| !(r == realm && h.algorithm() == ha1.algorithm()));
        self.entries.push((realm.to_owned(), ha1));
    }

    /// The HA1 for `realm` and `algorithm` (its base algorithm), if stored.
    pub fn ha1(&self, realm: &str, algorithm: Algorithm) -> Option<&Ha1> {
        let base = algorithm.base();
        self.entries
            .iter()
            .find(|(r, h)| r == realm && h.algorithm() == base)
            .map(|(_, h)| h)
    }

    /// The stored `(realm, HA1)` pairs.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &Ha1)> {
        self.entries.iter().map(|(r, h)| (r.as_str(), h))
    }
}
