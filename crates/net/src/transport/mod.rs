//! The tokio driver: UDP sockets, TCP/TLS listeners, outbound connections and the connection
//! table (RFC 3261 §18, RFC 5626 §3.5.1 keep-alive, connection reuse per RFC 3261 §18.2.2 and
//! RFC 5923/5626 flows). It moves bytes only; what they mean is decided above.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use rustls_pki_types::ServerName;
use sotto_sip::parse::Limits;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::{Instant, sleep_until, timeout};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::framing::{Frame, next_frame};
use crate::{ConnectionId, Destination, Error, Incoming, TlsInfo, TransportKind};

mod queue;
mod stream;
mod table;
mod udp;

use queue::{Inbox, Outbox, PushError};
use stream::accept_loop;
use table::lock;
use udp::{udp_loop, udp_send_thread};

/// Settings of a [`Transport`]. `Default` gives conservative limits and no TLS client.
#[derive(Debug, Clone)]
pub struct TransportConfig {
    /// Largest UDP datagram accepted or sent; larger ones are dropped (received) or refused.
    pub max_datagram_bytes: usize,
    /// Parser limits for stream framing; `max_message_bytes` also bounds what is sent on a
    /// stream. A peer exceeding them is disconnected.
    pub limits: Limits,
    /// A TCP/TLS connection with no traffic in either direction for this long is closed.
    pub idle_timeout: Duration,
    /// Bound on a TCP connect plus TLS handshake, inbound or outbound.
    pub handshake_timeout: Duration,
    /// Inbound TLS handshakes running at once (per listener); a connection arriving beyond
    /// them is closed at once (handshakes cost CPU: a flood of them must not starve the rest).
    pub max_handshakes: usize,
    /// Most of those from one source address (its clients' handshakes come one at a time;
    /// a flood of connections that never start theirs would otherwise hold every one).
    pub max_handshakes_per_source: usize,
    /// Bound on writing one message to a stream; a stuck peer is disconnected.
    pub write_timeout: Duration,
    /// Most TCP/TLS connections open at once; new ones beyond it are refused.
    pub max_connections: usize,
    /// Most inbound TCP/TLS connections (open or still in their TLS handshake) from one
    /// source address; new ones beyond it are closed at once, so that one source cannot take
    /// every slot from the others.
    pub max_connections_per_source: usize,
    /// Capacity of the queue of received messages (back-pressure on the sockets when full).
    pub incoming_queue: usize,
    /// Receive buffer asked of the kernel for each UDP socket (SO_RCVBUF, capped by the
    /// system's `net.core.rmem_max`); `None`: the system default (about 200 KB on Linux,
    /// a few milliseconds of a busy server's work: a burst beyond it is lost and comes back
    /// as retransmissions).
    pub udp_receive_buffer: Option<usize>,
    /// An inbound TCP/TLS connection over which no authenticated request
    /// ([`Transport::mark_authenticated`]) came within this time of its accept is closed;
    /// `None`: no such deadline (only the idle timeout).
    pub unauthenticated_timeout: Option<Duration>,
    /// Most bytes waiting to be written to one TCP/TLS connection. A send never waits for
    /// room: beyond this, it fails with [`Error::QueueFull`] (a peer that stops reading cannot
    /// stall the sender, and is disconnected after [`TransportConfig::write_timeout`]).
    pub max_queued_bytes: usize,
    /// Client config for outbound TLS connections (see [`crate::tls::client_config`]);
    /// without it, sending to a TLS destination with no open connection fails.
    pub tls_client: Option<Arc<rustls::ClientConfig>>,
    /// Send UDP datagrams from one OS thread per UDP socket instead of the async task that
    /// asks to send: the caller only queues (up to [`UDP_SEND_QUEUE`] datagrams, then it sends
    /// inline). A busy server's sans-IO loop then shares no core with `sendto` (which, on
    /// loopback, also pays for delivering to the receiver). A datagram that the kernel refuses
    /// is then logged rather than reported to the caller. Default off.
    pub udp_send_thread: bool,
}

impl Default for TransportConfig {
    fn default() -> Self {
        Self {
            max_datagram_bytes: 65_507,
            limits: Limits::default(),
            idle_timeout: Duration::from_secs(300),
            handshake_timeout: Duration::from_secs(10),
            max_handshakes: 256,
            max_handshakes_per_source: 64,
            write_timeout: Duration::from_secs(10),
            max_connections: 1024,
            max_connections_per_source: 256,
            incoming_queue: 1024,
            udp_receive_buffer: None,
            max_queued_bytes: 1 << 20,
            unauthenticated_timeout: None,
            tls_client: None,
            udp_send_thread: false,
        }
    }
}

/// What [`Transport::send`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    /// The connection the message was queued on (TCP and TLS).
    pub connection: Option<ConnectionId>,
    /// The local address it leaves from (`0.0.0.0:0` if it was queued on a connection that
    /// [`Transport::send_nowait`] is still opening).
    pub local: SocketAddr,
    /// Whether an already open connection was reused (false for UDP and new connections).
    pub reused: bool,
}

/// What [`Transport::send_nowait`] did.
#[derive(Debug)]
pub enum Queued {
    /// Sent over UDP, or queued on a connection that is open or already being opened (as by
    /// [`Transport::send`]).
    Sent(Sent),
    /// A new connection is being opened in the background and the message waits on it; the
    /// [`Connecting`] says whether that worked.
    Connecting(Connecting),
}

/// A connection being opened in the background by [`Transport::send_nowait`].
#[derive(Debug)]
pub struct Connecting {
    /// The new connection's id (later sends to the same peer queue on it).
    pub connection: ConnectionId,
    result: oneshot::Receiver<Result<SocketAddr, Error>>,
}

impl Connecting {
    /// Waits until the connection is open (the queued message is then written) or failed
    /// (connect or handshake error or timeout, bounded by
    /// [`TransportConfig::handshake_timeout`]); what was queued on a failed connection is
    /// dropped.
    pub async fn outcome(self) -> Result<Sent, Error> {
        let connection = self.connection;
        let local = self
            .result
            .await
            .map_err(|_| Error::ConnectionClosed(connection))??;
        Ok(Sent {
            connection: Some(connection),
            local,
            reused: false,
        })
    }
}

/// The receiving end of a [`Transport`]: every message from every socket and connection.
#[derive(Debug)]
pub struct IncomingReceiver {
    rx: mpsc::Receiver<Incoming>,
}

impl IncomingReceiver {
    /// The next received message; `None` once the transport has stopped.
    pub async fn recv(&mut self) -> Option<Incoming> {
        self.rx.recv().await
    }

    /// Whether no received message is waiting (the next [`IncomingReceiver::recv`] would
    /// wait): a consumer can defer bookkeeping while a burst is queued.
    pub fn is_empty(&self) -> bool {
        self.rx.is_empty()
    }

    /// How many received messages are waiting: how far the consumer is behind.
    pub fn len(&self) -> usize {
        self.rx.len()
    }

    /// The next received message if one is already waiting (never waits): lets a consumer
    /// handle a queued burst in one step.
    pub fn try_recv(&mut self) -> Option<Incoming> {
        self.rx.try_recv().ok()
    }
}

/// A handle on the transport layer: bind sockets, send messages. Clones share one layer; when
/// the last clone is dropped, every socket, listener and connection task stops.
#[derive(Debug, Clone)]
pub struct Transport {
    shared: Arc<Shared>,
    _stop: Arc<watch::Sender<()>>,
}

#[derive(Debug)]
struct Shared {
    config: TransportConfig,
    incoming: mpsc::Sender<Incoming>,
    udp: Mutex<Vec<UdpEndpoint>>,
    table: Mutex<Table>,
    next_id: AtomicU64,
    stop: watch::Receiver<()>,
}

/// A bound UDP socket, and the queue of its sending thread when
/// [`TransportConfig::udp_send_thread`] is on.
#[derive(Debug, Clone)]
struct UdpEndpoint {
    local: SocketAddr,
    socket: Arc<UdpSocket>,
    sender: Option<std::sync::mpsc::SyncSender<(Bytes, SocketAddr)>>,
}

/// Datagrams queued for a UDP sending thread before senders fall back to sending inline.
pub const UDP_SEND_QUEUE: usize = 8192;

#[derive(Debug, Default)]
struct Table {
    conns: HashMap<ConnectionId, Conn>,
    by_peer: HashMap<(TransportKind, SocketAddr), ConnectionId>,
    /// Inbound connections held (from accept to close) per source address.
    sources: HashMap<std::net::IpAddr, usize>,
    /// Inbound TLS handshakes under way per source address.
    handshaking: HashMap<std::net::IpAddr, usize>,
}

#[derive(Debug)]
struct Conn {
    kind: TransportKind,
    remote: SocketAddr,
    local: SocketAddr,
    tx: Outbox,
    /// An authenticated request came over it.
    authenticated: Arc<std::sync::atomic::AtomicBool>,
}

/// Identity of one connection, given to its task.
#[derive(Debug, Clone)]
struct ConnMeta {
    id: ConnectionId,
    kind: TransportKind,
    remote: SocketAddr,
    local: SocketAddr,
    tls: Option<Arc<TlsInfo>>,
    /// An inbound connection's deadline to be authenticated by, and its flag.
    auth_deadline: Option<(Instant, Arc<std::sync::atomic::AtomicBool>)>,
}

/// Most bytes gathered from a connection's queue into one write (one TLS write and flush,
/// usually one syscall, instead of one per message).
const COALESCE_BYTES: usize = 64 * 1024;
/// The local address of a connection still being opened.
const UNSPECIFIED: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 0);
/// Read granularity of stream connections: what an idle connection holds for its next read.
/// Most SIP messages fit; a larger one takes a few reads.
const READ_CHUNK_BYTES: usize = 2048;

impl Transport {
    /// An authenticated request came over connection `id`: it is no longer held to
    /// [`TransportConfig::unauthenticated_timeout`].
    pub fn mark_authenticated(&self, id: ConnectionId) {
        if let Some(c) = lock(&self.shared.table).conns.get(&id) {
            c.authenticated.store(true, Ordering::Relaxed);
        }
    }

    /// A transport with no sockets yet, and the receiver of everything it will receive.
    pub fn new(config: TransportConfig) -> (Self, IncomingReceiver) {
        let (tx, rx) = mpsc::channel(config.incoming_queue.max(1));
        let (stop_tx, stop_rx) = watch::channel(());
        let shared = Arc::new(Shared {
            config,
            incoming: tx,
            udp: Mutex::new(Vec::new()),
            table: Mutex::new(Table::default()),
            next_id: AtomicU64::new(1),
            stop: stop_rx,
        });
        (
            Self {
                shared,
                _stop: Arc::new(stop_tx),
            },
            IncomingReceiver { rx },
        )
    }

    /// Binds a UDP socket (e.g. `127.0.0.1:5060`, `[::1]:0`) and returns its bound address.
    pub async fn bind_udp(&self, addr: SocketAddr) -> Result<SocketAddr, Error> {
        let std_socket = std::net::UdpSocket::bind(addr).map_err(Error::Io)?;
        std_socket.set_nonblocking(true).map_err(Error::Io)?;
        // The kernel stamps each datagram as it arrives (Incoming::received): a datagram's
        // wait in the socket buffer is then known. Without it, the time it was read stands in.
        if let Err(e) = nix::sys::socket::setsockopt(
            &std_socket,
            nix::sys::socket::sockopt::ReceiveTimestampns,
            &true,
        ) {
            tracing::debug!(error = %e, "no kernel receive timestamps on UDP");
        }
        if let Some(size) = self.shared.config.udp_receive_buffer {
            let sock = socket2::SockRef::from(&std_socket);
            // The kernel caps the size silently: a smaller buffer is not an error.
            if let Err(e) = sock.set_recv_buffer_size(size) {
                tracing::warn!(error = %e, size, "UDP receive buffer not set");
            }
            tracing::debug!(
                asked = size,
                got = sock.recv_buffer_size().unwrap_or(0),
                "UDP receive buffer"
            );
        }
        let local = std_socket.local_addr().map_err(Error::Io)?;
        let sender = if self.shared.config.udp_send_thread {
            let (tx, rx) = std::sync::mpsc::sync_channel(UDP_SEND_QUEUE);
            let thread_socket = std_socket.try_clone().map_err(Error::Io)?;
            std::thread::Builder::new()
                .name(format!("sotto-udp-send {local}"))
                .spawn(move || udp_send_thread(thread_socket, rx))
                .map_err(Error::Io)?;
            Some(tx)
        } else {
            None
        };
        let socket = Arc::new(UdpSocket::from_std(std_socket).map_err(Error::Io)?);
        lock(&self.shared.udp).push(UdpEndpoint {
            local,
            socket: socket.clone(),
            sender,
        });
        tokio::spawn(udp_loop(self.shared.clone(), socket, local));
        Ok(local)
    }

    /// Listens for TCP connections and returns the bound address.
    pub async fn listen_tcp(&self, addr: SocketAddr) -> Result<SocketAddr, Error> {
        let listener = TcpListener::bind(addr).await.map_err(Error::Io)?;
        let local = listener.local_addr().map_err(Error::Io)?;
        tokio::spawn(accept_loop(self.shared.clone(), listener, local, None));
        Ok(local)
    }

    /// Listens for TLS connections with `config` (see [`crate::tls::server_config`]) and
    /// returns the bound address.
    pub async fn listen_tls(
        &self,
        addr: SocketAddr,
        config: Arc<rustls::ServerConfig>,
    ) -> Result<SocketAddr, Error> {
        let listener = TcpListener::bind(addr).await.map_err(Error::Io)?;
        let local = listener.local_addr().map_err(Error::Io)?;
        let acceptor = TlsAcceptor::from(config);
        tokio::spawn(accept_loop(
            self.shared.clone(),
            listener,
            local,
            Some(acceptor),
        ));
        Ok(local)
    }

    /// Sends one message. Over TCP/TLS it reuses, in order: the connection named in `dest`,
    /// any open connection to the same peer over the same transport, and only then opens a
    /// new one (and waits for it: see [`Transport::send_nowait`] for a send that does not).
    /// Over UDP it uses the bound socket of the destination's address family.
    ///
    /// For streams, success means the message is queued on the connection; a later write
    /// failure closes the connection (and is logged). A connection whose queue holds more
    /// than [`TransportConfig::max_queued_bytes`] refuses it ([`Error::QueueFull`]).
    pub async fn send(&self, dest: &Destination, data: Bytes) -> Result<Sent, Error> {
        match self.send_nowait(dest, data).await? {
            Queued::Sent(sent) => Ok(sent),
            Queued::Connecting(c) => c.outcome().await,
        }
    }

    /// Like [`Transport::send`], but never waits for a connect or TLS handshake: when a new
    /// connection is needed, it is entered in the connection table at once (so later sends to
    /// the same peer queue behind this one, in order), the message is queued on it, and the
    /// connect and handshake run in a task of their own. The caller learns whether that
    /// worked from [`Queued::Connecting`], when it wants to. Over streams it never waits
    /// (a full queue is [`Error::QueueFull`]); over UDP it waits for the socket.
    pub async fn send_nowait(&self, dest: &Destination, data: Bytes) -> Result<Queued, Error> {
        match dest.transport {
            TransportKind::Udp => Ok(Queued::Sent(self.send_udp(dest.remote, None, data).await?)),
            TransportKind::Tcp | TransportKind::Tls => self.send_stream(dest, data).await,
        }
    }

    /// Sends over the connection named in `dest` only (RFC 5626 flows, a registration's
    /// connection, a response on the connection its request came over): never over another
    /// connection and never over a new one, since a client behind NAT cannot be reached by
    /// connecting to its address. Fails at once with [`Error::NoConnection`] when that
    /// connection is gone, is not a `dest.transport` connection to `dest.remote`, or when
    /// `dest` names none. Over UDP it is [`Transport::send`].
    pub async fn send_on(&self, dest: &Destination, data: Bytes) -> Result<Sent, Error> {
        if dest.transport == TransportKind::Udp {
            return self.send_udp(dest.remote, None, data).await;
        }
        self.check_stream_size(&data)?;
        let no_connection = || Error::NoConnection {
            transport: dest.transport,
            remote: dest.remote,
            connection: dest.connection,
        };
        let id = dest.connection.ok_or_else(no_connection)?;
        let found = {
            let table = lock(&self.shared.table);
            table
                .conns
                .get(&id)
                .filter(|c| c.kind == dest.transport && c.remote == dest.remote)
                .map(|c| (c.local, c.tx.clone()))
        };
        let (local, tx) = found.ok_or_else(no_connection)?;
        match tx.push(data, self.shared.config.max_queued_bytes) {
            Ok(()) => {}
            Err(PushError::Closed(_)) => return Err(no_connection()),
            Err(PushError::Full(_)) => return Err(self.queue_full(id, &tx)),
        }
        Ok(Sent {
            connection: Some(id),
            local,
            reused: true,
        })
    }

    /// Sends a response back the way `incoming` came (RFC 3261 §18.2.2): on its connection,
    /// or from the UDP socket it arrived on.
    pub async fn reply(&self, incoming: &Incoming, data: Bytes) -> Result<Sent, Error> {
        match incoming.transport {
            TransportKind::Udp => {
                self.send_udp(incoming.source, Some(incoming.local), data)
                    .await
            }
            TransportKind::Tcp | TransportKind::Tls => {
                self.send(&incoming.reply_destination(), data).await
            }
        }
    }

    /// The open connections (and those being opened): id, transport, remote address; sorted
    /// by id.
    pub fn connections(&self) -> Vec<(ConnectionId, TransportKind, SocketAddr)> {
        let table = lock(&self.shared.table);
        let mut out: Vec<_> = table
            .conns
            .iter()
            .map(|(&id, c)| (id, c.kind, c.remote))
            .collect();
        out.sort();
        out
    }
}
