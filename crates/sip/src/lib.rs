//! # sotto-sip: the sans-IO SIP core
//!
//! RFC 3261 messages, parsing and serialization (`message`, `parse`), semantic validation that
//! names the status code owed (`validate`), client and server transactions driven by bytes and
//! time (`transaction`), and HTTP digest authentication for SIP (`digest`, RFC 7616 / RFC 8760).
//!
//! No sockets, no async, no clock: every state machine takes `now: Instant` and returns what to
//! send and when to wake up. IO lives in `sotto-net`.

#![forbid(unsafe_code)]

pub mod digest;
pub mod message;
pub mod parse;
pub mod transaction;
pub mod validate;
