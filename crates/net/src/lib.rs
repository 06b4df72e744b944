//! # sotto-net: transports at the edge
//!
//! SIP over UDP, TCP and TLS (rustls) on tokio (RFC 3261 §18, RFC 5626 §3.5.1, RFC 5630), with
//! stream framing, connection reuse and CRLF keep-alive, on IPv4 and IPv6. Protocol decisions
//! stay in the sans-IO cores: this crate moves bytes and says where they came from.
//!
//! ```text
//!   sotto-sip (sans-IO)  <-- Incoming { data, source, local, transport, connection, tls }
//!                        --> Transport::send(Destination, bytes) / Transport::reply(&incoming, bytes)
//!   Transport            UDP sockets, TCP/TLS listeners, connection table (reuse by id or peer)
//! ```
//!
//! - **UDP:** one datagram is one message; datagrams made only of CRLF (keep-alives) are
//!   ignored; datagrams over [`TransportConfig::max_datagram_bytes`] are dropped.
//! - **TCP/TLS:** messages are delimited by `sotto_sip::parse::frame_stream` (Content-Length
//!   is required on streams, the parser's limits apply). A framing error closes the connection
//!   after logging it. A CRLFCRLF ping is answered with a CRLF pong (RFC 5626 §3.5.1); idle
//!   connections are closed after [`TransportConfig::idle_timeout`].
//! - **Reuse:** a send goes over the connection named in the [`Destination`], else over any
//!   open connection to the same peer and transport, and only then opens a new one
//!   ([`Transport::send`] waits for it, [`Transport::send_nowait`] opens it in the background
//!   and queues the message on it). [`Transport::send_on`] uses the named connection only and
//!   fails at once if it is gone (flows: a client behind NAT cannot be reached by connecting).
//! - **Writes:** a stream send only queues (it never waits: a queue over
//!   [`TransportConfig::max_queued_bytes`] refuses the message), and a connection's task
//!   writes whatever is queued on it with one write and one flush (one run of TLS records,
//!   usually one syscall), up to 64 KiB at a time.
//! - **TLS:** see [`tls`]: TLS 1.2 and 1.3, server certificate verified against a configured
//!   CA, optional or required client certificates, and [`TlsInfo`] exposed on every message.
//!
//! Everything is driven by tokio tasks owned by the [`Transport`]; dropping the last
//! `Transport` handle stops them.

#![forbid(unsafe_code)]

pub mod dns;
mod error;
mod framing;
pub mod interfaces;
mod route;
pub mod tls;
mod transport;

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;

pub use error::Error;
/// The rustls version this crate is built on (for building custom configs).
pub use rustls;
/// The address, transport and connection value types live in the sans-IO SIP core (so no
/// core depends on this IO crate); they are re-exported here for the drivers.
pub use sotto_sip::transport::{ConnectionId, Destination, TransportKind};
pub use tls::{ClientAuth, TlsInfo};
pub use transport::{
    Connecting, IncomingReceiver, Queued, Sent, Transport, TransportConfig, UDP_SEND_QUEUE,
};

/// A message (or what claims to be one) received from the network.
#[derive(Debug, Clone)]
pub struct Incoming {
    /// The raw bytes of exactly one message (one datagram, or one framed stream message).
    pub data: Bytes,
    /// The peer's address.
    pub source: SocketAddr,
    /// The local address it arrived on.
    pub local: SocketAddr,
    /// The transport it arrived over.
    pub transport: TransportKind,
    /// The connection it arrived on (TCP and TLS only).
    pub connection: Option<ConnectionId>,
    /// What the TLS connection negotiated (TLS only), including the peer's certificates.
    pub tls: Option<Arc<TlsInfo>>,
    /// When it arrived: the kernel's receive time of a UDP datagram (so the wait in the
    /// socket buffer counts), the time a stream message was read otherwise. The consumer's
    /// `now - received` is the message's queueing delay, the overload signal.
    pub received: std::time::Instant,
}

impl Incoming {
    /// Parses the message with the SIP parser (`sotto_sip::parse::parse_message`).
    pub fn parse(
        &self,
        limits: &sotto_sip::parse::Limits,
    ) -> Result<sotto_sip::message::Message, sotto_sip::parse::ParseError> {
        sotto_sip::parse::parse_message(self.data.clone(), limits)
    }

    /// The destination that sends a response back the way this message came (RFC 3261
    /// §18.2.2): the same connection if still open, else the source address.
    pub fn reply_destination(&self) -> Destination {
        Destination {
            transport: self.transport,
            remote: self.source,
            connection: self.connection,
            server_name: self.tls.as_ref().and_then(|t| t.server_name.clone()),
        }
    }
}
