//! Server transactions: INVITE (RFC 3261 §17.2.1, RFC 6026 §7.1) and non-INVITE (§17.2.2).

use super::{ServerKey, TimerConfig, TransactionError, Transmit};
use crate::message::{Method, Request, Response, StatusCode};
use bytes::Bytes;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// States of a server transaction (Figures 7 and 8 of RFC 3261, Accepted from RFC 6026).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerState {
    /// Non-INVITE received, no response from the TU yet.
    Trying,
    /// INVITE received, or a provisional response was sent.
    Proceeding,
    /// A final response (non-2xx for INVITE) was sent (Timers G, H, or J).
    Completed,
    /// INVITE only: the ACK for the non-2xx arrived (Timer I).
    Confirmed,
    /// INVITE only: a 2xx was sent; the TU retransmits it (Timer L, RFC 6026).
    Accepted,
    /// Done; the transaction can be dropped.
    Terminated,
}

/// What a server transaction reports to its TU.
#[derive(Debug, Clone)]
pub enum ServerEvent {
    /// An ACK matched the transaction in the Accepted state (RFC 6026 §7.1): for the TU.
    Ack(Box<Request>),
    /// Timer H fired: no ACK for the final non-2xx response.
    Timeout,
    /// The transport reported a failure.
    TransportError,
    /// The transaction ended; it may be dropped.
    Terminated,
}

/// A server transaction (one request received, the TU's responses sent).
///
/// Once it only absorbs retransmissions (non-INVITE Completed, INVITE Confirmed or Accepted),
/// it keeps its key, the final response's bytes and one deadline: the request, the timer
/// configuration and the retransmission timers live in a box that is dropped then, and the
/// output queues are freed once drained. At thousands of requests per second most of a
/// server's table is such transactions (Timer J lasts 32 s over UDP).
#[derive(Debug)]
pub struct ServerTransaction {
    key: ServerKey,
    state: ServerState,
    invite: bool,
    reliable: bool,
    last_response: Option<Bytes>,
    /// Timer I, J or L.
    linger: Option<Instant>,
    /// What a transaction still sending needs (`None` once it only absorbs).
    active: Option<Box<Active>>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<ServerEvent>,
}

/// The part of a server transaction that only matters until it stops sending on its own.
#[derive(Debug)]
struct Active {
    /// The request, until a final response is sent.
    request: Option<Request>,
    timers: TimerConfig,
    /// 100 Trying deadline (INVITE, TU silent).
    trying: Option<Instant>,
    /// Timer G: deadline and interval.
    retransmit: Option<(Instant, Duration)>,
    /// Timer H.
    timeout: Option<Instant>,
}

impl ServerTransaction {
    /// Starts a server transaction for a received `request` (not ACK).
    pub fn new(
        request: Request,
        reliable: bool,
        timers: &TimerConfig,
        now: Instant,
    ) -> Result<Self, TransactionError> {
        if *request.method() == Method::Ack {
            return Err(TransactionError::AckNotAllowed);
        }
        let key = ServerKey::from_request(&request)?;
        let invite = *request.method() == Method::Invite;
        Ok(ServerTransaction {
            key,
            state: if invite {
                ServerState::Proceeding
            } else {
                ServerState::Trying
            },
            invite,
            reliable,
            last_response: None,
            linger: None,
            active: Some(Box::new(Active {
                request: Some(request),
                timers: *timers,
                trying: invite.then(|| now + timers.trying_delay),
                retransmit: None,
                timeout: None,
            })),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        })
    }

    /// The transaction key.
    pub fn key(&self) -> &ServerKey {
        &self.key
    }

    /// The request that created the transaction, until a final response was sent (the
    /// transaction then drops it: `None`).
    pub fn request(&self) -> Option<&Request> {
        self.active.as_ref().and_then(|a| a.request.as_ref())
    }

    /// Whether the transaction only absorbs retransmissions now: a non-INVITE in Completed
    /// (Timer J), an INVITE in Confirmed (Timer I) or Accepted (Timer L, RFC 6026: it absorbs
    /// INVITE retransmissions; the TU's 2xx retransmissions and the 2xx's ACK need no
    /// transaction). When such a transaction is dropped early, only the absorption of late
    /// retransmissions is lost.
    pub fn is_absorbing(&self) -> bool {
        match self.state {
            ServerState::Completed => !self.invite,
            ServerState::Confirmed | ServerState::Accepted => true,
            _ => false,
        }
    }

    /// The current state.
    pub fn state(&self) -> ServerState {
        self.state
    }

    /// Whether the transaction is over.
    pub fn is_terminated(&self) -> bool {
        self.state == ServerState::Terminated
    }

    /// Whether a final response was sent (a CANCEL then has no effect, §9.2).
    pub fn has_final_response(&self) -> bool {
        !matches!(self.state, ServerState::Trying | ServerState::Proceeding)
    }

    /// Feeds a request that matched this transaction: a retransmission or an ACK.
    pub fn handle_request(
        &mut self,
        request: Request,
        now: Instant,
    ) -> Result<(), TransactionError> {
        if ServerKey::from_request(&request)? != self.key {
            return Err(TransactionError::NotMatching);
        }
        let is_ack = *request.method() == Method::Ack;
        match (is_ack, self.state) {
            (_, ServerState::Terminated) => {}
            (true, ServerState::Completed) => {
                // §17.2.1: ACK for the non-2xx; Timer I absorbs further ACKs.
                self.state = ServerState::Confirmed;
                let t4 = self.active.take().map_or(Duration::ZERO, |a| a.timers.t4);
                let i = if self.reliable { Duration::ZERO } else { t4 };
                if i.is_zero() {
                    self.terminate();
                } else {
                    self.linger = Some(now + i);
                }
            }
            (true, ServerState::Accepted) => {
                self.events.push_back(ServerEvent::Ack(Box::new(request)))
            }
            (true, _) => {}
            // Retransmitted request: resend the last response, if any (absorbed otherwise).
            (false, ServerState::Proceeding | ServerState::Completed) => {
                if let Some(bytes) = &self.last_response {
                    self.transmits.push_back(Transmit {
                        bytes: bytes.clone(),
                        retransmission: true,
                    });
                }
            }
            (false, _) => {}
        }
        Ok(())
    }

    /// Sends a response from the TU.
    ///
    /// INVITE: 1xx in Proceeding; 2xx moves to Accepted (and further 2xx, the TU's
    /// retransmissions, are sent there); 300–699 moves to Completed. Non-INVITE: 1xx in
    /// Trying/Proceeding, a final response moves to Completed. Anything else is
    /// [`TransactionError::InvalidState`].
    pub fn send_response(
        &mut self,
        response: Response,
        now: Instant,
    ) -> Result<(), TransactionError> {
        let status = response.status();
        if !(100..700).contains(&status.as_u16()) {
            return Err(TransactionError::InvalidState);
        }
        let allowed = match self.state {
            ServerState::Trying | ServerState::Proceeding => true,
            ServerState::Accepted => status.is_success(),
            _ => false,
        };
        if !allowed {
            return Err(TransactionError::InvalidState);
        }
        let mut bytes = response.to_bytes();
        if status.is_final() && !self.reliable {
            // Kept for Timer J/G and retransmitted requests: an exact-size copy, not the
            // serializer's spare capacity (about half of it again).
            bytes = Bytes::copy_from_slice(&bytes);
        }
        if let Some(a) = &mut self.active {
            a.trying = None;
        }
        self.transmits.push_back(Transmit {
            bytes: bytes.clone(),
            retransmission: false,
        });
        self.last_response = Some(bytes);
        if status.is_provisional() {
            self.state = ServerState::Proceeding;
            return Ok(());
        }
        if self.state == ServerState::Accepted {
            self.last_response = None;
            return Ok(()); // The TU's 2xx retransmission.
        }
        // A final response: what only sending needs goes (the request: no 100 Trying to
        // build), except the timers of an INVITE's non-2xx (G, H, then I).
        let Some(mut active) = self.active.take() else {
            return Err(TransactionError::InvalidState);
        };
        let timers = active.timers;
        if self.invite && !status.is_success() {
            self.state = ServerState::Completed;
            active.request = None;
            if !self.reliable {
                active.retransmit = Some((now + timers.t1, timers.t1)); // Timer G
            }
            active.timeout = Some(now + timers.t1_x64()); // Timer H
            self.active = Some(active);
        } else if self.invite {
            self.state = ServerState::Accepted;
            // Accepted resends nothing itself (the TU retransmits its 2xx): keep no copy.
            self.last_response = None;
            self.linger = Some(now + timers.t1_x64()); // Timer L
        } else {
            self.state = ServerState::Completed;
            if self.reliable {
                self.terminate();
            } else {
                self.linger = Some(now + timers.t1_x64()); // Timer J
            }
        }
        Ok(())
    }

    /// Reports a transport failure for this transaction's responses (§17.2.4).
    pub fn handle_transport_error(&mut self, _now: Instant) {
        if self.state != ServerState::Terminated {
            self.events.push_back(ServerEvent::TransportError);
            self.terminate();
        }
    }

    /// Fires the timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.state == ServerState::Terminated {
            return;
        }
        if self
            .active
            .as_ref()
            .and_then(|a| a.timeout)
            .is_some_and(|t| t <= now)
        {
            // Timer H: the ACK never came.
            self.events.push_back(ServerEvent::Timeout);
            self.terminate();
            return;
        }
        if self.linger.is_some_and(|t| t <= now) {
            // Timer I, J or L.
            self.terminate();
            return;
        }
        let Some(a) = &mut self.active else {
            return;
        };
        if a.trying.is_some_and(|t| t <= now) {
            a.trying = None;
            // §8.2.6.1: 100 Trying carries no To tag; from_request adds none.
            if let Some(request) = &a.request {
                let bytes = Response::from_request(request, StatusCode::TRYING).to_bytes();
                self.transmits.push_back(Transmit {
                    bytes: bytes.clone(),
                    retransmission: false,
                });
                self.last_response = Some(bytes);
            }
        }
        if let Some((at, interval)) = a.retransmit
            && at <= now
        {
            // Timer G doubles up to T2.
            let next = interval.saturating_mul(2).min(a.timers.t2);
            a.retransmit = Some((now + next, next));
            if let Some(bytes) = &self.last_response {
                self.transmits.push_back(Transmit {
                    bytes: bytes.clone(),
                    retransmission: true,
                });
            }
        }
    }

    /// The next message to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        let t = self.transmits.pop_front();
        if t.is_none() && self.transmits.capacity() > 0 && self.has_final_response() {
            // Drained after the final response: few (if any) transmits follow; free the buffer.
            self.transmits = VecDeque::new();
        }
        t
    }

    /// The next event for the TU.
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        let e = self.events.pop_front();
        if e.is_none() && self.events.capacity() > 0 && self.has_final_response() {
            self.events = VecDeque::new();
        }
        e
    }

    /// When [`ServerTransaction::handle_timeout`] must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.state == ServerState::Terminated {
            return None;
        }
        let a = self.active.as_deref();
        [
            a.and_then(|a| a.trying),
            a.and_then(|a| a.retransmit.map(|(t, _)| t)),
            a.and_then(|a| a.timeout),
            self.linger,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn terminate(&mut self) {
        self.state = ServerState::Terminated;
        self.active = None;
        self.linger = None;
        self.events.push_back(ServerEvent::Terminated);
    }
}
