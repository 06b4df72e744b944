//! The SDP parser (RFC 8866 §5, §9 grammar).
//!
//! Tolerant where real peers differ harmlessly: a line may end in CRLF or in a bare LF, the
//! last line may lack its terminator, and empty lines at the very end are skipped. Strict on
//! structure: `v=0` first, then `o=`, `s=`, the optional lines in RFC order, at least one
//! `t=`, then `m=` sections; fields are separated by exactly one space; an unknown line type
//! is an error (RFC 8866 §5: a description with a type letter we do not understand must not be
//! used). Every error carries the 1-based line number and the fault. Sizes are bounded by
//! [`Limits`].

use core::fmt;

use crate::model::{Attribute, Bandwidth, Connection, Media, Origin, Session, Timing};

/// Bounds on what a peer can make the parser hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted description, in bytes.
    pub max_bytes: usize,
    /// Most lines.
    pub max_lines: usize,
    /// Longest line, in bytes (without its terminator).
    pub max_line_bytes: usize,
    /// Most `m=` sections.
    pub max_media: usize,
    /// Most formats on one `m=` line.
    pub max_formats: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 32 * 1024,
            max_lines: 1024,
            max_line_bytes: 4096,
            max_media: 16,
            max_formats: 64,
        }
    }
}

/// A parse failure: the 1-based line number (0 for the whole body) and the fault.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("SDP line {line}: {kind}")]
pub struct ParseError {
    /// The 1-based line number (0 when the fault concerns the whole body).
    pub line: usize,
    /// What is wrong.
    pub kind: ParseErrorKind,
}

/// What is wrong with a description.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseErrorKind {
    /// The body is larger than [`Limits::max_bytes`].
    #[error("description larger than {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// More lines than [`Limits::max_lines`].
    #[error("more than {limit} lines")]
    TooManyLines {
        /// The limit.
        limit: usize,
    },
    /// A line longer than [`Limits::max_line_bytes`].
    #[error("line longer than {limit} bytes")]
    LineTooLong {
        /// The limit.
        limit: usize,
    },
    /// More `m=` sections than [`Limits::max_media`].
    #[error("more than {limit} media sections")]
    TooManyMedia {
        /// The limit.
        limit: usize,
    },
    /// More formats on an `m=` line than [`Limits::max_formats`].
    #[error("more than {limit} formats on an m= line")]
    TooManyFormats {
        /// The limit.
        limit: usize,
    },
    /// The body is empty.
    #[error("empty description")]
    Empty,
    /// The line is not valid UTF-8.
    #[error("not UTF-8")]
    NotUtf8,
    /// A control character (NUL, a CR not followed by LF, …) inside a line.
    #[error("control character 0x{0:02x} inside the line")]
    ControlCharacter(u8),
    /// An empty line before the end of the description.
    #[error("empty line")]
    EmptyLine,
    /// The line is not `<letter>=<value>`.
    #[error("not a <type>=<value> line")]
    NotTypeValue,
    /// A type letter this parser does not know (RFC 8866: the description must not be used).
    #[error("unknown line type '{0}'")]
    UnknownType(char),
    /// The first line is not `v=`.
    #[error("the description must start with v=")]
    MissingVersion,
    /// `v=` with a version other than 0.
    #[error("unsupported version (only v=0)")]
    BadVersion,
    /// A mandatory line is missing before this one (or at the end).
    #[error("missing {0}= line")]
    Missing(char),
    /// A line out of the RFC 8866 order, repeated where it may not be, or not allowed in this
    /// part (session or media section).
    #[error("'{0}=' line not allowed here")]
    OutOfOrder(char),
    /// A malformed `o=` line.
    #[error("malformed o= ({0})")]
    BadOrigin(&'static str),
    /// A malformed `c=` line.
    #[error("malformed c= ({0})")]
    BadConnection(&'static str),
    /// A malformed `b=` line.
    #[error("malformed b= ({0})")]
    BadBandwidth(&'static str),
    /// A malformed `t=` line.
    #[error("malformed t= ({0})")]
    BadTiming(&'static str),
    /// A malformed `m=` line.
    #[error("malformed m= ({0})")]
    BadMedia(&'static str),
    /// A malformed `a=` line.
    #[error("malformed a= ({0})")]
    BadAttribute(&'static str),
}

impl ParseErrorKind {
    fn at(self, line: usize) -> ParseError {
        ParseError { line, kind: self }
    }
}

/// RFC 8866 `token-char`: printable ASCII except space and `"(),/:;<=>?@[\]{}`.
pub(crate) fn is_token_char(c: u8) -> bool {
    matches!(c,
        b'!' | b'#'..=b'\'' | b'*' | b'+' | b'-' | b'.' | b'0'..=b'9' | b'A'..=b'Z' | b'^'..=b'~')
}

/// Whether `s` is a non-empty RFC 8866 token.
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_char)
}

/// A field of a space-separated line: non-empty, no spaces, visible characters only.
pub(crate) fn is_field(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|c| c > b' ' && c != 0x7f)
}

/// Decimal digits only, at least one, at most `max` of them.
pub(crate) fn is_digits(s: &str, max: usize) -> bool {
    !s.is_empty() && s.len() <= max && s.bytes().all(|c| c.is_ascii_digit())
}

pub(crate) fn parse_u64(s: &str) -> Option<u64> {
    if is_digits(s, 20) {
        s.parse().ok()
    } else {
        None
    }
}

pub(crate) fn parse_u16(s: &str) -> Option<u16> {
    if is_digits(s, 5) {
        s.parse().ok()
    } else {
        None
    }
}

/// Splits `s` on single spaces into exactly `N` fields (no empty field).
fn fields<const N: usize>(s: &str) -> Option<[&str; N]> {
    let mut out = [""; N];
    let mut it = s.split(' ');
    for slot in out.iter_mut() {
        let f = it.next()?;
        if !is_field(f) {
            return None;
        }
        *slot = f;
    }
    if it.next().is_some() {
        return None;
    }
    Some(out)
}

fn parse_connection(v: &str) -> Result<Connection, ParseErrorKind> {
    let [net_type, addr_type, address] =
        fields::<3>(v).ok_or(ParseErrorKind::BadConnection("expected 3 fields"))?;
    if !is_token(net_type) || !is_token(addr_type) {
        return Err(ParseErrorKind::BadConnection("network or address type"));
    }
    Ok(Connection {
        net_type: net_type.to_owned(),
        addr_type: addr_type.to_owned(),
        address: address.to_owned(),
    })
}

fn parse_bandwidth(v: &str) -> Result<Bandwidth, ParseErrorKind> {
    let (t, n) = v
        .split_once(':')
        .ok_or(ParseErrorKind::BadBandwidth("expected <type>:<value>"))?;
    if !is_token(t) {
        return Err(ParseErrorKind::BadBandwidth("type"));
    }
    let bandwidth = parse_u64(n).ok_or(ParseErrorKind::BadBandwidth("value"))?;
    Ok(Bandwidth {
        bw_type: t.to_owned(),
        bandwidth,
    })
}

fn parse_origin(v: &str) -> Result<Origin, ParseErrorKind> {
    let [username, id, version, net_type, addr_type, address] =
        fields::<6>(v).ok_or(ParseErrorKind::BadOrigin("expected 6 fields"))?;
    if !is_digits(id, 64) {
        return Err(ParseErrorKind::BadOrigin("session id"));
    }
    let session_version = parse_u64(version).ok_or(ParseErrorKind::BadOrigin("session version"))?;
    if !is_token(net_type) || !is_token(addr_type) {
        return Err(ParseErrorKind::BadOrigin("network or address type"));
    }
    Ok(Origin {
        username: username.to_owned(),
        session_id: id.to_owned(),
        session_version,
        net_type: net_type.to_owned(),
        addr_type: addr_type.to_owned(),
        address: address.to_owned(),
    })
}

fn parse_timing(v: &str) -> Result<Timing, ParseErrorKind> {
    let [a, b] = fields::<2>(v).ok_or(ParseErrorKind::BadTiming("expected 2 fields"))?;
    let start = parse_u64(a).ok_or(ParseErrorKind::BadTiming("start time"))?;
    let stop = parse_u64(b).ok_or(ParseErrorKind::BadTiming("stop time"))?;
    Ok(Timing {
        start,
        stop,
        repeats: Vec::new(),
    })
}

fn parse_media(v: &str, limits: &Limits) -> Result<Media, ParseErrorKind> {
    let mut it = v.split(' ');
    let kind = it.next().unwrap_or_default();
    if !is_token(kind) {
        return Err(ParseErrorKind::BadMedia("media type"));
    }
    let port_field = it.next().ok_or(ParseErrorKind::BadMedia("missing port"))?;
    let (port, port_count) = match port_field.split_once('/') {
        Some((p, n)) => (
            parse_u16(p).ok_or(ParseErrorKind::BadMedia("port"))?,
            Some(parse_u16(n).ok_or(ParseErrorKind::BadMedia("port count"))?),
        ),
        None => (
            parse_u16(port_field).ok_or(ParseErrorKind::BadMedia("port"))?,
            None,
        ),
    };
    let proto = it.next().ok_or(ParseErrorKind::BadMedia("missing proto"))?;
    if proto.is_empty() || !proto.split('/').all(is_token) {
        return Err(ParseErrorKind::BadMedia("proto"));
    }
    let mut formats = Vec::new();
    for f in it {
        if !is_field(f) {
            return Err(ParseErrorKind::BadMedia("format"));
        }
        if formats.len() >= limits.max_formats {
            return Err(ParseErrorKind::TooManyFormats {
                limit: limits.max_formats,
            });
        }
        formats.push(f.to_owned());
    }
    if formats.is_empty() {
        return Err(ParseErrorKind::BadMedia("no format"));
    }
    let mut m = Media::new(kind, port, proto);
    m.port_count = port_count;
    m.formats = formats;
    Ok(m)
}

fn parse_attribute(v: &str) -> Result<Attribute, ParseErrorKind> {
    match v.split_once(':') {
        Some((name, value)) => {
            if !is_token(name) {
                return Err(ParseErrorKind::BadAttribute("name"));
            }
            Ok(Attribute::new(name, value))
        }
        None => {
            if !is_token(v) {
                return Err(ParseErrorKind::BadAttribute("name"));
            }
            Ok(Attribute::property(v))
        }
    }
}

/// The position of a session-level line type in RFC 8866 order.
fn session_rank(t: u8) -> Option<u8> {
    Some(match t {
        b'v' => 0,
        b'o' => 1,
        b's' => 2,
        b'i' => 3,
        b'u' => 4,
        b'e' => 5,
        b'p' => 6,
        b'c' => 7,
        b'b' => 8,
        b't' => 9,
        b'r' => 10,
        b'z' => 11,
        b'k' => 12,
        b'a' => 13,
        _ => return None,
    })
}

/// The position of a media-level line type in RFC 8866 order.
fn media_rank(t: u8) -> Option<u8> {
    Some(match t {
        b'm' => 0,
        b'i' => 1,
        b'c' => 2,
        b'b' => 3,
        b'k' => 4,
        b'a' => 5,
        _ => return None,
    })
}

fn repeatable(t: u8) -> bool {
    matches!(t, b'e' | b'p' | b'b' | b't' | b'r' | b'a' | b'c' | b'm')
}

/// Splits the body into lines (CRLF or LF), checking the size limits.
fn split_lines<'a>(body: &'a [u8], limits: &Limits) -> Result<Vec<&'a [u8]>, ParseError> {
    if body.len() > limits.max_bytes {
        return Err(ParseErrorKind::TooLarge {
            limit: limits.max_bytes,
        }
        .at(0));
    }
    let mut lines = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        let (line, next) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (
                rest.get(..i).unwrap_or_default(),
                rest.get(i + 1..).unwrap_or_default(),
            ),
            None => (rest, &[][..]),
        };
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if lines.len() >= limits.max_lines {
            return Err(ParseErrorKind::TooManyLines {
                limit: limits.max_lines,
            }
            .at(lines.len() + 1));
        }
        if line.len() > limits.max_line_bytes {
            return Err(ParseErrorKind::LineTooLong {
                limit: limits.max_line_bytes,
            }
            .at(lines.len() + 1));
        }
        lines.push(line);
        rest = next;
    }
    // Empty lines at the very end are tolerated (some stacks append an extra CRLF).
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    if lines.is_empty() {
        return Err(ParseErrorKind::Empty.at(0));
    }
    Ok(lines)
}

impl Session {
    /// Parses a description with the default [`Limits`].
    pub fn parse(body: &[u8]) -> Result<Session, ParseError> {
        Self::parse_with_limits(body, &Limits::default())
    }

    /// Parses a description with explicit [`Limits`].
    pub fn parse_with_limits(body: &[u8], limits: &Limits) -> Result<Session, ParseError> {
        let lines = split_lines(body, limits)?;
        let mut b = Builder::default();
        for (i, raw) in lines.iter().enumerate() {
            let n = i + 1;
            b.line(n, raw, limits).map_err(|k| k.at(n))?;
        }
        b.finish(lines.len() + 1)
    }
}

impl core::str::FromStr for Session {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Session::parse(s.as_bytes())
    }
}

#[derive(Default)]
struct Builder {
    /// The type letter of the previous line (0 before the first).
    last: u8,
    in_media: bool,
    origin: Option<Origin>,
    name: Option<String>,
    info: Option<String>,
    uri: Option<String>,
    emails: Vec<String>,
    phones: Vec<String>,
    connection: Option<Connection>,
    bandwidths: Vec<Bandwidth>,
    times: Vec<Timing>,
    time_zones: Option<String>,
    key: Option<String>,
    attributes: Vec<Attribute>,
    media: Vec<Media>,
}

impl Builder {
    fn line(&mut self, n: usize, raw: &[u8], limits: &Limits) -> Result<(), ParseErrorKind> {
        if raw.is_empty() {
            return Err(ParseErrorKind::EmptyLine);
        }
        if let Some(&c) = raw.iter().find(|&&c| c < 0x20 && c != b'\t' || c == 0x7f) {
            return Err(ParseErrorKind::ControlCharacter(c));
        }
        let text = core::str::from_utf8(raw).map_err(|_| ParseErrorKind::NotUtf8)?;
        let (t, value) = match (raw.first(), raw.get(1), text.get(2..)) {
            (Some(&t), Some(b'='), Some(v)) if t.is_ascii_lowercase() => (t, v),
            _ => return Err(ParseErrorKind::NotTypeValue),
        };
        if n == 1 {
            if t != b'v' {
                return Err(ParseErrorKind::MissingVersion);
            }
            if value != "0" {
                return Err(ParseErrorKind::BadVersion);
            }
            self.last = b'v';
            return Ok(());
        }
        if t == b'm' {
            self.enter_media(limits)?;
        }
        if self.in_media {
            self.media_line(t, value, limits)?;
        } else {
            self.session_line(t, value)?;
        }
        self.last = t;
        Ok(())
    }

    fn enter_media(&mut self, limits: &Limits) -> Result<(), ParseErrorKind> {
        if !self.in_media {
            self.check_session_complete()?;
            self.in_media = true;
        }
        if self.media.len() >= limits.max_media {
            return Err(ParseErrorKind::TooManyMedia {
                limit: limits.max_media,
            });
        }
        Ok(())
    }

    fn check_session_complete(&self) -> Result<(), ParseErrorKind> {
        if self.origin.is_none() {
            return Err(ParseErrorKind::Missing('o'));
        }
        if self.name.is_none() {
            return Err(ParseErrorKind::Missing('s'));
        }
        if self.times.is_empty() {
            return Err(ParseErrorKind::Missing('t'));
        }
        Ok(())
    }

    fn session_line(&mut self, t: u8, value: &str) -> Result<(), ParseErrorKind> {
        let rank = session_rank(t).ok_or_else(|| unknown_or_misplaced(t))?;
        let last_rank = session_rank(self.last).unwrap_or(0);
        let ordered = rank > last_rank || (rank == last_rank && repeatable(t));
        let r_ok = t != b'r' || matches!(self.last, b't' | b'r');
        let t_ok = t != b't' || matches!(self.last, b't' | b'r') || self.times.is_empty();
        if !(ordered || (t == b't' && self.last == b'r')) || !r_ok || !t_ok {
            return Err(ParseErrorKind::OutOfOrder(char::from(t)));
        }
        // Mandatory lines skipped over.
        if rank > 1 && self.origin.is_none() {
            return Err(ParseErrorKind::Missing('o'));
        }
        if rank > 2 && self.name.is_none() {
            return Err(ParseErrorKind::Missing('s'));
        }
        if rank > 10 && self.times.is_empty() {
            return Err(ParseErrorKind::Missing('t'));
        }
        match t {
            b'v' => return Err(ParseErrorKind::OutOfOrder('v')),
            b'o' => self.origin = Some(parse_origin(value)?),
            b's' => self.name = Some(value.to_owned()),
            b'i' => self.info = Some(value.to_owned()),
            b'u' => self.uri = Some(value.to_owned()),
            b'e' => self.emails.push(value.to_owned()),
            b'p' => self.phones.push(value.to_owned()),
            b'c' => self.connection = Some(parse_connection(value)?),
            b'b' => self.bandwidths.push(parse_bandwidth(value)?),
            b't' => self.times.push(parse_timing(value)?),
            b'r' => {
                if let Some(last) = self.times.last_mut() {
                    last.repeats.push(value.to_owned());
                }
            }
            b'z' => self.time_zones = Some(value.to_owned()),
            b'k' => self.key = Some(value.to_owned()),
            _ => self.attributes.push(parse_attribute(value)?),
        }
        Ok(())
    }

    fn media_line(&mut self, t: u8, value: &str, limits: &Limits) -> Result<(), ParseErrorKind> {
        let rank = media_rank(t).ok_or_else(|| unknown_or_misplaced(t))?;
        if t == b'm' {
            self.media.push(parse_media(value, limits)?);
            return Ok(());
        }
        let last_rank = media_rank(self.last).unwrap_or(0);
        if !(rank > last_rank || (rank == last_rank && repeatable(t))) {
            return Err(ParseErrorKind::OutOfOrder(char::from(t)));
        }
        let Some(m) = self.media.last_mut() else {
            return Err(ParseErrorKind::OutOfOrder(char::from(t)));
        };
        match t {
            b'i' => m.info = Some(value.to_owned()),
            b'c' => m.connections.push(parse_connection(value)?),
            b'b' => m.bandwidths.push(parse_bandwidth(value)?),
            b'k' => m.key = Some(value.to_owned()),
            _ => m.attributes.push(parse_attribute(value)?),
        }
        Ok(())
    }

    fn finish(self, end_line: usize) -> Result<Session, ParseError> {
        if !self.in_media {
            self.check_session_complete().map_err(|k| k.at(end_line))?;
        }
        let (Some(origin), Some(name)) = (self.origin, self.name) else {
            return Err(ParseErrorKind::Missing('o').at(end_line));
        };
        Ok(Session {
            origin,
            name,
            info: self.info,
            uri: self.uri,
            emails: self.emails,
            phones: self.phones,
            connection: self.connection,
            bandwidths: self.bandwidths,
            times: self.times,
            time_zones: self.time_zones,
            key: self.key,
            attributes: self.attributes,
            media: self.media,
        })
    }
}

fn unknown_or_misplaced(t: u8) -> ParseErrorKind {
    if session_rank(t).is_some() || media_rank(t).is_some() {
        ParseErrorKind::OutOfOrder(char::from(t))
    } else {
        ParseErrorKind::UnknownType(char::from(t))
    }
}

impl fmt::Display for Limits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} bytes, {} lines, {} bytes/line, {} media, {} formats",
            self.max_bytes, self.max_lines, self.max_line_bytes, self.max_media, self.max_formats
        )
    }
}
