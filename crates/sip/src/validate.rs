//! Semantic validation of parsed messages, naming the status code owed (RFC 3261 §8.2, §16.3,
//! §20; RFC 4475 §3): 400, 406, 415, 416, 420 (with the Unsupported list), 483, 501, 505.
//!
//! [`crate::parse`] only checks that bytes form a message; this module checks what it says:
//! mandatory and single-valued headers, their typed syntax, CSeq against the method, the
//! Request-URI scheme, required extensions, Max-Forwards at a proxy. What applies depends on
//! the element's [`Role`] and the [`Policy`] it supports.

use crate::message::{HeaderName, Message, Method, Request, Response, Scheme, Std, Version};
use crate::parse::ParseError;
use crate::parse::lex::trim_ws;

/// What the validating element is (RFC 3261 §16 proxy, §8.2 UAS, §10.3 registrar).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Role {
    /// A proxy: checks Proxy-Require and Max-Forwards; never Require or bodies.
    Proxy,
    /// A user agent server: checks Require, and Content-Type/Accept when the policy lists types.
    Uas,
    /// A registrar (a UAS that also checks the REGISTER AOR scheme).
    Registrar,
}

/// What the element supports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Role.
    pub role: Role,
    /// Request-URI schemes accepted (lower case). Default `sip`, `sips`, `tel`.
    pub supported_schemes: Vec<String>,
    /// Option tags understood in Require / Proxy-Require. Default none.
    pub supported_extensions: Vec<String>,
    /// Body types a UAS accepts and can answer with (`type/subtype`, lower case); `None` means
    /// "do not check" (the default).
    pub accepted_content_types: Option<Vec<String>>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            role: Role::Uas,
            supported_schemes: vec!["sip".into(), "sips".into(), "tel".into()],
            supported_extensions: Vec::new(),
            accepted_content_types: None,
        }
    }
}

impl Policy {
    /// The default policy with another role.
    pub fn for_role(role: Role) -> Policy {
        Policy {
            role,
            ..Policy::default()
        }
    }
}

/// The rule a message breaks.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Fault {
    /// The start line's version is not SIP/2.0 (505).
    #[error("unsupported SIP version {0}")]
    UnsupportedVersion(Version),
    /// A mandatory header is absent (400).
    #[error("missing mandatory {0} header")]
    MissingHeader(HeaderName),
    /// A header that may appear once appears several times, or holds several values (400).
    #[error("several values in single-valued {0} header")]
    DuplicateHeader(HeaderName),
    /// A header does not follow its grammar (400).
    #[error(transparent)]
    InvalidHeader(ParseError),
    /// The CSeq method differs from the request method (400, or 501 for an unknown method).
    #[error("CSeq method {cseq} does not match request method {method}")]
    MethodMismatch {
        /// Request-line method.
        method: Method,
        /// CSeq method.
        cseq: Method,
    },
    /// The Request-URI carries `?headers`, which RFC 3261 §19.1.1 forbids there (400).
    #[error("Request-URI carries header fields")]
    HeadersInRequestUri,
    /// The Date header is not an RFC 1123 date in GMT (400).
    #[error("Date is not an RFC 1123 date in GMT")]
    InvalidDate,
    /// The Request-URI scheme is not supported (416).
    #[error("unsupported Request-URI scheme {0:?}")]
    UnsupportedUriScheme(String),
    /// Require / Proxy-Require lists extensions not supported (420; the list goes in an
    /// Unsupported header).
    #[error("unsupported extensions required: {}", .unsupported.join(", "))]
    BadExtension {
        /// The option tags to list in Unsupported.
        unsupported: Vec<String>,
    },
    /// Max-Forwards is 0 at a proxy (483).
    #[error("Max-Forwards is 0")]
    TooManyHops,
    /// The body type is not accepted (415; answer with Accept).
    #[error("unsupported Content-Type {0:?}")]
    UnsupportedMediaType(String),
    /// No type listed in Accept can be produced (406).
    #[error("no acceptable response body type")]
    NotAcceptable,
    /// A REGISTER whose To is not a SIP or SIPS URI (400 at a registrar, RFC 3261 §10.3).
    #[error("REGISTER address of record is not a SIP or SIPS URI")]
    AorNotSip,
}

impl Fault {
    /// The status code a request failing this way is answered with.
    pub fn status(&self) -> u16 {
        match self {
            Fault::UnsupportedVersion(_) => 505,
            Fault::MethodMismatch { method, .. } if method.is_extension() => 501,
            Fault::UnsupportedUriScheme(_) => 416,
            Fault::BadExtension { .. } => 420,
            Fault::TooManyHops => 483,
            Fault::UnsupportedMediaType(_) => 415,
            Fault::NotAcceptable => 406,
            _ => 400,
        }
    }
}

/// A message that parsed but breaks a rule; [`ValidationError::status`] gives the answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{fault}")]
pub struct ValidationError {
    /// What is wrong.
    pub fault: Fault,
    /// Whether the message was a response (responses are dropped, never answered).
    pub response: bool,
}

impl ValidationError {
    /// The status code owed for a request; `None` for a response (drop it).
    pub fn status(&self) -> Option<u16> {
        (!self.response).then(|| self.fault.status())
    }
}

fn req_err(fault: Fault) -> ValidationError {
    ValidationError {
        fault,
        response: false,
    }
}

/// Validates a request or a response.
pub fn validate(msg: &Message, policy: &Policy) -> Result<(), ValidationError> {
    match msg {
        Message::Request(r) => validate_request(r, policy),
        Message::Response(r) => validate_response(r),
    }
}

const MANDATORY: [Std; 5] = [Std::Via, Std::To, Std::From, Std::CallId, Std::CSeq];
const SINGLE: [Std; 9] = [
    Std::To,
    Std::From,
    Std::CallId,
    Std::CSeq,
    Std::MaxForwards,
    Std::ContentLength,
    Std::ContentType,
    Std::Expires,
    Std::Date,
];

fn common(h: &crate::message::Headers) -> Result<(), Fault> {
    for s in MANDATORY {
        if h.get_all_std(s).next().is_none() {
            return Err(Fault::MissingHeader(HeaderName::from_std(s)));
        }
    }
    for s in SINGLE {
        if h.get_all_std(s).nth(1).is_some() {
            return Err(Fault::DuplicateHeader(HeaderName::from_std(s)));
        }
    }
    h.vias().map_err(Fault::InvalidHeader)?;
    h.to().map_err(Fault::InvalidHeader)?;
    h.from().map_err(Fault::InvalidHeader)?;
    h.call_id().map_err(Fault::InvalidHeader)?;
    h.cseq().map_err(Fault::InvalidHeader)?;
    h.max_forwards().map_err(Fault::InvalidHeader)?;
    h.expires().map_err(Fault::InvalidHeader)?;
    h.contacts().map_err(Fault::InvalidHeader)?;
    h.routes().map_err(Fault::InvalidHeader)?;
    h.record_routes().map_err(Fault::InvalidHeader)?;
    if let Some(ct) = h.get_all_std(Std::ContentType).next()
        && media_type(ct).is_none()
    {
        return Err(Fault::InvalidHeader(ParseError::InvalidHeader {
            name: HeaderName::CONTENT_TYPE,
            offset: 0,
        }));
    }
    if let Some(d) = h.get_all_std(Std::Date).next()
        && !is_rfc1123_gmt(trim_ws(d))
    {
        return Err(Fault::InvalidDate);
    }
    Ok(())
}

/// Validates a request for an element with `policy`.
pub fn validate_request(req: &Request, policy: &Policy) -> Result<(), ValidationError> {
    if req.version() != Version::SIP_2_0 {
        return Err(req_err(Fault::UnsupportedVersion(req.version())));
    }
    let h = req.headers();
    common(h).map_err(req_err)?;
    // invariant-free: common() checked CSeq parses
    let cseq = h.cseq().map_err(|e| req_err(Fault::InvalidHeader(e)))?;
    if &cseq.method != req.method() {
        return Err(req_err(Fault::MethodMismatch {
            method: req.method().clone(),
            cseq: cseq.method,
        }));
    }
    if req.uri().headers().is_some() {
        return Err(req_err(Fault::HeadersInRequestUri));
    }
    let scheme = req.uri().scheme_str().to_ascii_lowercase();
    if !policy
        .supported_schemes
        .iter()
        .any(|s| s.eq_ignore_ascii_case(&scheme))
    {
        return Err(req_err(Fault::UnsupportedUriScheme(scheme)));
    }
    let unsupported = |s: Std| -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for v in h.get_all_std(s) {
            let mut items = Vec::new();
            crate::parse::lex::split_commas(v, &mut items);
            for tag in items {
                if !policy
                    .supported_extensions
                    .iter()
                    .any(|x| x.eq_ignore_ascii_case(tag))
                    && !out.iter().any(|o| o == tag)
                {
                    out.push(tag.to_owned());
                }
            }
        }
        out
    };
    let is_ack_or_cancel = matches!(req.method(), Method::Ack | Method::Cancel);
    match policy.role {
        Role::Proxy => {
            let u = unsupported(Std::ProxyRequire);
            if !u.is_empty() {
                return Err(req_err(Fault::BadExtension { unsupported: u }));
            }
            if h.max_forwards().ok().flatten() == Some(0) {
                return Err(req_err(Fault::TooManyHops));
            }
        }
        Role::Uas | Role::Registrar => {
            if !is_ack_or_cancel {
                let u = unsupported(Std::Require);
                if !u.is_empty() {
                    return Err(req_err(Fault::BadExtension { unsupported: u }));
                }
            }
            if policy.role == Role::Registrar && req.method() == &Method::Register {
                let to = h.to().map_err(|e| req_err(Fault::InvalidHeader(e)))?;
                if !matches!(to.uri.scheme(), Scheme::Sip | Scheme::Sips) {
                    return Err(req_err(Fault::AorNotSip));
                }
            }
            if let Some(types) = &policy.accepted_content_types {
                if !req.body().is_empty() {
                    let ct = h
                        .get_all_std(Std::ContentType)
                        .next()
                        .and_then(media_type)
                        .unwrap_or_default();
                    if !types.iter().any(|t| t.eq_ignore_ascii_case(&ct)) {
                        return Err(req_err(Fault::UnsupportedMediaType(ct)));
                    }
                }
                if !is_ack_or_cancel && h.get_all_std(Std::Accept).next().is_some() {
                    let mut accept = Vec::new();
                    for v in h.get_all_std(Std::Accept) {
                        crate::parse::lex::split_commas(v, &mut accept);
                    }
                    let ok = accept.is_empty()
                        || accept.iter().filter_map(|a| media_type(a)).any(|a| {
                            a == "*/*"
                                || types.iter().any(|t| {
                                    t.eq_ignore_ascii_case(&a)
                                        || a.strip_suffix("/*").is_some_and(|p| {
                                            t.split('/')
                                                .next()
                                                .is_some_and(|tp| tp.eq_ignore_ascii_case(p))
                                        })
                                })
                        });
                    if !ok {
                        return Err(req_err(Fault::NotAcceptable));
                    }
                }
            }
        }
    }
    Ok(())
}

/// Validates a response (a failure means: drop it).
pub fn validate_response(resp: &Response) -> Result<(), ValidationError> {
    let err = |fault| ValidationError {
        fault,
        response: true,
    };
    if resp.version() != Version::SIP_2_0 {
        return Err(err(Fault::UnsupportedVersion(resp.version())));
    }
    common(resp.headers()).map_err(err)
}

/// `type/subtype` of a media-type value, lower-cased, parameters dropped; None if malformed.
fn media_type(v: &str) -> Option<String> {
    let main = trim_ws(v.split(';').next().unwrap_or(""));
    let (t, s) = main.split_once('/')?;
    let (t, s) = (trim_ws(t), trim_ws(s));
    let tok = |x: &str| !x.is_empty() && x.bytes().all(crate::parse::lex::is_token);
    (tok(t) && tok(s)).then(|| format!("{}/{}", t.to_ascii_lowercase(), s.to_ascii_lowercase()))
}

/// `rfc1123-date = wkday "," SP date1 SP time SP "GMT"` (RFC 3261 §20.17, RFC 2616 §3.3.1).
fn is_rfc1123_gmt(d: &str) -> bool {
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    let Some((wk, rest)) = d.split_once(", ") else {
        return false;
    };
    let parts: Vec<&str> = rest.split(' ').collect();
    let [day, mon, year, time, zone] = parts.as_slice() else {
        return false;
    };
    let t: Vec<&str> = time.split(':').collect();
    DAYS.contains(&wk)
        && digits(day, 2)
        && MONTHS.contains(mon)
        && digits(year, 4)
        && t.len() == 3
        && t.iter().all(|x| digits(x, 2))
        && *zone == "GMT"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert!(is_rfc1123_gmt("Sat, 13 Nov 2010 23:29:00 GMT"));
        assert!(!is_rfc1123_gmt("Fri, 01 Jan 2010 16:00:00 EST"));
        assert!(!is_rfc1123_gmt("Fri, 01 Jan 2010 16:00:00 UTC"));
        assert!(!is_rfc1123_gmt("Fri, 1 Jan 2010 16:00:00 GMT"));
    }

    #[test]
    fn media_types() {
        assert_eq!(
            media_type(" Application/SDP ; charset=x").as_deref(),
            Some("application/sdp")
        );
        assert_eq!(media_type("garbage"), None);
    }
}
