//! The connection table: which connections are open, to whom, and the preferred one for each
//! peer (connection reuse, RFC 3261 §18.2.2, RFC 5923).

use super::*;

/// Locks a table mutex; a poisoned lock (a panicked task) still holds consistent maps,
/// since every critical section is a plain insert or remove.
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub(super) type Registered = (ConnectionId, Outbox, Inbox);

impl Shared {
    /// Adds a connection to the table; it becomes the preferred one for its peer.
    pub(super) fn register(
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
                authenticated: Arc::default(),
            },
        );
        table.by_peer.insert((kind, remote), id);
        Ok((id, tx, rx))
    }

    pub(super) fn unregister(&self, id: ConnectionId, kind: TransportKind, remote: SocketAddr) {
        let mut table = lock(&self.table);
        table.conns.remove(&id);
        let key = (kind, remote);
        if table.by_peer.get(&key) == Some(&id) {
            table.by_peer.remove(&key);
        }
    }

    /// The deadline an inbound connection `id` must be authenticated by (from now), and
    /// its flag; `None` when no such deadline is configured.
    pub(super) fn auth_deadline(
        &self,
        id: ConnectionId,
    ) -> Option<(Instant, Arc<std::sync::atomic::AtomicBool>)> {
        let t = self.config.unauthenticated_timeout?;
        let flag = lock(&self.table).conns.get(&id)?.authenticated.clone();
        Some((Instant::now() + t, flag))
    }

    /// Records the local address of a connection that is now open.
    pub(super) fn opened(&self, id: ConnectionId, local: SocketAddr) {
        if let Some(c) = lock(&self.table).conns.get_mut(&id) {
            c.local = local;
        }
    }
}

/// What a [`SourceSlot`] counts per source address.
#[derive(Debug, Clone, Copy)]
pub(super) enum PerSource {
    /// Inbound connections, from accept to close
    /// ([`TransportConfig::max_connections_per_source`]).
    Connections,
    /// TLS handshakes under way ([`TransportConfig::max_handshakes_per_source`]): a flood of
    /// connections that never say ClientHello cannot take all the listener's handshakes.
    Handshakes,
}

impl PerSource {
    fn counts(self, table: &mut Table) -> &mut HashMap<std::net::IpAddr, usize> {
        match self {
            PerSource::Connections => &mut table.sources,
            PerSource::Handshakes => &mut table.handshaking,
        }
    }

    fn limit(self, config: &TransportConfig) -> usize {
        match self {
            PerSource::Connections => config.max_connections_per_source,
            PerSource::Handshakes => config.max_handshakes_per_source.max(1),
        }
    }
}

/// A place in one source address's count of `kind`, given back on drop.
#[derive(Debug)]
pub(super) struct SourceSlot {
    shared: Arc<Shared>,
    ip: std::net::IpAddr,
    kind: PerSource,
}

impl SourceSlot {
    /// A slot of `kind` for `ip`, unless the source already holds its share.
    pub(super) fn take(
        shared: &Arc<Shared>,
        ip: std::net::IpAddr,
        kind: PerSource,
    ) -> Option<SourceSlot> {
        let limit = kind.limit(&shared.config);
        let mut table = lock(&shared.table);
        let n = kind.counts(&mut table).entry(ip).or_insert(0);
        if *n >= limit {
            return None;
        }
        *n += 1;
        Some(SourceSlot {
            shared: shared.clone(),
            ip,
            kind,
        })
    }
}

impl Drop for SourceSlot {
    fn drop(&mut self) {
        let mut table = lock(&self.shared.table);
        let counts = self.kind.counts(&mut table);
        if let Some(n) = counts.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}
