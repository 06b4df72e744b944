//! Hash functions (SHA-1, SHA-2, MD5 for SIP digest only).

/// Hash functions (SHA-1, SHA-2, MD5 for SIP digest only).
pub trait HashProvider: Send + Sync + core::fmt::Debug {}
