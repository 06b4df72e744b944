//! TCP and TLS: opening connections (connect, handshake, bounded), accepting them, and each
//! connection's task (framing what it reads, writing what is queued, coalesced).

use super::table::PerSource;
use super::*;

impl Transport {
    pub(super) fn queue_full(&self, id: ConnectionId, tx: &Outbox) -> Error {
        let queued_bytes = tx.queued();
        tracing::debug!(connection = id.0, queued_bytes, "outbound queue full");
        Error::QueueFull {
            connection: id,
            queued_bytes,
        }
    }

    pub(super) fn check_stream_size(&self, data: &Bytes) -> Result<(), Error> {
        let max = self.shared.config.limits.max_message_bytes;
        if data.len() > max {
            return Err(Error::TooLarge {
                len_bytes: data.len(),
                max_bytes: max,
            });
        }
        Ok(())
    }

    pub(super) async fn send_stream(
        &self,
        dest: &Destination,
        data: Bytes,
    ) -> Result<Queued, Error> {
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
    pub(super) fn connect(&self, dest: &Destination, data: Bytes) -> Result<Connecting, Error> {
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
pub(super) async fn open(
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
        auth_deadline: None,
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
pub(super) fn fail(
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

pub(super) fn server_name_text(name: &ServerName<'_>) -> String {
    match name {
        ServerName::DnsName(d) => d.as_ref().to_owned(),
        ServerName::IpAddress(ip) => std::net::IpAddr::from(*ip).to_string(),
        _ => String::new(),
    }
}

pub(super) async fn accept_loop(
    shared: Arc<Shared>,
    listener: TcpListener,
    local: SocketAddr,
    acceptor: Option<TlsAcceptor>,
) {
    let mut stop = shared.stop.clone();
    let handshakes = Arc::new(tokio::sync::Semaphore::new(
        shared.config.max_handshakes.max(1),
    ));
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
        let Some(slot) =
            super::table::SourceSlot::take(&shared, remote.ip(), PerSource::Connections)
        else {
            tracing::debug!(source = %remote.ip(), "per-source connection limit reached");
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let local = tcp.local_addr().unwrap_or(local);
        let shared = shared.clone();
        let acceptor = acceptor.clone();
        let handshakes = handshakes.clone();
        tokio::spawn(async move {
            // Held until the connection ends (handshake included).
            let _slot = slot;
            match acceptor {
                None => {
                    let Ok((id, _tx, rx)) = shared.register(TransportKind::Tcp, remote, local)
                    else {
                        return;
                    };
                    let meta = ConnMeta {
                        auth_deadline: shared.auth_deadline(id),
                        id,
                        kind: TransportKind::Tcp,
                        remote,
                        local,
                        tls: None,
                    };
                    connection_task(shared, tcp, meta, rx).await;
                }
                Some(acceptor) => {
                    let Some(source_handshake) =
                        super::table::SourceSlot::take(&shared, remote.ip(), PerSource::Handshakes)
                    else {
                        tracing::debug!(%remote, "too many TLS handshakes from this source; closing");
                        return;
                    };
                    let Ok(permit) = handshakes.clone().try_acquire_owned() else {
                        tracing::debug!(%remote, "too many TLS handshakes at once; closing");
                        return;
                    };
                    let hs = timeout(shared.config.handshake_timeout, acceptor.accept(tcp)).await;
                    drop(permit);
                    drop(source_handshake);
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
                        auth_deadline: shared.auth_deadline(id),
                        id,
                        kind: TransportKind::Tls,
                        remote,
                        local,
                        tls: Some(info),
                    };
                    // A task of its own: the handshake's state is freed now instead of
                    // staying in this task's future for the connection's life (memory per
                    // idle connection).
                    tokio::spawn(async move {
                        let _slot = _slot;
                        connection_task(shared, stream, meta, rx).await;
                    });
                }
            }
        });
    }
}

/// Why a connection ended (for the log).
#[derive(Debug)]
pub(super) enum Closed {
    Stopped,
    /// No authenticated request came over it in time.
    Unauthenticated,
    ByPeer,
    Idle,
    ReadError(std::io::Error),
    WriteError(std::io::Error),
    WriteTimeout,
    Framing(crate::framing::FramingError),
    ReceiverGone,
}

pub(super) async fn connection_task<S>(
    shared: Arc<Shared>,
    mut stream: S,
    meta: ConnMeta,
    out: Inbox,
) where
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

pub(super) async fn drive_connection<S>(
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
    let mut auth_deadline = meta.auth_deadline.clone();
    loop {
        // Deliver every complete frame already buffered.
        loop {
            match next_frame(&buf, &config.limits) {
                Ok(Frame::Incomplete) => break,
                Ok(Frame::KeepAlive { len, ping }) => {
                    buf.advance(len);
                    if ping
                        && let Err(closed) =
                            Box::pin(write(stream, b"\r\n", config.write_timeout)).await
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
                        received: std::time::Instant::now(),
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
                                        if let Err(closed) = Box::pin(write_queued(
                                            stream,
                                            data,
                                            &mut out,
                                            config.write_timeout,
                                        ))
                                        .await
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
        if buf.is_empty() {
            // Every message was taken: an idle connection holds no read buffer (its last
            // one went with the message); `read_some` allocates when bytes come.
            buf = BytesMut::new();
        }
        tokio::select! {
            _ = stop.changed() => return Closed::Stopped,
            r = read_some(stream, &mut buf) => match r {
                Ok(0) => return Closed::ByPeer,
                Ok(_) => deadline = Instant::now() + config.idle_timeout,
                Err(e) => return Closed::ReadError(e),
            },
            m = out.recv() => match m {
                Some(data) => {
                    // Boxed: a write's state lives only while it runs, not in every idle
                    // connection's future.
                    if let Err(closed) =
                        Box::pin(write_queued(stream, data, &mut out, config.write_timeout)).await
                    {
                        return closed;
                    }
                    deadline = Instant::now() + config.idle_timeout;
                }
                None => return Closed::Stopped,
            },
            _ = sleep_until(deadline) => return Closed::Idle,
            _ = sleep_until(auth_deadline.as_ref().map_or(deadline, |(at, _)| *at)),
                if auth_deadline.is_some() => {
                let authenticated = auth_deadline
                    .take()
                    .is_some_and(|(_, flag)| flag.load(Ordering::Relaxed));
                if !authenticated {
                    return Closed::Unauthenticated;
                }
            }
        }
    }
}

/// Bytes an idle connection reads at first, into its task's own state: the buffer that
/// holds a message is allocated only once bytes arrive (memory per idle connection).
const IDLE_READ_BYTES: usize = 512;

/// Reads what is there into `buf`: into a small chunk of the task's state when `buf` is
/// empty (an idle connection), else into `buf` grown by [`READ_CHUNK_BYTES`].
async fn read_some<S>(stream: &mut S, buf: &mut BytesMut) -> std::io::Result<usize>
where
    S: AsyncRead + Unpin,
{
    if buf.is_empty() {
        let mut first = [0u8; IDLE_READ_BYTES];
        let n = stream.read(&mut first).await?;
        buf.extend_from_slice(first.get(..n).unwrap_or_default());
        return Ok(n);
    }
    buf.reserve(READ_CHUNK_BYTES);
    stream.read_buf(buf).await
}

/// Writes `first` and what else is already queued on the connection (up to
/// [`COALESCE_BYTES`], then the rest on the next turn) with one write and one flush: over TLS
/// that is one encryption pass and usually one syscall for a burst of messages, instead of
/// one per message.
pub(super) async fn write_queued<S>(
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

pub(super) async fn write<S>(stream: &mut S, data: &[u8], limit: Duration) -> Result<(), Closed>
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
        assert_eq!(tx.queued(), 0);
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
