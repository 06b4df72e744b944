//! Key agreement (X25519, X448, finite-field DH on the RFC 3526 groups).

/// Key agreement (X25519, X448, finite-field DH on the RFC 3526 groups).
pub trait AgreementProvider: Send + Sync + core::fmt::Debug {}
