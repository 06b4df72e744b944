//! Lexical helpers shared by the parser and the typed headers (RFC 3261 §25.1).
//!
//! Header values are kept raw, so a folded value still holds `CRLF SP`; everywhere LWS is
//! allowed these helpers treat SP, HTAB, CR and LF as whitespace.

/// `token` characters (RFC 3261 §25.1).
pub(crate) fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
        )
}

/// Whitespace inside a raw header value (LWS incl. the CRLF of a fold).
pub(crate) fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// `unreserved` (alphanum / mark).
pub(crate) fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'_' | b'.' | b'!' | b'~' | b'*' | b'\'' | b'(' | b')'
        )
}

/// Checks `%HH` escapes and that every other byte satisfies `ok`.
pub(crate) fn check_escaped(s: &str, ok: impl Fn(u8) -> bool) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%' {
            match (b.get(i + 1), b.get(i + 2)) {
                (Some(h), Some(l)) if h.is_ascii_hexdigit() && l.is_ascii_hexdigit() => i += 3,
                _ => return false,
            }
        } else if ok(c) {
            i += 1;
        } else {
            return false;
        }
    }
    true
}

/// Splits a comma-separated list, ignoring commas inside quoted strings and `<...>`.
pub(crate) fn split_commas<'a>(v: &'a str, out: &mut Vec<&'a str>) {
    let b = v.as_bytes();
    let mut start = 0;
    let mut quoted = false;
    let mut angle = false;
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if quoted {
            match c {
                b'\\' => i += 1,
                b'"' => quoted = false,
                _ => {}
            }
        } else {
            match c {
                b'"' => quoted = true,
                b'<' => angle = true,
                b'>' => angle = false,
                b',' if !angle => {
                    push_trimmed(v, start, i, out);
                    start = i + 1;
                }
                _ => {}
            }
        }
        i += 1;
    }
    push_trimmed(v, start, v.len(), out);
}

fn push_trimmed<'a>(v: &'a str, a: usize, b: usize, out: &mut Vec<&'a str>) {
    if let Some(s) = v.get(a..b) {
        let t = trim_ws(s);
        if !t.is_empty() {
            out.push(t);
        }
    }
}

/// Trims LWS (including fold CRLFs) from both ends.
pub(crate) fn trim_ws(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_ascii() && is_ws(c as u8))
}

/// A cursor over a raw header value.
#[derive(Clone, Debug)]
pub(crate) struct Cursor<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(s: &'a str) -> Cursor<'a> {
        Cursor { s, pos: 0 }
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }

    pub(crate) fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }

    pub(crate) fn rest(&self) -> &'a str {
        self.s.get(self.pos..).unwrap_or("")
    }

    pub(crate) fn skip_ws(&mut self) {
        while self.peek().is_some_and(is_ws) {
            self.pos += 1;
        }
    }

    /// Consumes `c` (after optional whitespace) if it is next.
    pub(crate) fn eat(&mut self, c: u8) -> bool {
        let save = self.pos;
        self.skip_ws();
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            self.pos = save;
            false
        }
    }

    /// Takes the longest run of bytes satisfying `f` (possibly empty).
    pub(crate) fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(&f) {
            self.pos += 1;
        }
        self.s.get(start..self.pos).unwrap_or("")
    }

    /// A non-empty token, after optional whitespace.
    pub(crate) fn token(&mut self) -> Option<&'a str> {
        self.skip_ws();
        let t = self.take_while(is_token);
        (!t.is_empty()).then_some(t)
    }

    /// A quoted string (the cursor is on the opening quote); returns it with its quotes.
    /// Quoted-pairs may escape any octet except CR and LF (RFC 3261 §25.1).
    pub(crate) fn quoted(&mut self) -> Option<&'a str> {
        let b = self.s.as_bytes();
        let start = self.pos;
        if b.get(start) != Some(&b'"') {
            return None;
        }
        let mut i = start + 1;
        loop {
            match b.get(i)? {
                b'"' => {
                    self.pos = i + 1;
                    return self.s.get(start..self.pos);
                }
                b'\\' => match b.get(i + 1)? {
                    b'\r' | b'\n' => return None,
                    _ => i += 2,
                },
                // a bare CR/LF may only appear as part of a fold
                b'\r' => {
                    if b.get(i + 1) == Some(&b'\n')
                        && b.get(i + 2).is_some_and(|c| *c == b' ' || *c == b'\t')
                    {
                        i += 3;
                    } else {
                        return None;
                    }
                }
                b'\n' => return None,
                _ => i += 1,
            }
        }
    }

    /// Takes bytes up to (not including) `c`; the cursor ends on `c`. None if `c` is absent.
    pub(crate) fn until(&mut self, c: u8) -> Option<&'a str> {
        let rest = self.rest();
        let at = memchr::memchr(c, rest.as_bytes())?;
        self.pos += at;
        rest.get(..at)
    }
}

/// Removes the quotes and quoted-pair backslashes of a quoted string.
pub(crate) fn unquote(q: &str) -> String {
    let inner = q
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(q);
    let mut out = String::with_capacity(inner.len());
    let mut esc = false;
    for c in inner.chars() {
        if esc {
            out.push(c);
            esc = false;
        } else if c == '\\' {
            esc = true;
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_strings() {
        let mut c = Cursor::new(r#""a \"b\" c" rest"#);
        assert_eq!(c.quoted(), Some(r#""a \"b\" c""#));
        assert_eq!(c.rest(), " rest");
        assert_eq!(Cursor::new("\"open").quoted(), None);
        assert_eq!(unquote(r#""J Rosenberg \\\"""#), "J Rosenberg \\\"");
    }

    #[test]
    fn escapes() {
        assert!(check_escaped("a%41b", is_unreserved));
        assert!(!check_escaped("a%4", is_unreserved));
        assert!(!check_escaped("a%ZZ", is_unreserved));
        assert!(!check_escaped("a b", is_unreserved));
    }
}
