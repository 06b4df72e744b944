//! Stream framing (RFC 3261 §18.3, §7.5) and CRLF keep-alive (RFC 5626 §3.5.1).
//!
//! Leading CRLFs are keep-alives: a CRLFCRLF is a ping (answered with a CRLF pong by the
//! driver), a lone CRLF is a pong or the padding §7.5 says to ignore; a CRLF that may be the
//! first half of a ping split across reads waits for more bytes. Everything else is delimited
//! by the SIP parser's [`frame_stream`] (Content-Length required, limits enforced).

use sotto_sip::parse::{Frame as SipFrame, Limits, frame_stream};

/// What the start of a stream buffer holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Frame {
    /// Not enough bytes yet.
    Incomplete,
    /// `len` bytes of keep-alive to skip; `ping` if they were a CRLFCRLF to answer.
    KeepAlive { len: usize, ping: bool },
    /// One message of `len` bytes.
    Message { len: usize },
}

const PING: &[u8] = b"\r\n\r\n";

/// Finds the first frame of `buf`.
pub(crate) fn next_frame(buf: &[u8], limits: &Limits) -> Result<Frame, FramingError> {
    if buf.starts_with(PING) {
        return Ok(Frame::KeepAlive { len: 4, ping: true });
    }
    if buf.starts_with(b"\r\n") {
        // Could be the first half of a ping split across reads: wait for two more bytes.
        if buf.len() < PING.len() {
            return Ok(Frame::Incomplete);
        }
        return Ok(Frame::KeepAlive {
            len: 2,
            ping: false,
        });
    }
    if buf.len() == 1 && buf.first() == Some(&b'\r') {
        return Ok(Frame::Incomplete);
    }
    message_frame(buf, limits)
}

/// Why a stream cannot be framed (the parser's framing error); the connection is closed.
pub(crate) type FramingError = sotto_sip::parse::ParseError;

fn message_frame(buf: &[u8], limits: &Limits) -> Result<Frame, FramingError> {
    Ok(match frame_stream(buf, limits)? {
        SipFrame::Incomplete => Frame::Incomplete,
        SipFrame::KeepAlive { len } => Frame::KeepAlive {
            len,
            ping: len >= PING.len(),
        },
        SipFrame::Message { len } => Frame::Message { len },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            max_message_bytes: 1024,
            ..Limits::default()
        }
    }

    #[test]
    fn ping_pong_and_split_ping() {
        let l = limits();
        assert_eq!(
            next_frame(b"\r\n\r\nOPTIONS", &l),
            Ok(Frame::KeepAlive { len: 4, ping: true })
        );
        assert_eq!(next_frame(b"\r\n", &l), Ok(Frame::Incomplete));
        assert_eq!(next_frame(b"\r\n\r", &l), Ok(Frame::Incomplete));
        assert_eq!(next_frame(b"\r", &l), Ok(Frame::Incomplete));
        assert_eq!(
            next_frame(b"\r\nOPTIONS sip:a SIP/2.0", &l),
            Ok(Frame::KeepAlive {
                len: 2,
                ping: false
            })
        );
    }

    #[test]
    fn message_with_body_and_missing_length() {
        let l = limits();
        let msg = b"MESSAGE sip:a SIP/2.0\r\nl: 3\r\n\r\nabcNEXT";
        assert_eq!(
            next_frame(msg, &l),
            Ok(Frame::Message { len: msg.len() - 4 })
        );
        assert_eq!(
            next_frame(
                b"MESSAGE sip:a SIP/2.0\r\nContent-Length: 10\r\n\r\nabc",
                &l
            ),
            Ok(Frame::Incomplete)
        );
        assert!(next_frame(b"OPTIONS sip:a SIP/2.0\r\nVia: x\r\n\r\n", &l).is_err());
        assert!(next_frame(b"OPTIONS sip:a SIP/2.0\r\nContent-Length: -1\r\n\r\n", &l).is_err());
    }

    #[test]
    fn oversize_rejected_before_end_of_headers() {
        let l = limits();
        assert!(next_frame(&[b'a'; 1025], &l).is_err());
        assert!(
            next_frame(
                b"MESSAGE sip:a SIP/2.0\r\nContent-Length: 99999999999\r\n\r\n",
                &l
            )
            .is_err()
        );
    }
}
