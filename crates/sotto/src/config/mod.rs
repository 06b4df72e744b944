//! The server's configuration file (`sotto.toml`): the model shared by `sotto init`,
//! `sotto user` and `sotto server`.
//!
//! Every section's `Default` is the secure choice; an absent section or key takes it. Unknown
//! keys are refused (`deny_unknown_fields`), and [`load`] names the bad key and its line.
//! Relative paths are relative to the directory of the config file ([`Config::resolve`]).
//! [`template`] is the commented file `sotto init` writes; a test checks that it loads back to
//! the defaults.

// Later commands (`sotto server`) read most of these fields; `init` and `user` read a few.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

mod core;
mod modules;
mod sections;
mod template;

pub(crate) use modules::*;
pub(crate) use sections::*;
pub(crate) use template::template;

/// The name `sotto init` gives the config file, and where `--config` looks by default.
pub(crate) const FILE_NAME: &str = "sotto.toml";
/// The default data directory of `sotto init`.
pub(crate) const DEFAULT_DIR: &str = "sotto-data";

/// The default `--config` path: `./sotto-data/sotto.toml`.
pub(crate) fn default_path() -> PathBuf {
    Path::new(DEFAULT_DIR).join(FILE_NAME)
}

/// The whole file.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Config {
    /// `[server]`: domain and realm.
    pub(crate) server: ServerConfig,
    /// `[listen]`: SIP listeners.
    pub(crate) listen: ListenConfig,
    /// `[tls]`: certificate and key.
    pub(crate) tls: TlsConfig,
    /// `[security]`: what is refused.
    pub(crate) security: SecurityConfig,
    /// `[storage]`: where users and registrations are kept.
    pub(crate) storage: StorageConfig,
    /// `[registrar]`: registration lifetimes (RFC 3261 §10.3).
    pub(crate) registrar: RegistrarConfig,
    /// `[modules.*]`: the request pipeline, in order.
    pub(crate) modules: ModulesConfig,
    /// `[log]`.
    pub(crate) log: LogConfig,
    /// `[metrics]`.
    pub(crate) metrics: MetricsConfig,
    /// `[dns]`: how host names are looked up (RFC 3263).
    pub(crate) dns: DnsConfig,
    /// `[federation]`: calls between domains.
    pub(crate) federation: FederationConfig,
    /// `[transactions]`: SIP timers and the transaction table's bound.
    pub(crate) transactions: TransactionsConfig,
    /// `[lime]`: the LIME key server.
    pub(crate) lime: LimeConfig,
    /// `[connections]`: TCP/TLS connection limits.
    pub(crate) connections: ConnectionsConfig,
    /// `[overload]`: load shedding.
    pub(crate) overload: OverloadFileConfig,
    /// `[admin]`: the operator's control socket.
    pub(crate) admin: AdminConfig,
    /// The directory relative paths are taken from (the config file's); not in the file.
    #[serde(skip)]
    pub(crate) base_dir: PathBuf,
}

impl Config {
    /// The defaults, for `domain` (also the realm).
    pub(crate) fn for_domain(domain: &str) -> Self {
        let mut c = Config::default();
        c.server.domain = domain.to_owned();
        c.server.realm = domain.to_owned();
        c
    }

    /// `path` as given if absolute, else relative to the config file's directory.
    pub(crate) fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_owned()
        } else {
            self.base_dir.join(path)
        }
    }

    /// Checks the rules the types cannot express. The error names the key.
    pub(crate) fn validate(&self) -> anyhow::Result<()> {
        if self.server.domain.trim().is_empty() {
            anyhow::bail!("server.domain must not be empty");
        }
        for a in &self.server.aliases {
            if sotto_server::locality::Alias::parse(a).is_none() {
                anyhow::bail!("server.aliases: {a:?} is not a host or host:port");
            }
        }
        if self.server.public_host.contains([' ', '/', '@', ';']) {
            anyhow::bail!(
                "server.public_host: {:?} is not a host name or address",
                self.server.public_host
            );
        }
        if self.federation.enabled && self.listen.tls.is_empty() {
            anyhow::bail!("federation.enabled needs a TLS listener ([listen] tls)");
        }
        if self.server.realm.is_empty() || self.server.realm.contains(['"', '\\', '\r', '\n']) {
            anyhow::bail!(
                "server.realm must be non-empty and contain no quote, backslash or newline"
            );
        }
        let r = &self.registrar;
        if r.min_expires > r.default_expires || r.default_expires > r.max_expires {
            anyhow::bail!(
                "registrar: need min_expires <= default_expires <= max_expires (got {} / {} / {})",
                r.min_expires,
                r.default_expires,
                r.max_expires
            );
        }
        if r.max_contacts == 0 {
            anyhow::bail!("registrar.max_contacts must be at least 1");
        }
        if self.storage.kind == StorageKind::Redis
            && self.storage.url.as_deref().is_none_or(str::is_empty)
        {
            anyhow::bail!("storage.url is required with storage.kind = \"redis\"");
        }
        let auth = &self.modules.authentication;
        if auth.enabled && auth.algorithms.is_empty() {
            anyhow::bail!("modules.authentication.algorithms must list at least one algorithm");
        }
        let flood = &self.modules.anti_flood;
        let (rate, burst) = flood.rate();
        if flood.enabled && (!(rate > 0.0 && rate.is_finite()) || burst == 0) {
            anyhow::bail!("modules.anti_flood: rate_per_s and burst must be more than 0");
        }
        if flood.enabled && (flood.window_secs == Some(0) || flood.failure_window_secs == 0) {
            anyhow::bail!("modules.anti_flood: windows must be at least 1 s");
        }
        let o = &self.overload;
        if o.shed_unauthenticated_at == 0
            || o.shed_unauthenticated_at > o.shed_all_at
            || o.shed_all_at >= o.queue
        {
            anyhow::bail!(
                "overload: need 0 < shed_unauthenticated_at <= shed_all_at < queue (got {} / {} / {})",
                o.shed_unauthenticated_at,
                o.shed_all_at,
                o.queue
            );
        }
        let t = &self.transactions;
        if t.t1_ms == 0 || t.t2_ms < t.t1_ms || t.max == 0 {
            anyhow::bail!(
                "transactions: need 0 < t1_ms <= t2_ms and max >= 1 (got t1_ms {}, t2_ms {}, \
                 max {})",
                t.t1_ms,
                t.t2_ms,
                t.max
            );
        }
        if flood.enabled && flood.ban_after_failures == 0 {
            anyhow::bail!("modules.anti_flood.ban_after_failures must be at least 1");
        }
        if let Some(bad) = self
            .modules
            .anti_flood
            .trusted_networks
            .iter()
            .find(|n| parse_network(n).is_none())
        {
            anyhow::bail!(
                "modules.anti_flood.trusted_networks: {bad:?} is not a network (10.0.0.0/8) or an address"
            );
        }
        Ok(())
    }
}

/// Reads, parses and validates the config file at `path`.
pub(crate) fn load(path: &Path) -> anyhow::Result<Config> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading config file {}", path.display()))?;
    let mut config = parse(&text).with_context(|| format!("config file {}", path.display()))?;
    config.base_dir = path.parent().map(Path::to_owned).unwrap_or_default();
    Ok(config)
}

/// Parses and validates config text (relative paths stay relative).
pub(crate) fn parse(text: &str) -> anyhow::Result<Config> {
    let config: Config = toml::from_str(text).map_err(|e| anyhow::anyhow!("{e}"))?;
    config.validate()?;
    Ok(config)
}

/// A TOML basic string holding `s` (quoted and escaped).
fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use sotto_sip::digest::Algorithm;

    use super::*;

    #[test]
    fn empty_file_is_the_secure_default() {
        let c = parse("").expect("empty config");
        assert_eq!(c, Config::default());
        assert!(c.listen.udp.is_empty() && c.listen.tcp.is_empty());
        assert_eq!(c.security.downgrade, Downgrade::Refuse);
        assert!(c.modules.authentication.enabled);
        assert_eq!(
            c.modules.authentication.algorithms(),
            vec![Algorithm::Sha256, Algorithm::Md5]
        );
    }

    #[test]
    fn unknown_key_is_named() {
        let err = format!(
            "{:#}",
            parse("[registrar]\nmax_expire = 10\n").expect_err("typo")
        );
        assert!(err.contains("max_expire"), "{err}");
        assert!(err.contains("line 2"), "{err}");
        let err = format!("{:#}", parse("[modulez]\n").expect_err("typo"));
        assert!(err.contains("modulez"), "{err}");
    }

    #[test]
    fn bad_values_are_named() {
        let err = format!(
            "{:#}",
            parse("[modules.authentication]\nalgorithms = [\"SHA-1\"]\n").expect_err("sha1")
        );
        assert!(err.contains("SHA-1") && err.contains("algorithms"), "{err}");
        let err = format!(
            "{:#}",
            parse("[registrar]\nmin_expires = 7200\n").expect_err("min > default")
        );
        assert!(err.contains("min_expires"), "{err}");
        let err = format!(
            "{:#}",
            parse("[storage]\nkind = \"redis\"\n").expect_err("kind")
        );
        assert!(err.contains("redis"), "{err}");
    }

    #[test]
    fn anti_flood_ban_threshold_is_read_and_checked() {
        assert_eq!(Config::default().modules.anti_flood.ban_after_failures, 4);
        let c = parse("[modules.anti_flood]\nban_after_failures = 7\n").expect("threshold");
        assert_eq!(c.modules.anti_flood.ban_after_failures, 7);
        let err = format!(
            "{:#}",
            parse("[modules.anti_flood]\nban_after_failures = 0\n").expect_err("zero")
        );
        assert!(err.contains("ban_after_failures"), "{err}");
        let c = parse("[modules.anti_flood]\nenabled = false\nban_after_failures = 0\n")
            .expect("a disabled module is not checked");
        assert!(!c.modules.anti_flood.enabled);
    }

    #[test]
    fn metrics_section_is_read() {
        let d = Config::default().metrics;
        assert!(d.enabled);
        assert_eq!(d.listen, SocketAddr::from(([127, 0, 0, 1], 9464)));
        let c = parse("[metrics]\nenabled = false\nlisten = \"127.0.0.1:0\"\n").expect("metrics");
        assert!(!c.metrics.enabled);
        assert_eq!(c.metrics.listen, SocketAddr::from(([127, 0, 0, 1], 0)));
        let err = format!("{:#}", parse("[metrics]\nport = 1\n").expect_err("unknown"));
        assert!(err.contains("port"), "{err}");
    }

    #[test]
    fn storage_redis_is_read() {
        let c = parse("[storage]\nkind = \"redis\"\nurl = \"unix:///run/redis.sock\"\n")
            .expect("redis");
        assert_eq!(c.storage.kind, StorageKind::Redis);
        assert_eq!(c.storage.url.as_deref(), Some("unix:///run/redis.sock"));
        assert_eq!(c.storage.path, PathBuf::from("sotto.db"));
        let err = format!(
            "{:#}",
            parse("[storage]\nkind = \"redis\"\nurl = \"\"\n").expect_err("empty url")
        );
        assert!(err.contains("storage.url"), "{err}");
    }

    #[test]
    fn relative_paths_follow_the_config_file() {
        let c = Config {
            base_dir: PathBuf::from("/srv/sotto"),
            ..Config::default()
        };
        assert_eq!(
            c.resolve(&c.storage.path),
            PathBuf::from("/srv/sotto/sotto.db")
        );
        assert_eq!(
            c.resolve(Path::new("/etc/x.pem")),
            PathBuf::from("/etc/x.pem")
        );
    }
}
