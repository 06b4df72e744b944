//! A LIME device's own keys: the identity key Ik (EdDSA, also used for Diffie-Hellman in its
//! Montgomery form), the signed prekey SPk (signed by Ik over its public bytes) and the
//! one-time prekeys OPk; prekey ids are random 31-bit values. Secrets are kept as zeroized
//! bytes and turned into provider keys when used.

use std::sync::Arc;

use sotto_crypto::CryptoProvider;
use sotto_crypto::agreement::PrivateKey;
use sotto_crypto::secret::SecretBytes;

use crate::{CurveId, LimeError};

/// The identity key of a device.
#[derive(Clone)]
pub struct IdentityKey {
    /// The curve.
    pub curve: CurveId,
    /// The EdDSA seed (RFC 8032 private key).
    pub seed: SecretBytes,
    /// The EdDSA public key.
    pub public: Vec<u8>,
}

impl std::fmt::Debug for IdentityKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityKey")
            .field("curve", &self.curve)
            .field("public", &sotto_crypto::hex::encode(&self.public))
            .finish_non_exhaustive()
    }
}

impl IdentityKey {
    /// A new identity key.
    pub fn generate(p: &CryptoProvider, curve: CurveId) -> Result<Self, LimeError> {
        let key = p.signature.generate(curve.signature(), p.rng)?;
        let mut seed = SecretBytes::zeroed(curve.signature().seed_len());
        key.write_seed(seed.expose_mut())?;
        Ok(IdentityKey {
            curve,
            seed,
            public: key.public_key().to_vec(),
        })
    }

    /// Signs `message`.
    pub fn sign(&self, p: &CryptoProvider, message: &[u8]) -> Result<Vec<u8>, LimeError> {
        let key = p
            .signature
            .from_seed(self.curve.signature(), self.seed.expose())?;
        Ok(key.sign(message).as_ref().to_vec())
    }

    /// The Diffie-Hellman form of the private key.
    pub fn agreement_key(&self, p: &CryptoProvider) -> Result<Box<dyn PrivateKey>, LimeError> {
        Ok(p.signature
            .agreement_key(self.curve.signature(), self.seed.expose())?)
    }
}

/// The Diffie-Hellman form of a peer's identity public key.
pub fn peer_agreement_public(
    p: &CryptoProvider,
    curve: CurveId,
    ik: &[u8],
) -> Result<Vec<u8>, LimeError> {
    let mut out = [0u8; 56];
    let n = p
        .signature
        .agreement_public_key(curve.signature(), ik, &mut out)?;
    Ok(out[..n].to_vec())
}

/// A Diffie-Hellman key pair (SPk, OPk, ratchet keys): the provider's key, made once (its
/// public value computed once), shared by the copies of a session.
#[derive(Clone)]
pub struct KeyPair {
    key: Arc<dyn PrivateKey>,
    /// The public key.
    pub public: Vec<u8>,
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPair")
            .field("public", &sotto_crypto::hex::encode(&self.public))
            .finish_non_exhaustive()
    }
}

impl KeyPair {
    /// A new key pair on `curve`.
    pub fn generate(p: &CryptoProvider, curve: CurveId) -> Result<Self, LimeError> {
        let key: Arc<dyn PrivateKey> = Arc::from(p.agreement.generate(curve.agreement(), p.rng)?);
        let public = key.public_key().to_vec();
        Ok(KeyPair { key, public })
    }

    /// The key pair of a stored private key.
    pub fn from_secret(
        p: &CryptoProvider,
        curve: CurveId,
        secret: &[u8],
    ) -> Result<Self, LimeError> {
        let key: Arc<dyn PrivateKey> =
            Arc::from(p.agreement.from_secret_bytes(curve.agreement(), secret)?);
        let public = key.public_key().to_vec();
        Ok(KeyPair { key, public })
    }

    /// The private key, for storage (secret).
    pub fn secret_bytes(&self) -> Result<SecretBytes, LimeError> {
        let mut out = SecretBytes::zeroed(self.key.algorithm().secret_len());
        self.key.write_secret(out.expose_mut())?;
        Ok(out)
    }

    /// Diffie-Hellman with `peer_public`.
    pub fn agree(&self, peer_public: &[u8]) -> Result<SecretBytes, LimeError> {
        let shared = self.key.agree(peer_public)?;
        Ok(SecretBytes::from_slice(shared.as_bytes()))
    }
}

/// A random 31-bit prekey id (never 0, which LIME reads as "none").
pub fn new_prekey_id(p: &CryptoProvider) -> Result<u32, LimeError> {
    loop {
        let mut b = [0u8; 4];
        p.rng.fill(&mut b)?;
        let id = u32::from_be_bytes(b) & 0x7fff_ffff;
        if id != 0 {
            return Ok(id);
        }
    }
}

/// A signed prekey.
#[derive(Debug, Clone)]
pub struct SignedPreKey {
    /// Its id.
    pub id: u32,
    /// Its key pair.
    pub key: KeyPair,
    /// The identity key's signature over the public key.
    pub signature: Vec<u8>,
}

impl SignedPreKey {
    /// A new signed prekey, signed by `ik`.
    pub fn generate(p: &CryptoProvider, ik: &IdentityKey) -> Result<Self, LimeError> {
        let key = KeyPair::generate(p, ik.curve)?;
        let signature = ik.sign(p, &key.public)?;
        Ok(SignedPreKey {
            id: new_prekey_id(p)?,
            key,
            signature,
        })
    }
}

/// A one-time prekey.
#[derive(Debug, Clone)]
pub struct OneTimePreKey {
    /// Its id.
    pub id: u32,
    /// Its key pair.
    pub key: KeyPair,
}

impl OneTimePreKey {
    /// A new one-time prekey.
    pub fn generate(p: &CryptoProvider, curve: CurveId) -> Result<Self, LimeError> {
        Ok(OneTimePreKey {
            id: new_prekey_id(p)?,
            key: KeyPair::generate(p, curve)?,
        })
    }
}
