//! The Double Ratchet header, version 0x01:
//! `0x01 ‖ message type ‖ curve id ‖ [X3DH init] ‖ Ns(2) ‖ PN(2) ‖ DHs`. The message type's
//! bit 0 says an X3DH init is present, bit 1 that the payload is the plaintext itself (the
//! DR-message policy) rather than the seed of a cipher message.

use crate::x3dh::X3dhInit;
use crate::{CurveId, LimeError};

/// The header version octet.
pub const DR_V01: u8 = 0x01;
/// Message type bit: an X3DH init follows the curve id.
pub const FLAG_X3DH_INIT: u8 = 0x01;
/// Message type bit: the payload is the plaintext (no cipher message).
pub const FLAG_DIRECT: u8 = 0x02;

/// A parsed header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrHeader {
    /// The payload is the plaintext itself.
    pub direct: bool,
    /// The X3DH init of a first message.
    pub x3dh_init: Option<X3dhInit>,
    /// Message number in the sending chain.
    pub ns: u16,
    /// Length of the previous sending chain.
    pub pn: u16,
    /// The sender's current ratchet public key.
    pub dhs: Vec<u8>,
    /// The header's length in the message.
    pub len: usize,
}

/// Builds a header.
pub fn encode(
    curve: CurveId,
    ns: u16,
    pn: u16,
    dhs: &[u8],
    x3dh_init: Option<&[u8]>,
    direct: bool,
) -> Vec<u8> {
    let mut kind = 0u8;
    if direct {
        kind |= FLAG_DIRECT;
    }
    if x3dh_init.is_some() {
        kind |= FLAG_X3DH_INIT;
    }
    let mut h = Vec::with_capacity(7 + dhs.len() + x3dh_init.map_or(0, <[u8]>::len));
    h.extend_from_slice(&[DR_V01, kind, curve.id()]);
    if let Some(x) = x3dh_init {
        h.extend_from_slice(x);
    }
    h.extend_from_slice(&ns.to_be_bytes());
    h.extend_from_slice(&pn.to_be_bytes());
    h.extend_from_slice(dhs);
    h
}

/// Parses the header at the start of a DR message on `curve`.
pub fn parse(curve: CurveId, msg: &[u8]) -> Result<DrHeader, LimeError> {
    let bad = LimeError::Malformed("DR header");
    let [version, kind, curve_id] = msg.get(..3).ok_or(bad.clone())? else {
        return Err(bad);
    };
    if *version != DR_V01 || *curve_id != curve.id() {
        return Err(bad);
    }
    let mut at = 3;
    let x3dh_init = if kind & FLAG_X3DH_INIT != 0 {
        let (init, n) = X3dhInit::parse(curve, &msg[at..])?;
        at += n;
        Some(init)
    } else {
        None
    };
    let rest = msg.get(at..at + 4 + curve.dh_len()).ok_or(bad)?;
    Ok(DrHeader {
        direct: kind & FLAG_DIRECT != 0,
        x3dh_init,
        ns: u16::from_be_bytes([rest[0], rest[1]]),
        pn: u16::from_be_bytes([rest[2], rest[3]]),
        dhs: rest[4..].to_vec(),
        len: at + 4 + curve.dh_len(),
    })
}
