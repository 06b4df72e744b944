//! Load shedding: when the IO edge reports that received messages wait
//! ([`super::Proxy::set_backlog`]: how many are queued for the proxy, and how long the one
//! at hand waited since it arrived — the kernel's receive time for UDP), new requests are
//! refused with a stateless 503 before any module runs (no digest check, no store, no
//! transaction), in two levels:
//!
//! 1. from `shed_unauthenticated_at` messages waiting, or waits of `shed_unauthenticated_after`
//!    standing for `standing`: new requests without credentials (each would only be
//!    challenged and come back: new work);
//! 2. from `shed_all_at`, or waits of `shed_all_after` standing for `standing`: every new
//!    out-of-dialog request.
//!
//! A wait "stands" when every message handled for `standing` waited at least that long (as
//! CoDel judges a queue): a pause of the process (the scheduler, a page fault, a burst of
//! store answers) makes a few messages wait, and the queue drains right after; only a queue
//! that never drains is an overload.
//!
//! Never shed: responses, ACK, CANCEL, requests within a dialog (a To tag: BYE, re-INVITE)
//! and retransmissions of requests that already have a transaction — the work already under
//! way, so that calls set up before the peak finish. A 503 costs a parse and a short
//! response; an unanswered UDP request would come back up to ten times (Timer A/E).

use std::time::{Duration, Instant};

use sotto_sip::message::{Method, Request, StatusCode};

use crate::config::OverloadConfig;
use crate::pipeline::Reply;

/// The shedding state.
#[derive(Debug)]
pub(super) struct Shedder {
    config: OverloadConfig,
    backlog: usize,
    /// Since when every message waited at least `shed_unauthenticated_after`, and at least
    /// `shed_all_after`.
    above_first: Option<Instant>,
    above_all: Option<Instant>,
    /// The levels in force for the message at hand.
    level_first: bool,
    level_all: bool,
    /// How long the message at hand waited (for the log).
    lag: Duration,
    /// Highest backlog seen since the last report ([`Shedder::counters`] takes `&self`: the
    /// metrics sample a shared proxy).
    peak: std::cell::Cell<usize>,
    shed_unauthenticated: u64,
    shed_all: u64,
    /// Refused since shedding last began (`None`: not shedding); logged when it ends.
    episode: Option<u64>,
}

impl Shedder {
    pub(super) fn new(config: OverloadConfig) -> Self {
        Shedder {
            config,
            backlog: 0,
            above_first: None,
            above_all: None,
            level_first: false,
            level_all: false,
            lag: Duration::ZERO,
            peak: std::cell::Cell::new(0),
            shed_unauthenticated: 0,
            shed_all: 0,
            episode: None,
        }
    }

    /// The message at hand waited `lag`, and `backlog` more wait behind it, at `now`.
    pub(super) fn set_backlog(&mut self, backlog: usize, lag: Duration, now: Instant) {
        let c = &self.config;
        let standing = |since: &mut Option<Instant>, threshold: Duration| {
            if lag < threshold {
                *since = None;
                return false;
            }
            now.saturating_duration_since(*since.get_or_insert(now)) >= c.standing
        };
        self.level_first = standing(&mut self.above_first, c.shed_unauthenticated_after)
            || backlog >= c.shed_unauthenticated_at;
        self.level_all =
            standing(&mut self.above_all, c.shed_all_after) || backlog >= c.shed_all_at;
        self.backlog = backlog;
        self.lag = lag;
        self.peak.set(self.peak.get().max(backlog));
    }

    /// The 503 for `req`, a new request with no transaction yet, if it is to be shed;
    /// `certified`: it came with a TLS client certificate (credentials of its own).
    pub(super) fn shed(&mut self, req: &Request, certified: bool) -> Option<Reply> {
        let c = &self.config;
        if !c.enabled || !self.level_first {
            if let Some(refused) = self.episode.take() {
                tracing::info!(refused, "overload over: new requests accepted again");
            }
            return None;
        }
        if self.episode.is_none() {
            tracing::warn!(
                waited_ms = self.lag.as_millis() as u64,
                waiting = self.backlog,
                "overload: refusing new requests (503) until the backlog clears"
            );
            self.episode = Some(0);
        }
        if matches!(req.method(), Method::Ack | Method::Cancel)
            || req.to_tag().ok().flatten().is_some()
        {
            return None;
        }
        if self.level_all {
            self.shed_all += 1;
        } else if certified || has_credentials(req) {
            return None;
        } else {
            self.shed_unauthenticated += 1;
        }
        if let Some(n) = self.episode.as_mut() {
            *n += 1;
        }
        Some(
            Reply::new(StatusCode::SERVICE_UNAVAILABLE)
                .with("Retry-After", c.retry_after_secs.to_string()),
        )
    }

    /// Figures for metrics: `shed_total` by level and the backlog (the peak since the last
    /// report, so that a sample between bursts still shows them).
    pub(super) fn counters(&self, out: &mut dyn FnMut(&'static str, &'static str, u64)) {
        out(
            "overload",
            "shed_unauthenticated_total",
            self.shed_unauthenticated,
        );
        out("overload", "shed_all_total", self.shed_all);
        out(
            "overload",
            "incoming_backlog",
            self.peak.replace(self.backlog) as u64,
        );
    }
}

fn has_credentials(req: &Request) -> bool {
    req.headers().get("Authorization").is_some()
        || req.headers().get("Proxy-Authorization").is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use sotto_sip::message::Message;
    use sotto_sip::parse::{Limits, parse_message};

    fn request(method: &str, to_tag: bool, credentials: bool) -> Request {
        let text = format!(
            "{method} sip:bob@example.test SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n\
             Max-Forwards: 70\r\nTo: <sip:bob@example.test>{}\r\nFrom: <sip:alice@example.test>;tag=a\r\n\
             Call-ID: c\r\nCSeq: 1 {method}\r\n{}Content-Length: 0\r\n\r\n",
            if to_tag { ";tag=b" } else { "" },
            if credentials {
                "Proxy-Authorization: Digest username=\"alice\", realm=\"example.test\", nonce=\"n\", uri=\"sip:bob@example.test\", response=\"0\"\r\n"
            } else {
                ""
            }
        );
        match parse_message(Bytes::from(text), &Limits::default()).unwrap() {
            Message::Request(r) => r,
            Message::Response(_) => unreachable!(),
        }
    }

    #[test]
    fn sheds_new_work_in_two_levels_and_never_work_under_way() {
        let config = OverloadConfig::default();
        let mut s = Shedder::new(config.clone());
        let fresh = request("INVITE", false, false);
        let authed = request("INVITE", false, true);
        let bye = request("BYE", true, false);
        let cancel = request("CANCEL", false, false);
        let t0 = Instant::now();
        let zero = Duration::ZERO;
        s.set_backlog(config.shed_unauthenticated_at - 1, zero, t0);
        assert!(s.shed(&fresh, false).is_none(), "below the first level");
        s.set_backlog(config.shed_unauthenticated_at, zero, t0);
        let r = s.shed(&fresh, false).expect("no credentials: shed");
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            r.headers
                .iter()
                .any(|(n, v)| n == "Retry-After" && v == "5")
        );
        assert!(
            s.shed(&authed, false).is_none(),
            "credentials: kept at the first level"
        );
        assert!(
            s.shed(&fresh, true).is_none(),
            "a client certificate: kept too"
        );
        assert!(s.shed(&bye, false).is_none() && s.shed(&cancel, false).is_none());
        s.set_backlog(config.shed_all_at, zero, t0);
        assert!(
            s.shed(&authed, false).is_some(),
            "every new request at the second level"
        );
        assert!(s.shed(&request("REGISTER", false, true), false).is_some());
        assert!(s.shed(&bye, false).is_none() && s.shed(&cancel, false).is_none());
        s.set_backlog(0, zero, t0);
        let mut figures = Vec::new();
        s.counters(&mut |_, n, v| figures.push((n, v)));
        assert_eq!(
            figures,
            [
                ("shed_unauthenticated_total", 1),
                ("shed_all_total", 2),
                ("incoming_backlog", config.shed_all_at as u64),
            ]
        );
        let mut off = Shedder::new(OverloadConfig {
            enabled: false,
            ..config
        });
        off.set_backlog(100_000, Duration::from_secs(9), t0);
        assert!(off.shed(&fresh, false).is_none());
    }

    #[test]
    fn only_a_standing_wait_sheds_not_a_pause() {
        let config = OverloadConfig::default();
        let mut s = Shedder::new(config.clone());
        let fresh = request("INVITE", false, false);
        let authed = request("INVITE", false, true);
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        // A 70 ms pause: the messages that queued during it wait long, then the queue drains.
        for (at, waited) in [(0, 70), (5, 60), (10, 40), (15, 20), (20, 1)] {
            s.set_backlog(0, ms(waited), t0 + ms(at));
            assert!(
                s.shed(&fresh, false).is_none(),
                "a pause is not an overload"
            );
        }
        // Waits that never drop below the first threshold for `standing`: level one.
        let first = config.shed_unauthenticated_after;
        let mut t = t0 + ms(100);
        s.set_backlog(0, first, t);
        assert!(s.shed(&fresh, false).is_none(), "not standing yet");
        t += config.standing;
        s.set_backlog(0, first + ms(5), t);
        assert!(s.shed(&fresh, false).is_some(), "a standing wait");
        assert!(s.shed(&authed, false).is_none(), "level one only");
        // Longer waits standing as long: level two.
        let all = config.shed_all_after;
        s.set_backlog(0, all, t);
        assert!(s.shed(&authed, false).is_none());
        t += config.standing;
        s.set_backlog(0, all, t);
        assert!(s.shed(&authed, false).is_some(), "level two");
        // One message that did not wait ends it.
        s.set_backlog(0, ms(1), t);
        assert!(s.shed(&fresh, false).is_none() && s.shed(&authed, false).is_none());
    }
}
