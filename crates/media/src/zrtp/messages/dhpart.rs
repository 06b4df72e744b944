//! DHPart1 and DHPart2 (§5.5, §5.6): H1, the four shared-secret IDs, the public value, MAC
//! keyed by H0.

use sotto_crypto::CryptoProvider;

use crate::zrtp::ZrtpError;
use crate::zrtp::packet::{MessageType, Reader, start_message};

use super::append_chain_mac;

/// The IDs of the secrets a side holds (or random values when it holds none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SecretIds {
    /// rs1ID.
    pub rs1: [u8; 8],
    /// rs2ID.
    pub rs2: [u8; 8],
    /// auxsecretID.
    pub aux: [u8; 8],
    /// pbxsecretID.
    pub pbx: [u8; 8],
}

/// A DHPart message, as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhPart {
    /// H1 of the sender's chain.
    pub h1: [u8; 32],
    /// The sender's secret IDs.
    pub ids: SecretIds,
    /// The public value.
    pub pv: Vec<u8>,
}

/// Writes DHPart1 (`first`) or DHPart2, closed by its MAC keyed by `h0`.
pub fn encode(
    provider: &CryptoProvider,
    first: bool,
    h1: &[u8; 32],
    ids: &SecretIds,
    pv: &[u8],
    h0: &[u8; 32],
) -> Result<Vec<u8>, ZrtpError> {
    let kind = if first {
        MessageType::DhPart1
    } else {
        MessageType::DhPart2
    };
    let mut m = start_message(kind);
    m.extend_from_slice(h1);
    for id in [&ids.rs1, &ids.rs2, &ids.aux, &ids.pbx] {
        m.extend_from_slice(id);
    }
    m.extend_from_slice(pv);
    append_chain_mac(provider, h0, m)
}

/// Reads a DHPart whose public value must be `pv_len` octets.
pub fn parse(message: &[u8], pv_len: usize) -> Result<DhPart, ZrtpError> {
    let mut r = Reader::new(message);
    let h1 = r.array::<32>()?;
    let ids = SecretIds {
        rs1: r.array()?,
        rs2: r.array()?,
        aux: r.array()?,
        pbx: r.array()?,
    };
    if r.remaining() != pv_len + 8 {
        return Err(ZrtpError::Malformed(
            "DHPart public value of the wrong length",
        ));
    }
    let pv = r.take(pv_len)?.to_vec();
    Ok(DhPart { h1, ids, pv })
}
