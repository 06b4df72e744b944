//! Client transactions: INVITE (RFC 3261 §17.1.1, RFC 6026 §7.2) and non-INVITE (§17.1.2).

use super::{ClientKey, TimerConfig, TransactionError, Transmit};
use crate::message::{Method, Request, Response};
use bytes::Bytes;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// States of a client transaction (Figures 5 and 6 of RFC 3261, Accepted from RFC 6026).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientState {
    /// INVITE sent, no response yet (Timers A, B).
    Calling,
    /// Non-INVITE sent, no response yet (Timers E, F).
    Trying,
    /// A provisional response was received.
    Proceeding,
    /// A final non-2xx (INVITE) or any final (non-INVITE) response was received (Timer D/K).
    Completed,
    /// INVITE got a 2xx: further 2xx are passed up until Timer M (RFC 6026).
    Accepted,
    /// Done; the transaction can be dropped.
    Terminated,
}

/// What a client transaction reports to its TU.
#[derive(Debug, Clone)]
pub enum ClientEvent {
    /// A response for the TU (provisional, final, and for INVITE every 2xx).
    Response(Response),
    /// Timer B or F fired: no final response in time (the TU acts as if 408 arrived).
    Timeout,
    /// The transport reported a failure.
    TransportError,
    /// The transaction ended; it may be dropped.
    Terminated,
}

/// A client transaction (one request sent, its responses received).
///
/// After the final response it keeps only its key, one deadline and (INVITE) the ACK's bytes:
/// the request, its serialized form, the timer configuration and the retransmission timers
/// live in a box dropped then, and the output queues are freed once drained.
#[derive(Debug)]
pub struct ClientTransaction {
    key: ClientKey,
    invite: bool,
    reliable: bool,
    state: ClientState,
    /// Timer D, K or M.
    linger: Option<Instant>,
    ack: Option<Bytes>,
    /// What sending needs, until a final response arrives.
    active: Option<Box<Active>>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<ClientEvent>,
}

/// The part of a client transaction that only matters until its final response.
#[derive(Debug)]
struct Active {
    request: Request,
    /// The request's bytes, for Timer A/E retransmissions.
    request_bytes: Bytes,
    timers: TimerConfig,
    /// Timer A (INVITE) or E (non-INVITE): deadline and current interval.
    retransmit: Option<(Instant, Duration)>,
    /// Timer B (INVITE) or F (non-INVITE).
    timeout: Option<Instant>,
}

impl ClientTransaction {
    /// Starts a client transaction for `request` (not ACK) and queues its first transmission.
    ///
    /// The request must have a top Via with an RFC 3261 branch and a CSeq.
    pub fn new(
        request: Request,
        reliable: bool,
        timers: &TimerConfig,
        now: Instant,
    ) -> Result<Self, TransactionError> {
        if *request.method() == Method::Ack {
            return Err(TransactionError::AckNotAllowed);
        }
        let key = ClientKey::from_request(&request)?;
        let invite = *request.method() == Method::Invite;
        let request_bytes = request.to_bytes();
        let mut tx = ClientTransaction {
            key,
            invite,
            reliable,
            state: if invite {
                ClientState::Calling
            } else {
                ClientState::Trying
            },
            linger: None,
            ack: None,
            active: Some(Box::new(Active {
                request,
                request_bytes: request_bytes.clone(),
                timers: *timers,
                retransmit: (!reliable).then(|| (now + timers.t1, timers.t1)),
                timeout: Some(now + timers.t1_x64()),
            })),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        };
        tx.transmits.push_back(Transmit {
            bytes: request_bytes,
            retransmission: false,
        });
        Ok(tx)
    }

    /// The transaction key.
    pub fn key(&self) -> &ClientKey {
        &self.key
    }

    /// The request this transaction sends, until a final response arrived (the transaction
    /// then drops it: `None`).
    pub fn request(&self) -> Option<&Request> {
        self.active.as_ref().map(|a| &a.request)
    }

    /// Whether the transaction only absorbs retransmitted final responses now: Completed
    /// (Timer D or K), or an INVITE in Accepted (Timer M, RFC 6026; a later 2xx then arrives
    /// as a stray response, which a proxy forwards statelessly). Dropping such a transaction
    /// early loses only the handling of late retransmissions.
    pub fn is_absorbing(&self) -> bool {
        matches!(self.state, ClientState::Completed | ClientState::Accepted)
    }

    /// The current state.
    pub fn state(&self) -> ClientState {
        self.state
    }

    /// Whether the transaction is over.
    pub fn is_terminated(&self) -> bool {
        self.state == ClientState::Terminated
    }

    /// Feeds a response that matched this transaction's key.
    pub fn handle_response(
        &mut self,
        response: Response,
        now: Instant,
    ) -> Result<(), TransactionError> {
        if ClientKey::from_response(&response)? != self.key {
            return Err(TransactionError::NotMatching);
        }
        let status = response.status();
        // Only read in the states that still have their `active` part.
        let timers = self.active.as_ref().map(|a| a.timers).unwrap_or_default();
        match (self.invite, self.state) {
            (_, ClientState::Terminated) => {}
            // INVITE, §17.1.1.2 and RFC 6026 §7.2.
            (true, ClientState::Calling | ClientState::Proceeding) => {
                if status.is_provisional() {
                    self.state = ClientState::Proceeding;
                    if let Some(a) = &mut self.active {
                        a.retransmit = None;
                        a.timeout = None;
                    }
                    self.events.push_back(ClientEvent::Response(response));
                } else if status.is_success() {
                    self.state = ClientState::Accepted;
                    self.forget_request();
                    self.linger = Some(now + timers.t1_x64()); // Timer M
                    self.events.push_back(ClientEvent::Response(response));
                } else {
                    let ack = self.build_ack(&response)?;
                    self.state = ClientState::Completed;
                    self.forget_request();
                    self.transmits.push_back(Transmit {
                        bytes: ack.clone(),
                        retransmission: false,
                    });
                    self.ack = Some(ack);
                    self.events.push_back(ClientEvent::Response(response));
                    let d = if self.reliable {
                        Duration::ZERO
                    } else {
                        timers.timer_d
                    };
                    self.linger_or_terminate(now, d);
                }
            }
            (true, ClientState::Completed) => {
                // A retransmitted final response: ACK again, do not pass up.
                if status.is_final()
                    && let Some(ack) = &self.ack
                {
                    self.transmits.push_back(Transmit {
                        bytes: ack.clone(),
                        retransmission: true,
                    });
                }
            }
            (true, ClientState::Accepted) => {
                // RFC 6026: every 2xx goes to the TU (it ACKs each; forked 2xx included).
                if status.is_success() {
                    self.events.push_back(ClientEvent::Response(response));
                }
            }
            // Non-INVITE, §17.1.2.2.
            (false, ClientState::Trying | ClientState::Proceeding) => {
                if status.is_provisional() {
                    self.state = ClientState::Proceeding;
                    self.events.push_back(ClientEvent::Response(response));
                } else {
                    self.state = ClientState::Completed;
                    self.forget_request();
                    self.events.push_back(ClientEvent::Response(response));
                    let k = if self.reliable {
                        Duration::ZERO
                    } else {
                        timers.t4
                    };
                    self.linger_or_terminate(now, k);
                }
            }
            (false, _) | (true, ClientState::Trying) => {} // absorbed
        }
        Ok(())
    }

    /// Reports a transport failure for this transaction's messages (§17.1.4).
    pub fn handle_transport_error(&mut self, _now: Instant) {
        if self.state != ClientState::Terminated {
            self.events.push_back(ClientEvent::TransportError);
            self.terminate();
        }
    }

    /// Fires the timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.state == ClientState::Terminated {
            return;
        }
        if self
            .active
            .as_ref()
            .and_then(|a| a.timeout)
            .is_some_and(|t| t <= now)
        {
            // Timer B or F.
            self.events.push_back(ClientEvent::Timeout);
            self.terminate();
            return;
        }
        if self.linger.is_some_and(|t| t <= now) {
            // Timer D, K or M.
            self.terminate();
            return;
        }
        let Some(a) = &mut self.active else {
            return;
        };
        if let Some((at, interval)) = a.retransmit
            && at <= now
        {
            // Timer A doubles without bound (B stops it); Timer E doubles up to T2, and
            // is T2 once a provisional response arrived (§17.1.2.2).
            let next = if self.invite {
                interval.saturating_mul(2)
            } else if self.state == ClientState::Proceeding {
                a.timers.t2
            } else {
                interval.saturating_mul(2).min(a.timers.t2)
            };
            a.retransmit = Some((now + next, next));
            self.transmits.push_back(Transmit {
                bytes: a.request_bytes.clone(),
                retransmission: true,
            });
        }
    }

    /// The next message to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        let t = self.transmits.pop_front();
        if t.is_none() && self.transmits.capacity() > 0 && self.active.is_none() {
            // Drained after the final response: free the buffer.
            self.transmits = VecDeque::new();
        }
        t
    }

    /// The next event for the TU.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        let e = self.events.pop_front();
        if e.is_none() && self.events.capacity() > 0 && self.active.is_none() {
            self.events = VecDeque::new();
        }
        e
    }

    /// When [`ClientTransaction::handle_timeout`] must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.state == ClientState::Terminated {
            return None;
        }
        let a = self.active.as_deref();
        [
            a.and_then(|a| a.retransmit.map(|(t, _)| t)),
            a.and_then(|a| a.timeout),
            self.linger,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn linger_or_terminate(&mut self, now: Instant, d: Duration) {
        if d.is_zero() {
            self.terminate();
        } else {
            self.linger = Some(now + d);
        }
    }

    /// Drops what only the sending phase needs (after a final response).
    fn forget_request(&mut self) {
        self.active = None;
    }

    fn terminate(&mut self) {
        self.state = ClientState::Terminated;
        self.forget_request();
        self.linger = None;
        self.events.push_back(ClientEvent::Terminated);
    }

    /// The ACK for a non-2xx final response (§17.1.1.3): same Request-URI, Call-ID, From,
    /// CSeq number and top Via (so the same branch) as the INVITE, the response's To, and the
    /// INVITE's Route headers.
    fn build_ack(&self, response: &Response) -> Result<Bytes, TransactionError> {
        let req = self
            .active
            .as_ref()
            .map(|a| &a.request)
            .ok_or(TransactionError::InvalidState)?;
        let h = req.headers();
        let via = req.via_top().map_err(|_| TransactionError::InvalidVia)?;
        let cseq = req
            .cseq()
            .map_err(|_| TransactionError::InvalidHeader("CSeq"))?;
        let mut ack = Request::new(Method::Ack, req.uri().clone());
        let out = ack.headers_mut();
        out.push("Via", via.to_string());
        for (name, value) in [("From", h.get("From")), ("Call-ID", h.get("Call-ID"))] {
            out.push(name, value.ok_or(TransactionError::InvalidHeader(name))?);
        }
        let to = response
            .headers()
            .get("To")
            .ok_or(TransactionError::InvalidHeader("To"))?;
        out.push("To", to);
        out.push("CSeq", format!("{} ACK", cseq.seq));
        for route in h.get_all("Route") {
            out.push("Route", route);
        }
        out.push(
            "Max-Forwards",
            h.get("Max-Forwards").unwrap_or("70").to_owned(),
        );
        Ok(ack.to_bytes())
    }
}
