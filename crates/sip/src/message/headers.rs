//! The header section: an order-keeping list of raw `name: value` fields (RFC 3261 §7.3).
//!
//! Parsed headers are spans into the received header text and are written back byte for byte
//! (folding, compact names and spacing included). Added or replaced headers are owned strings.
//! Values are given as they appear between the colon and the line end, trimmed; a folded
//! value keeps its `CRLF SP` inside (the typed accessors treat it as whitespace).

use std::sync::Arc;

use super::name::{HeaderName, Key, Std};

#[derive(Clone, Debug)]
enum Field {
    /// Byte range into `Headers::src`.
    Span(u32, u32),
    Owned(Box<str>),
}

#[derive(Clone, Debug)]
struct Entry {
    std: Option<Std>,
    name: Field,
    value: Field,
    /// The whole original line (name to end of value, no CRLF), for byte-exact output.
    line: Option<(u32, u32)>,
}

/// The header fields of a message, in order. Lookups are case-insensitive and accept long or
/// compact names (`get("v")` finds `Via:` lines and `get("Via")` finds `v:` lines).
#[derive(Clone, Debug, Default)]
pub struct Headers {
    src: Arc<str>,
    entries: Vec<Entry>,
}

fn span(src: &str, a: u32, b: u32) -> &str {
    src.get(a as usize..b as usize).unwrap_or("")
}

impl Headers {
    /// An empty header list.
    pub fn new() -> Headers {
        Headers::default()
    }

    /// Starts a header list over `src`, the received header text (parser use).
    pub(crate) fn with_source(src: Arc<str>, capacity: usize) -> Headers {
        Headers {
            src,
            entries: Vec::with_capacity(capacity),
        }
    }

    /// Appends a parsed header given as spans into the source text (parser use).
    pub(crate) fn push_span(
        &mut self,
        std: Option<Std>,
        name: (u32, u32),
        value: (u32, u32),
        line: (u32, u32),
    ) {
        self.entries.push(Entry {
            std,
            name: Field::Span(name.0, name.1),
            value: Field::Span(value.0, value.1),
            line: Some(line),
        });
    }

    fn text<'a>(&'a self, f: &'a Field) -> &'a str {
        match f {
            Field::Span(a, b) => span(&self.src, *a, *b),
            Field::Owned(s) => s,
        }
    }

    fn matches(e: &Entry, key: Key<'_>, src: &str) -> bool {
        match key {
            Key::Std(s) => e.std == Some(s),
            Key::Other(n) => {
                e.std.is_none()
                    && match &e.name {
                        Field::Span(a, b) => span(src, *a, *b).eq_ignore_ascii_case(n),
                        Field::Owned(o) => o.eq_ignore_ascii_case(n),
                    }
            }
        }
    }

    /// Number of header fields (lines, after unfolding).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there is no header field.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// All fields in order as `(name as written, value)`.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.entries
            .iter()
            .map(move |e| (self.text(&e.name), self.text(&e.value)))
    }

    /// All fields in order as `(resolved name, value)`.
    pub fn iter_named(&self) -> impl Iterator<Item = (HeaderName, &str)> + '_ {
        self.iter().map(|(n, v)| (HeaderName::new(n), v))
    }

    /// The value of the first field called `name` (long or compact form, any case).
    pub fn get(&self, name: impl AsRef<str>) -> Option<&str> {
        let key = Key::of(name.as_ref());
        self.get_key(key)
    }

    pub(crate) fn get_key(&self, key: Key<'_>) -> Option<&str> {
        self.entries
            .iter()
            .find(|e| Self::matches(e, key, &self.src))
            .map(|e| self.text(&e.value))
    }

    pub(crate) fn get_all_std(&self, s: Std) -> impl Iterator<Item = &str> + '_ {
        self.entries
            .iter()
            .filter(move |e| e.std == Some(s))
            .map(move |e| self.text(&e.value))
    }

    /// The values of every field called `name`, in order (one item per header line; a line
    /// may itself hold a comma-separated list, see [`Headers::list`]).
    pub fn get_all(&self, name: impl AsRef<str>) -> impl Iterator<Item = &str> + '_ {
        let owned = HeaderName::new(name.as_ref());
        self.entries
            .iter()
            .filter(move |e| match owned.std() {
                Some(s) => Self::matches(e, Key::Std(s), &self.src),
                None => Self::matches(e, Key::Other(owned.as_str()), &self.src),
            })
            .map(move |e| self.text(&e.value))
    }

    /// The elements of a comma-separated list header across all its lines (`Allow`,
    /// `Supported`, `Require`, `Accept`, ...). Commas inside quoted strings and `<...>` do not
    /// split; elements are trimmed and empty ones dropped.
    pub fn list(&self, name: impl AsRef<str>) -> Vec<&str> {
        let mut out = Vec::new();
        for v in self.get_all(name) {
            crate::parse::lex::split_commas(v, &mut out);
        }
        out
    }

    /// How many fields are called `name`.
    pub fn count(&self, name: impl AsRef<str>) -> usize {
        self.get_all(name).count()
    }

    /// Whether a field called `name` exists.
    pub fn contains(&self, name: impl AsRef<str>) -> bool {
        self.get(name).is_some()
    }

    fn owned(name: &str, value: String) -> Entry {
        Entry {
            std: Std::lookup(name.as_bytes()),
            name: Field::Owned(name.into()),
            value: Field::Owned(value.into_boxed_str()),
            line: None,
        }
    }

    /// Appends a field at the end. `value` is written as given; it must not contain CR or LF
    /// (use [`Headers::try_push`] to check).
    pub fn push(&mut self, name: impl AsRef<str>, value: impl Into<String>) {
        let e = Self::owned(name.as_ref(), sanitize(value.into()));
        self.entries.push(e);
    }

    /// Like [`Headers::push`] but refuses a name that is not a token or a value holding CR/LF.
    pub fn try_push(&mut self, name: &str, value: &str) -> Result<(), crate::parse::ParseError> {
        check_field(name, value)?;
        self.entries.push(Self::owned(name, value.to_owned()));
        Ok(())
    }

    /// Inserts a field before the first field of the same name (or at the very top if there
    /// is none): how a proxy prepends Via and Record-Route.
    pub fn insert_first(&mut self, name: impl AsRef<str>, value: impl Into<String>) {
        let name = name.as_ref();
        let key = Key::of(name);
        let at = self
            .entries
            .iter()
            .position(|e| Self::matches(e, key, &self.src))
            .unwrap_or(0);
        let e = Self::owned(name, sanitize(value.into()));
        self.entries.insert(at, e);
    }

    /// Removes every field called `name`; returns how many were removed.
    pub fn remove(&mut self, name: impl AsRef<str>) -> usize {
        let key = Key::of(name.as_ref());
        let before = self.entries.len();
        let src = Arc::clone(&self.src);
        self.entries.retain(|e| !Self::matches(e, key, &src));
        before - self.entries.len()
    }

    /// Removes the first field called `name` (a whole line), returning its value.
    pub fn remove_first(&mut self, name: impl AsRef<str>) -> Option<String> {
        let key = Key::of(name.as_ref());
        let at = self
            .entries
            .iter()
            .position(|e| Self::matches(e, key, &self.src))?;
        let e = self.entries.remove(at);
        Some(self.text(&e.value).to_owned())
    }

    /// Sets the value of the first field called `name` and removes the others; appends the
    /// field if there was none.
    pub fn set(&mut self, name: impl AsRef<str>, value: impl Into<String>) {
        let name = name.as_ref();
        let key = Key::of(name);
        let value = sanitize(value.into());
        match self
            .entries
            .iter()
            .position(|e| Self::matches(e, key, &self.src))
        {
            Some(at) => {
                let src = Arc::clone(&self.src);
                let mut i = 0;
                self.entries.retain(|e| {
                    let keep = i <= at || !Self::matches(e, key, &src);
                    i += 1;
                    keep
                });
                if let Some(e) = self.entries.get_mut(at) {
                    e.value = Field::Owned(value.into_boxed_str());
                    e.line = None;
                }
            }
            None => self.entries.push(Self::owned(name, value)),
        }
    }

    /// Replaces the value of the first field called `name` only (e.g. the topmost Via of a
    /// list). Returns false if there is no such field.
    pub fn set_first(&mut self, name: impl AsRef<str>, value: impl Into<String>) -> bool {
        let key = Key::of(name.as_ref());
        match self
            .entries
            .iter()
            .position(|e| Self::matches(e, key, &self.src))
        {
            Some(at) => {
                if let Some(e) = self.entries.get_mut(at) {
                    e.value = Field::Owned(sanitize(value.into()).into_boxed_str());
                    e.line = None;
                }
                true
            }
            None => false,
        }
    }

    /// Writes every field as `name: value CRLF`; parsed fields byte for byte. Content-Length
    /// fields are skipped when `skip_content_length` (the caller writes the right one).
    pub(crate) fn write_fields(&self, out: &mut Vec<u8>, content_length: Option<usize>) {
        let mut cl_written = false;
        for e in &self.entries {
            if e.std == Some(Std::ContentLength)
                && let Some(n) = content_length
            {
                if cl_written {
                    continue;
                }
                cl_written = true;
                out.extend_from_slice(self.text(&e.name).as_bytes());
                out.extend_from_slice(b": ");
                out.extend_from_slice(n.to_string().as_bytes());
                out.extend_from_slice(b"\r\n");
                continue;
            }
            match e.line {
                Some((a, b)) => out.extend_from_slice(span(&self.src, a, b).as_bytes()),
                None => {
                    out.extend_from_slice(self.text(&e.name).as_bytes());
                    out.extend_from_slice(b": ");
                    out.extend_from_slice(self.text(&e.value).as_bytes());
                }
            }
            out.extend_from_slice(b"\r\n");
        }
        if let (Some(n), false) = (content_length, cl_written) {
            out.extend_from_slice(b"Content-Length: ");
            out.extend_from_slice(n.to_string().as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }
}

/// Replaces CR and LF in an added value by spaces: a value must never start a new header.
fn sanitize(mut v: String) -> String {
    if v.bytes().any(|b| b == b'\r' || b == b'\n') {
        v = v.replace(['\r', '\n'], " ");
    }
    v
}

fn check_field(name: &str, value: &str) -> Result<(), crate::parse::ParseError> {
    if name.is_empty() || !name.bytes().all(crate::parse::lex::is_token) {
        return Err(crate::parse::ParseError::InvalidHeaderName { offset: 0 });
    }
    if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
        return Err(crate::parse::ParseError::InvalidHeader {
            name: HeaderName::new(name),
            offset: 0,
        });
    }
    Ok(())
}

impl PartialEq for Headers {
    /// Same fields in the same order, names compared as header names, values as text.
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len()
            && self
                .iter()
                .zip(other.iter())
                .all(|((an, av), (bn, bv))| HeaderName::new(an) == HeaderName::new(bn) && av == bv)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_operations() {
        let mut h = Headers::new();
        h.push("Via", "SIP/2.0/UDP a;branch=z9hG4bK1");
        h.push("To", "<sip:b@x>");
        h.push("v", "SIP/2.0/UDP b;branch=z9hG4bK2");
        h.insert_first("Via", "SIP/2.0/UDP p;branch=z9hG4bK0");
        let vias: Vec<_> = h.get_all("v").collect();
        assert_eq!(vias.len(), 3);
        assert_eq!(vias[0], "SIP/2.0/UDP p;branch=z9hG4bK0");
        assert_eq!(
            h.remove_first("Via").as_deref(),
            Some("SIP/2.0/UDP p;branch=z9hG4bK0")
        );
        h.set("VIA", "SIP/2.0/TCP c");
        assert_eq!(h.count("via"), 1);
        assert_eq!(h.get("Via"), Some("SIP/2.0/TCP c"));
        assert_eq!(h.remove("to"), 1);
        assert!(!h.contains("t"));
        h.push("X-A", "evil\r\nVia: injected");
        assert_eq!(h.get("x-a"), Some("evil  Via: injected"));
        assert!(h.try_push("X-B", "a\r\nb").is_err());
        assert!(h.try_push("X B", "a").is_err());
    }

    #[test]
    fn list_splits_outside_quotes() {
        let mut h = Headers::new();
        h.push("Allow", "INVITE, ACK ,BYE");
        h.push("Allow", "OPTIONS,");
        h.push("Contact", "\"a,b\" <sip:x@y;p=1,2>, <sip:z@w>");
        assert_eq!(h.list("allow"), vec!["INVITE", "ACK", "BYE", "OPTIONS"]);
        assert_eq!(h.list("m"), vec!["\"a,b\" <sip:x@y;p=1,2>", "<sip:z@w>"]);
    }
}
