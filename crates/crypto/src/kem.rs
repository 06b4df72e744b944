//! Key encapsulation (ML-KEM-768).

/// Key encapsulation (ML-KEM-768).
pub trait KemProvider: Send + Sync + core::fmt::Debug {}
