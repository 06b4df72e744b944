//! The short messages: HelloACK, Conf2ACK, ErrorACK, ClearACK, RelayACK (a header only),
//! Error (§5.9), GoClear (§5.11), Ping and PingACK (§5.15, §5.16).

use crate::zrtp::ZrtpError;
use crate::zrtp::packet::{MessageType, Reader, finish_message, start_message};

/// A message that is only its header (HelloACK, Conf2ACK, ErrorACK, ClearACK, RelayACK).
pub fn bare(kind: MessageType) -> Vec<u8> {
    finish_message(start_message(kind))
}

/// An Error message with its code (§5.9).
pub fn error(code: u32) -> Vec<u8> {
    let mut m = start_message(MessageType::Error);
    m.extend_from_slice(&code.to_be_bytes());
    finish_message(m)
}

/// The code of a received Error.
pub fn parse_error(message: &[u8]) -> Result<u32, ZrtpError> {
    Ok(u32::from_be_bytes(Reader::new(message).array()?))
}

/// A Ping, as read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ping {
    /// The sender's version.
    pub version: [u8; 4],
    /// The sender's endpoint hash.
    pub endpoint_hash: [u8; 8],
}

/// Reads a Ping.
pub fn parse_ping(message: &[u8]) -> Result<Ping, ZrtpError> {
    let mut r = Reader::new(message);
    Ok(Ping {
        version: r.array()?,
        endpoint_hash: r.array()?,
    })
}

/// The PingACK answering `ping`, from an endpoint with `our_hash` receiving on `ssrc`.
pub fn ping_ack(ping: &Ping, our_hash: &[u8; 8], ssrc: u32) -> Vec<u8> {
    let mut m = start_message(MessageType::PingAck);
    m.extend_from_slice(super::hello::VERSION);
    m.extend_from_slice(our_hash);
    m.extend_from_slice(&ping.endpoint_hash);
    m.extend_from_slice(&ssrc.to_be_bytes());
    finish_message(m)
}

/// Error codes (§5.9).
pub mod code {
    /// Malformed packet (CRC OK, but wrong structure).
    pub const MALFORMED: u32 = 0x10;
    /// Critical software error.
    pub const SOFTWARE: u32 = 0x20;
    /// Unsupported ZRTP version.
    pub const VERSION: u32 = 0x30;
    /// Hello components mismatch.
    pub const HELLO_MISMATCH: u32 = 0x40;
    /// Hash type not supported.
    pub const HASH: u32 = 0x51;
    /// Cipher type not supported.
    pub const CIPHER: u32 = 0x52;
    /// Public key exchange not supported.
    pub const KEY_AGREEMENT: u32 = 0x53;
    /// SRTP auth tag not supported.
    pub const AUTH_TAG: u32 = 0x54;
    /// SAS rendering scheme not supported.
    pub const SAS: u32 = 0x55;
    /// No shared secret available, DH mode required.
    pub const NO_SHARED_SECRET: u32 = 0x56;
    /// DH error: bad pvi or pvr.
    pub const BAD_PV: u32 = 0x61;
    /// DH error: hvi does not match the hashed data.
    pub const BAD_HVI: u32 = 0x62;
    /// Auth error: bad Confirm MAC.
    pub const BAD_CONFIRM: u32 = 0x70;
    /// Equal ZIDs in Hello.
    pub const EQUAL_ZID: u32 = 0x90;
    /// Protocol timeout.
    pub const TIMEOUT: u32 = 0xB0;
    /// GoClear received but not allowed.
    pub const GOCLEAR_REFUSED: u32 = 0x100;
}
