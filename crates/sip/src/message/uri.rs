//! URIs: SIP and SIPS (RFC 3261 §19.1, §25.1), tel (RFC 3966) and other absolute URIs.
//!
//! A `Uri` keeps its text exactly as received (escapes untouched) plus the positions of its
//! parts, so it prints back unchanged. Comparison with `==` is textual; RFC 3261 §19.1.4
//! equivalence is [`Uri::equivalent`].

use std::fmt;

use crate::parse::ParseError;
use crate::parse::lex::{check_escaped, is_unreserved};

/// The URI scheme families this crate understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Scheme {
    /// `sip:`
    Sip,
    /// `sips:`
    Sips,
    /// `tel:` (RFC 3966)
    Tel,
    /// Any other absolute URI (kept opaque).
    Other,
}

type Span = (u32, u32);

/// A parsed URI (see the module documentation).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Uri {
    text: Box<str>,
    scheme: Scheme,
    /// End of the scheme name (index of `:`).
    colon: u32,
    user: Option<Span>,
    password: Option<Span>,
    host: Span,
    port: Option<u16>,
    /// Text after the first `;` of the parameters, up to `?` or the end.
    params: Option<Span>,
    /// Text after `?`.
    headers: Option<Span>,
}

fn is_user_char(b: u8) -> bool {
    is_unreserved(b) || matches!(b, b'&' | b'=' | b'+' | b'$' | b',' | b';' | b'?' | b'/')
}
fn is_password_char(b: u8) -> bool {
    is_unreserved(b) || matches!(b, b'&' | b'=' | b'+' | b'$' | b',')
}
fn is_param_char(b: u8) -> bool {
    is_unreserved(b)
        || matches!(
            b,
            b'[' | b']' | b'/' | b':' | b'&' | b'+' | b'$' | b'=' | b';'
        )
}
fn is_header_char(b: u8) -> bool {
    is_unreserved(b)
        || matches!(
            b,
            b'[' | b']' | b'/' | b'?' | b':' | b'+' | b'$' | b'=' | b'&'
        )
}
/// Characters of an opaque absolute URI (`uric` plus `#` and `%`).
fn is_uric(b: u8) -> bool {
    is_unreserved(b)
        || matches!(
            b,
            b';' | b'/'
                | b'?'
                | b':'
                | b'@'
                | b'&'
                | b'='
                | b'+'
                | b'$'
                | b','
                | b'%'
                | b'#'
                | b'['
                | b']'
        )
}

/// Checks a host: hostname, IPv4 address or `[IPv6]`; returns false for anything else.
pub(crate) fn valid_host(h: &str) -> bool {
    if let Some(inner) = h.strip_prefix('[') {
        return inner
            .strip_suffix(']')
            .is_some_and(|v6| v6.parse::<std::net::Ipv6Addr>().is_ok());
    }
    !h.is_empty()
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && !h.starts_with(['-', '.'])
}

/// Splits `host[:port]`; the port must be 1–5 digits fitting u16.
pub(crate) fn split_hostport(hp: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if hp.starts_with('[') {
        let end = hp.find(']')?;
        let (h, rest) = hp.split_at(end + 1);
        match rest {
            "" => (h, None),
            r => (h, Some(r.strip_prefix(':')?)),
        }
    } else {
        match hp.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hp, None),
        }
    };
    if !valid_host(host) {
        return None;
    }
    let port = match port {
        None => None,
        Some(p) if !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => {
            Some(p.parse::<u16>().ok()?)
        }
        Some(_) => return None,
    };
    Some((host, port))
}

impl Uri {
    /// Parses a URI (no surrounding whitespace or angle brackets).
    pub fn parse(s: &str) -> Result<Uri, ParseError> {
        Self::parse_inner(s).ok_or(ParseError::InvalidUri { offset: 0 })
    }

    fn parse_inner(s: &str) -> Option<Uri> {
        if s.len() > u32::MAX as usize / 2 {
            return None;
        }
        let colon = s.find(':')?;
        let name = s.get(..colon)?;
        let first = *name.as_bytes().first()?;
        if !first.is_ascii_alphabetic()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
        {
            return None;
        }
        let scheme = if name.eq_ignore_ascii_case("sip") {
            Scheme::Sip
        } else if name.eq_ignore_ascii_case("sips") {
            Scheme::Sips
        } else if name.eq_ignore_ascii_case("tel") {
            Scheme::Tel
        } else {
            Scheme::Other
        };
        let rest_at = colon + 1;
        let rest = s.get(rest_at..)?;
        if rest.is_empty() {
            return None;
        }
        let sp = |a: usize, b: usize| -> Span { ((rest_at + a) as u32, (rest_at + b) as u32) };
        let mut uri = Uri {
            text: s.into(),
            scheme,
            colon: colon as u32,
            user: None,
            password: None,
            host: sp(0, 0),
            port: None,
            params: None,
            headers: None,
        };
        match scheme {
            Scheme::Sip | Scheme::Sips => {
                let mut hp_start = 0;
                if let Some(at) = rest.find('@') {
                    let userinfo = rest.get(..at)?;
                    let (user, pw) = match userinfo.find(':') {
                        Some(c) => (userinfo.get(..c)?, Some((c + 1, userinfo.get(c + 1..)?))),
                        None => (userinfo, None),
                    };
                    if user.is_empty() || !check_escaped(user, is_user_char) {
                        return None;
                    }
                    uri.user = Some(sp(0, user.len()));
                    if let Some((pa, pw)) = pw {
                        if !check_escaped(pw, is_password_char) {
                            return None;
                        }
                        uri.password = Some(sp(pa, pa + pw.len()));
                    }
                    hp_start = at + 1;
                }
                let after = rest.get(hp_start..)?;
                let hp_len = after.find([';', '?']).unwrap_or(after.len());
                let (host, port) = split_hostport(after.get(..hp_len)?)?;
                uri.host = sp(hp_start, hp_start + host.len());
                uri.port = port;
                let tail_at = hp_start + hp_len;
                let tail = rest.get(tail_at..)?;
                let q = tail.find('?').unwrap_or(tail.len());
                let params = tail.get(..q)?;
                if let Some(p) = params.strip_prefix(';') {
                    if !check_escaped(p, is_param_char)
                        || p.split(';').any(|x| x.is_empty() || x.starts_with('='))
                    {
                        return None;
                    }
                    uri.params = Some(sp(tail_at + 1, tail_at + q));
                }
                if let Some(h) = tail.get(q..).and_then(|t| t.strip_prefix('?')) {
                    if h.is_empty() || !check_escaped(h, is_header_char) {
                        return None;
                    }
                    uri.headers = Some(sp(tail_at + q + 1, rest.len()));
                }
            }
            Scheme::Tel => {
                if !check_escaped(rest, is_uric) {
                    return None;
                }
                let semi = rest.find(';').unwrap_or(rest.len());
                if semi == 0 {
                    return None;
                }
                uri.user = Some(sp(0, semi));
                if semi < rest.len() {
                    uri.params = Some(sp(semi + 1, rest.len()));
                }
            }
            Scheme::Other => {
                if !check_escaped(rest, is_uric) {
                    return None;
                }
            }
        }
        Some(uri)
    }

    fn span(&self, s: Span) -> &str {
        self.text.get(s.0 as usize..s.1 as usize).unwrap_or("")
    }

    /// The whole URI as received.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The scheme family.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The scheme name as written (`"sip"`, `"SIPS"`, `"tel"`, ...).
    pub fn scheme_str(&self) -> &str {
        self.text.get(..self.colon as usize).unwrap_or("")
    }

    /// Whether this is a `sip:` or `sips:` URI.
    pub fn is_sip(&self) -> bool {
        matches!(self.scheme, Scheme::Sip | Scheme::Sips)
    }

    /// The user part (still %-escaped); for `tel:` the telephone-subscriber number.
    pub fn user(&self) -> Option<&str> {
        self.user.map(|s| self.span(s))
    }

    /// The password part of the userinfo (deprecated, but part of the grammar).
    pub fn password(&self) -> Option<&str> {
        self.password.map(|s| self.span(s))
    }

    /// The host (`[...]` kept for IPv6); empty for `tel:` and opaque URIs.
    pub fn host(&self) -> &str {
        self.span(self.host)
    }

    /// The explicit port, if any.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// The text after the scheme's colon (opaque part of other schemes).
    pub fn opaque(&self) -> &str {
        self.text.get(self.colon as usize + 1..).unwrap_or("")
    }

    /// URI parameters as `(name, value)` pairs, in order (still %-escaped).
    pub fn params(&self) -> impl Iterator<Item = (&str, Option<&str>)> + '_ {
        let p = self.params.map(|s| self.span(s)).unwrap_or("");
        p.split(';')
            .filter(|x| !x.is_empty())
            .map(|kv| match kv.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (kv, None),
            })
    }

    /// A URI parameter by name (case-insensitive): `Some(None)` for a flag like `lr`.
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        self.params()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// Whether the URI has the given parameter.
    pub fn has_param(&self, name: &str) -> bool {
        self.param(name).is_some()
    }

    /// The `transport` parameter, if any.
    pub fn transport(&self) -> Option<&str> {
        self.param("transport").flatten()
    }

    /// The header part after `?` (still escaped), if any.
    pub fn headers(&self) -> Option<&str> {
        self.headers.map(|s| self.span(s))
    }

    /// The URI with its header part (`?...`) removed.
    pub fn without_headers(&self) -> Uri {
        match self.headers {
            // invariant: removing a well-formed `?headers` suffix leaves a valid URI
            Some((a, _)) => Uri::parse_inner(self.text.get(..a as usize - 1).unwrap_or(&self.text))
                .unwrap_or_else(|| self.clone()),
            None => self.clone(),
        }
    }

    /// RFC 3261 §19.1.4 comparison for SIP/SIPS URIs (scheme, user and password case-sensitive
    /// after unescaping, host case-insensitive, same port, `user`/`ttl`/`method`/`maddr`/
    /// `transport` compared when either side has them, other parameters when both have them,
    /// header parts equal as sets). Other schemes compare textually, ignoring scheme case.
    pub fn equivalent(&self, other: &Uri) -> bool {
        if self.scheme != other.scheme {
            return false;
        }
        if !self.is_sip() {
            return self.scheme_str().eq_ignore_ascii_case(other.scheme_str())
                && self.opaque() == other.opaque();
        }
        let unesc = |s: Option<&str>| s.map(unescape);
        if unesc(self.user()) != unesc(other.user())
            || unesc(self.password()) != unesc(other.password())
            || !self.host().eq_ignore_ascii_case(other.host())
            || self.port != other.port
        {
            return false;
        }
        for name in ["user", "ttl", "method", "maddr", "transport"] {
            let a = self
                .param(name)
                .map(|v| v.map(|x| unescape(x).to_ascii_lowercase()));
            let b = other
                .param(name)
                .map(|v| v.map(|x| unescape(x).to_ascii_lowercase()));
            if a != b {
                return false;
            }
        }
        for (k, v) in self.params() {
            if let Some(ov) = other.param(k) {
                let a = v.map(|x| unescape(x).to_ascii_lowercase());
                let b = ov.map(|x| unescape(x).to_ascii_lowercase());
                if a != b {
                    return false;
                }
            }
        }
        let hs = |u: &Uri| {
            let mut v: Vec<(String, String)> = u
                .headers()
                .unwrap_or("")
                .split('&')
                .filter(|x| !x.is_empty())
                .map(|kv| {
                    let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                    (unescape(k).to_ascii_lowercase(), unescape(v))
                })
                .collect();
            v.sort();
            v
        };
        hs(self) == hs(other)
    }
}

/// Decodes `%HH` escapes (invalid escapes are kept as written); non-UTF-8 results are lossy.
pub fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%'
            && let (Some(h), Some(l)) = (b.get(i + 1), b.get(i + 2))
            && let (Some(h), Some(l)) = ((*h as char).to_digit(16), (*l as char).to_digit(16))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(c);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl std::str::FromStr for Uri {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uri::parse(s)
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sip_parts() {
        let u =
            Uri::parse("sip:alice:pw@[2001:db8::1]:5061;transport=tls;lr?Subject=hi&X=1").unwrap();
        assert_eq!(u.scheme(), Scheme::Sip);
        assert_eq!(u.user(), Some("alice"));
        assert_eq!(u.password(), Some("pw"));
        assert_eq!(u.host(), "[2001:db8::1]");
        assert_eq!(u.port(), Some(5061));
        assert_eq!(u.transport(), Some("tls"));
        assert_eq!(u.param("LR"), Some(None));
        assert_eq!(u.headers(), Some("Subject=hi&X=1"));
        assert_eq!(
            u.without_headers().as_str(),
            "sip:alice:pw@[2001:db8::1]:5061;transport=tls;lr"
        );
        assert_eq!(
            u.to_string(),
            "sip:alice:pw@[2001:db8::1]:5061;transport=tls;lr?Subject=hi&X=1"
        );
    }

    #[test]
    fn odd_but_valid() {
        let u = Uri::parse("sip:user;par=u%40example.net@example.com").unwrap();
        assert_eq!(u.user(), Some("user;par=u%40example.net"));
        assert_eq!(u.host(), "example.com");
        let t = Uri::parse("tel:+1-201-555-0123;phone-context=example.com").unwrap();
        assert_eq!(t.scheme(), Scheme::Tel);
        assert_eq!(t.user(), Some("+1-201-555-0123"));
        assert_eq!(t.param("phone-context"), Some(Some("example.com")));
        let o = Uri::parse("nobodyKnowsThisScheme:totallyopaquecontent").unwrap();
        assert_eq!(o.scheme(), Scheme::Other);
        assert_eq!(o.opaque(), "totallyopaquecontent");
    }

    #[test]
    fn rejects() {
        for bad in [
            "<sip:a@b>",
            "sip:a@b c",
            "sip:",
            "sip:a@",
            "sip:a@b:99999",
            "sip:a@b:",
            "sip:%zz@b",
            "1sip:x",
            "sip:a@[::1",
            "sip:a@b;",
            "sip:a@b?",
        ] {
            assert!(Uri::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn equivalence() {
        let a = Uri::parse("sip:%61lice@atlanta.com;transport=TCP").unwrap();
        let b = Uri::parse("sip:alice@AtLanTa.CoM;Transport=tcp").unwrap();
        assert!(a.equivalent(&b));
        let c = Uri::parse("sip:alice@atlanta.com").unwrap();
        assert!(!a.equivalent(&c));
        let d = Uri::parse("sip:ALICE@atlanta.com").unwrap();
        assert!(!c.equivalent(&d));
        let e = Uri::parse("sip:bob@biloxi.com:5060").unwrap();
        let f = Uri::parse("sip:bob@biloxi.com").unwrap();
        assert!(!e.equivalent(&f));
    }
}
