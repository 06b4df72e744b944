//! Anti-flood: a token bucket per source IP address (requests per second and burst) and a ban
//! after repeated authentication failures (what stops SIPVicious' svcrack). Both tables are
//! bounded: when full, the least recently seen source is forgotten.
//!
//! Requests over the rate and requests from a banned source are dropped silently: answering
//! would let a spoofed flood amplify through us.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

use crate::config::AntiFloodConfig;
use crate::pipeline::{Module, RequestContext, Verdict};

#[derive(Debug, Clone)]
struct Source {
    tokens: f64,
    refilled: Instant,
    /// Times of recent authentication failures (at most `ban_after_failures`).
    failures: Vec<Instant>,
    banned_until: Option<Instant>,
    last_seen: Instant,
}

/// The anti-flood module.
#[derive(Debug)]
pub struct AntiFlood {
    config: AntiFloodConfig,
    sources: HashMap<IpAddr, Source>,
    bans: u64,
}

impl AntiFlood {
    /// A module with `config`.
    pub fn new(config: AntiFloodConfig) -> Self {
        AntiFlood {
            config,
            sources: HashMap::new(),
            bans: 0,
        }
    }

    /// Whether `ip` is banned at `now`.
    pub fn is_banned(&self, ip: IpAddr, now: Instant) -> bool {
        self.sources
            .get(&ip)
            .and_then(|s| s.banned_until)
            .is_some_and(|until| now < until)
    }

    /// How many bans were issued so far.
    pub fn bans(&self) -> u64 {
        self.bans
    }

    /// How many sources are tracked.
    pub fn tracked(&self) -> usize {
        self.sources.len()
    }

    fn entry(&mut self, ip: IpAddr, now: Instant) -> &mut Source {
        if !self.sources.contains_key(&ip) && self.sources.len() >= self.config.max_sources.max(1) {
            self.evict(now);
        }
        let burst = f64::from(self.config.burst.max(1));
        self.sources.entry(ip).or_insert(Source {
            tokens: burst,
            refilled: now,
            failures: Vec::new(),
            banned_until: None,
            last_seen: now,
        })
    }

    /// Forgets the least recently seen source that is not banned (or, if all are, the oldest).
    fn evict(&mut self, now: Instant) {
        let victim = self
            .sources
            .iter()
            .filter(|(_, s)| s.banned_until.is_none_or(|u| now >= u))
            .min_by_key(|(_, s)| s.last_seen)
            .or_else(|| self.sources.iter().min_by_key(|(_, s)| s.last_seen))
            .map(|(ip, _)| *ip);
        if let Some(ip) = victim {
            self.sources.remove(&ip);
        }
    }
}

impl Module for AntiFlood {
    fn name(&self) -> &'static str {
        "anti_flood"
    }

    fn on_request(&mut self, ctx: &mut RequestContext, now: Instant) -> Verdict {
        if !self.config.enabled {
            return Verdict::Continue;
        }
        let rate = self.config.rate_per_s.max(0.0);
        let burst = f64::from(self.config.burst.max(1));
        let s = self.entry(ctx.source.ip(), now);
        s.last_seen = now;
        if let Some(until) = s.banned_until {
            if now < until {
                return Verdict::Drop;
            }
            s.banned_until = None;
            s.failures.clear();
        }
        let elapsed = now.saturating_duration_since(s.refilled).as_secs_f64();
        s.tokens = (s.tokens + elapsed * rate).min(burst);
        s.refilled = now;
        if s.tokens < 1.0 {
            return Verdict::Drop;
        }
        s.tokens -= 1.0;
        Verdict::Continue
    }

    fn on_auth_failure(&mut self, source: IpAddr, now: Instant) {
        if !self.config.enabled {
            return;
        }
        let window = self.config.failure_window;
        let threshold = self.config.ban_after_failures.max(1) as usize;
        let ban = self.config.ban_duration;
        let s = self.entry(source, now);
        s.last_seen = now;
        s.failures
            .retain(|t| now.saturating_duration_since(*t) < window);
        s.failures.push(now);
        if s.failures.len() >= threshold {
            s.failures.clear();
            s.banned_until = Some(now + ban);
            self.bans += 1;
            tracing::warn!(source = %source, ban_s = ban.as_secs(), "source banned after repeated authentication failures");
        }
    }

    fn counters(&self, out: &mut dyn FnMut(&'static str, u64)) {
        out("bans_total", self.bans);
        out("tracked_sources", self.tracked() as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::testutil::ctx_from;
    use std::time::Duration;

    fn cfg() -> AntiFloodConfig {
        AntiFloodConfig {
            rate_per_s: 10.0,
            burst: 3,
            max_sources: 2,
            ..AntiFloodConfig::default()
        }
    }

    #[test]
    fn bucket_limits_and_refills() {
        let mut m = AntiFlood::new(cfg());
        let t0 = Instant::now();
        let mut ctx = ctx_from("127.0.0.1:5060");
        for _ in 0..3 {
            assert_eq!(m.on_request(&mut ctx, t0), Verdict::Continue);
        }
        assert_eq!(m.on_request(&mut ctx, t0), Verdict::Drop);
        // 100 ms at 10/s gives one token back.
        let t1 = t0 + Duration::from_millis(100);
        assert_eq!(m.on_request(&mut ctx, t1), Verdict::Continue);
        assert_eq!(m.on_request(&mut ctx, t1), Verdict::Drop);
        // Another source has its own bucket.
        let mut other = ctx_from("127.0.0.2:5060");
        assert_eq!(m.on_request(&mut other, t1), Verdict::Continue);
    }

    #[test]
    fn bans_after_threshold_failures_and_expires() {
        let mut m = AntiFlood::new(AntiFloodConfig::default());
        let t0 = Instant::now();
        let mut ctx = ctx_from("127.0.0.1:5060");
        let ip = ctx.source.ip();
        for i in 0..3 {
            m.on_auth_failure(ip, t0 + Duration::from_secs(i));
            assert!(!m.is_banned(ip, t0 + Duration::from_secs(i)));
        }
        m.on_auth_failure(ip, t0 + Duration::from_secs(3));
        let t = t0 + Duration::from_secs(4);
        assert!(m.is_banned(ip, t));
        assert_eq!(m.bans(), 1);
        assert_eq!(m.on_request(&mut ctx, t), Verdict::Drop);
        let after = t0 + Duration::from_secs(3) + AntiFloodConfig::default().ban_duration;
        assert_eq!(m.on_request(&mut ctx, after), Verdict::Continue);
    }

    #[test]
    fn failures_outside_the_window_do_not_ban() {
        let mut m = AntiFlood::new(AntiFloodConfig::default());
        let t0 = Instant::now();
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        for i in 0..10u64 {
            m.on_auth_failure(ip, t0 + Duration::from_secs(61 * i));
        }
        assert!(!m.is_banned(ip, t0 + Duration::from_secs(610)));
    }

    #[test]
    fn table_is_bounded() {
        let mut m = AntiFlood::new(cfg());
        let t0 = Instant::now();
        for i in 1..=50u8 {
            let mut c = ctx_from(&format!("127.0.0.{i}:5060"));
            m.on_request(&mut c, t0 + Duration::from_millis(u64::from(i)));
        }
        assert_eq!(m.tracked(), 2);
    }

    #[test]
    fn disabled_passes_everything() {
        let mut m = AntiFlood::new(AntiFloodConfig {
            enabled: false,
            ..cfg()
        });
        let t0 = Instant::now();
        let mut ctx = ctx_from("127.0.0.1:5060");
        for _ in 0..100 {
            assert_eq!(m.on_request(&mut ctx, t0), Verdict::Continue);
        }
    }
}
