//! The file's model converted into the core's ([`sotto_server::config::ServerConfig`]): one
//! meaning per setting, the file in its units (seconds, milliseconds), the core in its types.
//! The tests hold the two together: the file's defaults are the core's, and every core
//! setting can be reached from the file.

use std::time::Duration;

use sotto_server::config::{DowngradePolicy, FederationConfig, ServerConfig};
use sotto_server::locality::Alias;
use sotto_sip::transaction::TimerConfig;

use super::parse_network;
use super::{Config, Downgrade};

fn secs(s: u32) -> Duration {
    Duration::from_secs(u64::from(s))
}

fn ms(m: u32) -> Duration {
    Duration::from_millis(u64::from(m))
}

impl Config {
    /// The core's configuration. Call after [`Config::validate`] (aliases that do not parse
    /// are refused there).
    pub(crate) fn core(&self) -> ServerConfig {
        let mut s = ServerConfig::for_domain(&self.server.domain);
        s.realm = self.server.realm.clone();
        s.aliases = self
            .server
            .aliases
            .iter()
            .filter_map(|a| Alias::parse(a))
            .collect();
        s.public_host = Some(self.server.public_host.trim().to_owned()).filter(|h| !h.is_empty());
        s.federation = FederationConfig {
            enabled: self.federation.enabled,
            domains: self
                .federation
                .domains
                .iter()
                .map(|d| d.to_ascii_lowercase())
                .collect(),
        };
        let m = &self.modules;
        let flood = &mut s.anti_flood;
        flood.enabled = m.anti_flood.enabled;
        (flood.rate_per_s, flood.burst) = m.anti_flood.rate();
        flood.ban_after_failures = m.anti_flood.ban_after_failures;
        flood.account_lockout = secs(m.anti_flood.account_lockout_secs);
        flood.ban_after_accounts = m.anti_flood.ban_after_accounts;
        flood.failure_window = secs(m.anti_flood.failure_window_secs);
        flood.ban_duration = secs(m.anti_flood.ban_secs);
        flood.max_sources = m.anti_flood.max_sources as usize;
        // Checked by `validate`: every entry parses.
        flood.trusted_networks = m
            .anti_flood
            .trusted_networks
            .iter()
            .filter_map(|n| parse_network(n))
            .collect();
        s.sanity.enabled = m.sanity.enabled;
        let auth = &mut s.authentication;
        auth.enabled = m.authentication.enabled;
        auth.algorithms = m.authentication.algorithms();
        auth.nonce_lifetime = secs(m.authentication.nonce_lifetime_secs);
        auth.tls_client_certificates = m.authentication.tls_client_certificates;
        let reg = &mut s.registrar;
        reg.enabled = m.registrar.enabled;
        reg.gruu = m.registrar.gruu;
        reg.outbound = m.registrar.outbound;
        reg.min_expires = secs(self.registrar.min_expires);
        reg.default_expires = secs(self.registrar.default_expires);
        reg.max_expires = secs(self.registrar.max_expires);
        reg.max_contacts = self.registrar.max_contacts as usize;
        s.router.enabled = m.router.enabled;
        s.forward.enabled = m.forward.enabled;
        s.forward.downgrade = match self.security.downgrade {
            Downgrade::Refuse => DowngradePolicy::Refuse,
            Downgrade::Warn => DowngradePolicy::Flag,
        };
        let t = &self.transactions;
        s.timers = TimerConfig {
            t1: ms(t.t1_ms),
            t2: ms(t.t2_ms),
            t4: ms(t.t4_ms),
            timer_d: ms(t.timer_d_ms),
            trying_delay: ms(t.trying_delay_ms),
        };
        s.max_transactions = t.max as usize;
        s.overload = sotto_server::config::OverloadConfig {
            enabled: self.overload.enabled,
            shed_unauthenticated_at: self.overload.shed_unauthenticated_at,
            shed_all_at: self.overload.shed_all_at,
            shed_unauthenticated_after: ms(self.overload.shed_unauthenticated_after_ms),
            shed_all_after: ms(self.overload.shed_all_after_ms),
            standing: ms(self.overload.standing_ms),
            retry_after_secs: self.overload.retry_after_secs,
        };
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{parse, template};

    #[test]
    fn the_files_defaults_are_the_cores() {
        assert_eq!(Config::default().core(), ServerConfig::default());
        for domain in ["localhost", "example.test"] {
            let written = parse(&template(domain)).expect("the template parses");
            assert_eq!(written.core(), ServerConfig::for_domain(domain), "{domain}");
        }
    }

    #[test]
    fn every_core_setting_is_reachable_from_the_file() {
        let text = r#"
[server]
domain = "example.test"
realm = "realm.example"
aliases = ["sip.example.test"]
public_host = "203.0.113.7"
[security]
downgrade = "warn"
[registrar]
min_expires = 30
default_expires = 600
max_expires = 7200
max_contacts = 3
[modules.anti_flood]
enabled = false
rate_per_s = 7.5
burst = 9
ban_after_failures = 2
account_lockout_secs = 20
ban_after_accounts = 6
failure_window_secs = 30
ban_secs = 45
max_sources = 100
trusted_networks = ["10.0.0.0/8", "192.0.2.7"]
[modules.sanity]
enabled = false
[modules.authentication]
enabled = false
algorithms = ["MD5"]
nonce_lifetime_secs = 60
tls_client_certificates = false
[modules.registrar]
enabled = false
gruu = false
outbound = false
[modules.router]
enabled = false
[modules.forward]
enabled = false
[transactions]
t1_ms = 250
t2_ms = 2000
t4_ms = 2500
timer_d_ms = 40000
trying_delay_ms = 100
max = 1000
[overload]
enabled = false
queue = 4000
shed_unauthenticated_at = 100
shed_all_at = 200
shed_unauthenticated_after_ms = 7
shed_all_after_ms = 8
standing_ms = 11
retry_after_secs = 9
[listen]
tls = ["0.0.0.0:5061"]
[federation]
enabled = true
domains = ["Partner.Example"]
"#;
        let c = parse(text).expect("every key").core();
        let d = ServerConfig::default();
        // Each field is asserted changed: a core setting the file cannot reach fails here
        // (and a new core field fails to compile in the destructuring below until it is
        // added to the file and to this test).
        let ServerConfig {
            domains,
            realm,
            aliases,
            public_host,
            federation,
            anti_flood,
            sanity,
            authentication,
            registrar,
            router,
            forward,
            timers,
            max_transactions,
            overload,
        } = c;
        assert_eq!(domains, vec!["example.test".to_owned()]);
        assert_eq!(realm, "realm.example");
        assert_eq!(aliases.len(), 1);
        assert_eq!(public_host.as_deref(), Some("203.0.113.7"));
        assert!(federation.enabled && federation.domains == ["partner.example"]);
        assert_ne!(anti_flood.enabled, d.anti_flood.enabled);
        assert_eq!((anti_flood.rate_per_s, anti_flood.burst), (7.5, 9));
        assert_eq!(anti_flood.ban_after_failures, 2);
        assert_eq!(anti_flood.account_lockout, Duration::from_secs(20));
        assert_eq!(anti_flood.ban_after_accounts, 6);
        assert_eq!(anti_flood.failure_window, Duration::from_secs(30));
        assert_eq!(anti_flood.ban_duration, Duration::from_secs(45));
        assert_eq!(anti_flood.max_sources, 100);
        assert_eq!(anti_flood.trusted_networks.len(), 2);
        assert!(
            anti_flood.trusted_networks[1]
                .contains(&"192.0.2.7".parse::<std::net::IpAddr>().unwrap())
        );
        assert!(!sanity.enabled);
        assert!(!authentication.enabled && !authentication.tls_client_certificates);
        assert_eq!(authentication.algorithms.len(), 1);
        assert_eq!(authentication.nonce_lifetime, Duration::from_secs(60));
        assert!(!registrar.enabled && !registrar.gruu && !registrar.outbound);
        assert_eq!(
            (
                registrar.min_expires.as_secs(),
                registrar.default_expires.as_secs(),
                registrar.max_expires.as_secs(),
                registrar.max_contacts
            ),
            (30, 600, 7200, 3)
        );
        assert!(!router.enabled && !forward.enabled);
        assert_eq!(forward.downgrade, DowngradePolicy::Flag);
        assert_eq!(
            timers,
            TimerConfig {
                t1: Duration::from_millis(250),
                t2: Duration::from_secs(2),
                t4: Duration::from_millis(2500),
                timer_d: Duration::from_secs(40),
                trying_delay: Duration::from_millis(100),
            }
        );
        assert_eq!(max_transactions, 1000);
        assert_eq!(
            overload,
            sotto_server::config::OverloadConfig {
                enabled: false,
                shed_unauthenticated_at: 100,
                shed_all_at: 200,
                shed_unauthenticated_after: Duration::from_millis(7),
                shed_all_after: Duration::from_millis(8),
                standing: Duration::from_millis(11),
                retry_after_secs: 9
            }
        );
    }

    #[test]
    fn an_older_files_rate_per_window_keeps_its_meaning() {
        let c = parse("[modules.anti_flood]\nmax_requests = 100\nwindow_secs = 10\n")
            .expect("the keys of an earlier sotto init");
        let core = c.core().anti_flood;
        assert_eq!((core.rate_per_s, core.burst), (10.0, 100));
        let err = format!(
            "{:#}",
            parse("[modules.anti_flood]\nrate_per_s = 0\n").expect_err("no rate")
        );
        assert!(err.contains("rate_per_s"), "{err}");
        let err = format!(
            "{:#}",
            parse("[modules.anti_flood]\ntrusted_networks = [\"10.0.0.0/33\"]\n")
                .expect_err("bad network")
        );
        assert!(err.contains("trusted_networks"), "{err}");
        let err = format!(
            "{:#}",
            parse("[transactions]\nt1_ms = 5000\n").expect_err("t1 > t2")
        );
        assert!(err.contains("t1_ms"), "{err}");
        let err = format!(
            "{:#}",
            parse("[overload]\nshed_all_at = 2000\n").expect_err("beyond the queue")
        );
        assert!(err.contains("shed_all_at"), "{err}");
    }
}
