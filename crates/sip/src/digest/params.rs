//! `Digest` challenges and credentials: parsing and printing (RFC 7616 §3.3, §3.4;
//! RFC 3261 §25.1 for quoted strings and LWS).

use super::{Algorithm, DigestError, Qop};
use core::fmt;

/// A `Digest` challenge from `WWW-Authenticate` or `Proxy-Authenticate` (RFC 7616 §3.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The protection space (`realm`).
    pub realm: String,
    /// The server nonce.
    pub nonce: String,
    /// Opaque data the client echoes back unchanged.
    pub opaque: Option<String>,
    /// `stale=true`: the previous request had a right response with an expired nonce.
    pub stale: bool,
    /// The algorithm (`MD5` when the parameter is absent).
    pub algorithm: Algorithm,
    /// Whether the `algorithm` parameter was present (kept for faithful printing).
    pub algorithm_explicit: bool,
    /// The qop values offered; empty means RFC 2069 compatibility (no qop).
    pub qop: Vec<Qop>,
    /// The `domain` parameter, unparsed.
    pub domain: Option<String>,
}

impl Challenge {
    /// A challenge with the given realm, nonce and algorithm, offering `qop="auth"`.
    pub fn new(realm: impl Into<String>, nonce: impl Into<String>, algorithm: Algorithm) -> Self {
        Challenge {
            realm: realm.into(),
            nonce: nonce.into(),
            opaque: None,
            stale: false,
            algorithm,
            algorithm_explicit: true,
            qop: vec![Qop::Auth],
            domain: None,
        }
    }

    /// Parses one `Digest` challenge (the whole header value).
    ///
    /// Errors: [`DigestError::NotDigest`] for another scheme,
    /// [`DigestError::UnknownAlgorithm`] for an algorithm we do not offer, and syntax errors.
    pub fn parse(value: &str) -> Result<Self, DigestError> {
        let mut items = split_challenges(value)?;
        match (items.len(), items.pop()) {
            (1, Some((scheme, params))) if scheme.eq_ignore_ascii_case("Digest") => {
                Self::from_params(&params)
            }
            (1, Some(_)) => Err(DigestError::NotDigest),
            _ => Err(DigestError::Malformed { offset: 0 }),
        }
    }

    fn from_params(params: &[(String, String)]) -> Result<Self, DigestError> {
        let p = Params::collect(params)?;
        let algorithm = match p.algorithm {
            None => Algorithm::Md5,
            Some(a) => Algorithm::from_name(a).ok_or(DigestError::UnknownAlgorithm)?,
        };
        let qop = match p.qop {
            None => Vec::new(),
            // Unknown qop tokens are ignored (RFC 7616 §3.3: "MUST ignore unrecognized").
            Some(list) => list
                .split(',')
                .filter_map(|q| Qop::from_name(q.trim()))
                .collect(),
        };
        let stale = match p.stale {
            None => false,
            Some(s) if s.eq_ignore_ascii_case("true") => true,
            Some(s) if s.eq_ignore_ascii_case("false") => false,
            Some(_) => return Err(DigestError::InvalidParam("stale")),
        };
        Ok(Challenge {
            realm: p
                .realm
                .ok_or(DigestError::MissingParam("realm"))?
                .to_owned(),
            nonce: p
                .nonce
                .ok_or(DigestError::MissingParam("nonce"))?
                .to_owned(),
            opaque: p.opaque.map(str::to_owned),
            stale,
            algorithm,
            algorithm_explicit: p.algorithm.is_some(),
            qop,
            domain: p.domain.map(str::to_owned),
        })
    }
}

/// Parses every `Digest` challenge in one header value (several may be comma-separated, and
/// other schemes may be mixed in). Challenges of other schemes or with algorithms we do not
/// offer are skipped; a syntax error in a `Digest` challenge fails the whole value.
pub fn parse_challenges(value: &str) -> Result<Vec<Challenge>, DigestError> {
    let mut out = Vec::new();
    for (scheme, params) in split_challenges(value)? {
        if !scheme.eq_ignore_ascii_case("Digest") {
            continue;
        }
        match Challenge::from_params(&params) {
            Ok(c) => out.push(c),
            Err(DigestError::UnknownAlgorithm) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

impl fmt::Display for Challenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest realm=")?;
        write_quoted(f, &self.realm)?;
        if let Some(d) = &self.domain {
            f.write_str(", domain=")?;
            write_quoted(f, d)?;
        }
        f.write_str(", nonce=")?;
        write_quoted(f, &self.nonce)?;
        if let Some(o) = &self.opaque {
            f.write_str(", opaque=")?;
            write_quoted(f, o)?;
        }
        if self.stale {
            f.write_str(", stale=true")?;
        }
        if self.algorithm_explicit {
            write!(f, ", algorithm={}", self.algorithm)?;
        }
        if !self.qop.is_empty() {
            f.write_str(", qop=\"")?;
            for (i, q) in self.qop.iter().enumerate() {
                if i > 0 {
                    f.write_str(",")?;
                }
                f.write_str(q.name())?;
            }
            f.write_str("\"")?;
        }
        Ok(())
    }
}

/// `Digest` credentials from `Authorization` or `Proxy-Authorization` (RFC 7616 §3.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub username: String,
    /// The realm being answered.
    pub realm: String,
    /// The server nonce being answered.
    pub nonce: String,
    /// The `uri` parameter (should be the Request-URI).
    pub uri: String,
    /// The response, lower-case hex.
    pub response: String,
    /// The algorithm (`MD5` when absent).
    pub algorithm: Algorithm,
    /// Whether the `algorithm` parameter was present.
    pub algorithm_explicit: bool,
    /// The client nonce (required with a qop).
    pub cnonce: Option<String>,
    /// Opaque value echoed from the challenge.
    pub opaque: Option<String>,
    /// The qop chosen; `None` for RFC 2069 compatibility.
    pub qop: Option<Qop>,
    /// The nonce count (required with a qop).
    pub nc: Option<u32>,
}

impl Credentials {
    /// Parses `Digest` credentials (the whole header value).
    ///
    /// Errors: [`DigestError::NotDigest`], [`DigestError::UnknownAlgorithm`], missing or
    /// invalid parameters (with a qop, `cnonce` and `nc` are required; `nc` is 8 hex digits).
    pub fn parse(value: &str) -> Result<Self, DigestError> {
        let mut items = split_challenges(value)?;
        let params = match (items.len(), items.pop()) {
            (1, Some((scheme, params))) if scheme.eq_ignore_ascii_case("Digest") => params,
            (1, Some(_)) => return Err(DigestError::NotDigest),
            _ => return Err(DigestError::Malformed { offset: 0 }),
        };
        let p = Params::collect(&params)?;
        let algorithm = match p.algorithm {
            None => Algorithm::Md5,
            Some(a) => Algorithm::from_name(a).ok_or(DigestError::UnknownAlgorithm)?,
        };
        let qop = match p.qop {
            None => None,
            Some(q) => Some(Qop::from_name(q.trim()).ok_or(DigestError::InvalidParam("qop"))?),
        };
        let nc = match p.nc {
            None => None,
            Some(s) => {
                let mut b = [0u8; 4];
                if !super::hex_decode(s, &mut b) {
                    return Err(DigestError::InvalidParam("nc"));
                }
                Some(u32::from_be_bytes(b))
            }
        };
        if qop.is_some() {
            if p.cnonce.is_none() {
                return Err(DigestError::MissingParam("cnonce"));
            }
            if nc.is_none() {
                return Err(DigestError::MissingParam("nc"));
            }
        }
        Ok(Credentials {
            username: p
                .username
                .ok_or(DigestError::MissingParam("username"))?
                .to_owned(),
            realm: p
                .realm
                .ok_or(DigestError::MissingParam("realm"))?
                .to_owned(),
            nonce: p
                .nonce
                .ok_or(DigestError::MissingParam("nonce"))?
                .to_owned(),
            uri: p.uri.ok_or(DigestError::MissingParam("uri"))?.to_owned(),
            response: p
                .response
                .ok_or(DigestError::MissingParam("response"))?
                .to_ascii_lowercase(),
            algorithm,
            algorithm_explicit: p.algorithm.is_some(),
            cnonce: p.cnonce.map(str::to_owned),
            opaque: p.opaque.map(str::to_owned),
            qop,
            nc,
        })
    }
}

impl fmt::Display for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Digest username=")?;
        write_quoted(f, &self.username)?;
        f.write_str(", realm=")?;
        write_quoted(f, &self.realm)?;
        f.write_str(", nonce=")?;
        write_quoted(f, &self.nonce)?;
        f.write_str(", uri=")?;
        write_quoted(f, &self.uri)?;
        f.write_str(", response=")?;
        write_quoted(f, &self.response)?;
        if self.algorithm_explicit {
            write!(f, ", algorithm={}", self.algorithm)?;
        }
        if let Some(c) = &self.cnonce {
            f.write_str(", cnonce=")?;
            write_quoted(f, c)?;
        }
        if let Some(o) = &self.opaque {
            f.write_str(", opaque=")?;
            write_quoted(f, o)?;
        }
        if let Some(q) = self.qop {
            write!(f, ", qop={}", q.name())?;
        }
        if let Some(nc) = self.nc {
            write!(f, ", nc={nc:08x}")?;
        }
        Ok(())
    }
}

/// Writes `s` as a quoted-string, escaping `"` and `\` (RFC 3261 §25.1 quoted-pair).
/// CR and LF cannot appear in a quoted-string and are dropped.
fn write_quoted(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_str("\"")?;
    for c in s.chars() {
        match c {
            '"' | '\\' => write!(f, "\\{c}")?,
            '\r' | '\n' => {}
            c => write!(f, "{c}")?,
        }
    }
    f.write_str("\"")
}

/// The known parameters of a challenge or credentials, borrowed from the parsed list.
#[derive(Default)]
struct Params<'a> {
    realm: Option<&'a str>,
    nonce: Option<&'a str>,
    opaque: Option<&'a str>,
    stale: Option<&'a str>,
    algorithm: Option<&'a str>,
    qop: Option<&'a str>,
    domain: Option<&'a str>,
    username: Option<&'a str>,
    uri: Option<&'a str>,
    response: Option<&'a str>,
    cnonce: Option<&'a str>,
    nc: Option<&'a str>,
}

impl<'a> Params<'a> {
    fn collect(list: &'a [(String, String)]) -> Result<Self, DigestError> {
        let mut p = Params::default();
        for (name, value) in list {
            let (slot, label) = match name.to_ascii_lowercase().as_str() {
                "realm" => (&mut p.realm, "realm"),
                "nonce" => (&mut p.nonce, "nonce"),
                "opaque" => (&mut p.opaque, "opaque"),
                "stale" => (&mut p.stale, "stale"),
                "algorithm" => (&mut p.algorithm, "algorithm"),
                "qop" => (&mut p.qop, "qop"),
                "domain" => (&mut p.domain, "domain"),
                "username" => (&mut p.username, "username"),
                "uri" => (&mut p.uri, "uri"),
                "response" => (&mut p.response, "response"),
                "cnonce" => (&mut p.cnonce, "cnonce"),
                "nc" => (&mut p.nc, "nc"),
                _ => continue, // unknown parameters are ignored (RFC 7616 §3.3, §3.4)
            };
            if slot.is_some() {
                return Err(DigestError::DuplicateParam(label));
            }
            *slot = Some(value.as_str());
        }
        Ok(p)
    }
}

/// One scheme and its parameters, in order.
type SchemeParams = (String, Vec<(String, String)>);

/// Splits a header value into `(scheme, [(name, value)])` items.
///
/// Grammar (RFC 7235 §2.1 / RFC 3261 §25.1, lenient in whitespace): items separated by
/// commas; an item is either `name = value` (an auth-param of the current scheme) or a scheme
/// token starting a new challenge (optionally followed directly by its first auth-param or a
/// token68). Values are tokens or quoted strings with `\` escapes. LWS includes CR/LF.
fn split_challenges(value: &str) -> Result<Vec<SchemeParams>, DigestError> {
    let mut c = Cursor { s: value, pos: 0 };
    let mut out: Vec<SchemeParams> = Vec::new();
    loop {
        c.skip_ws_and_commas();
        if c.at_end() {
            break;
        }
        let start = c.pos;
        let tok = c.token();
        if tok.is_empty() {
            return Err(DigestError::Malformed { offset: c.pos });
        }
        c.skip_ws();
        if c.peek() == Some(b'=') {
            // A parameter of the current scheme (or a token68 like "abc==").
            c.pos += 1;
            c.skip_ws();
            let in_digest = out
                .last()
                .is_some_and(|(s, _)| s.eq_ignore_ascii_case("Digest"));
            match c.peek() {
                Some(b'"') => {
                    let v = c.quoted()?;
                    if let Some((_, params)) = out.last_mut() {
                        params.push((tok.to_owned(), v));
                    } else {
                        return Err(DigestError::Malformed { offset: start });
                    }
                }
                _ => {
                    let v = c.token();
                    if let Some((_, params)) = out.last_mut() {
                        if v.is_empty() && in_digest {
                            return Err(DigestError::Malformed { offset: c.pos });
                        }
                        params.push((tok.to_owned(), v.to_owned()));
                    } else {
                        return Err(DigestError::Malformed { offset: start });
                    }
                    // token68 padding ("abc==") of a foreign scheme.
                    while !in_digest && c.peek() == Some(b'=') {
                        c.pos += 1;
                    }
                }
            }
            c.skip_ws();
            match c.peek() {
                None | Some(b',') => {}
                Some(_) if !in_digest => c.skip_to_comma(),
                Some(_) => return Err(DigestError::Malformed { offset: c.pos }),
            }
        } else {
            // A new scheme.
            out.push((tok.to_owned(), Vec::new()));
        }
    }
    Ok(out)
}

struct Cursor<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }
    fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }
    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            self.pos += 1;
        }
    }
    fn skip_ws_and_commas(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\r' | b'\n' | b',')) {
            self.pos += 1;
        }
    }
    fn skip_to_comma(&mut self) {
        while !matches!(self.peek(), None | Some(b',')) {
            self.pos += 1;
        }
    }
    /// A token: RFC 3261 token characters plus `/` and `:` seen in unquoted values in the wild.
    fn token(&mut self) -> &'a str {
        let start = self.pos;
        while let Some(b) = self.peek() {
            let ok = b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'-' | b'.'
                        | b'!'
                        | b'%'
                        | b'*'
                        | b'_'
                        | b'+'
                        | b'`'
                        | b'\''
                        | b'~'
                        | b'/'
                        | b':'
                );
            if !ok {
                break;
            }
            self.pos += 1;
        }
        self.s.get(start..self.pos).unwrap_or("")
    }
    /// A quoted-string starting at the current `"`; returns the unescaped content.
    fn quoted(&mut self) -> Result<String, DigestError> {
        let open = self.pos;
        self.pos += 1;
        let mut v = String::new();
        let rest = self.s.get(self.pos..).unwrap_or("");
        let mut chars = rest.char_indices();
        while let Some((i, ch)) = chars.next() {
            match ch {
                '"' => {
                    self.pos += i + 1;
                    return Ok(v);
                }
                '\\' => match chars.next() {
                    Some((_, e)) if e != '\r' && e != '\n' => v.push(e),
                    _ => {
                        return Err(DigestError::Malformed {
                            offset: self.pos + i,
                        });
                    }
                },
                // qdtext excludes CR and LF except in a line fold (LWS = CRLF 1*WSP), which
                // reads as one SP (RFC 3261 §7.3.1, §25.1); a bare CR or LF is malformed.
                '\r' if rest
                    .get(i + 1..)
                    .is_some_and(|r| r.starts_with("\n ") || r.starts_with("\n\t")) =>
                {
                    chars.next(); // the LF
                    v.push(' ');
                }
                '\r' | '\n' => {
                    return Err(DigestError::Malformed {
                        offset: self.pos + i,
                    });
                }
                c => v.push(c),
            }
        }
        Err(DigestError::Malformed { offset: open })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_escapes_round_trip() {
        let mut c = Challenge::new(r#"a "b" \c"#, "n", Algorithm::Sha256);
        c.opaque = Some("x,y=z".into());
        let s = c.to_string();
        assert_eq!(Challenge::parse(&s), Ok(c));
    }

    #[test]
    fn names_case_insensitive_and_unknown_ignored() {
        let c = Challenge::parse(
            "digest REALM=\"r\", Nonce=\"n\", ALGORITHM=sha-256, foo=bar, qop=\"auth,auth-int,x\"",
        )
        .expect("parses");
        assert_eq!(c.realm, "r");
        assert_eq!(c.algorithm, Algorithm::Sha256);
        assert_eq!(c.qop, vec![Qop::Auth, Qop::AuthInt]);
    }

    #[test]
    fn several_challenges_and_foreign_schemes() {
        let v = "Basic realm=\"x\", Digest realm=\"a\", nonce=\"1\", algorithm=SHA-256, \
                 Bearer abc==, Digest realm=\"a\", nonce=\"2\", algorithm=SHA-512-256, \
                 Digest realm=\"a\", nonce=\"3\"";
        let all = parse_challenges(v).expect("parses");
        let nonces: Vec<&str> = all.iter().map(|c| c.nonce.as_str()).collect();
        assert_eq!(nonces, ["1", "3"]);
        assert_eq!(all.get(1).map(|c| c.algorithm), Some(Algorithm::Md5));
    }

    #[test]
    fn malformed_inputs_are_errors_not_panics() {
        for bad in [
            "",
            "Digest realm=\"unterminated",
            "Digest realm=\"a\\",
            "Digest =x",
            "Digest realm=",
            "Digest realm=\"a\" nonce=\"b\"",
            "realm=\"a\"",
            "Digest realm=\"a\", realm=\"b\", nonce=\"n\"",
            "Digest nonce=\"n\"",
            "Digest realm=\"é\", nonce=\"\u{1F600}\", stale=maybe",
        ] {
            assert!(Challenge::parse(bad).is_err(), "{bad:?}");
            assert!(Credentials::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            Challenge::parse("Basic realm=\"a\""),
            Err(DigestError::NotDigest)
        );
    }

    #[test]
    fn credentials_require_nc_and_cnonce_with_qop() {
        let base =
            "Digest username=\"u\", realm=\"r\", nonce=\"n\", uri=\"sip:a\", response=\"00\"";
        assert!(Credentials::parse(base).is_ok());
        assert_eq!(
            Credentials::parse(&format!("{base}, qop=auth, nc=00000001")),
            Err(DigestError::MissingParam("cnonce"))
        );
        assert_eq!(
            Credentials::parse(&format!("{base}, qop=auth, cnonce=\"c\", nc=1")),
            Err(DigestError::InvalidParam("nc"))
        );
        let ok = Credentials::parse(&format!("{base}, qop=auth, cnonce=\"c\", nc=0000001F"))
            .expect("parses");
        assert_eq!(ok.nc, Some(31));
        assert_eq!(Credentials::parse(&ok.to_string()), Ok(ok));
    }
}
