//! Typed views of headers, decoded on access (RFC 3261 §20, §25.1): Via, CSeq, From/To,
//! Contact, Route/Record-Route, Max-Forwards, Call-ID, Content-Length, Expires.

use std::fmt;

use super::Method;
use super::headers::Headers;
use super::name::{HeaderName, Std};
use super::uri::{Uri, split_hostport};
use crate::parse::ParseError;
use crate::parse::lex::{Cursor, is_token, is_ws, trim_ws, unquote};

/// A header parameter `name[=value]`; the value is kept as written (a quoted string keeps its
/// quotes).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Param {
    /// Parameter name as written.
    pub name: String,
    /// Value as written, `None` for a flag parameter.
    pub value: Option<String>,
}

impl Param {
    /// A parameter.
    pub fn new(name: impl Into<String>, value: Option<impl Into<String>>) -> Param {
        Param {
            name: name.into(),
            value: value.map(Into::into),
        }
    }
}

fn find_param<'a>(params: &'a [Param], name: &str) -> Option<Option<&'a str>> {
    params
        .iter()
        .find(|p| p.name.eq_ignore_ascii_case(name))
        .map(|p| p.value.as_deref())
}

fn write_params(f: &mut fmt::Formatter<'_>, params: &[Param]) -> fmt::Result {
    for p in params {
        match &p.value {
            Some(v) => write!(f, ";{}={}", p.name, v)?,
            None => write!(f, ";{}", p.name)?,
        }
    }
    Ok(())
}

/// The `branch` prefix of RFC 3261 transactions.
pub const MAGIC_COOKIE: &str = "z9hG4bK";

/// One Via value (RFC 3261 §20.42, §18.2.1; `rport` RFC 3581).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Via {
    /// `SIP/2.0` as written without spaces (protocol name and version).
    pub protocol: String,
    /// Transport as written (`UDP`, `TCP`, `TLS`, `SCTP`, `WS`, `WSS`, or an unknown token).
    pub transport: String,
    /// sent-by host (`[...]` kept for IPv6).
    pub host: String,
    /// sent-by port, if explicit.
    pub port: Option<u16>,
    /// `branch` parameter.
    pub branch: Option<String>,
    /// `received` parameter.
    pub received: Option<String>,
    /// `rport`: `None` absent, `Some(None)` present without value, `Some(Some(p))` filled in.
    pub rport: Option<Option<u16>>,
    /// All parameters in order (including branch, received and rport).
    pub params: Vec<Param>,
}

impl Via {
    /// A Via for `SIP/2.0/<transport> host[:port];branch=<branch>` (add `;rport` with
    /// [`Via::with_rport`]).
    pub fn new(transport: &str, host: &str, port: Option<u16>, branch: &str) -> Via {
        Via {
            protocol: "SIP/2.0".into(),
            transport: transport.into(),
            host: host.into(),
            port,
            branch: Some(branch.into()),
            received: None,
            rport: None,
            params: vec![Param::new("branch", Some(branch))],
        }
    }

    /// Adds an empty `rport` parameter (RFC 3581 §3).
    pub fn with_rport(mut self) -> Via {
        self.rport = Some(None);
        self.params.push(Param::new("rport", None::<String>));
        self
    }

    /// Sets `received` (replacing an existing one).
    pub fn set_received(&mut self, addr: &str) {
        self.received = Some(addr.into());
        self.set_param("received", Some(addr));
    }

    /// Fills in `rport` with the source port (RFC 3581 §4).
    pub fn set_rport(&mut self, port: u16) {
        self.rport = Some(Some(port));
        self.set_param("rport", Some(&port.to_string()));
    }

    fn set_param(&mut self, name: &str, value: Option<&str>) {
        match self
            .params
            .iter_mut()
            .find(|p| p.name.eq_ignore_ascii_case(name))
        {
            Some(p) => p.value = value.map(Into::into),
            None => self.params.push(Param::new(name, value)),
        }
    }

    /// A parameter by name (case-insensitive).
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        find_param(&self.params, name)
    }

    /// Whether the branch starts with the RFC 3261 magic cookie `z9hG4bK` (and has more after
    /// it); otherwise transactions are matched the RFC 2543 way (§17.2.3).
    pub fn is_rfc3261_branch(&self) -> bool {
        self.branch
            .as_deref()
            .is_some_and(|b| b.len() > MAGIC_COOKIE.len() && b.starts_with(MAGIC_COOKIE))
    }

    /// The sent-by port, or the transport's default (5061 for TLS/WSS-style secure, else 5060).
    pub fn port_or_default(&self) -> u16 {
        self.port
            .unwrap_or(if self.transport.eq_ignore_ascii_case("TLS") {
                5061
            } else {
                5060
            })
    }

    /// Parses one or more comma-separated Via values.
    pub fn parse_list(v: &str) -> Result<Vec<Via>, ParseError> {
        let mut c = Cursor::new(v);
        let mut out = Vec::new();
        loop {
            out.push(parse_via(&mut c).ok_or_else(|| bad(Std::Via, c.pos()))?);
            c.skip_ws();
            if c.at_end() {
                return Ok(out);
            }
            if !c.eat(b',') {
                return Err(bad(Std::Via, c.pos()));
            }
        }
    }
}

impl std::str::FromStr for Via {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut c = Cursor::new(s);
        let v = parse_via(&mut c).ok_or_else(|| bad(Std::Via, c.pos()))?;
        c.skip_ws();
        if c.at_end() {
            Ok(v)
        } else {
            Err(bad(Std::Via, c.pos()))
        }
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{} {}", self.protocol, self.transport, self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        write_params(f, &self.params)
    }
}

fn bad(s: Std, offset: usize) -> ParseError {
    ParseError::InvalidHeader {
        name: HeaderName::from_std(s),
        offset,
    }
}

fn is_host_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'[' | b']' | b':')
}

/// `gen-value = token / host / quoted-string`.
fn gen_value<'a>(c: &mut Cursor<'a>) -> Option<&'a str> {
    c.skip_ws();
    if c.peek() == Some(b'"') {
        return c.quoted();
    }
    let v = c.take_while(|b| is_token(b) || matches!(b, b'[' | b']' | b':'));
    (!v.is_empty()).then_some(v)
}

/// `*( SEMI generic-param )`
fn params<'a>(c: &mut Cursor<'a>) -> Option<Vec<(&'a str, Option<&'a str>)>> {
    let mut out = Vec::new();
    while c.eat(b';') {
        let name = c.token()?;
        let value = if c.eat(b'=') {
            Some(gen_value(c)?)
        } else {
            None
        };
        out.push((name, value));
    }
    Some(out)
}

fn parse_via(c: &mut Cursor<'_>) -> Option<Via> {
    let name = c.token()?;
    if !c.eat(b'/') {
        return None;
    }
    let version = c.token()?;
    if !c.eat(b'/') {
        return None;
    }
    let transport = c.token()?;
    c.skip_ws();
    let host = if c.peek() == Some(b'[') {
        let h = c.until(b']')?;
        c.eat(b']');
        format!("{h}]")
    } else {
        c.take_while(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
            .to_owned()
    };
    let port = if c.eat(b':') {
        c.skip_ws();
        let p = c.take_while(|b| b.is_ascii_digit());
        if p.is_empty() || p.len() > 5 {
            return None;
        }
        Some(p.parse::<u16>().ok()?)
    } else {
        None
    };
    let (host, _) = split_hostport(&host)?;
    let ps = params(c)?;
    let mut via = Via {
        protocol: format!("{name}/{version}"),
        transport: transport.to_owned(),
        host: host.to_owned(),
        port,
        branch: None,
        received: None,
        rport: None,
        params: Vec::with_capacity(ps.len()),
    };
    for (k, v) in ps {
        if k.eq_ignore_ascii_case("branch") {
            via.branch = Some(v?.to_owned());
        } else if k.eq_ignore_ascii_case("received") {
            let r = v?;
            if !r.bytes().all(is_host_byte) {
                return None;
            }
            via.received = Some(r.to_owned());
        } else if k.eq_ignore_ascii_case("rport") {
            via.rport = Some(match v {
                None => None,
                Some(p)
                    if !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) =>
                {
                    Some(p.parse().ok()?)
                }
                Some(_) => return None,
            });
        }
        via.params.push(Param::new(k, v));
    }
    Some(via)
}

/// The CSeq header (RFC 3261 §20.16).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CSeq {
    /// Sequence number (must fit 32 bits, RFC 3261 §8.1.1.5).
    pub seq: u32,
    /// Method.
    pub method: Method,
}

impl std::str::FromStr for CSeq {
    type Err = ParseError;
    fn from_str(v: &str) -> Result<Self, Self::Err> {
        let mut c = Cursor::new(v);
        c.skip_ws();
        let digits = c.take_while(|b| b.is_ascii_digit());
        let seq = digits.parse::<u32>().map_err(|_| bad(Std::CSeq, 0))?;
        if !c.peek().is_some_and(is_ws) {
            return Err(bad(Std::CSeq, c.pos()));
        }
        let m = c.token().ok_or_else(|| bad(Std::CSeq, c.pos()))?;
        c.skip_ws();
        if !c.at_end() {
            return Err(bad(Std::CSeq, c.pos()));
        }
        let method = m.parse::<Method>().map_err(|_| bad(Std::CSeq, c.pos()))?;
        Ok(CSeq { seq, method })
    }
}

impl fmt::Display for CSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.seq, self.method)
    }
}

/// A `name-addr` or `addr-spec` with header parameters: From, To, Contact, Route,
/// Record-Route, Reply-To, Path, ... (RFC 3261 §20.10, §20.20, §20.39, §25.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameAddr {
    /// Display name, unquoted (quoted-pairs resolved); `None` when absent.
    pub display_name: Option<String>,
    /// The URI.
    pub uri: Uri,
    /// Header parameters (`tag`, `expires`, `q`, `+sip.instance`, `lr` never: that is a URI
    /// parameter), in order.
    pub params: Vec<Param>,
}

impl NameAddr {
    /// A name-addr with no display name and no parameters.
    pub fn new(uri: Uri) -> NameAddr {
        NameAddr {
            display_name: None,
            uri,
            params: Vec::new(),
        }
    }

    /// A header parameter by name (case-insensitive).
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        find_param(&self.params, name)
    }

    /// The `tag` parameter (From/To).
    pub fn tag(&self) -> Option<&str> {
        self.param("tag").flatten()
    }

    /// The `expires` parameter of a Contact (`None` if absent or not a number; values above
    /// u32 saturate, as RFC 3261 §10.2.1.1 allows only up to 2^32-1).
    pub fn expires(&self) -> Option<u32> {
        let v = self.param("expires").flatten()?;
        parse_delta(v)
    }

    /// The `q` parameter of a Contact (0.0–1.0), if present and well formed.
    pub fn q(&self) -> Option<f32> {
        let v = self.param("q").flatten()?;
        let ok = v.len() <= 5
            && match v.split_once('.') {
                Some((i, f)) => {
                    (i == "0" || i == "1") && f.bytes().all(|b| b.is_ascii_digit()) && f.len() <= 3
                }
                None => v == "0" || v == "1",
            };
        let q: f32 = v.parse().ok()?;
        (ok && (0.0..=1.0).contains(&q)).then_some(q)
    }

    /// The `+sip.instance` parameter (RFC 5626), unquoted, e.g. `<urn:uuid:...>`.
    pub fn sip_instance(&self) -> Option<String> {
        self.param("+sip.instance").flatten().map(unquote)
    }

    /// Parses a single name-addr / addr-spec with parameters.
    pub fn parse(v: &str) -> Result<NameAddr, ParseError> {
        let mut c = Cursor::new(v);
        let r = raw_name_addr(&mut c).ok_or_else(|| ParseError::InvalidHeader {
            name: HeaderName::new("name-addr"),
            offset: c.pos(),
        })?;
        c.skip_ws();
        if !c.at_end() {
            return Err(ParseError::InvalidHeader {
                name: HeaderName::new("name-addr"),
                offset: c.pos(),
            });
        }
        Ok(r.into_owned())
    }
}

impl std::str::FromStr for NameAddr {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        NameAddr::parse(s)
    }
}

impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(d) = &self.display_name {
            f.write_str("\"")?;
            for ch in d.chars() {
                if ch == '"' || ch == '\\' {
                    f.write_str("\\")?;
                }
                write!(f, "{ch}")?;
            }
            f.write_str("\" ")?;
        }
        write!(f, "<{}>", self.uri)?;
        write_params(f, &self.params)
    }
}

pub(crate) fn parse_delta(v: &str) -> Option<u32> {
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(v.parse::<u32>().unwrap_or(u32::MAX))
}

/// A name-addr borrowed from a header value.
#[derive(Debug)]
pub(crate) struct RawNameAddr<'a> {
    display: Option<&'a str>,
    quoted: bool,
    uri: Uri,
    params: Vec<(&'a str, Option<&'a str>)>,
}

impl<'a> RawNameAddr<'a> {
    pub(crate) fn param(&self, name: &str) -> Option<Option<&'a str>> {
        self.params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }

    fn into_owned(self) -> NameAddr {
        let display_name = self.display.map(|d| {
            if self.quoted {
                unquote(d)
            } else {
                d.to_owned()
            }
        });
        NameAddr {
            display_name,
            uri: self.uri,
            params: self
                .params
                .into_iter()
                .map(|(k, v)| Param::new(k, v))
                .collect(),
        }
    }
}

pub(crate) fn raw_name_addr<'a>(c: &mut Cursor<'a>) -> Option<RawNameAddr<'a>> {
    c.skip_ws();
    let start = c.pos();
    let mut display = None;
    let mut quoted = false;
    let angle = match c.peek()? {
        b'"' => {
            display = Some(c.quoted()?);
            quoted = true;
            if !c.eat(b'<') {
                return None;
            }
            true
        }
        b'<' => {
            c.eat(b'<');
            true
        }
        _ => {
            // *(token LWS) "<"  or an addr-spec
            let probe_start = c.clone();
            let mut end = None;
            loop {
                c.skip_ws();
                if c.peek() == Some(b'<') {
                    break;
                }
                if c.token().is_none() {
                    end = Some(());
                    break;
                }
                let _ = start;
            }
            if end.is_some() {
                *c = probe_start;
                false
            } else {
                let d = probe_start
                    .rest()
                    .get(..c.pos() - probe_start.pos())
                    .map(trim_ws);
                display = d.filter(|d| !d.is_empty());
                c.eat(b'<');
                true
            }
        }
    };
    let uri_text = if angle {
        let u = c.until(b'>')?;
        c.eat(b'>');
        u
    } else {
        c.skip_ws();
        c.take_while(|b| !is_ws(b) && b != b';' && b != b',')
    };
    let uri = Uri::parse(uri_text).ok()?;
    // RFC 3261 §20: an addr-spec holding `?`, `;` or `,` must be in angle brackets
    if !angle && uri.headers().is_some() {
        return None;
    }
    let params = params(c)?;
    Some(RawNameAddr {
        display,
        quoted,
        uri,
        params,
    })
}

/// One Contact value (RFC 3261 §20.10): `*` or an address with parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Contact {
    /// `Contact: *` (REGISTER removing all bindings).
    Wildcard,
    /// An address.
    Address(NameAddr),
}

impl Contact {
    /// The address, unless this is `*`.
    pub fn addr(&self) -> Option<&NameAddr> {
        match self {
            Contact::Wildcard => None,
            Contact::Address(a) => Some(a),
        }
    }

    /// Whether this is `*`.
    pub fn is_wildcard(&self) -> bool {
        matches!(self, Contact::Wildcard)
    }
}

impl fmt::Display for Contact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Contact::Wildcard => f.write_str("*"),
            Contact::Address(a) => a.fmt(f),
        }
    }
}

fn name_addr_list(s: Std, v: &str, out: &mut Vec<NameAddr>) -> Result<(), ParseError> {
    let mut c = Cursor::new(v);
    loop {
        let r = raw_name_addr(&mut c).ok_or_else(|| bad(s, c.pos()))?;
        out.push(r.into_owned());
        c.skip_ws();
        if c.at_end() {
            return Ok(());
        }
        if !c.eat(b',') {
            return Err(bad(s, c.pos()));
        }
    }
}

fn single(h: &Headers, s: Std) -> Result<&str, ParseError> {
    h.get_all_std(s).next().ok_or(ParseError::MissingHeader {
        name: HeaderName::from_std(s),
    })
}

/// Typed access. Every accessor reads the first field of its name unless it says otherwise.
impl Headers {
    /// The topmost Via value.
    pub fn via_top(&self) -> Result<Via, ParseError> {
        let v = single(self, Std::Via)?;
        let mut c = Cursor::new(v);
        parse_via(&mut c).ok_or_else(|| bad(Std::Via, c.pos()))
    }

    /// Every Via value, top first, across all Via fields.
    pub fn vias(&self) -> Result<Vec<Via>, ParseError> {
        let mut out = Vec::new();
        for v in self.get_all_std(Std::Via) {
            out.extend(Via::parse_list(v)?);
        }
        Ok(out)
    }

    /// The CSeq.
    pub fn cseq(&self) -> Result<CSeq, ParseError> {
        single(self, Std::CSeq)?.parse()
    }

    /// The Call-ID (`word ["@" word]`, trimmed).
    pub fn call_id(&self) -> Result<&str, ParseError> {
        let v = trim_ws(single(self, Std::CallId)?);
        if v.is_empty() || v.bytes().any(is_ws) {
            return Err(bad(Std::CallId, 0));
        }
        Ok(v)
    }

    fn raw_single(&self, s: Std) -> Result<RawNameAddr<'_>, ParseError> {
        let v = single(self, s)?;
        let mut c = Cursor::new(v);
        let r = raw_name_addr(&mut c).ok_or_else(|| bad(s, c.pos()))?;
        c.skip_ws();
        if !c.at_end() {
            return Err(bad(s, c.pos()));
        }
        Ok(r)
    }

    /// The From header.
    pub fn from(&self) -> Result<NameAddr, ParseError> {
        Ok(self.raw_single(Std::From)?.into_owned())
    }

    /// The To header.
    pub fn to(&self) -> Result<NameAddr, ParseError> {
        Ok(self.raw_single(Std::To)?.into_owned())
    }

    /// The From tag (`Ok(None)` when the From has no tag, as in RFC 2543 requests).
    pub fn from_tag(&self) -> Result<Option<&str>, ParseError> {
        Ok(self.raw_single(Std::From)?.param("tag").flatten())
    }

    /// The To tag (`Ok(None)` outside a dialog).
    pub fn to_tag(&self) -> Result<Option<&str>, ParseError> {
        Ok(self.raw_single(Std::To)?.param("tag").flatten())
    }

    /// Max-Forwards (`Ok(None)` when absent).
    pub fn max_forwards(&self) -> Result<Option<u32>, ParseError> {
        match self.get_all_std(Std::MaxForwards).next() {
            None => Ok(None),
            Some(v) => {
                let t = trim_ws(v);
                if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad(Std::MaxForwards, 0));
                }
                t.parse::<u32>()
                    .map(Some)
                    .map_err(|_| bad(Std::MaxForwards, 0))
            }
        }
    }

    /// Content-Length (`Ok(None)` when absent).
    pub fn content_length(&self) -> Result<Option<usize>, ParseError> {
        match self.get_all_std(Std::ContentLength).next() {
            None => Ok(None),
            Some(v) => crate::parse::parse_content_length(v.as_bytes())
                .map(Some)
                .ok_or(ParseError::InvalidContentLength { offset: 0 }),
        }
    }

    /// The Expires header in seconds (`Ok(None)` when absent; saturates at u32::MAX).
    pub fn expires(&self) -> Result<Option<u32>, ParseError> {
        match self.get_all_std(Std::Expires).next() {
            None => Ok(None),
            Some(v) => parse_delta(trim_ws(v))
                .map(Some)
                .ok_or_else(|| bad(Std::Expires, 0)),
        }
    }

    /// Every Contact value across all Contact fields (`*` as [`Contact::Wildcard`]).
    pub fn contacts(&self) -> Result<Vec<Contact>, ParseError> {
        let mut out = Vec::new();
        for v in self.get_all_std(Std::Contact) {
            if trim_ws(v) == "*" {
                out.push(Contact::Wildcard);
                continue;
            }
            let mut list = Vec::new();
            name_addr_list(Std::Contact, v, &mut list)?;
            out.extend(list.into_iter().map(Contact::Address));
        }
        Ok(out)
    }

    /// Every Route value, top first.
    pub fn routes(&self) -> Result<Vec<NameAddr>, ParseError> {
        self.name_addrs(Std::Route)
    }

    /// Every Record-Route value, top first.
    pub fn record_routes(&self) -> Result<Vec<NameAddr>, ParseError> {
        self.name_addrs(Std::RecordRoute)
    }

    /// Every Path value (RFC 3327), top first.
    pub fn paths(&self) -> Result<Vec<NameAddr>, ParseError> {
        self.name_addrs(Std::Path)
    }

    fn name_addrs(&self, s: Std) -> Result<Vec<NameAddr>, ParseError> {
        let mut out = Vec::new();
        for v in self.get_all_std(s) {
            name_addr_list(s, v, &mut out)?;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn via_forms() {
        let v: Via = "SIP  /   2.0\r\n /UDP\r\n    192.0.2.2;branch=390skdjuw"
            .parse()
            .unwrap();
        assert_eq!(v.protocol, "SIP/2.0");
        assert_eq!(v.transport, "UDP");
        assert_eq!(v.host, "192.0.2.2");
        assert_eq!(v.branch.as_deref(), Some("390skdjuw"));
        assert!(!v.is_rfc3261_branch());
        let l = Via::parse_list("SIP/2.0/TCP [2001:db8::9]:5070;rport;received=[2001:db8::1];branch=z9hG4bKx , SIP/2.0/UDP h:1;rport=5").unwrap();
        assert_eq!(l.len(), 2);
        assert_eq!(l[0].host, "[2001:db8::9]");
        assert_eq!(l[0].port, Some(5070));
        assert_eq!(l[0].rport, Some(None));
        assert!(l[0].is_rfc3261_branch());
        assert_eq!(l[1].rport, Some(Some(5)));
        assert!("SIP/2.0/UDP 192.0.2.15;;,;,,".parse::<Via>().is_err());
        assert!(Via::parse_list("SIP/2.0/UDP a, ").is_err());
        let mut n = Via::new("TLS", "p.example", None, "z9hG4bKabc").with_rport();
        n.set_received("192.0.2.1");
        assert_eq!(
            n.to_string(),
            "SIP/2.0/TLS p.example;branch=z9hG4bKabc;rport;received=192.0.2.1"
        );
        assert_eq!(n.port_or_default(), 5061);
    }

    #[test]
    fn cseq_forms() {
        let c: CSeq = "0009\r\n  INVITE".parse().unwrap();
        assert_eq!(
            c,
            CSeq {
                seq: 9,
                method: Method::Invite
            }
        );
        assert!("36893488147419103232 REGISTER".parse::<CSeq>().is_err());
        assert!("1INVITE".parse::<CSeq>().is_err());
        assert!("1 INVITE x".parse::<CSeq>().is_err());
    }

    #[test]
    fn name_addr_forms() {
        let n = NameAddr::parse(
            "\"J Rosenberg \\\\\\\"\"       <sip:jdrosen@example.com>\r\n  ;\r\n  tag = 98asjd8",
        )
        .unwrap();
        assert_eq!(n.display_name.as_deref(), Some("J Rosenberg \\\""));
        assert_eq!(n.tag(), Some("98asjd8"));
        let n = NameAddr::parse("sip:caller@example.net;tag=134161461246").unwrap();
        assert_eq!(n.uri.as_str(), "sip:caller@example.net");
        assert_eq!(n.tag(), Some("134161461246"));
        let n =
            NameAddr::parse("token1~` token2'+_ token3*%!.- <sip:mundane@example.com>;p").unwrap();
        assert_eq!(
            n.display_name.as_deref(),
            Some("token1~` token2'+_ token3*%!.-")
        );
        let n = NameAddr::parse("caller<sip:caller@example.com>;tag=323").unwrap();
        assert_eq!(n.display_name.as_deref(), Some("caller"));
        let n = NameAddr::parse(
            "<sip:a@b>;expires=280297596632815;q=0.7;+sip.instance=\"<urn:uuid:1>\"",
        )
        .unwrap();
        assert_eq!(n.expires(), Some(u32::MAX));
        assert_eq!(n.q(), Some(0.7));
        assert_eq!(n.sip_instance().as_deref(), Some("<urn:uuid:1>"));
        for bad in [
            "\"Mr. J. User <sip:j.user@example.com>",
            "< sip:t.watson@example.org >",
            "Bell, Alexander <sip:a.g.bell@example.com>;tag=43",
            "sip:user@example.com?Route=%3Csip:sip.example.com%3E",
            "\"Joe\" <sip:joe@example.org>;;;;",
        ] {
            assert!(NameAddr::parse(bad).is_err(), "{bad}");
        }
        let shown = NameAddr::parse("\"a\\\"b\" <sip:x@y>;tag=1")
            .unwrap()
            .to_string();
        assert_eq!(shown, "\"a\\\"b\" <sip:x@y>;tag=1");
    }
}
