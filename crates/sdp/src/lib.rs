//! # sotto-sdp: session descriptions, offer/answer and SDES keys
//!
//! A sans-IO core: no sockets, no clock, no thread RNG. Random keys come from the caller's
//! [`sotto_crypto::rng::SecureRandom`].
//!
//! - [`Session`] (RFC 8866): parse with [`Session::parse`] (tolerant of LF-only line ends,
//!   strict on structure, bounded by [`Limits`], errors name the line and the fault);
//!   serialize with [`Session::to_sdp`] (CRLF). Unknown lines and attributes are kept
//!   byte-for-byte, so an unmodified CRLF description round-trips to identical bytes.
//! - Typed attributes in [`attr`]: `rtpmap`, `fmtp`, `ptime`, direction, `rtcp`, `rtcp-mux`,
//!   `crypto` (RFC 4568), `zrtp-hash` (RFC 6189), `fingerprint` and `setup` (RFC 8122/4145).
//! - Offer/answer (RFC 3264) in [`negotiate`], whatever keys the media: [`offer`],
//!   [`answer_with`] and [`answered`], one [`StreamOutcome`] per `m=` line (video declined
//!   with port 0 until sotto has it).
//! - SDES keying (RFC 4568) in [`sdes`]: the `a=crypto` lines of offers and answers, and whole
//!   SDES exchanges [`create_offer`], [`answer`], [`process_answer`], under a media
//!   encryption policy whose default is mandatory.
//! - [`sdes_present`]: does a body carry SDES keys (for proxies that must refuse them over a
//!   hop that is not TLS)?
//!
//! ```
//! use sotto_sdp::Session;
//! let body = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
//!              m=audio 7100 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";
//! let s = Session::parse(body).unwrap();
//! assert_eq!(s.media[0].port, 7100);
//! assert_eq!(s.to_sdp().unwrap().as_bytes(), &body[..]);
//! ```

#![forbid(unsafe_code)]

pub mod attr;
pub mod emit;
pub mod model;
pub mod negotiate;
pub mod parse;
pub mod scan;
pub mod sdes;

pub use attr::crypto::{Crypto, KeyParam, Lifetime, Mki, SdesSuite, SessionParam};
pub use attr::{AttributeError, Direction, Fingerprint, Fmtp, Rtcp, Rtpmap, Setup, ZrtpHash};
pub use emit::EmitError;
pub use model::{Attribute, Bandwidth, Connection, Media, Origin, Session, Timing};
pub use negotiate::{
    Answer, Codec, EncryptionMode, EncryptionPolicy, Keying, LocalCapabilities, NegotiatedMedia,
    Refusal, StreamOutcome, answer_with, answered, audio_stream, offer,
};
pub use parse::{Limits, ParseError, ParseErrorKind};
pub use scan::sdes_present;
pub use sdes::{SdesKeys, answer, create_offer, process_answer};

/// Every error of this crate.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The description could not be parsed (malformed; the peer's fault).
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// The description could not be serialized (API misuse).
    #[error(transparent)]
    Emit(#[from] EmitError),
    /// An attribute value is malformed or unsupported.
    #[error(transparent)]
    Attribute(#[from] AttributeError),
    /// Offer/answer refused (maps to a SIP status and Warning).
    #[error(transparent)]
    Refused(#[from] Refusal),
}
