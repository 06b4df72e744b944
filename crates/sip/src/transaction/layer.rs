//! The transaction table: routes messages to transactions (RFC 3261 §17.1.3, §17.2.3),
//! reports new requests, answers merged requests (§8.2.2.2) and CANCELs (§9.2).

use super::index::{IdMap, KeyIndex, shrink};
use super::{
    ClientEvent, ClientKey, ClientTransaction, ServerEvent, ServerKey, ServerTransaction,
    TimerConfig, TransactionError, Transmit,
};
use crate::message::{Message, Method, Request, Response, StatusCode};
use sotto_crypto::CryptoProvider;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::Instant;

/// Identifies a transaction inside one [`TransactionLayer`] (never reused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TransactionId(pub(super) u64);

/// Layer policy. `Default` is the secure choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerConfig {
    /// Timer values for every transaction.
    pub timers: TimerConfig,
    /// Answer merged requests with 482 (a UAS does this; a proxy turns it off, §16).
    pub detect_merged: bool,
    /// The most transactions kept at once. When full, the oldest transaction that only
    /// absorbs retransmissions (see [`ServerTransaction::is_absorbing`] and
    /// [`ClientTransaction::is_absorbing`]) is evicted to make
    /// room ([`TransactionLayer::evicted`] counts them); when every transaction is live, new
    /// ones are refused ([`TransactionError::TooManyTransactions`]) so the TU can answer 503
    /// statelessly.
    pub max_transactions: usize,
}

impl Default for LayerConfig {
    fn default() -> Self {
        LayerConfig {
            timers: TimerConfig::default(),
            detect_merged: true,
            max_transactions: 65_536,
        }
    }
}

/// A new request that matched no transaction. [`TransactionLayer::accept`] creates its server
/// transaction; dropping it ignores the request (nothing was allocated in the layer).
#[derive(Debug)]
pub struct Incoming {
    key: ServerKey,
    request: Request,
    reliable: bool,
}

impl Incoming {
    /// The request.
    pub fn request(&self) -> &Request {
        &self.request
    }

    /// The key its transaction will have.
    pub fn key(&self) -> &ServerKey {
        &self.key
    }

    /// Whether it came over a reliable transport.
    pub fn is_reliable(&self) -> bool {
        self.reliable
    }
}

/// What became of a received message.
#[derive(Debug)]
#[non_exhaustive]
pub enum Received {
    /// A new request for the TU: accept it (or drop it).
    Request(Incoming),
    /// An ACK matching no server transaction (the ACK of a 2xx): for the TU/dialog.
    Ack(Request),
    /// A CANCEL: its server transaction `cancel` was created and answered (200 if the INVITE
    /// server transaction `invite` was found, else 481). The TU answers the INVITE with 487
    /// if it has not sent a final response yet.
    Cancel {
        /// The CANCEL's own server transaction.
        cancel: TransactionId,
        /// The INVITE server transaction it cancels, if found.
        invite: Option<TransactionId>,
    },
    /// A merged request (same From tag, Call-ID and CSeq as a live transaction, another
    /// branch): a server transaction was created and answered 482 Loop Detected.
    Merged(TransactionId),
    /// Absorbed by an existing transaction (retransmission, ACK of a non-2xx); see
    /// [`TransactionLayer::poll_event`] for anything the TU must see.
    Absorbed(TransactionId),
    /// Delivered to a client transaction; its events follow.
    Response(TransactionId),
    /// A response matching no client transaction (e.g. a 2xx retransmission after Timer M):
    /// for the TU, or a stateless proxy.
    StrayResponse(Response),
    /// The message cannot be matched (no usable Via, CSeq, ...); drop it.
    Invalid(TransactionError),
}

/// An event of one transaction in the layer.
#[derive(Debug, Clone)]
pub enum LayerEvent {
    /// From a client transaction.
    Client(TransactionId, ClientEvent),
    /// From a server transaction.
    Server(TransactionId, ServerEvent),
}

/// Boxed, so that the table's entries stay small whatever the transaction's size.
#[derive(Debug)]
enum Tx {
    Client(Box<ClientTransaction>),
    Server(Box<ServerTransaction>),
}

impl Tx {
    fn poll_timeout(&self) -> Option<Instant> {
        match self {
            Tx::Client(t) => t.poll_timeout(),
            Tx::Server(t) => t.poll_timeout(),
        }
    }

    fn is_absorbing(&self) -> bool {
        match self {
            Tx::Client(t) => t.is_absorbing(),
            Tx::Server(t) => t.is_absorbing(),
        }
    }
}

/// From tag, Call-ID, CSeq number and method: what §8.2.2.2 compares.
type MergeKey = (String, String, u32, Method);

/// A live transaction and the deadline it is filed under in [`TransactionLayer::timers`].
#[derive(Debug)]
struct Slot {
    tx: Tx,
    deadline: Option<Instant>,
    /// Its entry in [`TransactionLayer::merge`] (server transactions, merge detection on).
    merge: Option<Box<MergeKey>>,
    /// Filed in [`TransactionLayer::absorbing`] already.
    absorbing: bool,
}

/// The transaction table of one endpoint (sans-IO; see the module doc for the drain contract).
///
/// Every operation costs O(log n) in the number of live transactions: the transactions'
/// next deadlines are kept ordered (`timers`), refiled whenever a transaction changes, so
/// neither [`TransactionLayer::poll_timeout`] nor [`TransactionLayer::handle_timeout`] scans
/// the table.
#[derive(Debug)]
pub struct TransactionLayer {
    provider: &'static CryptoProvider,
    config: LayerConfig,
    next_id: u64,
    txs: IdMap<TransactionId, Slot>,
    /// `(deadline, id)` of every live transaction that has a timer armed.
    timers: BTreeSet<(Instant, TransactionId)>,
    clients: KeyIndex<ClientKey>,
    servers: KeyIndex<ServerKey>,
    merge: HashMap<MergeKey, TransactionId>,
    /// Transactions in the order they started to only absorb retransmissions: the eviction
    /// order when the table is full. May hold ids that ended since (skipped, and dropped from
    /// the front as they come).
    absorbing: VecDeque<TransactionId>,
    /// Transactions evicted to make room.
    evicted: u64,
    transmits: VecDeque<(TransactionId, Transmit)>,
    events: VecDeque<LayerEvent>,
}

impl TransactionLayer {
    /// An empty layer. `provider` supplies random To tags for the responses the layer sends
    /// itself (482, 481, 200 to CANCEL).
    pub fn new(config: LayerConfig, provider: &'static CryptoProvider) -> Self {
        TransactionLayer {
            provider,
            config,
            next_id: 0,
            txs: IdMap::default(),
            timers: BTreeSet::new(),
            clients: KeyIndex::new(),
            servers: KeyIndex::new(),
            merge: HashMap::new(),
            absorbing: VecDeque::new(),
            evicted: 0,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// How many transactions are alive.
    pub fn len(&self) -> usize {
        self.txs.len()
    }

    /// Whether no transaction is alive.
    pub fn is_empty(&self) -> bool {
        self.txs.is_empty()
    }

    /// How many transactions were evicted (ended before their timer) to make room for new
    /// ones while the table was full; only retransmission-absorbing ones are.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// A client transaction, if alive.
    pub fn client(&self, id: TransactionId) -> Option<&ClientTransaction> {
        match self.txs.get(&id).map(|s| &s.tx) {
            Some(Tx::Client(t)) => Some(&**t),
            _ => None,
        }
    }

    /// A server transaction, if alive.
    pub fn server(&self, id: TransactionId) -> Option<&ServerTransaction> {
        match self.txs.get(&id).map(|s| &s.tx) {
            Some(Tx::Server(t)) => Some(&**t),
            _ => None,
        }
    }

    /// Starts a client transaction for `request` (its first transmission is queued).
    pub fn send_request(
        &mut self,
        request: Request,
        reliable: bool,
        now: Instant,
    ) -> Result<TransactionId, TransactionError> {
        let tx = ClientTransaction::new(request, reliable, &self.config.timers, now)?;
        if self.client_id(tx.key()).is_some() {
            return Err(TransactionError::InvalidState);
        }
        self.make_room()?;
        let id = self.alloc_id();
        let txs = &self.txs;
        self.clients.insert(tx.key(), id, |i| client_key(txs, i));
        self.insert(id, Tx::Client(Box::new(tx)), None);
        self.drain(id);
        Ok(id)
    }

    /// Routes a parsed message.
    pub fn handle_message(&mut self, message: Message, reliable: bool, now: Instant) -> Received {
        match message {
            Message::Request(r) => self.handle_request(r, reliable, now),
            Message::Response(r) => self.handle_response(r, now),
        }
    }

    /// Routes a received response to its client transaction (§17.1.3).
    pub fn handle_response(&mut self, response: Response, now: Instant) -> Received {
        let key = match ClientKey::from_response(&response) {
            Ok(k) => k,
            Err(e) => return Received::Invalid(e),
        };
        let Some(id) = self.client_id(&key) else {
            return Received::StrayResponse(response);
        };
        if let Some(Tx::Client(tx)) = self.txs.get_mut(&id).map(|s| &mut s.tx)
            && let Err(e) = tx.handle_response(response, now)
        {
            return Received::Invalid(e);
        }
        self.drain(id);
        Received::Response(id)
    }

    /// Routes a received request: to its server transaction (§17.2.3), or as new.
    pub fn handle_request(&mut self, request: Request, reliable: bool, now: Instant) -> Received {
        let key = match ServerKey::from_request(&request) {
            Ok(k) => k,
            Err(e) => return Received::Invalid(e),
        };
        if let Some(id) = self.server_id(&key) {
            if let Some(Tx::Server(tx)) = self.txs.get_mut(&id).map(|s| &mut s.tx)
                && let Err(e) = tx.handle_request(request, now)
            {
                return Received::Invalid(e);
            }
            self.drain(id);
            return Received::Absorbed(id);
        }
        match request.method() {
            Method::Ack => return Received::Ack(request),
            Method::Cancel => return self.handle_cancel(request, reliable, now),
            _ => {}
        }
        if self.config.detect_merged
            && let Some(mk) = merge_key(&request)
            && self.merge.contains_key(&mk)
        {
            return self.reply_merged(request, key, reliable, now);
        }
        Received::Request(Incoming {
            key,
            request,
            reliable,
        })
    }

    /// Creates the server transaction of a new request. An INVITE's transaction sends
    /// 100 Trying itself if the TU stays silent for [`TimerConfig::trying_delay`].
    pub fn accept(
        &mut self,
        incoming: Incoming,
        now: Instant,
    ) -> Result<TransactionId, TransactionError> {
        if self.server_id(&incoming.key).is_some() {
            return Err(TransactionError::InvalidState);
        }
        let mk = if self.config.detect_merged {
            merge_key(&incoming.request)
        } else {
            None
        };
        let tx = ServerTransaction::new(
            incoming.request,
            incoming.reliable,
            &self.config.timers,
            now,
        )?;
        self.make_room()?;
        let id = self.alloc_id();
        let txs = &self.txs;
        self.servers
            .insert(&incoming.key, id, |i| server_key(txs, i));
        let mut filed = None;
        if let Some(mk) = mk
            && !self.merge.contains_key(&mk)
        {
            self.merge.insert(mk.clone(), id);
            filed = Some(Box::new(mk));
        }
        self.insert(id, Tx::Server(Box::new(tx)), filed);
        self.drain(id);
        Ok(id)
    }

    /// Sends the TU's response on server transaction `id`.
    pub fn send_response(
        &mut self,
        id: TransactionId,
        response: Response,
        now: Instant,
    ) -> Result<(), TransactionError> {
        match self.txs.get_mut(&id).map(|s| &mut s.tx) {
            Some(Tx::Server(tx)) => tx.send_response(response, now)?,
            _ => return Err(TransactionError::UnknownTransaction),
        }
        self.drain(id);
        Ok(())
    }

    /// Reports that sending for transaction `id` failed.
    pub fn handle_transport_error(&mut self, id: TransactionId, now: Instant) {
        match self.txs.get_mut(&id).map(|s| &mut s.tx) {
            Some(Tx::Client(tx)) => tx.handle_transport_error(now),
            Some(Tx::Server(tx)) => tx.handle_transport_error(now),
            None => return,
        }
        self.drain(id);
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        // Each transaction due at `now` fires once; what it arms again (even if already due)
        // waits for the next call.
        let mut due = Vec::new();
        while let Some(&(at, id)) = self.timers.first()
            && at <= now
        {
            self.timers.pop_first();
            if let Some(slot) = self.txs.get_mut(&id) {
                slot.deadline = None;
            }
            due.push(id);
        }
        for id in due {
            match self.txs.get_mut(&id).map(|s| &mut s.tx) {
                Some(Tx::Client(tx)) => tx.handle_timeout(now),
                Some(Tx::Server(tx)) => tx.handle_timeout(now),
                None => continue,
            }
            self.drain(id);
        }
    }

    /// The next message to send, with the transaction it belongs to (the driver knows where
    /// each transaction sends: the target of a request, the source of a request for responses).
    pub fn poll_transmit(&mut self) -> Option<(TransactionId, Transmit)> {
        self.transmits.pop_front()
    }

    /// The next event for the TU.
    pub fn poll_event(&mut self) -> Option<LayerEvent> {
        self.events.pop_front()
    }

    /// The earliest timer of any transaction.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.first().map(|(at, _)| *at)
    }

    fn insert(&mut self, id: TransactionId, tx: Tx, merge: Option<Box<MergeKey>>) {
        self.txs.insert(
            id,
            Slot {
                tx,
                deadline: None,
                merge,
                absorbing: false,
            },
        );
    }

    /// Files transaction `id` under its current next deadline (and in the eviction order once
    /// it only absorbs retransmissions).
    fn refile(&mut self, id: TransactionId) {
        let Some(slot) = self.txs.get_mut(&id) else {
            return;
        };
        if !slot.absorbing && slot.tx.is_absorbing() {
            slot.absorbing = true;
            self.absorbing.push_back(id);
        }
        let next = slot.tx.poll_timeout();
        if next == slot.deadline {
            return;
        }
        if let Some(old) = slot.deadline {
            self.timers.remove(&(old, id));
        }
        if let Some(at) = next {
            self.timers.insert((at, id));
        }
        slot.deadline = next;
    }

    fn server_id(&self, key: &ServerKey) -> Option<TransactionId> {
        self.servers.get(key, |i| server_key(&self.txs, i))
    }

    fn client_id(&self, key: &ClientKey) -> Option<TransactionId> {
        self.clients.get(key, |i| client_key(&self.txs, i))
    }

    fn alloc_id(&mut self) -> TransactionId {
        self.next_id += 1;
        TransactionId(self.next_id)
    }

    /// Ensures the table has room for one more transaction, evicting the oldest
    /// retransmission-absorbing one if it is full (it ends as if its timer fired: its
    /// `Terminated` event is queued). Fails when every transaction is live.
    fn make_room(&mut self) -> Result<(), TransactionError> {
        if self.txs.len() < self.config.max_transactions {
            return Ok(());
        }
        while let Some(id) = self.absorbing.pop_front() {
            if self.txs.get(&id).is_some_and(|s| s.tx.is_absorbing()) {
                let event = match self.remove(id) {
                    Some(Tx::Client(_)) => LayerEvent::Client(id, ClientEvent::Terminated),
                    Some(Tx::Server(_)) => LayerEvent::Server(id, ServerEvent::Terminated),
                    None => continue,
                };
                self.events.push_back(event);
                self.evicted += 1;
                if self.txs.len() < self.config.max_transactions {
                    return Ok(());
                }
            }
        }
        Err(TransactionError::TooManyTransactions)
    }

    /// Forgets transaction `id`: its table entry, timer, key and merge entries.
    fn remove(&mut self, id: TransactionId) -> Option<Tx> {
        let slot = self.txs.remove(&id)?;
        if let Some(at) = slot.deadline {
            self.timers.remove(&(at, id));
        }
        match &slot.tx {
            Tx::Client(tx) => self.clients.remove(tx.key(), id),
            Tx::Server(tx) => self.servers.remove(tx.key(), id),
        }
        // After a load peak, give the memory of the emptied tables back.
        shrink(&mut self.txs);
        shrink(&mut self.merge);
        self.clients.shrink();
        self.servers.shrink();
        let cap = self.absorbing.capacity();
        if cap > 1024 && self.absorbing.len() <= cap / 8 {
            self.absorbing.shrink_to(cap / 2);
        }
        if let Some(mk) = slot.merge
            && self.merge.get(&*mk) == Some(&id)
        {
            self.merge.remove(&*mk);
        }
        // Drop ended transactions from the front of the eviction order, so that it stays
        // about as long as the number of absorbing transactions.
        while let Some(front) = self.absorbing.front()
            && !self.txs.contains_key(front)
        {
            self.absorbing.pop_front();
        }
        Some(slot.tx)
    }

    /// Moves a transaction's output to the layer queues; forgets it once terminated.
    fn drain(&mut self, id: TransactionId) {
        let terminated = match self.txs.get_mut(&id).map(|s| &mut s.tx) {
            Some(Tx::Client(tx)) => {
                while let Some(t) = tx.poll_transmit() {
                    self.transmits.push_back((id, t));
                }
                while let Some(e) = tx.poll_event() {
                    self.events.push_back(LayerEvent::Client(id, e));
                }
                tx.is_terminated()
            }
            Some(Tx::Server(tx)) => {
                while let Some(t) = tx.poll_transmit() {
                    self.transmits.push_back((id, t));
                }
                while let Some(e) = tx.poll_event() {
                    self.events.push_back(LayerEvent::Server(id, e));
                }
                tx.is_terminated()
            }
            None => false,
        };
        if !terminated {
            self.refile(id);
            return;
        }
        self.remove(id);
    }

    /// A response the layer sends itself, with a random To tag.
    fn own_response(&self, request: &Request, status: StatusCode) -> Response {
        let mut r = Response::from_request(request, status);
        let mut raw = [0u8; 8];
        if self.provider.rng.fill(&mut raw).is_ok() {
            r.set_to_tag(&sotto_crypto::hex::encode(&raw));
        }
        r
    }

    fn handle_cancel(&mut self, request: Request, reliable: bool, now: Instant) -> Received {
        let invite = ServerKey::invite_for_cancel(&request)
            .ok()
            .and_then(|k| self.server_id(&k));
        let status = if invite.is_some() {
            StatusCode::OK
        } else {
            StatusCode::CALL_TRANSACTION_DOES_NOT_EXIST
        };
        let response = self.own_response(&request, status);
        match self.start_answered(request, reliable, response, now) {
            Ok(cancel) => Received::Cancel { cancel, invite },
            Err(e) => Received::Invalid(e),
        }
    }

    fn reply_merged(
        &mut self,
        request: Request,
        key: ServerKey,
        reliable: bool,
        now: Instant,
    ) -> Received {
        let response = self.own_response(&request, StatusCode::LOOP_DETECTED);
        debug_assert!(self.server_id(&key).is_none());
        match self.start_answered(request, reliable, response, now) {
            Ok(id) => Received::Merged(id),
            Err(e) => Received::Invalid(e),
        }
    }

    /// Creates a server transaction and answers it at once (not registered for merging).
    fn start_answered(
        &mut self,
        request: Request,
        reliable: bool,
        response: Response,
        now: Instant,
    ) -> Result<TransactionId, TransactionError> {
        let mut tx = ServerTransaction::new(request, reliable, &self.config.timers, now)?;
        tx.send_response(response, now)?;
        self.make_room()?;
        let id = self.alloc_id();
        let txs = &self.txs;
        self.servers.insert(tx.key(), id, |i| server_key(txs, i));
        self.insert(id, Tx::Server(Box::new(tx)), None);
        self.drain(id);
        Ok(id)
    }
}

fn server_key(txs: &IdMap<TransactionId, Slot>, id: TransactionId) -> Option<&ServerKey> {
    match txs.get(&id).map(|s| &s.tx) {
        Some(Tx::Server(t)) => Some(t.key()),
        _ => None,
    }
}

fn client_key(txs: &IdMap<TransactionId, Slot>, id: TransactionId) -> Option<&ClientKey> {
    match txs.get(&id).map(|s| &s.tx) {
        Some(Tx::Client(t)) => Some(t.key()),
        _ => None,
    }
}

/// The §8.2.2.2 comparison key of a request without a To tag (`None` otherwise, or for ACK
/// and CANCEL, which are never merged requests).
fn merge_key(request: &Request) -> Option<MergeKey> {
    if matches!(request.method(), Method::Ack | Method::Cancel) {
        return None;
    }
    if request.to_tag().ok()?.is_some() {
        return None;
    }
    let cseq = request.cseq().ok()?;
    Some((
        request.from_tag().ok()??.to_owned(),
        request.call_id().ok()?.to_owned(),
        cseq.seq,
        cseq.method,
    ))
}
