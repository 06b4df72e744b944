//! Typed attributes, decoded on access from an [`Attribute`]'s raw value.
//!
//! - `a=rtpmap`, `a=fmtp`, `a=ptime`, direction (`sendrecv`/`sendonly`/`recvonly`/`inactive`):
//!   RFC 8866 §6.
//! - `a=rtcp` (RFC 3605) and `a=rtcp-mux` (RFC 5761 §5.1.1).
//! - `a=crypto` (RFC 4568 §9.1): see [`crypto`].
//! - `a=zrtp-hash` (RFC 6189 §8.1).
//! - `a=fingerprint` (RFC 8122 §5) and `a=setup` (RFC 4145 §4).
//!
//! Each type has `parse(value)` and `to_attribute()`; parsing then re-emitting a well-formed
//! value gives the same typed value back.

pub mod crypto;

use core::fmt;

use crate::model::Attribute;
use crate::parse::{is_digits, is_field, is_token, parse_u16};

/// A malformed or unsupported attribute value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AttributeError {
    /// The attribute needs a value and has none.
    #[error("a={0} needs a value")]
    MissingValue(&'static str),
    /// The value does not follow the attribute's grammar; names the attribute and the part.
    #[error("a={attribute}: malformed {part}")]
    Malformed {
        /// The attribute name.
        attribute: &'static str,
        /// The part that is wrong.
        part: &'static str,
    },
    /// The value is well-formed but asks for something sotto does not support (a crypto
    /// session parameter, an unknown key method…).
    #[error("a={attribute}: unsupported {what}")]
    Unsupported {
        /// The attribute name.
        attribute: &'static str,
        /// What is not supported (a parameter name, a suite name…).
        what: String,
    },
}

pub(crate) fn malformed(attribute: &'static str, part: &'static str) -> AttributeError {
    AttributeError::Malformed { attribute, part }
}

fn value<'a>(a: &'a Attribute, name: &'static str) -> Result<&'a str, AttributeError> {
    a.value.as_deref().ok_or(AttributeError::MissingValue(name))
}

/// `a=rtpmap:<payload type> <encoding name>/<clock rate>[/<encoding parameters>]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rtpmap {
    /// The RTP payload type number (0–127).
    pub payload_type: u8,
    /// The encoding name as written (compare case-insensitively).
    pub encoding: String,
    /// The RTP clock rate in Hz.
    pub clock_rate: u32,
    /// Encoding parameters (the channel count for audio).
    pub params: Option<String>,
}

impl Rtpmap {
    /// Parses an `a=rtpmap` value.
    pub fn parse(v: &str) -> Result<Self, AttributeError> {
        let (pt, rest) = v
            .split_once(' ')
            .ok_or(malformed("rtpmap", "payload type"))?;
        let payload_type = parse_pt(pt).ok_or(malformed("rtpmap", "payload type"))?;
        let mut parts = rest.splitn(3, '/');
        let encoding = parts.next().unwrap_or_default();
        if !is_token(encoding) {
            return Err(malformed("rtpmap", "encoding name"));
        }
        let rate = parts.next().ok_or(malformed("rtpmap", "clock rate"))?;
        let clock_rate = if is_digits(rate, 10) {
            rate.parse()
                .map_err(|_| malformed("rtpmap", "clock rate"))?
        } else {
            return Err(malformed("rtpmap", "clock rate"));
        };
        let params = match parts.next() {
            Some(p) if is_field(p) => Some(p.to_owned()),
            Some(_) => return Err(malformed("rtpmap", "encoding parameters")),
            None => None,
        };
        Ok(Rtpmap {
            payload_type,
            encoding: encoding.to_owned(),
            clock_rate,
            params,
        })
    }

    /// Decodes an `a=rtpmap` attribute.
    pub fn from_attribute(a: &Attribute) -> Result<Self, AttributeError> {
        Self::parse(value(a, "rtpmap")?)
    }

    /// The channel count (encoding parameters), 1 when absent or not a number.
    pub fn channels(&self) -> u16 {
        self.params
            .as_deref()
            .and_then(parse_u16)
            .filter(|&c| c > 0)
            .unwrap_or(1)
    }

    /// The `a=rtpmap` attribute.
    pub fn to_attribute(&self) -> Attribute {
        Attribute::new("rtpmap", self.to_string())
    }
}

impl fmt::Display for Rtpmap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}/{}",
            self.payload_type, self.encoding, self.clock_rate
        )?;
        if let Some(p) = &self.params {
            write!(f, "/{p}")?;
        }
        Ok(())
    }
}

/// An RTP payload type number: 0–127, no sign, at most 3 digits.
pub(crate) fn parse_pt(s: &str) -> Option<u8> {
    if !is_digits(s, 3) {
        return None;
    }
    s.parse::<u8>().ok().filter(|&p| p <= 127)
}

/// `a=fmtp:<format> <format specific parameters>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fmtp {
    /// The format (payload type) the parameters apply to.
    pub format: String,
    /// The parameters, kept as written.
    pub params: String,
}

impl Fmtp {
    /// Parses an `a=fmtp` value.
    pub fn parse(v: &str) -> Result<Self, AttributeError> {
        let (format, params) = v.split_once(' ').ok_or(malformed("fmtp", "format"))?;
        if !is_field(format) {
            return Err(malformed("fmtp", "format"));
        }
        Ok(Fmtp {
            format: format.to_owned(),
            params: params.to_owned(),
        })
    }

    /// Decodes an `a=fmtp` attribute.
    pub fn from_attribute(a: &Attribute) -> Result<Self, AttributeError> {
        Self::parse(value(a, "fmtp")?)
    }

    /// The `a=fmtp` attribute.
    pub fn to_attribute(&self) -> Attribute {
        Attribute::new("fmtp", format!("{} {}", self.format, self.params))
    }
}

/// Parses an `a=ptime` value: milliseconds, an integer (a fractional part such as `20.0` is
/// accepted and truncated).
pub fn parse_ptime(v: &str) -> Result<u32, AttributeError> {
    let int = match v.split_once('.') {
        Some((i, frac)) if is_digits(frac, 9) => i,
        Some(_) => return Err(malformed("ptime", "value")),
        None => v,
    };
    if !is_digits(int, 9) {
        return Err(malformed("ptime", "value"));
    }
    int.parse().map_err(|_| malformed("ptime", "value"))
}

/// The media direction (RFC 8866 §6.7; RFC 3264 §5.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Direction {
    /// Send and receive (the default when no direction attribute is present).
    #[default]
    SendRecv,
    /// Send only.
    SendOnly,
    /// Receive only.
    RecvOnly,
    /// Neither.
    Inactive,
}

impl Direction {
    /// The attribute name.
    pub const fn name(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// The direction named by an attribute, if it is one.
    pub fn from_attribute(a: &Attribute) -> Option<Self> {
        [
            Direction::SendRecv,
            Direction::SendOnly,
            Direction::RecvOnly,
            Direction::Inactive,
        ]
        .into_iter()
        .find(|d| a.value.is_none() && a.is(d.name()))
    }

    /// Builds a direction from "sends" and "receives".
    pub const fn from_flags(send: bool, recv: bool) -> Self {
        match (send, recv) {
            (true, true) => Direction::SendRecv,
            (true, false) => Direction::SendOnly,
            (false, true) => Direction::RecvOnly,
            (false, false) => Direction::Inactive,
        }
    }

    /// Whether this side sends.
    pub const fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    /// Whether this side receives.
    pub const fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }

    /// The direction seen from the other side (`sendonly` ↔ `recvonly`).
    pub const fn reversed(self) -> Self {
        Self::from_flags(self.receives(), self.sends())
    }

    /// The property attribute.
    pub fn to_attribute(self) -> Attribute {
        Attribute::property(self.name())
    }
}

/// The direction of a media section: its own direction attribute, else the session's, else
/// `sendrecv`.
pub fn media_direction(session: &[Attribute], media: &[Attribute]) -> Direction {
    media
        .iter()
        .find_map(Direction::from_attribute)
        .or_else(|| session.iter().find_map(Direction::from_attribute))
        .unwrap_or_default()
}

/// `a=rtcp:<port> [<nettype> <addrtype> <address>]` (RFC 3605).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rtcp {
    /// The RTCP port.
    pub port: u16,
    /// The RTCP address, when it differs from the media's connection address.
    pub address: Option<crate::model::Connection>,
}

impl Rtcp {
    /// Parses an `a=rtcp` value.
    pub fn parse(v: &str) -> Result<Self, AttributeError> {
        let (port, rest) = match v.split_once(' ') {
            Some((p, r)) => (p, Some(r)),
            None => (v, None),
        };
        let port = parse_u16(port).ok_or(malformed("rtcp", "port"))?;
        let address = match rest {
            None => None,
            Some(r) => {
                let mut it = r.split(' ');
                match (it.next(), it.next(), it.next(), it.next()) {
                    (Some(n), Some(t), Some(a), None)
                        if is_token(n) && is_token(t) && is_field(a) =>
                    {
                        Some(crate::model::Connection {
                            net_type: n.to_owned(),
                            addr_type: t.to_owned(),
                            address: a.to_owned(),
                        })
                    }
                    _ => return Err(malformed("rtcp", "address")),
                }
            }
        };
        Ok(Rtcp { port, address })
    }

    /// Decodes an `a=rtcp` attribute.
    pub fn from_attribute(a: &Attribute) -> Result<Self, AttributeError> {
        Self::parse(value(a, "rtcp")?)
    }

    /// The `a=rtcp` attribute.
    pub fn to_attribute(&self) -> Attribute {
        let v = match &self.address {
            Some(c) => format!("{} {} {} {}", self.port, c.net_type, c.addr_type, c.address),
            None => self.port.to_string(),
        };
        Attribute::new("rtcp", v)
    }
}

/// `a=setup` (RFC 4145 §4): the DTLS/TCP connection role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Setup {
    /// Initiates the connection (DTLS client).
    Active,
    /// Accepts the connection (DTLS server).
    Passive,
    /// Either (offers only).
    ActPass,
    /// Does not want a connection now.
    HoldConn,
}

impl Setup {
    /// The value as written.
    pub const fn name(self) -> &'static str {
        match self {
            Setup::Active => "active",
            Setup::Passive => "passive",
            Setup::ActPass => "actpass",
            Setup::HoldConn => "holdconn",
        }
    }

    /// Parses an `a=setup` value (case-insensitive).
    pub fn parse(v: &str) -> Result<Self, AttributeError> {
        [
            Setup::Active,
            Setup::Passive,
            Setup::ActPass,
            Setup::HoldConn,
        ]
        .into_iter()
        .find(|s| v.eq_ignore_ascii_case(s.name()))
        .ok_or(malformed("setup", "role"))
    }

    /// Decodes an `a=setup` attribute.
    pub fn from_attribute(a: &Attribute) -> Result<Self, AttributeError> {
        Self::parse(value(a, "setup")?)
    }

    /// The `a=setup` attribute.
    pub fn to_attribute(self) -> Attribute {
        Attribute::new("setup", self.name())
    }
}

/// `a=fingerprint:<hash function> <colon-separated uppercase hex>` (RFC 8122 §5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fingerprint {
    /// The hash function name, lowercased (`sha-256`, `sha-1`, …).
    pub hash_function: String,
    /// The certificate fingerprint bytes.
    pub value: Vec<u8>,
}

impl Fingerprint {
    /// Parses an `a=fingerprint` value. The hash function must be a token; the digest length
    /// must match for the SHA family (`sha-1` 20, `sha-224` 28, `sha-256` 32, `sha-384` 48,
    /// `sha-512` 64 bytes).
    pub fn parse(v: &str) -> Result<Self, AttributeError> {
        let (h, hex) = v
            .split_once(' ')
            .ok_or(malformed("fingerprint", "hash function"))?;
        if !is_token(h) {
            return Err(malformed("fingerprint", "hash function"));
        }
        let hash_function = h.to_ascii_lowercase();
        let mut value = Vec::new();
        for pair in hex.split(':') {
            let b = (pair.len() == 2)
                .then(|| u8::from_str_radix(pair, 16).ok())
                .flatten()
                .filter(|_| pair.bytes().all(|c| c.is_ascii_hexdigit()))
                .ok_or(malformed("fingerprint", "hex"))?;
            value.push(b);
        }
        let expected = match hash_function.as_str() {
            "sha-1" => Some(20),
            "sha-224" => Some(28),
            "sha-256" => Some(32),
            "sha-384" => Some(48),
            "sha-512" => Some(64),
            _ => None,
        };
        if expected.is_some_and(|n| n != value.len()) || value.is_empty() || value.len() > 64 {
            return Err(malformed("fingerprint", "length"));
        }
        Ok(Fingerprint {
            hash_function,
            value,
        })
    }

    /// Decodes an `a=fingerprint` attribute.
    pub fn from_attribute(a: &Attribute) -> Result<Self, AttributeError> {
        Self::parse(value(a, "fingerprint")?)
    }

    /// The `a=fingerprint` attribute (hash function name uppercased, as most peers write it).
    pub fn to_attribute(&self) -> Attribute {
        Attribute::new("fingerprint", self.to_string())
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.hash_function.to_ascii_uppercase())?;
        for (i, b) in self.value.iter().enumerate() {
            f.write_str(if i == 0 { " " } else { ":" })?;
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

/// `a=zrtp-hash:<zrtp-version> <64 hex digits>` (RFC 6189 §8.1): the SHA-256 hash of the
/// sender's ZRTP Hello message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZrtpHash {
    /// The ZRTP protocol version (`1.10`).
    pub version: String,
    /// The Hello hash.
    pub hash: [u8; 32],
}

impl ZrtpHash {
    /// Parses an `a=zrtp-hash` value.
    pub fn parse(v: &str) -> Result<Self, AttributeError> {
        let (version, hex) = v.split_once(' ').ok_or(malformed("zrtp-hash", "version"))?;
        let vok = version
            .split_once('.')
            .is_some_and(|(a, b)| is_digits(a, 3) && is_digits(b, 3));
        if !vok {
            return Err(malformed("zrtp-hash", "version"));
        }
        if hex.len() != 64 || !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(malformed("zrtp-hash", "hash"));
        }
        let mut hash = [0u8; 32];
        for (i, out) in hash.iter_mut().enumerate() {
            let pair = hex
                .get(2 * i..2 * i + 2)
                .ok_or(malformed("zrtp-hash", "hash"))?;
            *out = u8::from_str_radix(pair, 16).map_err(|_| malformed("zrtp-hash", "hash"))?;
        }
        Ok(ZrtpHash {
            version: version.to_owned(),
            hash,
        })
    }

    /// Decodes an `a=zrtp-hash` attribute.
    pub fn from_attribute(a: &Attribute) -> Result<Self, AttributeError> {
        Self::parse(value(a, "zrtp-hash")?)
    }

    /// The `a=zrtp-hash` attribute (lowercase hex).
    pub fn to_attribute(&self) -> Attribute {
        let mut v = String::with_capacity(70);
        v.push_str(&self.version);
        v.push(' ');
        for b in self.hash {
            v.push_str(&format!("{b:02x}"));
        }
        Attribute::new("zrtp-hash", v)
    }
}
