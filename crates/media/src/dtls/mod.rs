//! DTLS-SRTP (RFC 5763, RFC 5764): SRTP keyed by a DTLS handshake on the media path, its
//! certificates authenticated by the fingerprints of the SDP.
//!
//! - [`fingerprint`]: `a=fingerprint` and `a=setup`.
//! - [`exchange`]: [`DtlsExchange`], the key exchange behind [`crate::keyx::MediaKeyExchange`].
//!
//! The handshake itself is the crypto provider's ([`sotto_crypto::dtls`]); this module keeps
//! the roles, the retransmission timers, the fingerprint check and the keys.

pub mod exchange;
pub mod fingerprint;

pub use exchange::DtlsExchange;
pub use fingerprint::{Fingerprint, Setup};
