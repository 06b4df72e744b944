//! Retransmission (RFC 6189 §6): Hello on timer T1 (50 ms doubling to 200 ms, 20 times),
//! the initiator's Commit, DHPart2 and Confirm2 on T2 (150 ms doubling to 1.2 s, 10 times).
//! The responder never retransmits: it answers each retransmission it receives.

use std::time::{Duration, Instant};

/// Which timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerKind {
    /// T1, for Hello.
    T1,
    /// T2, for the initiator's messages.
    T2,
}

impl TimerKind {
    fn first(self) -> Duration {
        match self {
            TimerKind::T1 => Duration::from_millis(50),
            TimerKind::T2 => Duration::from_millis(150),
        }
    }
    fn cap(self) -> Duration {
        match self {
            TimerKind::T1 => Duration::from_millis(200),
            TimerKind::T2 => Duration::from_millis(1200),
        }
    }
    fn limit(self) -> u32 {
        match self {
            TimerKind::T1 => 20,
            TimerKind::T2 => 10,
        }
    }
}

/// One message being retransmitted.
#[derive(Debug, Clone)]
pub struct Retransmit {
    /// The message.
    pub message: Vec<u8>,
    /// Its timer.
    pub kind: TimerKind,
    /// When it is sent again.
    pub due: Instant,
    interval: Duration,
    sent_again: u32,
}

/// What a fired timer asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fired {
    /// Send this again.
    Resend(Vec<u8>),
    /// The retransmissions are spent.
    Exhausted(TimerKind),
}

impl Retransmit {
    /// Starts retransmitting `message` (just sent at `now`).
    pub fn start(kind: TimerKind, message: Vec<u8>, now: Instant) -> Self {
        Retransmit {
            message,
            kind,
            due: now + kind.first(),
            interval: kind.first(),
            sent_again: 0,
        }
    }

    /// Fires the timer at `now` if due.
    pub fn fire(&mut self, now: Instant) -> Option<Fired> {
        if now < self.due {
            return None;
        }
        if self.sent_again >= self.kind.limit() {
            return Some(Fired::Exhausted(self.kind));
        }
        self.sent_again += 1;
        self.interval = (self.interval * 2).min(self.kind.cap());
        self.due = now + self.interval;
        Some(Fired::Resend(self.message.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    // A test may read the clock: it only needs some instant to count from.
    #[allow(clippy::disallowed_methods)]
    fn t1_doubles_to_its_cap_then_gives_up() {
        let t0 = Instant::now();
        let mut r = Retransmit::start(TimerKind::T1, vec![1], t0);
        let mut now = t0;
        let mut gaps = Vec::new();
        loop {
            let due = r.due;
            gaps.push((due - now).as_millis());
            now = due;
            match r.fire(now).unwrap() {
                Fired::Resend(m) => assert_eq!(m, vec![1]),
                Fired::Exhausted(k) => {
                    assert_eq!(k, TimerKind::T1);
                    break;
                }
            }
        }
        assert_eq!(&gaps[..4], &[50, 100, 200, 200]);
        assert_eq!(gaps.len(), 21);
    }
}
