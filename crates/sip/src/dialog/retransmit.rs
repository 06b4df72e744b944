//! Our 2xx to an INVITE over an unreliable transport (RFC 3261 §13.3.1.4): sent again at T1,
//! then doubling up to T2, until the ACK arrives or 64·T1 have passed (then the dialog is
//! torn down with a BYE, which is the caller's decision).

use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::transaction::TimerConfig;

/// The retransmission schedule of one 2xx.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retransmit2xx {
    bytes: Bytes,
    next: Instant,
    interval: Duration,
    until: Instant,
    t2: Duration,
}

/// What [`Retransmit2xx::handle_timeout`] says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Retransmit {
    /// Nothing due yet.
    Wait,
    /// Send these bytes again.
    Send(Bytes),
    /// No ACK within 64·T1: give up (§13.3.1.4: end the dialog).
    GiveUp,
}

impl Retransmit2xx {
    /// The schedule of `bytes` (the 2xx) sent at `now`, with the timers of `timers`.
    pub fn new(bytes: Bytes, now: Instant, timers: &TimerConfig) -> Self {
        Retransmit2xx {
            bytes,
            next: now + timers.t1,
            interval: timers.t1,
            until: now + timers.t1 * 64,
            t2: timers.t2,
        }
    }

    /// When [`Retransmit2xx::handle_timeout`] is due.
    pub fn poll_timeout(&self) -> Instant {
        self.next.min(self.until)
    }

    /// What to do at `now`.
    pub fn handle_timeout(&mut self, now: Instant) -> Retransmit {
        if self.until <= now {
            return Retransmit::GiveUp;
        }
        if self.next > now {
            return Retransmit::Wait;
        }
        self.interval = (self.interval * 2).min(self.t2);
        self.next = now + self.interval;
        Retransmit::Send(self.bytes.clone())
    }
}
