//! SIP transactions (RFC 3261 §17, with the RFC 6026 "Accepted" states), sans-IO.
//!
//! Four state machines, each fed with messages and time and drained of what to send:
//!
//! - [`ClientTransaction`]: INVITE client (§17.1.1: Timers A, B, D; ACK for non-2xx built here;
//!   2xx passed up, the TU sends its ACK; RFC 6026 Timer M) and non-INVITE client (§17.1.2:
//!   Timers E, F, K).
//! - [`ServerTransaction`]: INVITE server (§17.2.1: 100 Trying after 200 ms of TU silence,
//!   Timers G, H, I; RFC 6026 Accepted state with Timer L) and non-INVITE server (§17.2.2:
//!   Timer J).
//! - [`TransactionLayer`]: the table that matches incoming messages to transactions
//!   (§17.1.3, §17.2.3 with the RFC 2543 fallback), reports new requests as [`Incoming`],
//!   answers merged requests with 482 (§8.2.2.2) and CANCELs with 200 or 481 (§9.2).
//!
//! Reliable transports skip the retransmission timers (A, E, G) and use zero D, I, J, K.
//!
//! ## Under load
//!
//! Most of a busy table is transactions that only absorb retransmissions (a non-INVITE server
//! transaction waits out Timer J, 32 s over UDP). Those keep only their key, deadline and final
//! response bytes (the request and the timer state are dropped), and when the table is full
//! the oldest of them are evicted first ([`TransactionLayer::evicted`]); new transactions are
//! refused only when live ones fill it.
//!
//! ## Driving contract
//!
//! After every `handle_*` call (a message, a TU response, a timeout), drain `poll_transmit()`
//! and `poll_event()` until `None`, then arm one timer at `poll_timeout()`. Nothing here
//! reads a clock: `now` is always passed in, so tests run on a virtual clock.

mod client;
mod index;
mod key;
mod layer;
mod server;

pub use client::{ClientEvent, ClientState, ClientTransaction};
pub use key::{ClientKey, ServerKey};
pub use layer::{Incoming, LayerConfig, LayerEvent, Received, TransactionId, TransactionLayer};
pub use server::{ServerEvent, ServerState, ServerTransaction};

use bytes::Bytes;
use std::time::Duration;

/// RFC 3261 timer base values (§17.1.1.1, Table 4). `Default` gives the RFC values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerConfig {
    /// RTT estimate, 500 ms.
    pub t1: Duration,
    /// Maximum retransmission interval for non-INVITE requests and INVITE responses, 4 s.
    pub t2: Duration,
    /// Maximum time a message stays in the network, 5 s.
    pub t4: Duration,
    /// Timer D on unreliable transports (at least 32 s).
    pub timer_d: Duration,
    /// How long an INVITE server transaction waits for the TU before sending 100 Trying
    /// itself (§17.2.1: 200 ms).
    pub trying_delay: Duration,
}

impl Default for TimerConfig {
    fn default() -> Self {
        TimerConfig {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
            timer_d: Duration::from_secs(32),
            trying_delay: Duration::from_millis(200),
        }
    }
}

impl TimerConfig {
    /// 64·T1: Timers B, F, H, J (unreliable), L and M.
    pub fn t1_x64(&self) -> Duration {
        self.t1.saturating_mul(64)
    }
}

/// A message to send, already serialized. Retransmissions share the first send's buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// The wire bytes.
    pub bytes: Bytes,
    /// Whether this repeats an earlier transmission (retransmission timer or absorbed
    /// retransmitted request).
    pub retransmission: bool,
}

/// Errors of the transaction API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransactionError {
    /// The message lacks a parseable top Via.
    #[error("missing or invalid Via")]
    InvalidVia,
    /// A client transaction needs an RFC 3261 branch (magic cookie `z9hG4bK`).
    #[error("branch lacks the z9hG4bK magic cookie")]
    NotRfc3261Branch,
    /// The message lacks a parseable CSeq, Call-ID or From.
    #[error("missing or invalid {0}")]
    InvalidHeader(&'static str),
    /// ACK never creates a client transaction (§17.1: the TU sends ACK for 2xx directly).
    #[error("ACK does not create a transaction")]
    AckNotAllowed,
    /// A response was given that the transaction's state does not allow (e.g. after a
    /// final response, or a 1xx to a non-INVITE in Completed).
    #[error("response not allowed in this transaction state")]
    InvalidState,
    /// The response or request does not belong to this transaction.
    #[error("message does not match this transaction")]
    NotMatching,
    /// The transaction id is not (or no longer) in the layer.
    #[error("unknown transaction")]
    UnknownTransaction,
    /// The layer holds [`LayerConfig::max_transactions`] already.
    #[error("too many transactions")]
    TooManyTransactions,
}

#[cfg(test)]
mod tests;
