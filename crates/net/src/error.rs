//! The crate's error type.

use std::net::SocketAddr;

use crate::{ConnectionId, TransportKind};

/// Errors of the transport layer. Whose fault it is shows in the variant: local setup
/// (`Io`, `Pem`, `Tls`, `Verifier`, `NoTlsClientConfig`, `NoUdpSocket`), the caller
/// (`TooLarge`, `InvalidServerName`), or the network and peer (`Connect`, `Handshake`,
/// `ConnectionClosed`, `NoConnection`, `QueueFull`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A socket or file operation failed.
    #[error("I/O error: {0}")]
    Io(#[source] std::io::Error),
    /// A PEM file or buffer held no usable certificate or key.
    #[error("PEM error: {0:?}")]
    Pem(rustls_pki_types::pem::Error),
    /// rustls refused a certificate, key or configuration.
    #[error("TLS configuration error: {0}")]
    Tls(#[source] rustls::Error),
    /// The client-certificate verifier could not be built from the given CA.
    #[error("client certificate verifier: {0}")]
    Verifier(#[source] rustls::server::VerifierBuilderError),
    /// A TLS destination was given but no TLS client config was configured.
    #[error("no TLS client configuration: cannot open a TLS connection")]
    NoTlsClientConfig,
    /// No UDP socket of the destination's address family is bound.
    #[error("no UDP socket bound for the address family of {0}")]
    NoUdpSocket(SocketAddr),
    /// The message is larger than the configured maximum for its transport.
    #[error("message of {len_bytes} bytes exceeds the {max_bytes}-byte limit")]
    TooLarge {
        /// Size of the message.
        len_bytes: usize,
        /// The configured maximum.
        max_bytes: usize,
    },
    /// The TLS server name is neither a DNS name nor an IP address.
    #[error("invalid TLS server name")]
    InvalidServerName,
    /// Opening a TCP connection failed or timed out.
    #[error("connecting over {transport:?} to {remote} failed: {source}")]
    Connect {
        /// The transport that was attempted.
        transport: TransportKind,
        /// The destination.
        remote: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The TLS handshake failed (e.g. the server certificate did not verify) or timed out.
    #[error("TLS handshake with {remote} failed: {source}")]
    Handshake {
        /// The peer.
        remote: SocketAddr,
        /// The cause (a rustls error wrapped in `io::Error`, or a timeout).
        #[source]
        source: std::io::Error,
    },
    /// The connection closed before the message could be queued, and no other was usable.
    #[error("connection {0:?} is closed")]
    ConnectionClosed(ConnectionId),
    /// [`crate::Transport::send_on`]: the named connection is gone (or names another peer,
    /// or none was named), and that send does not use another or open a new one. A proxy
    /// answers 430 Flow Failed (RFC 5626 §5.3) or tries its next branch.
    #[error("no open {transport:?} connection {connection:?} to {remote} (not reconnecting)")]
    NoConnection {
        /// The transport of the destination.
        transport: TransportKind,
        /// The peer.
        remote: SocketAddr,
        /// The connection that was named.
        connection: Option<ConnectionId>,
    },
    /// The connection's queue of messages to write holds more than
    /// [`crate::TransportConfig::max_queued_bytes`]: its peer does not keep up.
    #[error("the queue of connection {connection:?} is full ({queued_bytes} bytes)")]
    QueueFull {
        /// The connection.
        connection: ConnectionId,
        /// Bytes waiting in its queue.
        queued_bytes: usize,
    },
    /// The connection table is full.
    #[error("too many connections (limit {0})")]
    TooManyConnections(usize),
}
