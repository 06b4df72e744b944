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
    /// Bound on writing one message to a stream; a stuck peer is disconnected.
    pub write_timeout: Duration,
    /// Most TCP/TLS connections open at once; new ones beyond it are refused.
    pub max_connections: usize,
    /// Capacity of the queue of received messages (back-pressure on the sockets when full).
    pub incoming_queue: usize,
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
            write_timeout: Duration::from_secs(10),
            max_connections: 1024,
            incoming_queue: 1024,
            max_queued_bytes: 1 << 20,
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
}

#[derive(Debug)]
struct Conn {
    kind: TransportKind,
    remote: SocketAddr,
    local: SocketAddr,
    tx: Outbox,
}

/// The sending end of a connection's queue of messages to write; it counts the bytes queued.
#[derive(Debug, Clone)]
struct Outbox {
    tx: mpsc::UnboundedSender<Bytes>,
    queued: Arc<AtomicUsize>,
}

/// Why [`Outbox::push`] did not queue a message (which comes back).
enum PushError {
    Full(Bytes),
    Closed(Bytes),
}

impl Outbox {
    /// Queues `data` unless that would put more than `max` bytes in the queue (a message
    /// larger than `max` still goes into an empty queue). Never waits.
    fn push(&self, data: Bytes, max: usize) -> Result<(), PushError> {
        let len = data.len();
        let before = self.queued.fetch_add(len, Ordering::Relaxed);
        if before > 0 && before.saturating_add(len) > max {
            self.queued.fetch_sub(len, Ordering::Relaxed);
            return Err(PushError::Full(data));
        }
        self.tx.send(data).map_err(|mpsc::error::SendError(back)| {
            self.queued.fetch_sub(len, Ordering::Relaxed);
            PushError::Closed(back)
        })
    }
}

/// The receiving end of a connection's queue, read by its task.
#[derive(Debug)]
struct Inbox {
    rx: mpsc::UnboundedReceiver<Bytes>,
    queued: Arc<AtomicUsize>,
}

impl Inbox {
    fn outbox_pair() -> (Outbox, Inbox) {
        let (tx, rx) = mpsc::unbounded_channel();
        let queued = Arc::new(AtomicUsize::new(0));
        (
            Outbox {
                tx,
                queued: queued.clone(),
            },
            Inbox { rx, queued },
        )
    }

    fn taken(&self, m: &Bytes) {
        self.queued.fetch_sub(m.len(), Ordering::Relaxed);
    }

    async fn recv(&mut self) -> Option<Bytes> {
        let m = self.rx.recv().await?;
        self.taken(&m);
        Some(m)
    }

    fn try_recv(&mut self) -> Option<Bytes> {
        let m = self.rx.try_recv().ok()?;
        self.taken(&m);
        Some(m)
    }
}

/// Identity of one connection, given to its task.
#[derive(Debug, Clone)]
struct ConnMeta {
    id: ConnectionId,
    kind: TransportKind,
    remote: SocketAddr,
    local: SocketAddr,
    tls: Option<Arc<TlsInfo>>,
}

/// Most bytes gathered from a connection's queue into one write (one TLS write and flush,
/// usually one syscall, instead of one per message).
const COALESCE_BYTES: usize = 64 * 1024;
/// The local address of a connection still being opened.
const UNSPECIFIED: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 0);
/// Read granularity of stream connections.
const READ_CHUNK_BYTES: usize = 8192;

impl Transport {
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

    async fn send_udp(
        &self,
        remote: SocketAddr,
        local: Option<SocketAddr>,
        data: Bytes,
    ) -> Result<Sent, Error> {
        let max = self.shared.config.max_datagram_bytes;
        if data.len() > max {
            return Err(Error::TooLarge {
                len_bytes: data.len(),
                max_bytes: max,
            });
        }
        let endpoint = {
            let sockets = lock(&self.shared.udp);
            // The socket a message arrived on: its exact address, or the wildcard socket on
            // that port (a wildcard socket reports the address the peer reached it at).
            let by_local = local.and_then(|l| {
                sockets.iter().find(|e| e.local == l).or_else(|| {
                    sockets
                        .iter()
                        .find(|e| e.local.ip().is_unspecified() && e.local.port() == l.port())
                })
            });
            let by_family = || {
                sockets
                    .iter()
                    .find(|e| e.local.is_ipv4() == remote.is_ipv4())
            };
            by_local
                .or_else(by_family)
                .cloned()
                .ok_or(Error::NoUdpSocket(remote))?
        };
        let local = endpoint.local;
        let data = match &endpoint.sender {
            Some(tx) => match tx.try_send((data, remote)) {
                Ok(()) => None,
                Err(std::sync::mpsc::TrySendError::Full((data, _)))
                | Err(std::sync::mpsc::TrySendError::Disconnected((data, _))) => Some(data),
            },
            None => Some(data),
        };
        if let Some(data) = data {
            endpoint
                .socket
                .send_to(&data, remote)
                .await
                .map_err(Error::Io)?;
        }
        Ok(Sent {
            connection: None,
            local,
            reused: false,
        })
    }

    fn queue_full(&self, id: ConnectionId, tx: &Outbox) -> Error {
        let queued_bytes = tx.queued.load(Ordering::Relaxed);
        tracing::debug!(connection = id.0, queued_bytes, "outbound queue full");
        Error::QueueFull {
            connection: id,
            queued_bytes,
        }
    }

    fn check_stream_size(&self, data: &Bytes) -> Result<(), Error> {
        let max = self.shared.config.limits.max_message_bytes;
        if data.len() > max {
            return Err(Error::TooLarge {
                len_bytes: data.len(),
                max_bytes: max,
            });
        }
        Ok(())
    }

    async fn send_stream(&self, dest: &Destination, data: Bytes) -> Result<Queued, Error> {
        self.check_stream_size(&data)?;
        // At most two candidates (the named connection, the peer's preferred one), without
        // allocating: this runs for every message sent on a stream.
        let (first, second) = {
            let table = lock(&self.shared.table);
            let by_id = dest
                .connection
                .and_then(|id| table.conns.get(&id).map(|c| (id, c)))
                // An id is only trusted for the peer it was opened with: ids restart with the
                // process, and a stored flow may name another peer's connection now.
                .filter(|(_, c)| c.kind == dest.transport && c.remote == dest.remote);
            let by_peer = table
                .by_peer
                .get(&(dest.transport, dest.remote))
                .filter(|id| by_id.is_none_or(|(named, _)| named != **id))
                .and_then(|id| table.conns.get(id).map(|c| (*id, c)));
            let entry = |(id, c): (ConnectionId, &Conn)| (id, c.local, c.tx.clone());
            (by_id.map(entry), by_peer.map(entry))
        };
        let mut data = data;
        let mut full = None;
        for (id, local, tx) in first.into_iter().chain(second) {
            match tx.push(data, self.shared.config.max_queued_bytes) {
                Ok(()) => {
                    return Ok(Queued::Sent(Sent {
                        connection: Some(id),
                        local,
                        reused: true,
                    }));
                }
                // The connection closed meanwhile, or its peer does not keep up: the message
                // comes back for the next one.
                Err(PushError::Closed(back)) => data = back,
                Err(PushError::Full(back)) => {
                    full = Some(self.queue_full(id, &tx));
                    data = back;
                }
            }
        }
        // A connection that is open but stuck is not replaced by a new one.
        if let Some(e) = full {
            return Err(e);
        }
        self.connect(dest, data).map(Queued::Connecting)
    }

    /// Enters a new TCP or TLS connection to `dest` in the table with `data` queued on it,
    /// and opens it in a task of its own (see [`open`]).
    fn connect(&self, dest: &Destination, data: Bytes) -> Result<Connecting, Error> {
        let shared = &self.shared;
        let tls = match dest.transport {
            TransportKind::Tls => {
                let config = shared
                    .config
                    .tls_client
                    .clone()
                    .ok_or(Error::NoTlsClientConfig)?;
                let name = match &dest.server_name {
                    Some(n) => {
                        ServerName::try_from(n.clone()).map_err(|_| Error::InvalidServerName)?
                    }
                    None => ServerName::IpAddress(dest.remote.ip().into()),
                };
                Some((TlsConnector::from(config), name))
            }
            _ => None,
        };
        let (id, tx, rx) = shared.register(dest.transport, dest.remote, UNSPECIFIED)?;
        // A fresh queue takes any one message; the receiver is alive (held here).
        if tx.push(data, usize::MAX).is_err() {
            shared.unregister(id, dest.transport, dest.remote);
            return Err(Error::ConnectionClosed(id));
        }
        let (result_tx, result) = oneshot::channel();
        tokio::spawn(open(
            shared.clone(),
            id,
            dest.transport,
            dest.remote,
            tls,
            rx,
            result_tx,
        ));
        Ok(Connecting {
            connection: id,
            result,
        })
    }
}

/// Connects and handshakes (bounded by [`TransportConfig::handshake_timeout`]) a connection
/// entered in the table by [`Transport::connect`], reports how that went on `result`, then
/// runs it; on failure it leaves the table, and what was queued on it is dropped.
async fn open(
    shared: Arc<Shared>,
    id: ConnectionId,
    kind: TransportKind,
    remote: SocketAddr,
    tls: Option<(TlsConnector, ServerName<'static>)>,
    rx: Inbox,
    result: oneshot::Sender<Result<SocketAddr, Error>>,
) {
    let hs_timeout = shared.config.handshake_timeout;
    let connect_err = |source| Error::Connect {
        transport: kind,
        remote,
        source,
    };
    let tcp = match timeout(hs_timeout, TcpStream::connect(remote)).await {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(e)) => return fail(&shared, id, kind, remote, result, connect_err(e)),
        Err(_) => {
            let e = connect_err(std::io::ErrorKind::TimedOut.into());
            return fail(&shared, id, kind, remote, result, e);
        }
    };
    // Best effort: SIP messages are written whole, Nagle only adds latency.
    let _ = tcp.set_nodelay(true);
    let local = match tcp.local_addr() {
        Ok(a) => a,
        Err(e) => return fail(&shared, id, kind, remote, result, Error::Io(e)),
    };
    let mut meta = ConnMeta {
        id,
        kind,
        remote,
        local,
        tls: None,
    };
    match tls {
        None => {
            shared.opened(id, local);
            let _ = result.send(Ok(local));
            connection_task(shared, tcp, meta, rx).await;
        }
        Some((connector, name)) => {
            let name_text = server_name_text(&name);
            let handshake_err = |source| Error::Handshake { remote, source };
            let stream = match timeout(hs_timeout, connector.connect(name, tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => return fail(&shared, id, kind, remote, result, handshake_err(e)),
                Err(_) => {
                    let e = handshake_err(std::io::ErrorKind::TimedOut.into());
                    return fail(&shared, id, kind, remote, result, e);
                }
            };
            meta.tls = Some(Arc::new(TlsInfo::from_common(
                stream.get_ref().1,
                Some(name_text),
            )));
            shared.opened(id, local);
            let _ = result.send(Ok(local));
            connection_task(shared, stream, meta, rx).await;
        }
    }
}

/// A connection that could not be opened: out of the table, and the error to its opener.
fn fail(
    shared: &Shared,
    id: ConnectionId,
    kind: TransportKind,
    remote: SocketAddr,
    result: oneshot::Sender<Result<SocketAddr, Error>>,
    error: Error,
) {
    shared.unregister(id, kind, remote);
    tracing::debug!(connection = id.0, %remote, error = %error, "connection not opened");
    let _ = result.send(Err(error));
}

fn server_name_text(name: &ServerName<'_>) -> String {
    match name {
        ServerName::DnsName(d) => d.as_ref().to_owned(),
        ServerName::IpAddress(ip) => std::net::IpAddr::from(*ip).to_string(),
        _ => String::new(),
    }
}

/// Locks a table mutex; a poisoned lock (a panicked task) still holds consistent maps,
/// since every critical section is a plain insert or remove.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

type Registered = (ConnectionId, Outbox, Inbox);

impl Shared {
    /// Adds a connection to the table; it becomes the preferred one for its peer.
    fn register(
        &self,
        kind: TransportKind,
        remote: SocketAddr,
        local: SocketAddr,
    ) -> Result<Registered, Error> {
        let id = ConnectionId(self.next_id.fetch_add(1, Ordering::Relaxed));
        let (tx, rx) = Inbox::outbox_pair();
        let mut table = lock(&self.table);
        if table.conns.len() >= self.config.max_connections {
            return Err(Error::TooManyConnections(self.config.max_connections));
        }
        table.conns.insert(
            id,
            Conn {
                kind,
                remote,
                local,
                tx: tx.clone(),
            },
        );
        table.by_peer.insert((kind, remote), id);
        Ok((id, tx, rx))
    }

    fn unregister(&self, id: ConnectionId, kind: TransportKind, remote: SocketAddr) {
        let mut table = lock(&self.table);
        table.conns.remove(&id);
        let key = (kind, remote);
        if table.by_peer.get(&key) == Some(&id) {
            table.by_peer.remove(&key);
        }
    }

    /// Records the local address of a connection that is now open.
    fn opened(&self, id: ConnectionId, local: SocketAddr) {
        if let Some(c) = lock(&self.table).conns.get_mut(&id) {
            c.local = local;
        }
    }
}

/// The body of a UDP sending thread ([`TransportConfig::udp_send_thread`]): sends what is
/// queued, in order, until the transport is dropped. The socket shares the async socket's
/// non-blocking mode, so a full send buffer is waited out in short sleeps (bounded), then the
/// datagram is dropped, as a congested link would.
fn udp_send_thread(
    socket: std::net::UdpSocket,
    queue: std::sync::mpsc::Receiver<(Bytes, SocketAddr)>,
) {
    const RETRIES: u32 = 200;
    const PAUSE: Duration = Duration::from_micros(50);
    while let Ok((data, remote)) = queue.recv() {
        let mut tries = 0;
        loop {
            match socket.send_to(&data, remote) {
                Ok(_) => break,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && tries < RETRIES => {
                    tries += 1;
                    std::thread::sleep(PAUSE);
                }
                Err(e) => {
                    tracing::debug!(error = %e, dest = %remote, "udp send failed");
                    break;
                }
            }
        }
    }
}

async fn udp_loop(shared: Arc<Shared>, socket: Arc<UdpSocket>, local: SocketAddr) {
    let max = shared.config.max_datagram_bytes;
    // One byte more than the maximum, so an oversize datagram is seen as such, not truncated.
    let mut buf = vec![0u8; max.saturating_add(1)];
    let mut stop = shared.stop.clone();
    let mut routes = crate::route::LocalRoutes::new(local);
    loop {
        let received = tokio::select! {
            _ = stop.changed() => return,
            r = socket.recv_from(&mut buf) => r,
        };
        let (n, source) = match received {
            Ok(v) => v,
            Err(e) => {
                // ICMP errors surface here on some systems; the socket stays usable.
                tracing::debug!(error = %e, "udp receive error");
                continue;
            }
        };
        if n > max {
            tracing::warn!(
                len_bytes = n,
                max_bytes = max,
                "oversize UDP datagram dropped"
            );
            continue;
        }
        let Some(datagram) = buf.get(..n) else {
            continue;
        };
        // Pure CRLF datagrams are keep-alives (RFC 5626 §4.4.1 uses STUN on UDP; CRLF is
        // what many UAs send anyway): nothing to deliver.
        if datagram.iter().all(|b| matches!(b, b'\r' | b'\n')) {
            continue;
        }
        let incoming = Incoming {
            data: Bytes::copy_from_slice(datagram),
            source,
            local: routes.local_for(source),
            transport: TransportKind::Udp,
            connection: None,
            tls: None,
        };
        if shared.incoming.send(incoming).await.is_err() {
            return;
        }
    }
}

async fn accept_loop(
    shared: Arc<Shared>,
    listener: TcpListener,
    local: SocketAddr,
    acceptor: Option<TlsAcceptor>,
) {
    let mut stop = shared.stop.clone();
    loop {
        let accepted = tokio::select! {
            _ = stop.changed() => return,
            r = listener.accept() => r,
        };
        let (tcp, remote) = match accepted {
            Ok(v) => v,
            Err(e) => {
                // E.g. out of file descriptors: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if lock(&shared.table).conns.len() >= shared.config.max_connections {
            tracing::warn!("connection limit reached; refusing a connection");
            continue;
        }
        let _ = tcp.set_nodelay(true);
        let local = tcp.local_addr().unwrap_or(local);
        let shared = shared.clone();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            match acceptor {
                None => {
                    let Ok((id, _tx, rx)) = shared.register(TransportKind::Tcp, remote, local)
                    else {
                        return;
                    };
                    let meta = ConnMeta {
                        id,
                        kind: TransportKind::Tcp,
                        remote,
                        local,
                        tls: None,
                    };
                    connection_task(shared, tcp, meta, rx).await;
                }
                Some(acceptor) => {
                    let hs = timeout(shared.config.handshake_timeout, acceptor.accept(tcp)).await;
                    let stream = match hs {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            tracing::info!(error = %e, "inbound TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::info!("inbound TLS handshake timed out");
                            return;
                        }
                    };
                    let conn = stream.get_ref().1;
                    let info = Arc::new(TlsInfo::from_common(
                        conn,
                        conn.server_name().map(str::to_owned),
                    ));
                    let Ok((id, _tx, rx)) = shared.register(TransportKind::Tls, remote, local)
                    else {
                        return;
                    };
                    let meta = ConnMeta {
                        id,
                        kind: TransportKind::Tls,
                        remote,
                        local,
                        tls: Some(info),
                    };
                    connection_task(shared, stream, meta, rx).await;
                }
            }
        });
    }
}

/// Why a connection ended (for the log).
#[derive(Debug)]
enum Closed {
    Stopped,
    ByPeer,
    Idle,
    ReadError(std::io::Error),
    WriteError(std::io::Error),
    WriteTimeout,
    Framing(crate::framing::FramingError),
    ReceiverGone,
}

async fn connection_task<S>(shared: Arc<Shared>, mut stream: S, meta: ConnMeta, out: Inbox)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    tracing::debug!(
        connection = meta.id.0,
        transport = meta.kind.as_str(),
        "connection open"
    );
    let closed = drive_connection(&shared, &mut stream, &meta, out).await;
    shared.unregister(meta.id, meta.kind, meta.remote);
    match &closed {
        Closed::Framing(e) => {
            tracing::warn!(connection = meta.id.0, error = %e, "framing error; closing connection");
        }
        Closed::ReadError(e) | Closed::WriteError(e) => {
            tracing::debug!(connection = meta.id.0, error = %e, "connection failed");
        }
        other => {
            tracing::debug!(connection = meta.id.0, reason = ?other, "connection closed");
        }
    }
    // Best effort: TLS close_notify and FIN, bounded in time.
    let _ = timeout(shared.config.write_timeout, stream.shutdown()).await;
}

async fn drive_connection<S>(
    shared: &Shared,
    stream: &mut S,
    meta: &ConnMeta,
    mut out: Inbox,
) -> Closed
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let config = &shared.config;
    let mut stop = shared.stop.clone();
    let mut buf = BytesMut::with_capacity(READ_CHUNK_BYTES);
    let mut deadline = Instant::now() + config.idle_timeout;
    loop {
        // Deliver every complete frame already buffered.
        loop {
            match next_frame(&buf, &config.limits) {
                Ok(Frame::Incomplete) => break,
                Ok(Frame::KeepAlive { len, ping }) => {
                    buf.advance(len);
                    if ping && let Err(closed) = write(stream, b"\r\n", config.write_timeout).await
                    {
                        return closed;
                    }
                }
                Ok(Frame::Message { len }) => {
                    let incoming = Incoming {
                        data: buf.split_to(len).freeze(),
                        source: meta.remote,
                        local: meta.local,
                        transport: meta.kind,
                        connection: Some(meta.id),
                        tls: meta.tls.clone(),
                    };
                    // Wait for room in the incoming queue while writing what is queued for
                    // this connection: the consumer may itself be waiting for room in this
                    // connection's queue, and neither would ever move again (under load,
                    // the whole server then hung).
                    let mut incoming = Some(incoming);
                    while let Some(message) = incoming.take() {
                        tokio::select! {
                            permit = shared.incoming.reserve() => match permit {
                                Ok(p) => p.send(message),
                                Err(_) => return Closed::ReceiverGone,
                            },
                            m = out.recv() => {
                                incoming = Some(message);
                                match m {
                                    Some(data) => {
                                        if let Err(closed) =
                                            write_queued(stream, data, &mut out, config.write_timeout).await
                                        {
                                            return closed;
                                        }
                                        deadline = Instant::now() + config.idle_timeout;
                                    }
                                    None => return Closed::Stopped,
                                }
                            },
                            _ = stop.changed() => return Closed::Stopped,
                        }
                    }
                }
                Err(e) => return Closed::Framing(e),
            }
        }
        buf.reserve(READ_CHUNK_BYTES);
        tokio::select! {
            _ = stop.changed() => return Closed::Stopped,
            r = stream.read_buf(&mut buf) => match r {
                Ok(0) => return Closed::ByPeer,
                Ok(_) => deadline = Instant::now() + config.idle_timeout,
                Err(e) => return Closed::ReadError(e),
            },
            m = out.recv() => match m {
                Some(data) => {
                    if let Err(closed) =
                        write_queued(stream, data, &mut out, config.write_timeout).await
                    {
                        return closed;
                    }
                    deadline = Instant::now() + config.idle_timeout;
                }
                None => return Closed::Stopped,
            },
            _ = sleep_until(deadline) => return Closed::Idle,
        }
    }
}

/// Writes `first` and what else is already queued on the connection (up to
/// [`COALESCE_BYTES`], then the rest on the next turn) with one write and one flush: over TLS
/// that is one encryption pass and usually one syscall for a burst of messages, instead of
/// one per message.
async fn write_queued<S>(
    stream: &mut S,
    first: Bytes,
    out: &mut Inbox,
    limit: Duration,
) -> Result<(), Closed>
where
    S: AsyncWrite + Unpin,
{
    let Some(second) = out.try_recv() else {
        return write(stream, &first, limit).await;
    };
    let mut batch = Vec::with_capacity(COALESCE_BYTES.min((first.len() + second.len()) * 8));
    batch.extend_from_slice(&first);
    batch.extend_from_slice(&second);
    while batch.len() < COALESCE_BYTES {
        match out.try_recv() {
            Some(more) => batch.extend_from_slice(&more),
            None => break,
        }
    }
    write(stream, &batch, limit).await
}

async fn write<S>(stream: &mut S, data: &[u8], limit: Duration) -> Result<(), Closed>
where
    S: AsyncWrite + Unpin,
{
    let res = timeout(limit, async {
        stream.write_all(data).await?;
        stream.flush().await
    })
    .await;
    match res {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(Closed::WriteError(e)),
        Err(_) => Err(Closed::WriteTimeout),
    }
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use super::*;

    /// A stream that takes every write whole and counts the writes and flushes.
    #[derive(Default)]
    struct Counting {
        data: Vec<u8>,
        writes: usize,
        flushes: usize,
    }

    impl AsyncWrite for Counting {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            self.writes += 1;
            self.data.extend_from_slice(buf);
            Poll::Ready(Ok(buf.len()))
        }

        fn poll_flush(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<std::io::Result<()>> {
            self.flushes += 1;
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    fn message(i: usize, len: usize) -> Bytes {
        let mut m = format!("m{i}:").into_bytes();
        m.resize(len, b'x');
        Bytes::from(m)
    }

    #[tokio::test]
    async fn queued_messages_go_out_in_one_write_and_one_flush() {
        let (tx, mut rx) = Inbox::outbox_pair();
        let mut want = Vec::new();
        for i in 1..10 {
            let m = message(i, 500);
            want.extend_from_slice(&m);
            assert!(tx.push(m, usize::MAX).is_ok());
        }
        let first = message(0, 500);
        let mut all = first.to_vec();
        all.extend_from_slice(&want);
        let mut s = Counting::default();
        write_queued(&mut s, first, &mut rx, Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(s.data, all);
        assert_eq!((s.writes, s.flushes), (1, 1));
        assert!(rx.try_recv().is_none());
        assert_eq!(tx.queued.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn a_batch_stops_near_the_coalescing_bound_and_keeps_order() {
        let (tx, mut rx) = Inbox::outbox_pair();
        let len = 10_000;
        let n = COALESCE_BYTES / len + 4;
        let mut all = Vec::new();
        for i in 0..n {
            let m = message(i, len);
            all.extend_from_slice(&m);
            assert!(tx.push(m, usize::MAX).is_ok());
        }
        let mut s = Counting::default();
        let mut batches = 0;
        while let Some(first) = rx.try_recv() {
            write_queued(&mut s, first, &mut rx, Duration::from_secs(1))
                .await
                .unwrap();
            batches += 1;
        }
        assert_eq!(s.data, all);
        assert_eq!(batches, 2);
        assert_eq!(s.writes, 2);
    }
}
