//! Message authentication codes (HMAC with SHA-1 and SHA-2).

/// Message authentication codes (HMAC with SHA-1 and SHA-2).
pub trait MacProvider: Send + Sync + core::fmt::Debug {}
