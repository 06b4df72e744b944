//! # sotto-agent: the user agent
//!
//! The Linphone role as a library: register over TLS to an outbound proxy, place and answer
//! calls, negotiate SRTP keyed by SDES, and report exactly how every call is protected.
//! Direct calls go over TLS straight to an IP address (`sips:bob@127.0.0.1:5072`), and an
//! optional direct TLS listener takes calls from trusted hosts. Direct calls over UDP
//! (`sip:bob@127.0.0.1:5072`) carry SDES only under the insecure, loudly reported override
//! `[danger] sdes_without_tls` ([`config::DangerSection`]).
//!
//! - [`config`]: the account file (`agent.toml`) model; `Default`s are the secure choices.
//! - [`UserAgent`] ([`ua`]): the sans-IO core. Registration (RFC 3261 §10, RFC 5626
//!   outbound with `+sip.instance` and `reg-id`, refresh at half the granted lifetime),
//!   digest (RFC 8760, SHA-256 preferred), calls and dialogs (RFC 3261 §12–§15),
//!   offer/answer through `sotto-sdp`, ghost-call protection.
//! - [`policy`]: every encryption and trust decision (ghost calls, SDES needs TLS, the
//!   encryption mode), and the security report built from them.
//! - [`security`]: the `call_security` report.
//! - [`message`]: the message encryption engine seam (messages and files), pass-through for
//!   now.
//! - [`media`]: glue from a negotiated stream (`sotto-sdp`) to the RTP session and SRTP engine
//!   (`sotto-media`); sans-IO as well.
//! - [`driver`]: the only file with IO: tokio, `sotto-net` transports, RTP sockets, WAV files.
//!
//! The cores take `now: Instant` and never read a clock (enforced by `clippy.toml`).

#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod call;
pub mod config;
pub mod driver;
mod keying;
pub mod media;
pub mod message;
pub mod policy;
pub mod sdes;
pub mod security;
pub mod ua;

pub use call::{CallId, CallState, Role};
pub use config::{AccountConfig, ConfigError, DangerSection, Encryption};
pub use security::{SecurityReport, TlsSummary};
pub use ua::{Flow, Outgoing, UaConfig, UaError, UaEvent, UserAgent};
