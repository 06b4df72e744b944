//! Key derivation (HKDF).

/// Key derivation (HKDF).
pub trait KdfProvider: Send + Sync + core::fmt::Debug {}
