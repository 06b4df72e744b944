//! SIP message model (RFC 3261 §7, §20, §25).
//!
//! A parsed message is the received `Bytes` plus spans: headers are kept raw and in order
//! ([`Headers`]) and decoded on access ([`Headers::via_top`], [`Headers::cseq`], ...; the same
//! accessors exist on [`Request`], [`Response`] and [`Message`]). Serializing a message that was
//! not modified returns the received bytes (a cheap clone). After a change, the start line is
//! rebuilt, parsed header lines are copied byte for byte, added ones are written as
//! `Name: value`, and exactly one Content-Length with the body's real length is written.

mod headers;
mod name;
mod typed;
mod uri;

use std::fmt;

use bytes::Bytes;

pub use headers::Headers;
pub use name::HeaderName;
pub use typed::{CSeq, Contact, MAGIC_COOKIE, NameAddr, Param, Via};
pub use uri::{Scheme, Uri, unescape};

pub(crate) use name::Std;

use crate::parse::ParseError;

/// A request method (RFC 3261 §7.1 and extensions). Methods are case-sensitive.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    /// INVITE (RFC 3261)
    Invite,
    /// ACK (RFC 3261)
    Ack,
    /// BYE (RFC 3261)
    Bye,
    /// CANCEL (RFC 3261)
    Cancel,
    /// REGISTER (RFC 3261)
    Register,
    /// OPTIONS (RFC 3261)
    Options,
    /// MESSAGE (RFC 3428)
    Message,
    /// INFO (RFC 6086)
    Info,
    /// PRACK (RFC 3262)
    Prack,
    /// UPDATE (RFC 3311)
    Update,
    /// SUBSCRIBE (RFC 6665)
    Subscribe,
    /// NOTIFY (RFC 6665)
    Notify,
    /// REFER (RFC 3515)
    Refer,
    /// PUBLISH (RFC 3903)
    Publish,
    /// Any other token.
    Extension(String),
}

impl Method {
    /// The method as written on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Register => "REGISTER",
            Method::Options => "OPTIONS",
            Method::Message => "MESSAGE",
            Method::Info => "INFO",
            Method::Prack => "PRACK",
            Method::Update => "UPDATE",
            Method::Subscribe => "SUBSCRIBE",
            Method::Notify => "NOTIFY",
            Method::Refer => "REFER",
            Method::Publish => "PUBLISH",
            Method::Extension(s) => s,
        }
    }

    /// Whether this is an extension (unknown) method.
    pub fn is_extension(&self) -> bool {
        matches!(self, Method::Extension(_))
    }

    fn known(s: &[u8]) -> Option<Method> {
        Some(match s {
            b"INVITE" => Method::Invite,
            b"ACK" => Method::Ack,
            b"BYE" => Method::Bye,
            b"CANCEL" => Method::Cancel,
            b"REGISTER" => Method::Register,
            b"OPTIONS" => Method::Options,
            b"MESSAGE" => Method::Message,
            b"INFO" => Method::Info,
            b"PRACK" => Method::Prack,
            b"UPDATE" => Method::Update,
            b"SUBSCRIBE" => Method::Subscribe,
            b"NOTIFY" => Method::Notify,
            b"REFER" => Method::Refer,
            b"PUBLISH" => Method::Publish,
            _ => return None,
        })
    }
}

impl std::str::FromStr for Method {
    type Err = ParseError;
    /// Parses a method token (case-sensitive: `invite` is an extension method).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(m) = Method::known(s.as_bytes()) {
            return Ok(m);
        }
        if s.is_empty() || !s.bytes().all(crate::parse::lex::is_token) {
            return Err(ParseError::InvalidMethod { offset: 0 });
        }
        Ok(Method::Extension(s.to_owned()))
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A response status code (RFC 3261 §7.2, §21), 100–699.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StatusCode(pub u16);

impl StatusCode {
    /// 100 Trying
    pub const TRYING: StatusCode = StatusCode(100);
    /// 180 Ringing
    pub const RINGING: StatusCode = StatusCode(180);
    /// 183 Session Progress
    pub const SESSION_PROGRESS: StatusCode = StatusCode(183);
    /// 200 OK
    pub const OK: StatusCode = StatusCode(200);
    /// 202 Accepted
    pub const ACCEPTED: StatusCode = StatusCode(202);
    /// 400 Bad Request
    pub const BAD_REQUEST: StatusCode = StatusCode(400);
    /// 401 Unauthorized
    pub const UNAUTHORIZED: StatusCode = StatusCode(401);
    /// 403 Forbidden
    pub const FORBIDDEN: StatusCode = StatusCode(403);
    /// 404 Not Found
    pub const NOT_FOUND: StatusCode = StatusCode(404);
    /// 405 Method Not Allowed
    pub const METHOD_NOT_ALLOWED: StatusCode = StatusCode(405);
    /// 407 Proxy Authentication Required
    pub const PROXY_AUTHENTICATION_REQUIRED: StatusCode = StatusCode(407);
    /// 408 Request Timeout
    pub const REQUEST_TIMEOUT: StatusCode = StatusCode(408);
    /// 415 Unsupported Media Type
    pub const UNSUPPORTED_MEDIA_TYPE: StatusCode = StatusCode(415);
    /// 416 Unsupported URI Scheme
    pub const UNSUPPORTED_URI_SCHEME: StatusCode = StatusCode(416);
    /// 420 Bad Extension
    pub const BAD_EXTENSION: StatusCode = StatusCode(420);
    /// 423 Interval Too Brief
    pub const INTERVAL_TOO_BRIEF: StatusCode = StatusCode(423);
    /// 480 Temporarily Unavailable
    pub const TEMPORARILY_UNAVAILABLE: StatusCode = StatusCode(480);
    /// 481 Call/Transaction Does Not Exist
    pub const CALL_TRANSACTION_DOES_NOT_EXIST: StatusCode = StatusCode(481);
    /// 482 Loop Detected
    pub const LOOP_DETECTED: StatusCode = StatusCode(482);
    /// 483 Too Many Hops
    pub const TOO_MANY_HOPS: StatusCode = StatusCode(483);
    /// 486 Busy Here
    pub const BUSY_HERE: StatusCode = StatusCode(486);
    /// 487 Request Terminated
    pub const REQUEST_TERMINATED: StatusCode = StatusCode(487);
    /// 488 Not Acceptable Here
    pub const NOT_ACCEPTABLE_HERE: StatusCode = StatusCode(488);
    /// 500 Server Internal Error
    pub const SERVER_INTERNAL_ERROR: StatusCode = StatusCode(500);
    /// 501 Not Implemented
    pub const NOT_IMPLEMENTED: StatusCode = StatusCode(501);
    /// 503 Service Unavailable
    pub const SERVICE_UNAVAILABLE: StatusCode = StatusCode(503);
    /// 505 Version Not Supported
    pub const VERSION_NOT_SUPPORTED: StatusCode = StatusCode(505);
    /// 513 Message Too Large
    pub const MESSAGE_TOO_LARGE: StatusCode = StatusCode(513);
    /// 603 Decline
    pub const DECLINE: StatusCode = StatusCode(603);

    /// The numeric code.
    pub fn as_u16(self) -> u16 {
        self.0
    }

    /// 1xx
    pub fn is_provisional(self) -> bool {
        (100..200).contains(&self.0)
    }

    /// 2xx
    pub fn is_success(self) -> bool {
        (200..300).contains(&self.0)
    }

    /// 200–699
    pub fn is_final(self) -> bool {
        self.0 >= 200
    }

    /// The class (1 to 6).
    pub fn class(self) -> u16 {
        self.0 / 100
    }

    /// The RFC's reason phrase, or a generic one for the class.
    pub fn reason_phrase(self) -> &'static str {
        match self.0 {
            100 => "Trying",
            180 => "Ringing",
            181 => "Call Is Being Forwarded",
            182 => "Queued",
            183 => "Session Progress",
            199 => "Early Dialog Terminated",
            200 => "OK",
            202 => "Accepted",
            204 => "No Notification",
            300 => "Multiple Choices",
            301 => "Moved Permanently",
            302 => "Moved Temporarily",
            305 => "Use Proxy",
            380 => "Alternative Service",
            400 => "Bad Request",
            401 => "Unauthorized",
            402 => "Payment Required",
            403 => "Forbidden",
            404 => "Not Found",
            405 => "Method Not Allowed",
            406 => "Not Acceptable",
            407 => "Proxy Authentication Required",
            408 => "Request Timeout",
            410 => "Gone",
            412 => "Conditional Request Failed",
            413 => "Request Entity Too Large",
            414 => "Request-URI Too Long",
            415 => "Unsupported Media Type",
            416 => "Unsupported URI Scheme",
            420 => "Bad Extension",
            421 => "Extension Required",
            423 => "Interval Too Brief",
            428 => "Use Identity Header",
            429 => "Provide Referrer Identity",
            430 => "Flow Failed",
            433 => "Anonymity Disallowed",
            438 => "Invalid Identity Header",
            439 => "First Hop Lacks Outbound Support",
            480 => "Temporarily Unavailable",
            481 => "Call/Transaction Does Not Exist",
            482 => "Loop Detected",
            483 => "Too Many Hops",
            484 => "Address Incomplete",
            485 => "Ambiguous",
            486 => "Busy Here",
            487 => "Request Terminated",
            488 => "Not Acceptable Here",
            489 => "Bad Event",
            491 => "Request Pending",
            493 => "Undecipherable",
            494 => "Security Agreement Required",
            500 => "Server Internal Error",
            501 => "Not Implemented",
            502 => "Bad Gateway",
            503 => "Service Unavailable",
            504 => "Server Time-out",
            505 => "Version Not Supported",
            513 => "Message Too Large",
            580 => "Precondition Failure",
            600 => "Busy Everywhere",
            603 => "Decline",
            604 => "Does Not Exist Anywhere",
            606 => "Not Acceptable",
            607 => "Unwanted",
            _ => match self.0 / 100 {
                1 => "Session Progress",
                2 => "OK",
                3 => "Redirect",
                4 => "Request Failure",
                5 => "Server Failure",
                _ => "Global Failure",
            },
        }
    }
}

impl fmt::Display for StatusCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The SIP version of a start line. Parsing accepts any `SIP/x.y`; validation answers 505
/// for anything but 2.0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Version {
    /// Major number.
    pub major: u32,
    /// Minor number.
    pub minor: u32,
}

impl Version {
    /// SIP/2.0
    pub const SIP_2_0: Version = Version { major: 2, minor: 0 };
}

impl Default for Version {
    fn default() -> Self {
        Version::SIP_2_0
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SIP/{}.{}", self.major, self.minor)
    }
}

/// Typed-accessor shortcuts shared by Request, Response and Message.
macro_rules! typed_shortcuts {
    () => {
        /// The topmost Via value.
        pub fn via_top(&self) -> Result<Via, ParseError> {
            self.headers().via_top()
        }
        /// Every Via value, top first.
        pub fn vias(&self) -> Result<Vec<Via>, ParseError> {
            self.headers().vias()
        }
        /// The CSeq.
        pub fn cseq(&self) -> Result<CSeq, ParseError> {
            self.headers().cseq()
        }
        /// The Call-ID.
        pub fn call_id(&self) -> Result<&str, ParseError> {
            self.headers().call_id()
        }
        /// The From header.
        pub fn from(&self) -> Result<NameAddr, ParseError> {
            self.headers().from()
        }
        /// The To header.
        pub fn to(&self) -> Result<NameAddr, ParseError> {
            self.headers().to()
        }
        /// The From tag.
        pub fn from_tag(&self) -> Result<Option<&str>, ParseError> {
            self.headers().from_tag()
        }
        /// The To tag.
        pub fn to_tag(&self) -> Result<Option<&str>, ParseError> {
            self.headers().to_tag()
        }
        /// Max-Forwards (`None` when absent).
        pub fn max_forwards(&self) -> Result<Option<u32>, ParseError> {
            self.headers().max_forwards()
        }
        /// Every Contact value.
        pub fn contacts(&self) -> Result<Vec<Contact>, ParseError> {
            self.headers().contacts()
        }
        /// Every Route value.
        pub fn routes(&self) -> Result<Vec<NameAddr>, ParseError> {
            self.headers().routes()
        }
        /// Every Record-Route value.
        pub fn record_routes(&self) -> Result<Vec<NameAddr>, ParseError> {
            self.headers().record_routes()
        }
        /// The Content-Length header (`None` when absent).
        pub fn content_length(&self) -> Result<Option<usize>, ParseError> {
            self.headers().content_length()
        }
        /// Serializes into a new buffer (the received bytes if unmodified).
        pub fn to_bytes(&self) -> Bytes {
            match self.raw() {
                Some(raw) => raw.clone(),
                None => {
                    let mut v = Vec::with_capacity(256 + self.body().len());
                    self.write_to(&mut v);
                    Bytes::from(v)
                }
            }
        }
    };
}

/// A SIP request.
#[derive(Clone, Debug)]
pub struct Request {
    method: Method,
    uri: Uri,
    version: Version,
    headers: Headers,
    body: Bytes,
    raw: Option<Bytes>,
}

impl Request {
    /// A request with no headers and an empty body.
    pub fn new(method: Method, uri: Uri) -> Request {
        Request {
            method,
            uri,
            version: Version::SIP_2_0,
            headers: Headers::new(),
            body: Bytes::new(),
            raw: None,
        }
    }

    pub(crate) fn from_parts(
        method: Method,
        uri: Uri,
        version: Version,
        headers: Headers,
        body: Bytes,
        raw: Bytes,
    ) -> Request {
        Request {
            method,
            uri,
            version,
            headers,
            body,
            raw: Some(raw),
        }
    }

    /// The method.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// Sets the method.
    pub fn set_method(&mut self, m: Method) {
        self.raw = None;
        self.method = m;
    }

    /// The Request-URI.
    pub fn uri(&self) -> &Uri {
        &self.uri
    }

    /// Replaces the Request-URI (e.g. a proxy retargeting).
    pub fn set_uri(&mut self, uri: Uri) {
        self.raw = None;
        self.uri = uri;
    }

    /// The SIP version of the request line.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The headers.
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// The headers, for changing (the message then re-serializes instead of echoing its bytes).
    pub fn headers_mut(&mut self) -> &mut Headers {
        self.raw = None;
        &mut self.headers
    }

    /// The body.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// Replaces the body (Content-Length follows on serialization).
    pub fn set_body(&mut self, body: impl Into<Bytes>) {
        self.raw = None;
        self.body = body.into();
    }

    /// The received bytes (without trailing datagram octets), if the message is unmodified.
    pub fn raw(&self) -> Option<&Bytes> {
        self.raw.as_ref()
    }

    /// Appends the wire form to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        if let Some(raw) = &self.raw {
            out.extend_from_slice(raw);
            return;
        }
        out.extend_from_slice(self.method.as_str().as_bytes());
        out.push(b' ');
        out.extend_from_slice(self.uri.as_str().as_bytes());
        out.push(b' ');
        out.extend_from_slice(self.version.to_string().as_bytes());
        out.extend_from_slice(b"\r\n");
        self.headers.write_fields(out, Some(self.body.len()));
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
    }

    typed_shortcuts!();
}

/// A SIP response.
#[derive(Clone, Debug)]
pub struct Response {
    status: StatusCode,
    reason: String,
    version: Version,
    headers: Headers,
    body: Bytes,
    raw: Option<Bytes>,
}

impl Response {
    /// A response with the standard reason phrase, no headers and an empty body.
    pub fn new(status: StatusCode) -> Response {
        Response {
            status,
            reason: status.reason_phrase().to_owned(),
            version: Version::SIP_2_0,
            headers: Headers::new(),
            body: Bytes::new(),
            raw: None,
        }
    }

    pub(crate) fn from_parts(
        status: StatusCode,
        reason: String,
        version: Version,
        headers: Headers,
        body: Bytes,
        raw: Bytes,
    ) -> Response {
        Response {
            status,
            reason,
            version,
            headers,
            body,
            raw: Some(raw),
        }
    }

    /// A response to `req` (RFC 3261 §8.2.6.2): copies every Via (in order), From, To (no tag
    /// is added: the caller adds one with [`Response::set_to_tag`] where needed), Call-ID and
    /// CSeq, and a Timestamp for 100 (§8.2.6.1); `Content-Length: 0`.
    pub fn from_request(req: &Request, status: StatusCode) -> Response {
        let mut r = Response::new(status);
        let h = req.headers();
        let mut copy = |std: Std| {
            for v in h.get_all_std(std) {
                r.headers.push(std.as_str(), v.to_owned());
            }
        };
        copy(Std::Via);
        copy(Std::From);
        copy(Std::To);
        copy(Std::CallId);
        copy(Std::CSeq);
        if status == StatusCode::TRYING {
            copy(Std::Timestamp);
        }
        r.headers.push("Content-Length", "0");
        r
    }

    /// Adds `;tag=<tag>` to the To header if it has no tag yet; returns false if it had one
    /// or there is no parseable To.
    pub fn set_to_tag(&mut self, tag: &str) -> bool {
        match self.headers.to_tag() {
            Ok(None) => {}
            _ => return false,
        }
        let Some(v) = self.headers.get("To") else {
            return false;
        };
        let new = format!("{};tag={}", crate::parse::lex::trim_ws(v), tag);
        self.headers_mut().set_first("To", new)
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The reason phrase as received or set.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// Sets the reason phrase (CR/LF are replaced by spaces).
    pub fn set_reason(&mut self, reason: impl Into<String>) {
        self.raw = None;
        self.reason = reason.into().replace(['\r', '\n'], " ");
    }

    /// The SIP version of the status line.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The headers.
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// The headers, for changing (a proxy removing its Via, for instance).
    pub fn headers_mut(&mut self) -> &mut Headers {
        self.raw = None;
        &mut self.headers
    }

    /// The body.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// Replaces the body (Content-Length follows on serialization).
    pub fn set_body(&mut self, body: impl Into<Bytes>) {
        self.raw = None;
        self.body = body.into();
    }

    /// The received bytes, if the message is unmodified.
    pub fn raw(&self) -> Option<&Bytes> {
        self.raw.as_ref()
    }

    /// Appends the wire form to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        if let Some(raw) = &self.raw {
            out.extend_from_slice(raw);
            return;
        }
        out.extend_from_slice(self.version.to_string().as_bytes());
        out.push(b' ');
        out.extend_from_slice(itoa3(self.status.0).as_bytes());
        out.push(b' ');
        out.extend_from_slice(self.reason.as_bytes());
        out.extend_from_slice(b"\r\n");
        self.headers.write_fields(out, Some(self.body.len()));
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
    }

    typed_shortcuts!();
}

fn itoa3(n: u16) -> String {
    format!("{n:03}")
}

/// A request or a response.
#[derive(Clone, Debug)]
pub enum Message {
    /// A request.
    Request(Request),
    /// A response.
    Response(Response),
}

impl Message {
    /// The headers.
    pub fn headers(&self) -> &Headers {
        match self {
            Message::Request(r) => r.headers(),
            Message::Response(r) => r.headers(),
        }
    }

    /// The headers, for changing.
    pub fn headers_mut(&mut self) -> &mut Headers {
        match self {
            Message::Request(r) => r.headers_mut(),
            Message::Response(r) => r.headers_mut(),
        }
    }

    /// The body.
    pub fn body(&self) -> &Bytes {
        match self {
            Message::Request(r) => r.body(),
            Message::Response(r) => r.body(),
        }
    }

    /// Replaces the body.
    pub fn set_body(&mut self, body: impl Into<Bytes>) {
        match self {
            Message::Request(r) => r.set_body(body),
            Message::Response(r) => r.set_body(body),
        }
    }

    /// The received bytes, if unmodified.
    pub fn raw(&self) -> Option<&Bytes> {
        match self {
            Message::Request(r) => r.raw(),
            Message::Response(r) => r.raw(),
        }
    }

    /// Whether this is a request.
    pub fn is_request(&self) -> bool {
        matches!(self, Message::Request(_))
    }

    /// The request, if this is one.
    pub fn as_request(&self) -> Option<&Request> {
        match self {
            Message::Request(r) => Some(r),
            Message::Response(_) => None,
        }
    }

    /// The response, if this is one.
    pub fn as_response(&self) -> Option<&Response> {
        match self {
            Message::Response(r) => Some(r),
            Message::Request(_) => None,
        }
    }

    /// The start line's SIP version.
    pub fn version(&self) -> Version {
        match self {
            Message::Request(r) => r.version(),
            Message::Response(r) => r.version(),
        }
    }

    /// Appends the wire form to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        match self {
            Message::Request(r) => r.write_to(out),
            Message::Response(r) => r.write_to(out),
        }
    }

    typed_shortcuts!();
}

impl From<Request> for Message {
    fn from(r: Request) -> Self {
        Message::Request(r)
    }
}

impl From<Response> for Message {
    fn from(r: Response) -> Self {
        Message::Response(r)
    }
}

macro_rules! display_bytes {
    ($t:ty) => {
        impl fmt::Display for $t {
            /// The wire form (non-UTF-8 body octets shown lossily).
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&String::from_utf8_lossy(&self.to_bytes()))
            }
        }
    };
}
display_bytes!(Request);
display_bytes!(Response);
display_bytes!(Message);

#[cfg(test)]
mod tests;
