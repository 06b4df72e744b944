//! The curve of a LIME user: a value of the protocol (its curve id octet), not a boolean, so
//! that the post-quantum hybrids of later LIME versions can be added.

use sotto_crypto::agreement::AgreementAlgorithm;
use sotto_crypto::signature::SignatureAlgorithm;

/// A LIME curve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum CurveId {
    /// Curve25519: Ed25519ctx (empty context) identity keys, X25519 Diffie-Hellman.
    C25519,
    /// Curve448: Ed448 identity keys, X448 Diffie-Hellman.
    C448,
}

impl CurveId {
    /// The curve id octet on the wire.
    pub const fn id(self) -> u8 {
        match self {
            CurveId::C25519 => 0x01,
            CurveId::C448 => 0x02,
        }
    }

    /// The curve of a wire octet.
    pub fn from_id(id: u8) -> Option<Self> {
        match id {
            0x01 => Some(CurveId::C25519),
            0x02 => Some(CurveId::C448),
            _ => None,
        }
    }

    /// The name Linphone uses (`c25519`, `c448`).
    pub const fn name(self) -> &'static str {
        match self {
            CurveId::C25519 => "c25519",
            CurveId::C448 => "c448",
        }
    }

    /// The signature algorithm of identity keys (and of SPk signatures).
    pub const fn signature(self) -> SignatureAlgorithm {
        match self {
            CurveId::C25519 => SignatureAlgorithm::Ed25519Ctx,
            CurveId::C448 => SignatureAlgorithm::Ed448,
        }
    }

    /// The Diffie-Hellman of ephemeral, signed and one-time prekeys and of the ratchet.
    pub const fn agreement(self) -> AgreementAlgorithm {
        match self {
            CurveId::C25519 => AgreementAlgorithm::X25519,
            CurveId::C448 => AgreementAlgorithm::X448,
        }
    }

    /// Length of an identity (EdDSA) public key: 32 or 57.
    pub const fn ik_len(self) -> usize {
        match self {
            CurveId::C25519 => 32,
            CurveId::C448 => 57,
        }
    }

    /// Length of a Diffie-Hellman public key: 32 or 56.
    pub const fn dh_len(self) -> usize {
        match self {
            CurveId::C25519 => 32,
            CurveId::C448 => 56,
        }
    }

    /// Length of a signature: 64 or 114.
    pub const fn signature_len(self) -> usize {
        match self {
            CurveId::C25519 => 64,
            CurveId::C448 => 114,
        }
    }
}
