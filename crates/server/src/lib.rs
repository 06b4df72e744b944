//! # sotto-server: the registrar and stateful proxy
//!
//! The Flexisip role, secure by default: a SIP registrar (RFC 3261 §10, RFC 5626, RFC 5627)
//! and stateful proxy (RFC 3261 §16) built as a chain of small modules, one file each
//! ([`modules`]): anti_flood → sanity → authentication → registrar → router → forward. Each
//! returns a [`pipeline::Verdict`]: `Continue`, `Reply`, `Forward` or `Drop`.
//!
//! ```text
//!  bytes ─► Proxy (sans-IO) ─► TransactionLayer ─► Pipeline ─► Reply / Forward (forks)
//!  driver.rs (tokio): sotto_net::Transport ⇄ Proxy, timers, shutdown
//! ```
//!
//! - [`proxy::Proxy`] is sans-IO: `handle_packet(packet, now, wall)`, `handle_timeout(now)`,
//!   `poll_transmit()`, `poll_event()`, `poll_timeout()`. Unit tests drive it on virtual time.
//! - [`driver`] glues a `sotto_net::Transport` to the proxy (and stops gracefully);
//!   [`metrics`] counts what happens and serves it to Prometheus. Nothing else is async.
//! - Stores are `sotto_store`'s traits ([`sotto_store::UserStore`],
//!   [`sotto_store::BindingStore`]); the binary chooses SQLite or memory.
//! - Media is never touched: bodies are forwarded byte for byte; SDES keys (`a=crypto`) are
//!   never forwarded over a non-TLS hop, and TLS↔plain downgrades are refused by default.

#![forbid(unsafe_code)]

mod branch;
pub mod config;
pub mod driver;
pub use driver::metrics;
pub mod identity;
pub mod lime_service;
pub mod locality;
pub mod modules;
pub mod pipeline;
pub mod proxy;
pub mod store_ops;

pub use config::ServerConfig;
pub use proxy::{Outcome, Packet, Proxy, ProxyEvent, Transmit};

/// Why the server could not be built or run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The crypto provider failed (nonce secret, RNG).
    #[error("crypto provider failed")]
    Crypto,
}
