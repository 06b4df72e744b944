//! Anti-flood: a token bucket per source IP address (requests per second and burst), and
//! authentication failures counted per address *and* account:
//!
//! - one account failing `ban_after_failures` times from one address is locked out from that
//!   address for `account_lockout`, twice as long at each new lockout (what stops SIPVicious'
//!   svcrack on one account); its first request then gets `403` with `Retry-After` and a
//!   Warning saying why, later ones are dropped: the user who mistyped learns it, other users
//!   behind the same address (an office, a carrier's NAT) are not touched, and a scanner
//!   learns nothing (any name, existing or not, is treated alike);
//! - `ban_after_accounts` different accounts failing from one address ban the address for
//!   `ban_duration` (a guesser trying many users); the first request from a banned address
//!   gets `403` with `Retry-After` and a Warning (once per ban), later ones are dropped, as
//!   are requests over the rate: answering them would let a spoofed flood amplify through us.
//!
//! An operator lists bans and lockouts ([`Module::blocks`], `sotto ban list`) and lifts them
//! ([`Module::lift`], `sotto ban lift`).
//!
//! The tables are bounded: when full, the least recently seen source is forgotten; at most
//! [`MAX_ACCOUNTS_PER_SOURCE`] accounts are tracked per source.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

use sotto_sip::message::{Method, Request, StatusCode};

use crate::config::AntiFloodConfig;
use crate::pipeline::{Block, Module, Reply, RequestContext, Verdict};

/// Accounts tracked per source; one more failing account bans the source anyway.
pub const MAX_ACCOUNTS_PER_SOURCE: usize = 32;

/// Recent failures of one account from one source.
#[derive(Debug, Clone)]
struct AccountFailures {
    account: String,
    /// Times of recent failures (at most `ban_after_failures`).
    failures: Vec<Instant>,
    locked_until: Option<Instant>,
    /// Lockouts so far: after one, a single failure locks again, for twice as long.
    lockouts: u32,
    /// The 403 of the running lockout was sent.
    told: bool,
    last: Instant,
}

#[derive(Debug, Clone)]
struct Source {
    tokens: f64,
    refilled: Instant,
    accounts: Vec<AccountFailures>,
    banned_until: Option<Instant>,
    /// The 403 of the running ban was sent.
    ban_told: bool,
    last_seen: Instant,
}

/// The account a request speaks for: the To user of a REGISTER, the From user otherwise
/// (the identity the authentication module checks).
fn account_of(req: &Request) -> Option<String> {
    let party = if *req.method() == Method::Register {
        req.to().ok()?
    } else {
        req.from().ok()?
    };
    party.uri.user().map(str::to_owned)
}

/// The anti-flood module.
#[derive(Debug)]
pub struct AntiFlood {
    config: AntiFloodConfig,
    sources: HashMap<IpAddr, Source>,
    bans: u64,
    lockouts: u64,
    /// Requests dropped: over the source's rate, and from a banned source.
    rate_limited: u64,
    dropped_banned: u64,
}

impl AntiFlood {
    /// A module with `config`.
    pub fn new(config: AntiFloodConfig) -> Self {
        AntiFlood {
            config,
            sources: HashMap::new(),
            bans: 0,
            lockouts: 0,
            rate_limited: 0,
            dropped_banned: 0,
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

    /// Until when `account` is locked out from `ip`, if it is at `now`.
    pub fn locked_until(&self, ip: IpAddr, account: &str, now: Instant) -> Option<Instant> {
        self.sources
            .get(&ip)?
            .accounts
            .iter()
            .find(|a| a.account == account)?
            .locked_until
            .filter(|u| now < *u)
    }

    /// Whether `ip` is in a trusted network (never limited, locked out or banned).
    pub fn trusted(&self, ip: IpAddr) -> bool {
        self.config.trusted_networks.iter().any(|n| n.contains(&ip))
    }

    /// How many account lockouts were issued so far.
    pub fn lockouts(&self) -> u64 {
        self.lockouts
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
            accounts: Vec::new(),
            banned_until: None,
            ban_told: false,
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
        if !self.config.enabled || self.trusted(ctx.source.ip()) {
            return Verdict::Continue;
        }
        let rate = self.config.rate_per_s.max(0.0);
        let burst = f64::from(self.config.burst.max(1));
        let s = self.entry(ctx.source.ip(), now);
        s.last_seen = now;
        if let Some(until) = s.banned_until {
            if now < until {
                // Told once per ban (a legitimate user behind the address learns why and
                // when to retry; a scanner learns only what its failures already told it);
                // after that, silence: answering a spoofed flood would amplify it.
                if std::mem::replace(&mut s.ban_told, true) || *ctx.request.method() == Method::Ack
                {
                    self.dropped_banned += 1;
                    return Verdict::Drop;
                }
                let retry = until.saturating_duration_since(now).as_secs().max(1);
                return Reply::new(StatusCode::FORBIDDEN)
                    .with("Retry-After", retry.to_string())
                    .with(
                        "Warning",
                        format!(
                            "399 sotto \"your address is blocked after failed authentications \
                             for many accounts: retry in {retry} s\""
                        ),
                    )
                    .verdict();
            }
            s.banned_until = None;
            s.accounts.clear();
        }
        let elapsed = now.saturating_duration_since(s.refilled).as_secs_f64();
        s.tokens = (s.tokens + elapsed * rate).min(burst);
        s.refilled = now;
        if s.tokens < 1.0 {
            self.rate_limited += 1;
            return Verdict::Drop;
        }
        s.tokens -= 1.0;
        // An account locked out from this address: told so, with when to retry.
        if s.accounts.is_empty() || *ctx.request.method() == Method::Ack {
            return Verdict::Continue;
        }
        let Some(account) = account_of(&ctx.request) else {
            return Verdict::Continue;
        };
        let Some(a) = s.accounts.iter_mut().find(|a| a.account == account) else {
            return Verdict::Continue;
        };
        let Some(until) = a.locked_until.filter(|u| now < *u) else {
            return Verdict::Continue;
        };
        // Told once per lockout; after that, silence (a guessing tool that is answered keeps
        // hammering; one that is not gives up).
        if std::mem::replace(&mut a.told, true) {
            return Verdict::Drop;
        }
        let retry = until.saturating_duration_since(now).as_secs().max(1);
        Reply::new(StatusCode::FORBIDDEN)
            .with("Retry-After", retry.to_string())
            .with(
                "Warning",
                format!(
                    "399 sotto \"too many failed authentications for this account from your \
                     address: retry in {retry} s\""
                ),
            )
            .verdict()
    }

    fn on_auth_failure(&mut self, source: IpAddr, account: Option<&str>, now: Instant) {
        if !self.config.enabled || self.trusted(source) {
            return;
        }
        let window = self.config.failure_window;
        let threshold = self.config.ban_after_failures.max(1) as usize;
        let accounts_to_ban = self.config.ban_after_accounts.max(1) as usize;
        let (ban, lockout) = (self.config.ban_duration, self.config.account_lockout);
        let account = account.unwrap_or_default();
        let s = self.entry(source, now);
        s.last_seen = now;
        // Forget accounts with nothing recent; one that was locked out is remembered for a
        // ban's length (its next failure locks it again at once, for longer).
        s.accounts.retain(|a| {
            let keep = if a.lockouts > 0 { ban } else { window };
            now.saturating_duration_since(a.last) < keep || a.locked_until.is_some_and(|u| now < u)
        });
        let i = match s.accounts.iter().position(|a| a.account == account) {
            Some(i) => i,
            None => {
                s.accounts.push(AccountFailures {
                    account: account.to_owned(),
                    failures: Vec::new(),
                    locked_until: None,
                    lockouts: 0,
                    told: false,
                    last: now,
                });
                s.accounts.len() - 1
            }
        };
        let a = &mut s.accounts[i];
        a.last = now;
        a.failures
            .retain(|t| now.saturating_duration_since(*t) < window);
        a.failures.push(now);
        let mut locked = None;
        if a.failures.len() >= threshold || a.lockouts > 0 {
            a.failures.clear();
            // 1, 2, 4... lockouts' worth, at most a ban's length.
            let d = lockout
                .saturating_mul(1u32 << a.lockouts.min(16))
                .min(ban.max(lockout));
            a.locked_until = Some(now + d);
            a.lockouts = a.lockouts.saturating_add(1);
            a.told = false;
            locked = Some(d);
        }
        let failing = s.accounts.len();
        if failing >= accounts_to_ban || failing > MAX_ACCOUNTS_PER_SOURCE {
            s.accounts.clear();
            s.banned_until = Some(now + ban);
            s.ban_told = false;
            self.bans += 1;
            tracing::warn!(source = %source, accounts = failing, ban_s = ban.as_secs(), "source banned: authentication failures for many accounts");
        } else if let Some(d) = locked {
            self.lockouts += 1;
            tracing::warn!(source = %source, account, lockout_s = d.as_secs(), "account locked out from this source after repeated authentication failures");
        }
    }

    fn counters(&self, out: &mut dyn FnMut(&'static str, u64)) {
        out("bans_total", self.bans);
        out("account_lockouts_total", self.lockouts);
        out("rate_limited_total", self.rate_limited);
        out("dropped_banned_total", self.dropped_banned);
        out("tracked_sources", self.tracked() as u64);
    }

    fn blocks(&self, now: Instant, out: &mut Vec<Block>) {
        for (ip, s) in &self.sources {
            if let Some(until) = s.banned_until.filter(|u| now < *u) {
                out.push(Block {
                    module: "anti_flood",
                    source: *ip,
                    account: None,
                    reason: "failed authentications for many accounts".into(),
                    remaining: until - now,
                });
            }
            for a in &s.accounts {
                if let Some(until) = a.locked_until.filter(|u| now < *u) {
                    out.push(Block {
                        module: "anti_flood",
                        source: *ip,
                        account: Some(a.account.clone()),
                        reason: format!("repeated failed authentications (lockout {})", a.lockouts),
                        remaining: until - now,
                    });
                }
            }
        }
    }

    fn lift(&mut self, source: IpAddr) -> usize {
        // Forgetting the source lifts its ban and lockouts and their escalation: the
        // operator vouched for it.
        let Some(s) = self.sources.remove(&source) else {
            return 0;
        };
        let lifted = usize::from(s.banned_until.is_some())
            + s.accounts
                .iter()
                .filter(|a| a.locked_until.is_some())
                .count();
        tracing::info!(source = %source, lifted, "blocks lifted by the operator");
        lifted
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
        // The drops are counted for /metrics.
        let mut counters = Vec::new();
        m.counters(&mut |n, v| counters.push((n, v)));
        assert!(
            counters.contains(&("rate_limited_total", 2)),
            "{counters:?}"
        );
        assert!(
            counters.contains(&("dropped_banned_total", 0)),
            "{counters:?}"
        );
    }

    #[test]
    fn bans_after_failures_for_many_accounts_and_expires() {
        let mut m = AntiFlood::new(AntiFloodConfig::default());
        let t0 = Instant::now();
        let mut ctx = ctx_from("127.0.0.1:5060");
        let ip = ctx.source.ip();
        for (i, user) in ["alice", "bob"].iter().enumerate() {
            m.on_auth_failure(ip, Some(user), t0 + Duration::from_secs(i as u64));
            assert!(!m.is_banned(ip, t0 + Duration::from_secs(i as u64)));
        }
        m.on_auth_failure(ip, Some("carol"), t0 + Duration::from_secs(3));
        let t = t0 + Duration::from_secs(4);
        assert!(m.is_banned(ip, t));
        assert_eq!(m.bans(), 1);
        // Told once, with when to retry; then silence.
        let Verdict::Reply(r) = m.on_request(&mut ctx, t) else {
            panic!("the first request of a ban is answered");
        };
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        assert!(r.headers.iter().any(|(n, _)| n == "Retry-After"));
        assert_eq!(m.on_request(&mut ctx, t), Verdict::Drop);
        let mut counters = Vec::new();
        m.counters(&mut |n, v| counters.push((n, v)));
        assert!(
            counters.contains(&("dropped_banned_total", 1)),
            "{counters:?}"
        );
        let after = t0 + Duration::from_secs(3) + AntiFloodConfig::default().ban_duration;
        assert_eq!(m.on_request(&mut ctx, after), Verdict::Continue);
    }

    #[test]
    fn operator_lists_and_lifts_bans_and_lockouts() {
        let config = AntiFloodConfig::default();
        let mut m = AntiFlood::new(config.clone());
        let t0 = Instant::now();
        let guesser: IpAddr = "192.0.2.1".parse().unwrap();
        let office: IpAddr = "192.0.2.2".parse().unwrap();
        for user in ["a", "b", "c"] {
            m.on_auth_failure(guesser, Some(user), t0);
        }
        for _ in 0..config.ban_after_failures {
            m.on_auth_failure(office, Some("alice"), t0);
        }
        let t = t0 + Duration::from_secs(1);
        let mut blocks = Vec::new();
        m.blocks(t, &mut blocks);
        blocks.sort_by_key(|b| b.source);
        assert_eq!(blocks.len(), 2, "{blocks:?}");
        assert_eq!(
            (blocks[0].source, blocks[0].account.as_deref()),
            (guesser, None)
        );
        assert_eq!(
            blocks[0].remaining,
            config.ban_duration - Duration::from_secs(1)
        );
        assert_eq!(
            (blocks[1].source, blocks[1].account.as_deref()),
            (office, Some("alice"))
        );
        assert_eq!(m.lift(guesser), 1);
        assert_eq!(m.lift(guesser), 0);
        assert!(!m.is_banned(guesser, t));
        assert_eq!(m.lift(office), 1);
        assert!(m.locked_until(office, "alice", t).is_none());
        blocks.clear();
        m.blocks(t, &mut blocks);
        assert!(blocks.is_empty(), "{blocks:?}");
        // Expired blocks are not listed.
        m.on_auth_failure(guesser, Some("a"), t);
        m.on_auth_failure(guesser, Some("b"), t);
        m.on_auth_failure(guesser, Some("c"), t);
        m.blocks(t + config.ban_duration, &mut blocks);
        assert!(blocks.is_empty(), "{blocks:?}");
    }

    #[test]
    fn failures_outside_the_window_do_not_ban() {
        let mut m = AntiFlood::new(AntiFloodConfig::default());
        let t0 = Instant::now();
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        for i in 0..10u64 {
            m.on_auth_failure(
                ip,
                Some(&format!("user{i}")),
                t0 + Duration::from_secs(61 * i),
            );
        }
        assert!(!m.is_banned(ip, t0 + Duration::from_secs(610)));
        assert!(
            m.locked_until(ip, "user9", t0 + Duration::from_secs(610))
                .is_none()
        );
    }

    /// A typo locks its author's account out from that address, briefly and loudly; the
    /// neighbours behind the same address go on.
    #[test]
    fn a_typo_locks_out_one_account_from_one_address() {
        use crate::modules::testutil::{parse_request, with_source};
        let ctx_of = |text: &str, src: &str| with_source(parse_request(text), src);
        let mut m = AntiFlood::new(AntiFloodConfig::default());
        let t0 = Instant::now();
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        // Two runs of three wrong passwords, as the agent makes them.
        for i in 0..3u64 {
            m.on_auth_failure(ip, Some("alice"), t0 + Duration::from_secs(i));
        }
        let t = t0 + Duration::from_secs(5);
        assert!(
            m.locked_until(ip, "alice", t).is_none(),
            "three failures lock nothing"
        );
        m.on_auth_failure(ip, Some("alice"), t);
        let until = m.locked_until(ip, "alice", t).expect("alice locked out");
        assert!(!m.is_banned(ip, t), "the address is not banned");
        assert_eq!(m.lockouts(), 1);
        let alice = "REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK1\r\n\
                     From: <sip:alice@example.com>;tag=1\r\nTo: <sip:alice@example.com>\r\n\
                     Call-ID: a\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n";
        let mut ctx = ctx_of(alice, "127.0.0.1:40000");
        let Verdict::Reply(r) = m.on_request(&mut ctx, t) else {
            panic!("alice is told")
        };
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let mut ctx = ctx_of(alice, "127.0.0.1:40000");
        assert_eq!(
            m.on_request(&mut ctx, t),
            Verdict::Drop,
            "told once, then silence"
        );
        let bob = alice.replace("alice", "bob");
        let mut ctx = ctx_of(&bob, "127.0.0.1:40002");
        assert_eq!(m.on_request(&mut ctx, t), Verdict::Continue, "bob goes on");
        let mut ctx = ctx_of(alice, "127.0.0.1:40000");
        assert_eq!(
            m.on_request(&mut ctx, until),
            Verdict::Continue,
            "the lockout ends"
        );
        // One more failure after it locks again at once, for twice as long.
        m.on_auth_failure(ip, Some("alice"), until);
        let again = m.locked_until(ip, "alice", until).expect("locked again");
        assert_eq!(again - until, 2 * (until - t));
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
    fn trusted_networks_are_never_limited_or_banned() {
        let mut m = AntiFlood::new(AntiFloodConfig {
            trusted_networks: vec!["127.0.0.0/8".parse().unwrap()],
            ..cfg()
        });
        let t0 = Instant::now();
        let mut ctx = ctx_from("127.0.0.1:5060");
        for _ in 0..100 {
            assert_eq!(m.on_request(&mut ctx, t0), Verdict::Continue);
        }
        for user in ["a", "b", "c", "d"] {
            m.on_auth_failure(ctx.source.ip(), Some(user), t0);
        }
        assert!(!m.is_banned(ctx.source.ip(), t0));
        let mut other = ctx_from("192.0.2.1:5060");
        for _ in 0..3 {
            m.on_request(&mut other, t0);
        }
        assert_eq!(
            m.on_request(&mut other, t0),
            Verdict::Drop,
            "others are limited"
        );
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
