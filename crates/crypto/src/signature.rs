//! Signatures (Ed25519, Ed448).

/// Signatures (Ed25519, Ed448).
pub trait SignatureProvider: Send + Sync + core::fmt::Debug {}
