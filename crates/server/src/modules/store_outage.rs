//! What a module answers while its store fails (SQLite I/O error, Redis or PostgreSQL down):
//! `503 Service Unavailable` with `Retry-After` (RFC 3261 §21.5.4: a temporary condition; a
//! phone retries later instead of giving up as on 500), and a log that stays bounded however
//! many requests arrive during the outage.

use std::fmt::Display;

use sotto_sip::message::StatusCode;

use crate::pipeline::{Reply, Verdict};

/// Seconds a client is asked to wait while the store is unavailable.
pub const RETRY_AFTER_SECS: u32 = 5;

/// One module's record of its store's failures.
#[derive(Debug, Default)]
pub struct StoreOutage {
    /// Failures since the store last answered.
    running: u64,
    /// Failures since start.
    total: u64,
}

impl StoreOutage {
    /// The store failed for `module`: counts it, logs the 1st, 2nd, 4th, 8th… failure of this
    /// outage (a log line per request would grow with the load), and returns the 503.
    pub fn failed(&mut self, module: &'static str, error: &impl Display) -> Verdict {
        self.running += 1;
        self.total += 1;
        if self.running.is_power_of_two() {
            tracing::error!(
                module,
                error = %error,
                failures = self.running,
                "store unavailable: answering 503 until it answers again"
            );
        }
        Reply::new(StatusCode::SERVICE_UNAVAILABLE)
            .with("Retry-After", RETRY_AFTER_SECS.to_string())
            .with("Warning", "399 sotto \"storage unavailable\"")
            .verdict()
    }

    /// The store answered: ends an outage (logged once).
    pub fn answered(&mut self, module: &'static str) {
        if self.running > 0 {
            tracing::warn!(module, failures = self.running, "store answering again");
            self.running = 0;
        }
    }

    /// Failures since start (`store_failures_total` on `/metrics`).
    pub fn total(&self) -> u64 {
        self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_503_with_retry_after_and_counts() {
        let mut o = StoreOutage::default();
        for _ in 0..3 {
            let Verdict::Reply(r) = o.failed("registrar", &"connection refused") else {
                panic!("a reply");
            };
            assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
            assert!(
                r.headers
                    .iter()
                    .any(|(n, v)| n == "Retry-After" && v == "5")
            );
        }
        o.answered("registrar");
        o.failed("registrar", &"again");
        assert_eq!(o.total(), 4);
        assert_eq!(o.running, 1);
    }
}
