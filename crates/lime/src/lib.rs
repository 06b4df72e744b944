//! # sotto-lime: end-to-end message keys, wire-compatible with Linphone's LIME
//!
//! Sans-IO: keys in, bytes out; no clock, no network, no files. The pieces:
//!
//! - [`curve`]: the curve of a user (Curve25519, Curve448), a value of the protocol;
//! - [`keys`]: a device's identity key, signed prekey, one-time prekeys;
//! - [`x3dh`]: the X3DH key agreement, initiator and responder, and its init message;
//! - [`header`], [`session`]: the Double Ratchet (AES-256-GCM with a 16-octet IV,
//!   HKDF-SHA512, bounded skipped keys, a session state that serializes for the store);
//! - [`message`]: messages to many devices (cipher-message and DR-message policies);
//! - [`protocol`]: the X3DH key server protocol, both ends; [`keyserver`]: the server's logic
//!   over a [`keyserver::KeyStore`] (an OPk is served at most once);
//! - [`user`]: a local device — its keys, its sessions, encrypt and decrypt.
//!
//! Cryptography only through [`sotto_crypto::CryptoProvider`].

pub mod curve;
mod error;
pub mod header;
pub mod kdf;
pub mod keys;
pub mod keyserver;
pub mod message;
pub mod protocol;
pub mod session;
pub mod user;
mod wire;
pub mod x3dh;

pub use curve::CurveId;
pub use error::LimeError;
pub use message::{Encrypted, EncryptionPolicy, decrypt_message, encrypt_message};
pub use session::DrSession;
pub use user::{Changes, LimeUser, PeerStatus, PeerTrust};
pub use x3dh::{PeerBundle, X3dhInit};
