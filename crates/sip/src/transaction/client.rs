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
#[derive(Debug)]
pub struct ClientTransaction {
    key: ClientKey,
    request: Request,
    request_bytes: Bytes,
    invite: bool,
    reliable: bool,
    timers: TimerConfig,
    state: ClientState,
    /// Timer A (INVITE) or E (non-INVITE): deadline and current interval.
    retransmit: Option<(Instant, Duration)>,
    /// Timer B (INVITE) or F (non-INVITE).
    timeout: Option<Instant>,
    /// Timer D, K or M.
    linger: Option<Instant>,
    ack: Option<Bytes>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<ClientEvent>,
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
            request,
            request_bytes: request_bytes.clone(),
            invite,
            reliable,
            timers: *timers,
            state: if invite {
                ClientState::Calling
            } else {
                ClientState::Trying
            },
            retransmit: None,
            timeout: Some(now + timers.t1_x64()),
            linger: None,
            ack: None,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        };
        if !reliable {
            tx.retransmit = Some((now + timers.t1, timers.t1));
        }
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

    /// The request this transaction sends.
    pub fn request(&self) -> &Request {
        &self.request
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
        match (self.invite, self.state) {
            (_, ClientState::Terminated) => {}
            // INVITE, §17.1.1.2 and RFC 6026 §7.2.
            (true, ClientState::Calling | ClientState::Proceeding) => {
                if status.is_provisional() {
                    self.state = ClientState::Proceeding;
                    self.retransmit = None;
                    self.timeout = None;
                    self.events.push_back(ClientEvent::Response(response));
                } else if status.is_success() {
                    self.state = ClientState::Accepted;
                    self.retransmit = None;
                    self.timeout = None;
                    self.linger = Some(now + self.timers.t1_x64()); // Timer M
                    self.events.push_back(ClientEvent::Response(response));
                } else {
                    let ack = self.build_ack(&response)?;
                    self.state = ClientState::Completed;
                    self.retransmit = None;
                    self.timeout = None;
                    self.transmits.push_back(Transmit {
                        bytes: ack.clone(),
                        retransmission: false,
                    });
                    self.ack = Some(ack);
                    self.events.push_back(ClientEvent::Response(response));
                    let d = if self.reliable {
                        Duration::ZERO
                    } else {
                        self.timers.timer_d
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
                    self.retransmit = None;
                    self.timeout = None;
                    self.events.push_back(ClientEvent::Response(response));
                    let k = if self.reliable {
                        Duration::ZERO
                    } else {
                        self.timers.t4
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
        if self.timeout.is_some_and(|t| t <= now) {
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
        if let Some((at, interval)) = self.retransmit
            && at <= now
        {
            // Timer A doubles without bound (B stops it); Timer E doubles up to T2, and
            // is T2 once a provisional response arrived (§17.1.2.2).
            let next = if self.invite {
                interval.saturating_mul(2)
            } else if self.state == ClientState::Proceeding {
                self.timers.t2
            } else {
                interval.saturating_mul(2).min(self.timers.t2)
            };
            self.retransmit = Some((now + next, next));
            self.transmits.push_back(Transmit {
                bytes: self.request_bytes.clone(),
                retransmission: true,
            });
        }
    }

    /// The next message to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event for the TU.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// When [`ClientTransaction::handle_timeout`] must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.state == ClientState::Terminated {
            return None;
        }
        [self.retransmit.map(|(t, _)| t), self.timeout, self.linger]
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

    fn terminate(&mut self) {
        self.state = ClientState::Terminated;
        self.retransmit = None;
        self.timeout = None;
        self.linger = None;
        self.events.push_back(ClientEvent::Terminated);
    }

    /// The ACK for a non-2xx final response (§17.1.1.3): same Request-URI, Call-ID, From,
    /// CSeq number and top Via (so the same branch) as the INVITE, the response's To, and the
    /// INVITE's Route headers.
    fn build_ack(&self, response: &Response) -> Result<Bytes, TransactionError> {
        let req = &self.request;
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
