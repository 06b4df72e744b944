//! # sotto-sip: the sans-IO SIP core
//!
//! RFC 3261 messages, parsing and serialization (`message`, `parse`), semantic validation that
//! names the status code owed (`validate`), client and server transactions driven by bytes and
//! time (`transaction`), and HTTP digest authentication for SIP (`digest`, RFC 7616 / RFC 8760).
//!
//! No sockets, no async, no clock: every state machine takes `now: Instant` and returns what to
//! send and when to wake up. IO lives in `sotto-net`.
//!
//! ```
//! use sotto_sip::parse::{parse_message, Limits};
//! use sotto_sip::validate::{validate, Policy};
//!
//! let bytes = bytes::Bytes::from_static(
//!     b"OPTIONS sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK1\r\n\
//!       To: <sip:bob@example.com>\r\nFrom: <sip:alice@example.com>;tag=1\r\nCall-ID: c1\r\n\
//!       CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
//! );
//! let msg = parse_message(bytes.clone(), &Limits::default()).unwrap();
//! validate(&msg, &Policy::default()).unwrap();
//! assert_eq!(msg.cseq().unwrap().seq, 1);
//! assert_eq!(msg.to_bytes(), bytes); // unmodified: byte for byte
//! ```

#![forbid(unsafe_code)]

pub mod dialog;
pub mod digest;
pub mod message;
pub mod parse;
pub mod resolve;
pub mod transaction;
pub mod transport;
pub mod validate;

pub use message::{Message, Method, Request, Response, StatusCode, Uri};
pub use parse::{Limits, ParseError};
pub use validate::ValidationError;

/// The crate's error: why a message could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The bytes are not a SIP message (framing, syntax, limits).
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// The message parsed but breaks a rule of meaning.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
}

impl Error {
    /// The response a server owes for a request that failed this way (`None` for responses
    /// or when the message must just be dropped).
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Parse(e) => e.status(),
            Error::Invalid(e) => e.status(),
        }
    }
}
