//! Messages to several devices (LIME's encryption policies).
//!
//! - Cipher-message policy: a random 32-octet seed gives `key ‖ IV = HKDF-SHA512(no salt,
//!   seed, "DR Message Key Derivation")`; the plaintext is encrypted once (AES-256-GCM,
//!   associated data `sourceDeviceId ‖ recipientUserId`) into the cipher message
//!   `ciphertext ‖ tag`; each recipient device gets a DR message whose payload is the seed,
//!   with given associated data `tag ‖ sourceDeviceId ‖ recipientDeviceId`.
//! - DR-message policy: each DR message carries the plaintext itself, given associated data
//!   `recipientUserId ‖ sourceDeviceId ‖ recipientDeviceId`; no cipher message.
//! - The optimizing policies choose between the two by size, as liblime does.

use sotto_crypto::CryptoProvider;
use sotto_crypto::cipher::GCM_TAG_LEN;
use zeroize::Zeroizing;

use crate::LimeError;
use crate::kdf::{MESSAGE_KEY_INFO, MessageKey, hkdf};
use crate::session::{DrSession, open, seal_with};

/// The length of a cipher message's seed.
pub const SEED_LEN: usize = 32;

/// How a message is encrypted for its recipients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EncryptionPolicy {
    /// The plaintext in every DR message.
    DrMessage,
    /// The plaintext once in a cipher message, its key in every DR message (Linphone's
    /// chat messages).
    CipherMessage,
    /// Whichever uploads fewer octets (liblime's default).
    #[default]
    OptimizeUploadSize,
    /// Whichever moves fewer octets up and down.
    OptimizeGlobalBandwidth,
}

impl EncryptionPolicy {
    /// Whether the plaintext goes in the DR messages for `recipients` devices and a
    /// plaintext of `len` octets.
    pub fn direct(self, recipients: usize, len: usize) -> bool {
        let (n, tag, seed) = (recipients, GCM_TAG_LEN, SEED_LEN);
        match self {
            EncryptionPolicy::DrMessage => true,
            EncryptionPolicy::CipherMessage => false,
            EncryptionPolicy::OptimizeUploadSize => n * len <= len + tag + seed * n,
            EncryptionPolicy::OptimizeGlobalBandwidth => {
                2 * n * len <= len + tag + (2 * seed + len + tag) * n
            }
        }
    }
}

/// A message encrypted for a set of devices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encrypted {
    /// The cipher message (empty under the DR-message policy).
    pub cipher_message: Vec<u8>,
    /// One DR message per recipient device, in the order given.
    pub dr_messages: Vec<(String, Vec<u8>)>,
}

fn seed_key(p: &CryptoProvider, seed: &[u8]) -> Result<MessageKey, LimeError> {
    let mut k = Zeroizing::new([0u8; 48]);
    hkdf(p, &[], seed, MESSAGE_KEY_INFO, &mut k[..])?;
    Ok(k)
}

/// Encrypts `plaintext` from `source_device` to `recipient_user` (a user or a group), for
/// each `(device id, session)` of `recipients`. The sessions advance; store them before
/// sending anything.
pub fn encrypt_message(
    p: &CryptoProvider,
    recipients: &mut [(&str, &mut DrSession)],
    plaintext: &[u8],
    recipient_user: &str,
    source_device: &str,
    policy: EncryptionPolicy,
) -> Result<Encrypted, LimeError> {
    let direct = policy.direct(recipients.len(), plaintext.len());
    let (cipher_message, common_ad, payload) = if direct {
        let ad = [recipient_user.as_bytes(), source_device.as_bytes()].concat();
        (Vec::new(), ad, Zeroizing::new(plaintext.to_vec()))
    } else {
        let mut seed = Zeroizing::new(vec![0u8; SEED_LEN]);
        p.rng.fill(&mut seed)?;
        let key = seed_key(p, &seed)?;
        let ad = [source_device.as_bytes(), recipient_user.as_bytes()].concat();
        let cipher = seal_with(p, &key, &ad, plaintext)?;
        let tag = &cipher[cipher.len() - GCM_TAG_LEN..];
        let common = [tag, source_device.as_bytes()].concat();
        (cipher, common, seed)
    };
    let mut dr_messages = Vec::with_capacity(recipients.len());
    for (device, session) in recipients.iter_mut() {
        let ad = [&common_ad[..], device.as_bytes()].concat();
        dr_messages.push((
            (*device).to_owned(),
            session.encrypt(p, &payload, &ad, direct)?,
        ));
    }
    Ok(Encrypted {
        cipher_message,
        dr_messages,
    })
}

/// Decrypts a message from `source_device` to `recipient_user` with our DR message
/// `dr_message` (to `self_device`) and the `cipher_message` (empty: DR-message policy).
/// On failure the session is unchanged.
pub fn decrypt_message(
    p: &CryptoProvider,
    session: &mut DrSession,
    source_device: &str,
    self_device: &str,
    recipient_user: &str,
    dr_message: &[u8],
    cipher_message: &[u8],
) -> Result<Zeroizing<Vec<u8>>, LimeError> {
    if cipher_message.is_empty() {
        let ad = [
            recipient_user.as_bytes(),
            source_device.as_bytes(),
            self_device.as_bytes(),
        ]
        .concat();
        return session.decrypt(p, dr_message, &ad, true);
    }
    let tag = cipher_message
        .len()
        .checked_sub(GCM_TAG_LEN)
        .map(|n| &cipher_message[n..])
        .ok_or(LimeError::Malformed("cipher message"))?;
    let ad = [tag, source_device.as_bytes(), self_device.as_bytes()].concat();
    // The session moves on only when the cipher message opens with the seed too.
    session.decrypt_then(p, dr_message, &ad, false, |seed| {
        if seed.len() != SEED_LEN {
            return Err(LimeError::Malformed("cipher message seed"));
        }
        let key = seed_key(p, &seed)?;
        let ad = [source_device.as_bytes(), recipient_user.as_bytes()].concat();
        open(p, &key[..], &ad, cipher_message)
    })
}
