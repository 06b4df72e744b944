//! The SDP serializer: CRLF line endings, RFC 8866 line order.
//!
//! Serialization checks what it writes, so that a value set by a caller cannot inject lines
//! (a CR or LF inside a field), break the field structure (a space inside a space-separated
//! field) or emit the obsolete `k=` line (RFC 8866 §5.12; keys belong in `a=crypto` over a
//! secure signalling path, or in a key agreement).

use core::fmt::Write as _;

use crate::model::{Attribute, Bandwidth, Connection, Media, Session};
use crate::parse::{is_digits, is_field, is_token};

/// Why a [`Session`] cannot be serialized.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EmitError {
    /// A `k=` line is present; sotto never emits one.
    #[error("refusing to emit a k= line (RFC 8866 §5.12: obsolete and insecure)")]
    KeyLine,
    /// A text value contains CR, LF, NUL or another control character.
    #[error("{0}: control character in value")]
    ControlCharacter(&'static str),
    /// A field that must be a token (or a space-free field) is not.
    #[error("{0}: not a valid field")]
    BadField(&'static str),
    /// An `m=` line without formats.
    #[error("m= line without formats")]
    NoFormats,
    /// No `t=` line.
    #[error("no t= line")]
    NoTiming,
}

fn text(what: &'static str, v: &str) -> Result<(), EmitError> {
    if v.bytes().any(|c| (c < 0x20 && c != b'\t') || c == 0x7f) {
        Err(EmitError::ControlCharacter(what))
    } else {
        Ok(())
    }
}

fn field(what: &'static str, v: &str) -> Result<(), EmitError> {
    if is_field(v) {
        Ok(())
    } else {
        Err(EmitError::BadField(what))
    }
}

fn token(what: &'static str, v: &str) -> Result<(), EmitError> {
    if is_token(v) {
        Ok(())
    } else {
        Err(EmitError::BadField(what))
    }
}

fn line(out: &mut String, t: char, v: &str) {
    out.push(t);
    out.push('=');
    out.push_str(v);
    out.push_str("\r\n");
}

fn connection(out: &mut String, c: &Connection) -> Result<(), EmitError> {
    token("c= nettype", &c.net_type)?;
    token("c= addrtype", &c.addr_type)?;
    field("c= address", &c.address)?;
    let _ = write!(out, "c={} {} {}\r\n", c.net_type, c.addr_type, c.address);
    Ok(())
}

fn bandwidth(out: &mut String, b: &Bandwidth) -> Result<(), EmitError> {
    token("b= type", &b.bw_type)?;
    let _ = write!(out, "b={}:{}\r\n", b.bw_type, b.bandwidth);
    Ok(())
}

fn attribute(out: &mut String, a: &Attribute) -> Result<(), EmitError> {
    token("a= name", &a.name)?;
    out.push_str("a=");
    out.push_str(&a.name);
    if let Some(v) = &a.value {
        text("a= value", v)?;
        out.push(':');
        out.push_str(v);
    }
    out.push_str("\r\n");
    Ok(())
}

fn media(out: &mut String, m: &Media) -> Result<(), EmitError> {
    token("m= media", &m.kind)?;
    if m.proto.is_empty() || !m.proto.split('/').all(is_token) {
        return Err(EmitError::BadField("m= proto"));
    }
    if m.formats.is_empty() {
        return Err(EmitError::NoFormats);
    }
    if m.key.is_some() {
        return Err(EmitError::KeyLine);
    }
    let _ = write!(out, "m={} {}", m.kind, m.port);
    if let Some(n) = m.port_count {
        let _ = write!(out, "/{n}");
    }
    out.push(' ');
    out.push_str(&m.proto);
    for f in &m.formats {
        field("m= format", f)?;
        out.push(' ');
        out.push_str(f);
    }
    out.push_str("\r\n");
    if let Some(i) = &m.info {
        text("i=", i)?;
        line(out, 'i', i);
    }
    for c in &m.connections {
        connection(out, c)?;
    }
    for b in &m.bandwidths {
        bandwidth(out, b)?;
    }
    for a in &m.attributes {
        attribute(out, a)?;
    }
    Ok(())
}

impl Session {
    /// Serializes the description with CRLF line endings.
    ///
    /// Fails if a `k=` line is present (never emitted), if a value would break the line
    /// structure, or if a mandatory part is missing.
    pub fn to_sdp(&self) -> Result<String, EmitError> {
        if self.key.is_some() {
            return Err(EmitError::KeyLine);
        }
        if self.times.is_empty() {
            return Err(EmitError::NoTiming);
        }
        let mut out = String::with_capacity(512);
        out.push_str("v=0\r\n");
        let o = &self.origin;
        field("o= username", &o.username)?;
        if !is_digits(&o.session_id, 64) {
            return Err(EmitError::BadField("o= session id"));
        }
        token("o= nettype", &o.net_type)?;
        token("o= addrtype", &o.addr_type)?;
        field("o= address", &o.address)?;
        let _ = write!(
            out,
            "o={} {} {} {} {} {}\r\n",
            o.username, o.session_id, o.session_version, o.net_type, o.addr_type, o.address
        );
        text("s=", &self.name)?;
        line(&mut out, 's', &self.name);
        if let Some(i) = &self.info {
            text("i=", i)?;
            line(&mut out, 'i', i);
        }
        if let Some(u) = &self.uri {
            text("u=", u)?;
            line(&mut out, 'u', u);
        }
        for e in &self.emails {
            text("e=", e)?;
            line(&mut out, 'e', e);
        }
        for p in &self.phones {
            text("p=", p)?;
            line(&mut out, 'p', p);
        }
        if let Some(c) = &self.connection {
            connection(&mut out, c)?;
        }
        for b in &self.bandwidths {
            bandwidth(&mut out, b)?;
        }
        for t in &self.times {
            let _ = write!(out, "t={} {}\r\n", t.start, t.stop);
            for r in &t.repeats {
                text("r=", r)?;
                line(&mut out, 'r', r);
            }
        }
        if let Some(z) = &self.time_zones {
            text("z=", z)?;
            line(&mut out, 'z', z);
        }
        for a in &self.attributes {
            attribute(&mut out, a)?;
        }
        for m in &self.media {
            media(&mut out, m)?;
        }
        Ok(out)
    }
}
