//! The session description model (RFC 8866 §5).
//!
//! Every line of a parsed description is kept: the fields that offer/answer needs are typed
//! (`o=`, `c=`, `b=`, `t=`, `m=`), the others (`i=`, `u=`, `e=`, `p=`, `r=`, `z=`, `k=`) are
//! kept as their text, and attributes are kept as `name` plus raw `value`, in order, and
//! typed on access (see [`crate::attr`]). An unmodified description therefore serializes back
//! to the same bytes (CRLF line endings).

use core::fmt;

use zeroize::Zeroize;

/// A complete session description (RFC 8866 §5).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Session {
    /// `o=`: the originator and session identifier.
    pub origin: Origin,
    /// `s=`: the session name (text; may be empty on input, `-` is customary).
    pub name: String,
    /// `i=`: session information (kept as text).
    pub info: Option<String>,
    /// `u=`: a URI (kept as text).
    pub uri: Option<String>,
    /// `e=` lines (kept as text, in order).
    pub emails: Vec<String>,
    /// `p=` lines (kept as text, in order).
    pub phones: Vec<String>,
    /// `c=` at session level.
    pub connection: Option<Connection>,
    /// `b=` lines at session level.
    pub bandwidths: Vec<Bandwidth>,
    /// `t=` lines, each with its `r=` lines; at least one.
    pub times: Vec<Timing>,
    /// `z=` (kept as text).
    pub time_zones: Option<String>,
    /// `k=` (RFC 8866 §5.12, obsolete and insecure): kept when parsed so that a caller can see
    /// it, but [`Session::to_sdp`] refuses to emit it.
    pub key: Option<String>,
    /// Session-level `a=` lines, in order.
    pub attributes: Vec<Attribute>,
    /// `m=` sections, in order.
    pub media: Vec<Media>,
}

/// `o=<username> <sess-id> <sess-version> <nettype> <addrtype> <unicast-address>`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Origin {
    /// The user name (`-` when there is none); no spaces.
    pub username: String,
    /// The session id: decimal digits, kept as text (it is an identifier, not a number).
    pub session_id: String,
    /// The session version, incremented on each new offer in a dialog.
    pub session_version: u64,
    /// The network type, `IN`.
    pub net_type: String,
    /// The address type, `IP4` or `IP6`.
    pub addr_type: String,
    /// The originator's address.
    pub address: String,
}

/// `c=<nettype> <addrtype> <connection-address>`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Connection {
    /// The network type, `IN`.
    pub net_type: String,
    /// The address type, `IP4` or `IP6`.
    pub addr_type: String,
    /// The address, possibly with `/ttl` and `/count` suffixes (kept as written).
    pub address: String,
}

impl Connection {
    /// An `IN IP4` or `IN IP6` connection for `address` (the type follows the address text:
    /// a `:` means IPv6).
    pub fn new_ip(address: &str) -> Self {
        let addr_type = if address.contains(':') { "IP6" } else { "IP4" };
        Connection {
            net_type: "IN".to_owned(),
            addr_type: addr_type.to_owned(),
            address: address.to_owned(),
        }
    }

    /// The address without any `/ttl` or `/count` suffix.
    pub fn base_address(&self) -> &str {
        self.address.split('/').next().unwrap_or(&self.address)
    }
}

/// `b=<bwtype>:<bandwidth>`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Bandwidth {
    /// The bandwidth type (`AS`, `CT`, `TIAS`…).
    pub bw_type: String,
    /// The value (kilobits per second for `AS`/`CT`, bits per second for `TIAS`).
    pub bandwidth: u64,
}

/// `t=<start-time> <stop-time>` and the `r=` lines that follow it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Timing {
    /// NTP start time (0: unbounded).
    pub start: u64,
    /// NTP stop time (0: unbounded).
    pub stop: u64,
    /// The `r=` lines (kept as text).
    pub repeats: Vec<String>,
}

/// One `m=` section.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Media {
    /// `audio`, `video`, `text`, `application`, `message`, or another token.
    pub kind: String,
    /// The transport port (0: the stream is rejected or disabled).
    pub port: u16,
    /// The `/<number of ports>` suffix, when present.
    pub port_count: Option<u16>,
    /// The transport protocol (`RTP/AVP`, `RTP/SAVP`, `UDP/TLS/RTP/SAVP`…).
    pub proto: String,
    /// The media formats (RTP payload type numbers for RTP profiles).
    pub formats: Vec<String>,
    /// `i=` at media level (kept as text).
    pub info: Option<String>,
    /// `c=` lines at media level.
    pub connections: Vec<Connection>,
    /// `b=` lines at media level.
    pub bandwidths: Vec<Bandwidth>,
    /// `k=` at media level: kept when parsed, never emitted (see [`Session::key`]).
    pub key: Option<String>,
    /// Media-level `a=` lines, in order.
    pub attributes: Vec<Attribute>,
}

/// One `a=` line: `a=<name>` (a property) or `a=<name>:<value>`.
///
/// The value is kept byte-for-byte. Because an `a=crypto` value holds a master key in base64,
/// `Debug` prints `crypto` values as `<redacted>` and the value is zeroized when the attribute
/// is dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct Attribute {
    /// The attribute name (a token; case kept as written).
    pub name: String,
    /// The value after the first `:`, if there was one.
    pub value: Option<String>,
}

impl Attribute {
    /// A property attribute (`a=<name>`).
    pub fn property(name: &str) -> Self {
        Attribute {
            name: name.to_owned(),
            value: None,
        }
    }

    /// A value attribute (`a=<name>:<value>`).
    pub fn new(name: &str, value: impl Into<String>) -> Self {
        Attribute {
            name: name.to_owned(),
            value: Some(value.into()),
        }
    }

    /// Whether this attribute is named `name` (ASCII case-insensitive, as SDP tokens are
    /// compared).
    pub fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name)
    }

    fn is_secret(&self) -> bool {
        self.is("crypto")
    }
}

impl fmt::Debug for Attribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Attribute");
        d.field("name", &self.name);
        if self.is_secret() && self.value.is_some() {
            d.field("value", &"<redacted>");
        } else {
            d.field("value", &self.value);
        }
        d.finish()
    }
}

impl Drop for Attribute {
    fn drop(&mut self) {
        if self.is_secret() {
            self.value.zeroize();
        }
    }
}

/// Looks up attributes by name in an attribute list.
fn named<'a>(attrs: &'a [Attribute], name: &'a str) -> impl Iterator<Item = &'a Attribute> + 'a {
    attrs.iter().filter(move |a| a.is(name))
}

impl Media {
    /// A new section with no formats, connections or attributes.
    pub fn new(kind: &str, port: u16, proto: &str) -> Self {
        Media {
            kind: kind.to_owned(),
            port,
            port_count: None,
            proto: proto.to_owned(),
            formats: Vec::new(),
            info: None,
            connections: Vec::new(),
            bandwidths: Vec::new(),
            key: None,
            attributes: Vec::new(),
        }
    }

    /// The first attribute named `name`.
    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        self.attributes.iter().find(|a| a.is(name))
    }

    /// Every attribute named `name`, in order.
    pub fn attributes_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Attribute> {
        named(&self.attributes, name)
    }

    /// Whether a property or value attribute named `name` is present.
    pub fn has_attribute(&self, name: &str) -> bool {
        self.attribute(name).is_some()
    }

    /// Whether the transport protocol is secure RTP (`RTP/SAVP`, `RTP/SAVPF`,
    /// `UDP/TLS/RTP/SAVP[F]`).
    pub fn is_savp(&self) -> bool {
        let p = self.proto.to_ascii_uppercase();
        p.ends_with("RTP/SAVP") || p.ends_with("RTP/SAVPF")
    }

    /// Whether the transport protocol is an RTP profile (`RTP/AVP`, `RTP/AVPF`, `RTP/SAVP`,
    /// `RTP/SAVPF`, with or without a `UDP/TLS/` prefix).
    pub fn is_rtp(&self) -> bool {
        let p = self.proto.to_ascii_uppercase();
        p.contains("RTP/AVP") || p.contains("RTP/SAVP")
    }
}

impl Session {
    /// The first session-level attribute named `name`.
    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        self.attributes.iter().find(|a| a.is(name))
    }

    /// Every session-level attribute named `name`, in order.
    pub fn attributes_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Attribute> {
        named(&self.attributes, name)
    }

    /// The connection that applies to media section `index`: its own first `c=`, else the
    /// session's.
    pub fn connection_for(&self, index: usize) -> Option<&Connection> {
        self.media
            .get(index)
            .and_then(|m| m.connections.first())
            .or(self.connection.as_ref())
    }
}
