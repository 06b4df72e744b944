//! Cryptographically secure random numbers.

/// Cryptographically secure random numbers.
pub trait SecureRandom: Send + Sync + core::fmt::Debug {}
