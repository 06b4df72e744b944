//! Which handled requests `sotto server` prints a line for (`[log] requests`): all, none, or
//! a bounded number per second and then one line counting the ones skipped. One line per
//! request at thousands of requests per second filled 98 MB of log in four minutes of load
//! and cost the proxy's loop a write per request; sampled, the log grows by at most a few
//! lines per second whatever the load, and `/metrics` still counts every request.

use std::time::{Duration, Instant};

use crate::config::RequestLines;

/// What to do with one request's line.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Print it.
    Print,
    /// Print it, after a line saying how many were skipped before it (`skipped`).
    PrintAfterSkipped(u64),
    /// Skip it.
    Skip,
}

/// The sampler: a window of one second, `per_second` lines in each.
#[derive(Debug)]
pub(crate) struct RequestLog {
    mode: RequestLines,
    per_second: u32,
    window_start: Option<Instant>,
    printed: u32,
    skipped: u64,
}

/// The sampling window.
const WINDOW: Duration = Duration::from_secs(1);

impl RequestLog {
    /// A sampler for `mode` with `per_second` lines per window in `sampled` mode.
    pub(crate) fn new(mode: RequestLines, per_second: u32) -> Self {
        RequestLog {
            mode,
            per_second,
            window_start: None,
            printed: 0,
            skipped: 0,
        }
    }

    /// Decides for a request handled at `now`.
    pub(crate) fn decide(&mut self, now: Instant) -> Decision {
        match self.mode {
            RequestLines::All => return Decision::Print,
            RequestLines::None => return Decision::Skip,
            RequestLines::Sampled => {}
        }
        if self
            .window_start
            .is_none_or(|start| now.saturating_duration_since(start) >= WINDOW)
        {
            self.window_start = Some(now);
            self.printed = 0;
        }
        if self.printed >= self.per_second {
            self.skipped += 1;
            return Decision::Skip;
        }
        self.printed += 1;
        match std::mem::take(&mut self.skipped) {
            0 => Decision::Print,
            n => Decision::PrintAfterSkipped(n),
        }
    }

    /// Lines skipped and not yet reported (said at stop).
    pub(crate) fn take_skipped(&mut self) -> u64 {
        std::mem::take(&mut self.skipped)
    }
}

/// The line that reports `n` skipped request lines.
pub(crate) fn print_skipped(n: u64, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::json!({"event": "requests_skipped", "count": n})
        );
    } else {
        println!("({n} request lines skipped: [log] requests = \"sampled\")");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampled_prints_a_bounded_number_per_second_and_counts_the_rest() {
        let mut log = RequestLog::new(RequestLines::Sampled, 3);
        let t0 = Instant::now();
        let first: Vec<_> = (0..10).map(|_| log.decide(t0)).collect();
        assert_eq!(
            first[..3],
            [Decision::Print, Decision::Print, Decision::Print]
        );
        assert!(first[3..].iter().all(|d| *d == Decision::Skip));
        // The next window says how many were skipped, then prints again.
        let t1 = t0 + Duration::from_millis(1000);
        assert_eq!(log.decide(t1), Decision::PrintAfterSkipped(7));
        assert_eq!(log.decide(t1), Decision::Print);
        assert_eq!(log.take_skipped(), 0);
        log.decide(t1);
        log.decide(t1);
        assert_eq!(log.take_skipped(), 1);
    }

    #[test]
    fn all_and_none() {
        let t = Instant::now();
        let mut all = RequestLog::new(RequestLines::All, 0);
        assert!((0..100).all(|_| all.decide(t) == Decision::Print));
        let mut none = RequestLog::new(RequestLines::None, 100);
        assert!((0..100).all(|_| none.decide(t) == Decision::Skip));
        assert_eq!(
            none.take_skipped(),
            0,
            "none mode does not count: it is chosen"
        );
    }
}
