//! SIP parser: framing and syntax (RFC 3261 §7, §7.5, §18.3, §25; keep-alives RFC 5626 §4.4.1).
//!
//! [`parse_message`] turns one datagram (or one message cut out of a stream by
//! [`frame_stream`]) into a [`Message`]. It fails only on bytes it cannot represent: framing,
//! start line, header-line syntax, Content-Length, limits. What the headers *mean* (a CSeq
//! that overflows, a missing Call-ID, an unsupported version) is checked by
//! [`crate::validate`], which names the status owed.
//!
//! The parse is zero-copy for the body (a `Bytes` slice) and copies the header section once
//! into a shared string; headers are spans into it, decoded only when asked for.

pub(crate) mod lex;

use std::sync::Arc;

use bytes::Bytes;
use memchr::memmem;

use crate::message::{
    HeaderName, Headers, Message, Method, Request, Response, StatusCode, Std, Uri, Version,
};

/// Configurable limits; `Default` gives safe values for a public server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest message (start line, headers and body) in bytes. Default 64 KiB.
    pub max_message_bytes: usize,
    /// Most header fields (after unfolding). Default 256.
    pub max_headers: usize,
    /// Longest start line or header field (after unfolding) in bytes. Default 8 KiB.
    pub max_line_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: 64 * 1024,
            max_headers: 256,
            max_line_bytes: 8 * 1024,
        }
    }
}

/// Why bytes could not be parsed as a SIP message. Offsets count bytes from the start of the
/// input (for [`ParseError::InvalidHeader`], from the start of that header's value).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// Nothing but CRLFs.
    #[error("empty message")]
    Empty,
    /// The message is bigger than [`Limits::max_message_bytes`].
    #[error("message of at least {size_bytes} bytes exceeds the limit of {limit_bytes} bytes")]
    MessageTooLarge {
        /// Size seen so far.
        size_bytes: usize,
        /// The limit.
        limit_bytes: usize,
    },
    /// More header fields than [`Limits::max_headers`].
    #[error("more than {limit} header fields")]
    TooManyHeaders {
        /// The limit.
        limit: usize,
    },
    /// A start line or header field longer than [`Limits::max_line_bytes`].
    #[error("line at offset {offset} is longer than {limit_bytes} bytes")]
    LineTooLong {
        /// Where the line starts.
        offset: usize,
        /// The limit.
        limit_bytes: usize,
    },
    /// No empty line (CRLF CRLF) ends the header section.
    #[error("the header section is not terminated by an empty line")]
    UnterminatedHeaders,
    /// A bare CR or LF in the header section (lines end with CRLF).
    #[error("bare CR or LF at offset {offset}")]
    BadLineEnding {
        /// Offset of the octet.
        offset: usize,
    },
    /// The header section is not UTF-8 (RFC 3261 §25 allows only UTF-8 text there).
    #[error("header section is not UTF-8 at offset {offset}")]
    NotUtf8 {
        /// Offset of the first bad octet.
        offset: usize,
    },
    /// The request line is not `Method SP Request-URI SP SIP-Version` (single spaces).
    #[error("malformed request line at offset {offset}")]
    InvalidRequestLine {
        /// Offset of the fault.
        offset: usize,
    },
    /// The status line is not `SIP-Version SP 3DIGIT SP Reason-Phrase` with a code 100–699.
    #[error("malformed status line at offset {offset}")]
    InvalidStatusLine {
        /// Offset of the fault.
        offset: usize,
    },
    /// The method is not a token.
    #[error("invalid method at offset {offset}")]
    InvalidMethod {
        /// Offset of the method.
        offset: usize,
    },
    /// A URI that does not follow its scheme's grammar.
    #[error("invalid URI at offset {offset}")]
    InvalidUri {
        /// Offset of the URI.
        offset: usize,
    },
    /// A SIP-Version that is not `SIP/<digits>.<digits>`.
    #[error("invalid SIP version at offset {offset}")]
    InvalidVersion {
        /// Offset of the version.
        offset: usize,
    },
    /// A header line without a colon, or a continuation line with nothing to continue.
    #[error("malformed header line at offset {offset}")]
    InvalidHeaderLine {
        /// Offset of the line.
        offset: usize,
    },
    /// A header name that is not a token.
    #[error("invalid header name at offset {offset}")]
    InvalidHeaderName {
        /// Offset of the name.
        offset: usize,
    },
    /// A header value that does not follow its grammar.
    #[error("invalid {name} header (offset {offset} in its value)")]
    InvalidHeader {
        /// Which header.
        name: HeaderName,
        /// Offset inside the value.
        offset: usize,
    },
    /// A header the operation needs is absent.
    #[error("missing {name} header")]
    MissingHeader {
        /// Which header.
        name: HeaderName,
    },
    /// Content-Length is not a decimal number (e.g. negative).
    #[error("invalid Content-Length at offset {offset}")]
    InvalidContentLength {
        /// Offset of the header line.
        offset: usize,
    },
    /// Two Content-Length fields disagree: the framing is unknowable.
    #[error("conflicting Content-Length values {first} and {second}")]
    ConflictingContentLength {
        /// First value.
        first: usize,
        /// Second value.
        second: usize,
    },
    /// Content-Length promises more body than the datagram holds.
    #[error("Content-Length {declared} exceeds the {available} body bytes received")]
    ContentLengthExceedsData {
        /// Declared length.
        declared: usize,
        /// Bytes present after the header section.
        available: usize,
    },
    /// A stream message without Content-Length (RFC 3261 §18.3 makes it mandatory).
    #[error("Content-Length is required on stream transports")]
    MissingContentLength,
}

impl ParseError {
    /// The response a server owes when a *request* fails this way (513 for limits, 400
    /// otherwise). `None` when the fault means the message was a response (responses are
    /// never answered: drop them).
    pub fn status(&self) -> Option<u16> {
        match self {
            ParseError::MessageTooLarge { .. }
            | ParseError::TooManyHeaders { .. }
            | ParseError::LineTooLong { .. } => Some(513),
            ParseError::InvalidStatusLine { .. } => None,
            _ => Some(400),
        }
    }

    /// The same as [`ParseError::status`], as a [`StatusCode`].
    pub fn status_code(&self) -> Option<StatusCode> {
        self.status().map(StatusCode)
    }

    /// Whether the byte stream cannot be resynchronised after this error (a stream
    /// connection must be closed).
    pub fn is_framing(&self) -> bool {
        matches!(
            self,
            ParseError::InvalidContentLength { .. }
                | ParseError::ConflictingContentLength { .. }
                | ParseError::MissingContentLength
                | ParseError::MessageTooLarge { .. }
                | ParseError::UnterminatedHeaders
        )
    }
}

/// What [`frame_stream`] found at the start of a stream buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frame {
    /// More bytes are needed.
    Incomplete,
    /// A keep-alive: CRLFCRLF ping (`len` 4) or CRLF pong (`len` 2) (RFC 5626 §4.4.1);
    /// consume `len` bytes.
    KeepAlive {
        /// Bytes to consume.
        len: usize,
    },
    /// One whole message occupies the first `len` bytes.
    Message {
        /// Bytes to hand to [`parse_message`].
        len: usize,
    },
}

/// Parses a decimal Content-Length value (LWS around it allowed).
pub(crate) fn parse_content_length(v: &[u8]) -> Option<usize> {
    let t = trim_ws_bytes(v);
    if t.is_empty() || t.len() > 19 || !t.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut n: usize = 0;
    for d in t {
        n = n.checked_mul(10)?.checked_add(usize::from(d - b'0'))?;
    }
    Some(n)
}

fn trim_ws_bytes(v: &[u8]) -> &[u8] {
    let s = v.iter().position(|b| !lex::is_ws(*b)).unwrap_or(v.len());
    let e = v.iter().rposition(|b| !lex::is_ws(*b)).map_or(s, |p| p + 1);
    v.get(s..e).unwrap_or(&[])
}

fn skip_crlfs(data: &[u8]) -> usize {
    let mut i = 0;
    while data.get(i..i + 2) == Some(b"\r\n") {
        i += 2;
    }
    i
}

/// Finds the next message boundary in a stream buffer (TCP, TLS): keep-alives, or a complete
/// message framed by its mandatory Content-Length. Errors are framing errors: close the
/// connection (after a 400 if the bytes were a request).
pub fn frame_stream(buf: &[u8], limits: &Limits) -> Result<Frame, ParseError> {
    if buf.starts_with(b"\r\n") {
        if buf.starts_with(b"\r\n\r\n") {
            return Ok(Frame::KeepAlive { len: 4 });
        }
        if buf.len() == 3 && buf.get(2) == Some(&b'\r') {
            return Ok(Frame::Incomplete);
        }
        return Ok(Frame::KeepAlive { len: 2 });
    }
    if buf.is_empty() || buf == b"\r" {
        return Ok(Frame::Incomplete);
    }
    let window = buf
        .get(..buf.len().min(limits.max_message_bytes.saturating_add(4)))
        .unwrap_or(buf);
    let Some(end) = memmem::find(window, b"\r\n\r\n") else {
        if buf.len() > limits.max_message_bytes {
            return Err(ParseError::MessageTooLarge {
                size_bytes: buf.len(),
                limit_bytes: limits.max_message_bytes,
            });
        }
        return Ok(Frame::Incomplete);
    };
    let head = buf.get(..end + 2).unwrap_or(buf);
    let cl = scan_content_length(head)?.ok_or(ParseError::MissingContentLength)?;
    let total = (end + 4)
        .checked_add(cl)
        .ok_or(ParseError::InvalidContentLength { offset: 0 })?;
    if total > limits.max_message_bytes {
        return Err(ParseError::MessageTooLarge {
            size_bytes: total,
            limit_bytes: limits.max_message_bytes,
        });
    }
    if buf.len() < total {
        return Ok(Frame::Incomplete);
    }
    Ok(Frame::Message { len: total })
}

/// Finds the Content-Length of a header section (start line first, each line ending CRLF).
fn scan_content_length(head: &[u8]) -> Result<Option<usize>, ParseError> {
    let mut found: Option<usize> = None;
    let mut pos = memchr::memchr(b'\n', head).map_or(head.len(), |p| p + 1);
    while pos < head.len() {
        let line_end = memchr::memchr(b'\n', head.get(pos..).unwrap_or(&[]))
            .map_or(head.len(), |p| pos + p + 1);
        let line = head.get(pos..line_end).unwrap_or(&[]);
        if let Some(colon) = memchr::memchr(b':', line) {
            let name = trim_ws_bytes(line.get(..colon).unwrap_or(&[]));
            if !line.first().is_some_and(|b| *b == b' ' || *b == b'\t')
                && Std::lookup(name) == Some(Std::ContentLength)
            {
                // the value, with any continuation lines
                let mut vend = line_end;
                while head.get(vend).is_some_and(|b| *b == b' ' || *b == b'\t') {
                    vend = memchr::memchr(b'\n', head.get(vend..).unwrap_or(&[]))
                        .map_or(head.len(), |p| vend + p + 1);
                }
                let v = head.get(pos + colon + 1..vend).unwrap_or(&[]);
                let n = parse_content_length(v)
                    .ok_or(ParseError::InvalidContentLength { offset: pos })?;
                match found {
                    Some(f) if f != n => {
                        return Err(ParseError::ConflictingContentLength {
                            first: f,
                            second: n,
                        });
                    }
                    _ => found = Some(n),
                }
            }
        }
        pos = line_end;
    }
    Ok(found)
}

fn parse_version(s: &str, offset: usize) -> Result<Version, ParseError> {
    let err = ParseError::InvalidVersion { offset };
    let rest = s
        .get(..4)
        .filter(|p| p.eq_ignore_ascii_case("SIP/"))
        .and_then(|_| s.get(4..))
        .ok_or(err.clone())?;
    let (ma, mi) = rest.split_once('.').ok_or(err.clone())?;
    let num = |x: &str| -> Result<u32, ParseError> {
        if x.is_empty() || x.len() > 9 || !x.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err.clone());
        }
        x.parse().map_err(|_| err.clone())
    };
    Ok(Version {
        major: num(ma)?,
        minor: num(mi)?,
    })
}

enum Start {
    Request(Method, Uri, Version),
    Response(Version, StatusCode, String),
}

fn parse_start_line(line: &str, base: usize) -> Result<Start, ParseError> {
    if line
        .get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case("SIP/"))
    {
        let err = ParseError::InvalidStatusLine { offset: base };
        let (ver, rest) = line.split_once(' ').ok_or(err.clone())?;
        let version = parse_version(ver, base).map_err(|_| err.clone())?;
        let code = rest.get(..3).ok_or(err.clone())?;
        let after = rest.get(3..).ok_or(err.clone())?;
        if !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err);
        }
        let reason = match after {
            "" => "",
            a => a.strip_prefix(' ').ok_or(err.clone())?,
        };
        let n: u16 = code.parse().map_err(|_| err.clone())?;
        if !(100..=699).contains(&n) {
            return Err(err);
        }
        return Ok(Start::Response(version, StatusCode(n), reason.to_owned()));
    }
    let mut parts = line.split(' ');
    let (Some(m), Some(u), Some(v), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ParseError::InvalidRequestLine { offset: base });
    };
    if m.is_empty() || u.is_empty() || v.is_empty() {
        return Err(ParseError::InvalidRequestLine { offset: base });
    }
    let method: Method = m
        .parse()
        .map_err(|_| ParseError::InvalidMethod { offset: base })?;
    let uri_off = base + m.len() + 1;
    let uri = Uri::parse(u).map_err(|_| ParseError::InvalidUri { offset: uri_off })?;
    let version = parse_version(v, uri_off + u.len() + 1)?;
    Ok(Start::Request(method, uri, version))
}

/// Parses one SIP message: a whole datagram, or the `len` bytes [`frame_stream`] reported.
///
/// Leading CRLFs are skipped (RFC 3261 §7.5). With a Content-Length, the body is exactly that
/// long and extra datagram octets are ignored (they are not part of the message, nor of its
/// serialization); without one, the body is the rest of the datagram (RFC 3261 §18.3 allows
/// this only for datagrams).
pub fn parse_message(bytes: Bytes, limits: &Limits) -> Result<Message, ParseError> {
    let data: &[u8] = &bytes;
    let start = skip_crlfs(data);
    let len = data.len() - start.min(data.len());
    if len == 0 {
        return Err(ParseError::Empty);
    }
    if len > limits.max_message_bytes {
        return Err(ParseError::MessageTooLarge {
            size_bytes: len,
            limit_bytes: limits.max_message_bytes,
        });
    }
    let rest = data.get(start..).unwrap_or(&[]);
    let end = memmem::find(rest, b"\r\n\r\n").ok_or(ParseError::UnterminatedHeaders)?;
    let head = rest.get(..end + 2).unwrap_or(&[]);
    let body_start = start + end + 4;
    let head_str = std::str::from_utf8(head).map_err(|e| ParseError::NotUtf8 {
        offset: start + e.valid_up_to(),
    })?;
    let src: Arc<str> = Arc::from(head_str);
    let s: &str = &src;
    let hb = s.as_bytes();

    // start line
    let first_end = next_line_end(hb, 0, start)?;
    if first_end > limits.max_line_bytes {
        return Err(ParseError::LineTooLong {
            offset: start,
            limit_bytes: limits.max_line_bytes,
        });
    }
    let start_line = parse_start_line(s.get(..first_end).unwrap_or(""), start)?;

    // header fields
    let mut headers = Headers::with_source(Arc::clone(&src), 16);
    let mut content_length: Option<usize> = None;
    let mut pos = first_end + 2;
    while pos < hb.len() {
        let line_start = pos;
        if hb.get(pos).is_some_and(|b| *b == b' ' || *b == b'\t') {
            return Err(ParseError::InvalidHeaderLine {
                offset: start + pos,
            });
        }
        // the logical field: this line plus continuation lines
        let mut le = next_line_end(hb, pos, start)?;
        let first_line_end = le;
        while hb.get(le + 2).is_some_and(|b| *b == b' ' || *b == b'\t') {
            le = next_line_end(hb, le + 2, start)?;
        }
        if le - line_start > limits.max_line_bytes {
            return Err(ParseError::LineTooLong {
                offset: start + line_start,
                limit_bytes: limits.max_line_bytes,
            });
        }
        if headers.len() >= limits.max_headers {
            return Err(ParseError::TooManyHeaders {
                limit: limits.max_headers,
            });
        }
        let first = hb
            .get(line_start..first_end_min(first_line_end, hb.len()))
            .unwrap_or(&[]);
        let colon = memchr::memchr(b':', first).ok_or(ParseError::InvalidHeaderLine {
            offset: start + line_start,
        })?;
        let mut name_end = line_start + colon;
        while name_end > line_start
            && hb
                .get(name_end - 1)
                .is_some_and(|b| *b == b' ' || *b == b'\t')
        {
            name_end -= 1;
        }
        let name = hb.get(line_start..name_end).unwrap_or(&[]);
        if name.is_empty() || !name.iter().all(|b| lex::is_token(*b)) {
            return Err(ParseError::InvalidHeaderName {
                offset: start + line_start,
            });
        }
        let mut vs = line_start + colon + 1;
        while vs < le && hb.get(vs).is_some_and(|b| lex::is_ws(*b)) {
            vs += 1;
        }
        let mut ve = le;
        while ve > vs && hb.get(ve - 1).is_some_and(|b| lex::is_ws(*b)) {
            ve -= 1;
        }
        let std = Std::lookup(name);
        if std == Some(Std::ContentLength) {
            let n = parse_content_length(hb.get(vs..ve).unwrap_or(&[])).ok_or(
                ParseError::InvalidContentLength {
                    offset: start + line_start,
                },
            )?;
            match content_length {
                Some(f) if f != n => {
                    return Err(ParseError::ConflictingContentLength {
                        first: f,
                        second: n,
                    });
                }
                _ => content_length = Some(n),
            }
        }
        headers.push_span(
            std,
            (line_start as u32, name_end as u32),
            (vs as u32, ve as u32),
            (line_start as u32, le as u32),
        );
        pos = le + 2;
    }

    // body
    let available = data.len() - body_start.min(data.len());
    let body_len = match content_length {
        Some(n) if n > available => {
            return Err(ParseError::ContentLengthExceedsData {
                declared: n,
                available,
            });
        }
        Some(n) => n,
        None => available,
    };
    let msg_end = body_start + body_len;
    let body = bytes.slice(body_start..msg_end);
    let raw = bytes.slice(start..msg_end);
    Ok(match start_line {
        Start::Request(m, u, v) => {
            Message::Request(Request::from_parts(m, u, v, headers, body, raw))
        }
        Start::Response(v, c, r) => {
            Message::Response(Response::from_parts(c, r, v, headers, body, raw))
        }
    })
}

fn first_end_min(a: usize, b: usize) -> usize {
    a.min(b)
}

/// The index of the CR ending the line starting at `from`; every line ends with CRLF and has
/// no other CR or LF.
fn next_line_end(hb: &[u8], from: usize, base: usize) -> Result<usize, ParseError> {
    let tail = hb.get(from..).unwrap_or(&[]);
    let i = memchr::memchr2(b'\r', b'\n', tail).ok_or(ParseError::UnterminatedHeaders)?;
    if tail.get(i) == Some(&b'\r') && tail.get(i + 1) == Some(&b'\n') {
        Ok(from + i)
    } else {
        Err(ParseError::BadLineEnding {
            offset: base + from + i,
        })
    }
}

#[cfg(test)]
mod tests;
