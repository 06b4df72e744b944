//! Where SIP messages travel: the transport kinds of RFC 3261 §18, the identity of one
//! TCP/TLS connection, and a destination (address, transport, connection, TLS name). Plain
//! values shared by the sans-IO cores and the IO drivers (`sotto-net` re-exports them).

use std::net::SocketAddr;

/// The transport protocol a message travels over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TransportKind {
    /// UDP (RFC 3261 §18): one datagram, one message.
    Udp,
    /// TCP (RFC 3261 §18): a stream framed by Content-Length.
    Tcp,
    /// TLS over TCP (RFC 3261 §26.2): like TCP, encrypted and authenticated.
    Tls,
}

impl TransportKind {
    /// The token used in a Via header's sent-protocol (`UDP`, `TCP`, `TLS`).
    pub fn via_token(self) -> &'static str {
        match self {
            Self::Udp => "UDP",
            Self::Tcp => "TCP",
            Self::Tls => "TLS",
        }
    }

    /// Lower-case name (`udp`, `tcp`, `tls`), as in a `transport=` URI parameter.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Udp => "udp",
            Self::Tcp => "tcp",
            Self::Tls => "tls",
        }
    }

    /// The transport of a Via sent-protocol token or `transport=` value (`UDP`, `tcp`, `TLS`),
    /// any case; `None` for others (SCTP, WS...).
    pub fn from_token(token: &str) -> Option<Self> {
        match token.to_ascii_uppercase().as_str() {
            "UDP" => Some(Self::Udp),
            "TCP" => Some(Self::Tcp),
            "TLS" => Some(Self::Tls),
            _ => None,
        }
    }

    /// Whether this is a stream transport (TCP or TLS).
    pub fn is_stream(self) -> bool {
        !matches!(self, Self::Udp)
    }
}

/// Identifies one TCP or TLS connection for the life of a [`Transport`]; never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId(pub u64);

/// Where to send a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// The transport to use.
    pub transport: TransportKind,
    /// The peer's address.
    pub remote: SocketAddr,
    /// A connection to use if it is still open (TCP and TLS only); [`Transport::send_on`]
    /// uses this one or none.
    pub connection: Option<ConnectionId>,
    /// For a new TLS connection: the name to verify the server certificate against (DNS name
    /// or IP address). Defaults to the IP address of `remote`.
    pub server_name: Option<String>,
}

impl Destination {
    /// A destination by transport and address, with no connection or server name preference.
    pub fn new(transport: TransportKind, remote: SocketAddr) -> Self {
        Self {
            transport,
            remote,
            connection: None,
            server_name: None,
        }
    }
}
