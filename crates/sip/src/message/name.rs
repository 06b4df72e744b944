//! Header field names (RFC 3261 §7.3, §20; compact forms §7.3.3 and the IANA registry).
//!
//! Names compare case-insensitively, and a compact form (`v`, `i`, `m`, ...) is the same header
//! as its long form.

use std::fmt;

macro_rules! std_headers {
    ($( $(#[$doc:meta])* ($konst:ident, $var:ident, $long:literal, $compact:expr) ),* $(,)?) => {
        /// The headers this crate knows by name (long form + optional compact form).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub(crate) enum Std { $($var),* }

        impl Std {
            /// Canonical long form.
            pub(crate) const fn as_str(self) -> &'static str {
                match self { $(Std::$var => $long),* }
            }
            /// Compact form, if the header has one.
            pub(crate) const fn compact(self) -> Option<char> {
                match self { $(Std::$var => $compact),* }
            }
            /// Looks up a long name (case-insensitive, already lower-cased by the caller).
            fn from_lower_long(lower: &[u8]) -> Option<Std> {
                $( if lower.eq_ignore_ascii_case($long.as_bytes()) { return Some(Std::$var); } )*
                None
            }
            /// Looks up a compact form (lower-case letter).
            fn from_compact(c: u8) -> Option<Std> {
                $( if $compact == Some(c as char) { return Some(Std::$var); } )*
                None
            }
        }

        impl HeaderName {
            $( $(#[$doc])* pub const $konst: HeaderName = HeaderName(Repr::Std(Std::$var)); )*
        }
    };
}

std_headers! {
    /// `Accept`
    (ACCEPT, Accept, "Accept", None),
    /// `Accept-Contact` (compact `a`, RFC 3841)
    (ACCEPT_CONTACT, AcceptContact, "Accept-Contact", Some('a')),
    /// `Accept-Encoding`
    (ACCEPT_ENCODING, AcceptEncoding, "Accept-Encoding", None),
    /// `Accept-Language`
    (ACCEPT_LANGUAGE, AcceptLanguage, "Accept-Language", None),
    /// `Alert-Info`
    (ALERT_INFO, AlertInfo, "Alert-Info", None),
    /// `Allow`
    (ALLOW, Allow, "Allow", None),
    /// `Allow-Events` (compact `u`, RFC 6665)
    (ALLOW_EVENTS, AllowEvents, "Allow-Events", Some('u')),
    /// `Authentication-Info`
    (AUTHENTICATION_INFO, AuthenticationInfo, "Authentication-Info", None),
    /// `Authorization`
    (AUTHORIZATION, Authorization, "Authorization", None),
    /// `Call-ID` (compact `i`)
    (CALL_ID, CallId, "Call-ID", Some('i')),
    /// `Call-Info`
    (CALL_INFO, CallInfo, "Call-Info", None),
    /// `Contact` (compact `m`)
    (CONTACT, Contact, "Contact", Some('m')),
    /// `Content-Disposition`
    (CONTENT_DISPOSITION, ContentDisposition, "Content-Disposition", None),
    /// `Content-Encoding` (compact `e`)
    (CONTENT_ENCODING, ContentEncoding, "Content-Encoding", Some('e')),
    /// `Content-Language`
    (CONTENT_LANGUAGE, ContentLanguage, "Content-Language", None),
    /// `Content-Length` (compact `l`)
    (CONTENT_LENGTH, ContentLength, "Content-Length", Some('l')),
    /// `Content-Type` (compact `c`)
    (CONTENT_TYPE, ContentType, "Content-Type", Some('c')),
    /// `CSeq`
    (CSEQ, CSeq, "CSeq", None),
    /// `Date`
    (DATE, Date, "Date", None),
    /// `Error-Info`
    (ERROR_INFO, ErrorInfo, "Error-Info", None),
    /// `Event` (compact `o`, RFC 6665)
    (EVENT, Event, "Event", Some('o')),
    /// `Expires`
    (EXPIRES, Expires, "Expires", None),
    /// `Flow-Timer` (RFC 5626)
    (FLOW_TIMER, FlowTimer, "Flow-Timer", None),
    /// `From` (compact `f`)
    (FROM, From, "From", Some('f')),
    /// `Identity` (compact `y`, RFC 8224)
    (IDENTITY, Identity, "Identity", Some('y')),
    /// `In-Reply-To`
    (IN_REPLY_TO, InReplyTo, "In-Reply-To", None),
    /// `Max-Forwards`
    (MAX_FORWARDS, MaxForwards, "Max-Forwards", None),
    /// `Min-Expires`
    (MIN_EXPIRES, MinExpires, "Min-Expires", None),
    /// `Min-SE` (RFC 4028)
    (MIN_SE, MinSe, "Min-SE", None),
    /// `MIME-Version`
    (MIME_VERSION, MimeVersion, "MIME-Version", None),
    /// `Organization`
    (ORGANIZATION, Organization, "Organization", None),
    /// `P-Asserted-Identity` (RFC 3325)
    (P_ASSERTED_IDENTITY, PAssertedIdentity, "P-Asserted-Identity", None),
    /// `Path` (RFC 3327)
    (PATH, Path, "Path", None),
    /// `Priority`
    (PRIORITY, Priority, "Priority", None),
    /// `Privacy` (RFC 3323)
    (PRIVACY, Privacy, "Privacy", None),
    /// `Proxy-Authenticate`
    (PROXY_AUTHENTICATE, ProxyAuthenticate, "Proxy-Authenticate", None),
    /// `Proxy-Authorization`
    (PROXY_AUTHORIZATION, ProxyAuthorization, "Proxy-Authorization", None),
    /// `Proxy-Require`
    (PROXY_REQUIRE, ProxyRequire, "Proxy-Require", None),
    /// `RAck` (RFC 3262)
    (RACK, RAck, "RAck", None),
    /// `Reason` (RFC 3326)
    (REASON, Reason, "Reason", None),
    /// `Record-Route`
    (RECORD_ROUTE, RecordRoute, "Record-Route", None),
    /// `Refer-To` (compact `r`, RFC 3515)
    (REFER_TO, ReferTo, "Refer-To", Some('r')),
    /// `Referred-By` (compact `b`, RFC 3892)
    (REFERRED_BY, ReferredBy, "Referred-By", Some('b')),
    /// `Reject-Contact` (compact `j`, RFC 3841)
    (REJECT_CONTACT, RejectContact, "Reject-Contact", Some('j')),
    /// `Reply-To`
    (REPLY_TO, ReplyTo, "Reply-To", None),
    /// `Request-Disposition` (compact `d`, RFC 3841)
    (REQUEST_DISPOSITION, RequestDisposition, "Request-Disposition", Some('d')),
    /// `Require`
    (REQUIRE, Require, "Require", None),
    /// `Retry-After`
    (RETRY_AFTER, RetryAfter, "Retry-After", None),
    /// `Route`
    (ROUTE, Route, "Route", None),
    /// `RSeq` (RFC 3262)
    (RSEQ, RSeq, "RSeq", None),
    /// `Server`
    (SERVER, Server, "Server", None),
    /// `Service-Route` (RFC 3608)
    (SERVICE_ROUTE, ServiceRoute, "Service-Route", None),
    /// `Session-Expires` (compact `x`, RFC 4028)
    (SESSION_EXPIRES, SessionExpires, "Session-Expires", Some('x')),
    /// `SIP-ETag` (RFC 3903)
    (SIP_ETAG, SipETag, "SIP-ETag", None),
    /// `SIP-If-Match` (RFC 3903)
    (SIP_IF_MATCH, SipIfMatch, "SIP-If-Match", None),
    /// `Subject` (compact `s`)
    (SUBJECT, Subject, "Subject", Some('s')),
    /// `Subscription-State` (RFC 6665)
    (SUBSCRIPTION_STATE, SubscriptionState, "Subscription-State", None),
    /// `Supported` (compact `k`)
    (SUPPORTED, Supported, "Supported", Some('k')),
    /// `Timestamp`
    (TIMESTAMP, Timestamp, "Timestamp", None),
    /// `To` (compact `t`)
    (TO, To, "To", Some('t')),
    /// `Unsupported`
    (UNSUPPORTED, Unsupported, "Unsupported", None),
    /// `User-Agent`
    (USER_AGENT, UserAgent, "User-Agent", None),
    /// `Via` (compact `v`)
    (VIA, Via, "Via", Some('v')),
    /// `Warning`
    (WARNING, Warning, "Warning", None),
    /// `WWW-Authenticate`
    (WWW_AUTHENTICATE, WwwAuthenticate, "WWW-Authenticate", None),
}

impl Std {
    /// Resolves a header name as written on the wire (any case, long or compact).
    pub(crate) fn lookup(name: &[u8]) -> Option<Std> {
        match name {
            [c] => Std::from_compact(c.to_ascii_lowercase()),
            _ => Std::from_lower_long(name),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Repr {
    Std(Std),
    /// An extension header, kept as written; compared case-insensitively.
    Other(Box<str>),
}

/// A header field name. Known names (and their compact forms) resolve to one value, so
/// `HeaderName::from("v") == HeaderName::VIA`; unknown names compare case-insensitively.
#[derive(Clone, Debug, Eq)]
pub struct HeaderName(Repr);

impl std::hash::Hash for HeaderName {
    /// Consistent with `==`: extension names hash case-insensitively.
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        match &self.0 {
            Repr::Std(s) => {
                0u8.hash(state);
                s.hash(state);
            }
            Repr::Other(o) => {
                1u8.hash(state);
                for b in o.bytes() {
                    b.to_ascii_lowercase().hash(state);
                }
            }
        }
    }
}

impl HeaderName {
    /// Resolves a name as written (any case; compact forms map to the long form).
    pub fn new(name: &str) -> HeaderName {
        match Std::lookup(name.as_bytes()) {
            Some(s) => HeaderName(Repr::Std(s)),
            None => HeaderName(Repr::Other(name.into())),
        }
    }

    /// The canonical long form (`"Via"`, `"Call-ID"`), or the extension name as written.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Std(s) => s.as_str(),
            Repr::Other(o) => o,
        }
    }

    /// The compact form (`'v'` for Via), if there is one.
    pub fn compact(&self) -> Option<char> {
        match &self.0 {
            Repr::Std(s) => s.compact(),
            Repr::Other(_) => None,
        }
    }

    /// Whether this is one of the names the crate knows.
    pub fn is_known(&self) -> bool {
        matches!(self.0, Repr::Std(_))
    }

    pub(crate) const fn from_std(s: Std) -> HeaderName {
        HeaderName(Repr::Std(s))
    }

    pub(crate) fn std(&self) -> Option<Std> {
        match self.0 {
            Repr::Std(s) => Some(s),
            Repr::Other(_) => None,
        }
    }
}

impl PartialEq for HeaderName {
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (Repr::Std(a), Repr::Std(b)) => a == b,
            (Repr::Other(a), Repr::Other(b)) => a.eq_ignore_ascii_case(b),
            _ => false,
        }
    }
}

impl From<&str> for HeaderName {
    fn from(s: &str) -> Self {
        HeaderName::new(s)
    }
}

impl std::str::FromStr for HeaderName {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(HeaderName::new(s))
    }
}

impl AsRef<str> for HeaderName {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Display for HeaderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a lookup names a header: resolved once per call.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Key<'a> {
    Std(Std),
    Other(&'a str),
}

impl<'a> Key<'a> {
    pub(crate) fn of(name: &'a str) -> Key<'a> {
        match Std::lookup(name.as_bytes()) {
            Some(s) => Key::Std(s),
            None => Key::Other(name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_and_case() {
        assert_eq!(HeaderName::new("v"), HeaderName::VIA);
        assert_eq!(HeaderName::new("V"), HeaderName::VIA);
        assert_eq!(HeaderName::new("vIA"), HeaderName::VIA);
        assert_eq!(HeaderName::new("i").as_str(), "Call-ID");
        assert_eq!(HeaderName::new("m"), HeaderName::CONTACT);
        assert_eq!(HeaderName::new("l"), HeaderName::CONTENT_LENGTH);
        assert_eq!(HeaderName::new("X-Foo"), HeaderName::new("x-foo"));
        assert_ne!(HeaderName::new("X-Foo"), HeaderName::VIA);
        assert_eq!(HeaderName::new("q").as_str(), "q");
        assert_eq!(HeaderName::VIA.compact(), Some('v'));
    }
}
