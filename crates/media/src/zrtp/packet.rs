//! ZRTP packets (RFC 6189 §5): a 12-octet header (`0x10 0x00`, a sequence number, the magic
//! cookie `ZRTP`, the sender's SSRC), one message, and a CRC-32C. Messages start with the
//! preamble `0x505a`, their length in 32-bit words, and an 8-character type block.

use super::ZrtpError;
use super::crc::wire_crc;

/// The magic cookie (`ZRTP`), octets 4..8 of every packet; how RFC 7983 demultiplexing and
/// we tell ZRTP from RTP.
pub const MAGIC_COOKIE: [u8; 4] = *b"ZRTP";
/// Octets before the message.
pub const HEADER_LEN: usize = 12;
/// Octets of the message header (preamble, length, type).
pub const MESSAGE_HEADER_LEN: usize = 12;
/// The longest message we accept, in octets (a DH3k DHPart is 468; Hello at most 208).
pub const MAX_MESSAGE_LEN: usize = 1024;

/// The type of a message, from its type block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageType {
    /// `Hello   `
    Hello,
    /// `HelloACK`
    HelloAck,
    /// `Commit  `
    Commit,
    /// `DHPart1 `
    DhPart1,
    /// `DHPart2 `
    DhPart2,
    /// `Confirm1`
    Confirm1,
    /// `Confirm2`
    Confirm2,
    /// `Conf2ACK`
    Conf2Ack,
    /// `Error   `
    Error,
    /// `ErrorACK`
    ErrorAck,
    /// `GoClear `
    GoClear,
    /// `ClearACK`
    ClearAck,
    /// `SASrelay`
    SasRelay,
    /// `RelayACK`
    RelayAck,
    /// `Ping    `
    Ping,
    /// `PingACK `
    PingAck,
}

impl MessageType {
    const ALL: [MessageType; 16] = [
        MessageType::Hello,
        MessageType::HelloAck,
        MessageType::Commit,
        MessageType::DhPart1,
        MessageType::DhPart2,
        MessageType::Confirm1,
        MessageType::Confirm2,
        MessageType::Conf2Ack,
        MessageType::Error,
        MessageType::ErrorAck,
        MessageType::GoClear,
        MessageType::ClearAck,
        MessageType::SasRelay,
        MessageType::RelayAck,
        MessageType::Ping,
        MessageType::PingAck,
    ];

    /// The type block.
    pub fn block(self) -> &'static [u8; 8] {
        match self {
            MessageType::Hello => b"Hello   ",
            MessageType::HelloAck => b"HelloACK",
            MessageType::Commit => b"Commit  ",
            MessageType::DhPart1 => b"DHPart1 ",
            MessageType::DhPart2 => b"DHPart2 ",
            MessageType::Confirm1 => b"Confirm1",
            MessageType::Confirm2 => b"Confirm2",
            MessageType::Conf2Ack => b"Conf2ACK",
            MessageType::Error => b"Error   ",
            MessageType::ErrorAck => b"ErrorACK",
            MessageType::GoClear => b"GoClear ",
            MessageType::ClearAck => b"ClearACK",
            MessageType::SasRelay => b"SASrelay",
            MessageType::RelayAck => b"RelayACK",
            MessageType::Ping => b"Ping    ",
            MessageType::PingAck => b"PingACK ",
        }
    }

    /// The type a block names.
    pub fn from_block(block: &[u8]) -> Option<Self> {
        MessageType::ALL.into_iter().find(|t| t.block() == block)
    }
}

/// Starts a message: preamble, a length to be filled by [`finish_message`], the type block.
pub fn start_message(kind: MessageType) -> Vec<u8> {
    let mut m = Vec::with_capacity(128);
    m.extend_from_slice(&[0x50, 0x5a, 0, 0]);
    m.extend_from_slice(kind.block());
    m
}

/// Writes the length (in words) of a finished message; its length must be a multiple of 4.
pub fn finish_message(mut m: Vec<u8>) -> Vec<u8> {
    debug_assert_eq!(m.len() % 4, 0);
    let words = (m.len() / 4) as u16;
    m[2..4].copy_from_slice(&words.to_be_bytes());
    m
}

/// Frames a message as a packet: header with `seq` and `ssrc`, the message, the CRC.
pub fn frame(seq: u16, ssrc: u32, message: &[u8], out: &mut [u8]) -> Option<usize> {
    let len = HEADER_LEN + message.len() + 4;
    let out = out.get_mut(..len)?;
    out[0] = 0x10;
    out[1] = 0;
    out[2..4].copy_from_slice(&seq.to_be_bytes());
    out[4..8].copy_from_slice(&MAGIC_COOKIE);
    out[8..12].copy_from_slice(&ssrc.to_be_bytes());
    out[HEADER_LEN..len - 4].copy_from_slice(message);
    let crc = wire_crc(&out[..len - 4]);
    out[len - 4..].copy_from_slice(&crc);
    Some(len)
}

/// A received packet, checked (header, CRC, message length) but not yet parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received<'a> {
    /// The sequence number.
    pub seq: u16,
    /// The sender's SSRC.
    pub ssrc: u32,
    /// The message type.
    pub kind: MessageType,
    /// The whole message (preamble to last word).
    pub message: &'a [u8],
}

/// Whether a datagram looks like ZRTP (version octet and magic cookie), before any check.
pub fn is_zrtp(packet: &[u8]) -> bool {
    packet.len() >= HEADER_LEN && packet[0] & 0xF0 == 0x10 && packet[4..8] == MAGIC_COOKIE
}

/// Checks a datagram and finds its message. Fragmented packets (first octet `0x11`, bzrtp
/// 5.3's post-quantum extension) are refused: no agreement we offer needs them.
pub fn parse(packet: &[u8]) -> Result<Received<'_>, ZrtpError> {
    if !is_zrtp(packet) || packet[0] != 0x10 || packet[1] != 0 {
        return Err(ZrtpError::Malformed("not a ZRTP packet"));
    }
    if packet.len() < HEADER_LEN + MESSAGE_HEADER_LEN + 4 {
        return Err(ZrtpError::Malformed("packet too short"));
    }
    let (body, crc) = packet.split_at(packet.len() - 4);
    if wire_crc(body) != crc {
        return Err(ZrtpError::BadCrc);
    }
    let message = &body[HEADER_LEN..];
    if message[0..2] != [0x50, 0x5a] {
        return Err(ZrtpError::Malformed("no message preamble"));
    }
    let words = usize::from(u16::from_be_bytes([message[2], message[3]]));
    if words * 4 != message.len() || message.len() > MAX_MESSAGE_LEN {
        return Err(ZrtpError::Malformed(
            "message length disagrees with the packet",
        ));
    }
    let kind = MessageType::from_block(&message[4..12])
        .ok_or(ZrtpError::Malformed("unknown message type"))?;
    Ok(Received {
        seq: u16::from_be_bytes([packet[2], packet[3]]),
        ssrc: u32::from_be_bytes([packet[8], packet[9], packet[10], packet[11]]),
        kind,
        message,
    })
}

/// A reader over a message's fields, refusing to run past its end.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Reads `message` after its header.
    pub fn new(message: &'a [u8]) -> Self {
        Reader {
            buf: message,
            pos: MESSAGE_HEADER_LEN,
        }
    }

    /// The next `n` octets.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], ZrtpError> {
        let end = self.pos.checked_add(n).filter(|e| *e <= self.buf.len());
        let end = end.ok_or(ZrtpError::Malformed("message too short"))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    /// The next `N` octets as an array.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], ZrtpError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    /// Octets left.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_and_parse() {
        let mut m = start_message(MessageType::HelloAck);
        m = finish_message(std::mem::take(&mut m));
        let mut buf = [0u8; 64];
        let n = frame(7, 0xdead_beef, &m, &mut buf).unwrap();
        assert_eq!(n, 28);
        let r = parse(&buf[..n]).unwrap();
        assert_eq!(
            (r.seq, r.ssrc, r.kind),
            (7, 0xdead_beef, MessageType::HelloAck)
        );
        assert_eq!(r.message, &m[..]);
        let mut bad = buf;
        bad[20] ^= 1;
        assert_eq!(parse(&bad[..n]), Err(ZrtpError::BadCrc));
        assert!(parse(&buf[..n - 1]).is_err());
        assert!(frame(1, 1, &m, &mut [0u8; 10]).is_none());
    }
}
