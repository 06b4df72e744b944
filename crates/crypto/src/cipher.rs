//! Block ciphers and AEADs (AES-CM/CTR, AES-GCM, AES-CFB).

/// Block ciphers and AEADs (AES-CM/CTR, AES-GCM, AES-CFB).
pub trait CipherProvider: Send + Sync + core::fmt::Debug {}
