//! The virtual clock: an origin taken once, then only moved by the test.

use std::time::{Duration, Instant, SystemTime};

/// Monotonic and wall time under the test's control.
#[derive(Debug, Clone)]
pub struct VirtualClock {
    origin: Instant,
    now: Instant,
    wall_origin: SystemTime,
}

impl Default for VirtualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl VirtualClock {
    /// A clock at its origin.
    pub fn new() -> Self {
        // The origin only: any instant will do, and time moves only when the test says so.
        #[allow(clippy::disallowed_methods)]
        let origin = Instant::now();
        VirtualClock {
            origin,
            now: origin,
            // A fixed wall time: runs are reproducible.
            wall_origin: SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
        }
    }

    /// The current instant.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// The current wall time.
    pub fn wall(&self) -> SystemTime {
        self.wall_origin + self.elapsed()
    }

    /// Time since the origin.
    pub fn elapsed(&self) -> Duration {
        self.now.duration_since(self.origin)
    }

    /// Moves the clock forward by `d`.
    pub fn advance(&mut self, d: Duration) {
        self.now += d;
    }

    /// Moves the clock to `t`, if it is later (time never goes back).
    pub fn advance_to(&mut self, t: Instant) {
        self.now = self.now.max(t);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_moves_only_forward_and_only_when_told() {
        let mut c = VirtualClock::new();
        let t0 = c.now();
        assert_eq!(c.now(), t0);
        c.advance(Duration::from_secs(3));
        c.advance_to(t0 + Duration::from_secs(1));
        assert_eq!(c.elapsed(), Duration::from_secs(3));
        assert_eq!(
            c.wall().duration_since(SystemTime::UNIX_EPOCH).unwrap(),
            Duration::from_secs(1_800_000_003)
        );
    }
}
