//! The tokio driver: UDP sockets, TCP/TLS listeners, outbound connections and the connection
//! table (RFC 3261 §18, RFC 5626 §3.5.1 keep-alive, connection reuse per RFC 3261 §18.2.2 and
//! RFC 5923/5626 flows). It moves bytes only; what they mean is decided above.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use rustls_pki_types::ServerName;
use sotto_sip::parse::Limits;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, watch};
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
    /// Client config for outbound TLS connections (see [`crate::tls::client_config`]);
    /// without it, sending to a TLS destination with no open connection fails.
    pub tls_client: Option<Arc<rustls::ClientConfig>>,
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
            tls_client: None,
        }
    }
}

/// What [`Transport::send`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    /// The connection the message was queued on (TCP and TLS).
    pub connection: Option<ConnectionId>,
    /// The local address it leaves from.
    pub local: SocketAddr,
    /// Whether an already open connection was reused (false for UDP and new connections).
    pub reused: bool,
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
    udp: Mutex<Vec<(SocketAddr, Arc<UdpSocket>)>>,
    table: Mutex<Table>,
    next_id: AtomicU64,
    stop: watch::Receiver<()>,
}

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
    tx: mpsc::Sender<Bytes>,
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

/// Queue depth of messages waiting to be written to one connection.
const OUTBOUND_QUEUE: usize = 64;
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
        let socket = UdpSocket::bind(addr).await.map_err(Error::Io)?;
        let local = socket.local_addr().map_err(Error::Io)?;
        let socket = Arc::new(socket);
        lock(&self.shared.udp).push((local, socket.clone()));
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
    /// new one. Over UDP it uses the bound socket of the destination's address family.
    ///
    /// For streams, success means the message is queued on the connection; a later write
    /// failure closes the connection (and is logged).
    pub async fn send(&self, dest: &Destination, data: Bytes) -> Result<Sent, Error> {
        match dest.transport {
            TransportKind::Udp => self.send_udp(dest.remote, None, data).await,
            TransportKind::Tcp | TransportKind::Tls => self.send_stream(dest, data).await,
        }
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
                self.send_stream(&incoming.reply_destination(), data).await
            }
        }
    }

    /// The open connections: id, transport, remote address; sorted by id.
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
        let (local, socket) = {
            let sockets = lock(&self.shared.udp);
            let by_local = local.and_then(|l| sockets.iter().find(|(a, _)| *a == l));
            let by_family = || {
                sockets
                    .iter()
                    .find(|(a, _)| a.is_ipv4() == remote.is_ipv4())
            };
            by_local
                .or_else(by_family)
                .cloned()
                .ok_or(Error::NoUdpSocket(remote))?
        };
        socket.send_to(&data, remote).await.map_err(Error::Io)?;
        Ok(Sent {
            connection: None,
            local,
            reused: false,
        })
    }

    async fn send_stream(&self, dest: &Destination, data: Bytes) -> Result<Sent, Error> {
        let max = self.shared.config.limits.max_message_bytes;
        if data.len() > max {
            return Err(Error::TooLarge {
                len_bytes: data.len(),
                max_bytes: max,
            });
        }
        let candidates = {
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
                .and_then(|id| table.conns.get(id).map(|c| (*id, c)));
            let mut v: Vec<(ConnectionId, SocketAddr, mpsc::Sender<Bytes>)> = Vec::with_capacity(2);
            for (id, c) in by_id.into_iter().chain(by_peer) {
                if !v.iter().any(|(i, _, _)| *i == id) {
                    v.push((id, c.local, c.tx.clone()));
                }
            }
            v
        };
        for (id, local, tx) in candidates {
            if tx.send(data.clone()).await.is_ok() {
                return Ok(Sent {
                    connection: Some(id),
                    local,
                    reused: true,
                });
            }
        }
        let (id, local, tx) = self.connect(dest).await?;
        tx.send(data)
            .await
            .map_err(|_| Error::ConnectionClosed(id))?;
        Ok(Sent {
            connection: Some(id),
            local,
            reused: false,
        })
    }

    /// Opens a TCP or TLS connection to `dest` and starts its task.
    async fn connect(
        &self,
        dest: &Destination,
    ) -> Result<(ConnectionId, SocketAddr, mpsc::Sender<Bytes>), Error> {
        let shared = &self.shared;
        let limit = shared.config.max_connections;
        if lock(&shared.table).conns.len() >= limit {
            return Err(Error::TooManyConnections(limit));
        }
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
        let connect_err = |source| Error::Connect {
            transport: dest.transport,
            remote: dest.remote,
            source,
        };
        let hs_timeout = shared.config.handshake_timeout;
        let tcp = timeout(hs_timeout, TcpStream::connect(dest.remote))
            .await
            .map_err(|_| connect_err(std::io::ErrorKind::TimedOut.into()))?
            .map_err(connect_err)?;
        // Best effort: SIP messages are written whole, Nagle only adds latency.
        let _ = tcp.set_nodelay(true);
        let local = tcp.local_addr().map_err(Error::Io)?;
        let remote = dest.remote;
        match tls {
            None => {
                let meta = shared.register(TransportKind::Tcp, remote, local)?;
                let (id, tx, rx) = meta;
                let meta = ConnMeta {
                    id,
                    kind: TransportKind::Tcp,
                    remote,
                    local,
                    tls: None,
                };
                tokio::spawn(connection_task(shared.clone(), tcp, meta, rx));
                Ok((id, local, tx))
            }
            Some((connector, name)) => {
                let name_text = server_name_text(&name);
                let handshake_err = |source| Error::Handshake { remote, source };
                let stream = timeout(hs_timeout, connector.connect(name, tcp))
                    .await
                    .map_err(|_| handshake_err(std::io::ErrorKind::TimedOut.into()))?
                    .map_err(handshake_err)?;
                let info = Arc::new(TlsInfo::from_common(stream.get_ref().1, Some(name_text)));
                let (id, tx, rx) = shared.register(TransportKind::Tls, remote, local)?;
                let meta = ConnMeta {
                    id,
                    kind: TransportKind::Tls,
                    remote,
                    local,
                    tls: Some(info),
                };
                tokio::spawn(connection_task(shared.clone(), stream, meta, rx));
                Ok((id, local, tx))
            }
        }
    }
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

type Registered = (ConnectionId, mpsc::Sender<Bytes>, mpsc::Receiver<Bytes>);

impl Shared {
    /// Adds a connection to the table; it becomes the preferred one for its peer.
    fn register(
        &self,
        kind: TransportKind,
        remote: SocketAddr,
        local: SocketAddr,
    ) -> Result<Registered, Error> {
        let id = ConnectionId(self.next_id.fetch_add(1, Ordering::Relaxed));
        let (tx, rx) = mpsc::channel(OUTBOUND_QUEUE);
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

    fn unregister(&self, meta: &ConnMeta) {
        let mut table = lock(&self.table);
        table.conns.remove(&meta.id);
        let key = (meta.kind, meta.remote);
        if table.by_peer.get(&key) == Some(&meta.id) {
            table.by_peer.remove(&key);
        }
    }
}

async fn udp_loop(shared: Arc<Shared>, socket: Arc<UdpSocket>, local: SocketAddr) {
    let max = shared.config.max_datagram_bytes;
    // One byte more than the maximum, so an oversize datagram is seen as such, not truncated.
    let mut buf = vec![0u8; max.saturating_add(1)];
    let mut stop = shared.stop.clone();
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
            local,
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

async fn connection_task<S>(
    shared: Arc<Shared>,
    mut stream: S,
    meta: ConnMeta,
    out: mpsc::Receiver<Bytes>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    tracing::debug!(
        connection = meta.id.0,
        transport = meta.kind.as_str(),
        "connection open"
    );
    let closed = drive_connection(&shared, &mut stream, &meta, out).await;
    shared.unregister(&meta);
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
    mut out: mpsc::Receiver<Bytes>,
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
                                            write(stream, &data, config.write_timeout).await
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
                    if let Err(closed) = write(stream, &data, config.write_timeout).await {
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
