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

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use sotto_sip::digest::Algorithm;

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
    /// The directory relative paths are taken from (the config file's); not in the file.
    #[serde(skip)]
    pub(crate) base_dir: PathBuf,
}

/// `[server]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct ServerConfig {
    /// The SIP domain served: addresses of record are `sip:user@<domain>`.
    pub(crate) domain: String,
    /// The digest realm (RFC 3261 §22.1). Stored HA1 values are bound to it: changing it
    /// invalidates every password.
    pub(crate) realm: String,
    /// Other names and addresses of this server (`host` or `host:port`): a Route or
    /// Request-URI naming one of them is for us.
    pub(crate) aliases: Vec<String>,
    /// The host (name or address) our Via and Record-Route headers name, for a server behind
    /// NAT or with a public name. Empty: the address each request arrived on.
    pub(crate) public_host: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            domain: "localhost".to_owned(),
            realm: "localhost".to_owned(),
            aliases: Vec::new(),
            public_host: String::new(),
        }
    }
}

/// `[dns]`: the name servers asked for NAPTR, SRV and address records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct DnsConfig {
    /// Name servers as `address:port`; empty: the system's (`/etc/resolv.conf`).
    pub(crate) servers: Vec<SocketAddr>,
    /// Seconds one query waits for an answer.
    pub(crate) timeout_secs: u32,
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            servers: Vec::new(),
            timeout_secs: 2,
        }
    }
}

impl DnsConfig {
    /// The resolver's settings.
    pub(crate) fn resolver(&self) -> sotto_net::dns::DnsConfig {
        sotto_net::dns::DnsConfig {
            servers: self.servers.clone(),
            timeout: std::time::Duration::from_secs(u64::from(self.timeout_secs.max(1))),
            ..sotto_net::dns::DnsConfig::default()
        }
    }
}

/// `[federation]`: requests to and from other domains' servers, over mutual TLS.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct FederationConfig {
    /// Off by default: requests from other domains are refused, none are sent to them.
    pub(crate) enabled: bool,
    /// The domains allowed; empty: every domain whose server proves it with its certificate.
    pub(crate) domains: Vec<String>,
    /// PEM CA certificates that other domains' servers' certificates must chain to.
    pub(crate) ca: PathBuf,
}

impl Default for FederationConfig {
    fn default() -> Self {
        FederationConfig {
            enabled: false,
            domains: Vec::new(),
            ca: PathBuf::from("/etc/ssl/certs/ca-certificates.crt"),
        }
    }
}

/// `[listen]`: addresses per transport. TLS only by default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct ListenConfig {
    /// SIP over TLS (RFC 3261 §26.2, port 5061).
    pub(crate) tls: Vec<SocketAddr>,
    /// SIP over TCP, unencrypted. Empty by default.
    pub(crate) tcp: Vec<SocketAddr>,
    /// SIP over UDP, unencrypted. Empty by default.
    pub(crate) udp: Vec<SocketAddr>,
}

impl Default for ListenConfig {
    fn default() -> Self {
        ListenConfig {
            tls: vec![SocketAddr::from(([0, 0, 0, 0], 5061))],
            tcp: Vec::new(),
            udp: Vec::new(),
        }
    }
}

/// `[tls]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct TlsConfig {
    /// PEM certificate chain of the server (end-entity first).
    pub(crate) certificate: PathBuf,
    /// PEM private key of the server.
    pub(crate) key: PathBuf,
    /// PEM CA certificates clients are verified against when they present a certificate.
    pub(crate) ca: PathBuf,
    /// Client certificates: not asked for, optional, or required.
    pub(crate) client_auth: ClientAuth,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            certificate: PathBuf::from("server.pem"),
            key: PathBuf::from("server.key"),
            ca: PathBuf::from("ca.pem"),
            client_auth: ClientAuth::None,
        }
    }
}

/// Whether TLS clients must present a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ClientAuth {
    /// Not asked for (clients authenticate with digest).
    None,
    /// Asked for; verified against `tls.ca` if given.
    Optional,
    /// Required, and verified against `tls.ca`.
    Required,
}

/// `[security]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct SecurityConfig {
    /// What to do when a call or message would lose encryption on some leg.
    pub(crate) downgrade: Downgrade,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        SecurityConfig {
            downgrade: Downgrade::Refuse,
        }
    }
}

/// The answer to a security downgrade.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Downgrade {
    /// Refuse it (the default).
    Refuse,
    /// Allow it, and log a warning.
    Warn,
}

/// `[storage]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct StorageConfig {
    /// Which store.
    pub(crate) kind: StorageKind,
    /// The SQLite database file (for `kind = "sqlite"`; with `kind = "redis"`, users only).
    pub(crate) path: PathBuf,
    /// The Redis server of `kind = "redis"`: `redis://127.0.0.1:6379/0`, `unix:///path`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) url: Option<String>,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            kind: StorageKind::Sqlite,
            path: PathBuf::from("sotto.db"),
            url: None,
        }
    }
}

/// The storage backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum StorageKind {
    /// One SQLite file: survives restarts (the default).
    Sqlite,
    /// In memory: lost on restart, no users unless added at run time (tests).
    Memory,
    /// Registrations in Redis at `url`, shared by several servers; users in the SQLite `path`.
    Redis,
}

/// `[registrar]`: registration lifetimes in seconds (RFC 3261 §10.3 steps 7–8).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RegistrarConfig {
    /// Shorter requested lifetimes get 423 Interval Too Brief.
    pub(crate) min_expires: u32,
    /// The lifetime when the REGISTER gives none.
    pub(crate) default_expires: u32,
    /// Longer requested lifetimes are cut to this.
    pub(crate) max_expires: u32,
    /// How many contacts one address of record may hold.
    pub(crate) max_contacts: u32,
}

impl Default for RegistrarConfig {
    fn default() -> Self {
        RegistrarConfig {
            min_expires: 60,
            default_expires: 3600,
            max_expires: 86400,
            max_contacts: 16,
        }
    }
}

/// `[modules.*]`: each module of the request pipeline, in the order requests meet them.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct ModulesConfig {
    /// `[modules.anti_flood]`.
    pub(crate) anti_flood: AntiFloodConfig,
    /// `[modules.sanity]`.
    pub(crate) sanity: SanityConfig,
    /// `[modules.authentication]`.
    pub(crate) authentication: AuthenticationConfig,
    /// `[modules.registrar]`.
    pub(crate) registrar: RegistrarModuleConfig,
    /// `[modules.router]`.
    pub(crate) router: RouterConfig,
    /// `[modules.forward]`.
    pub(crate) forward: ForwardConfig,
}

/// `[modules.anti_flood]`: per source address request limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct AntiFloodConfig {
    /// Whether the module runs.
    pub(crate) enabled: bool,
    /// Requests one source IP address may send per window.
    pub(crate) max_requests: u32,
    /// The window, in seconds.
    pub(crate) window_secs: u32,
    /// How long an address that went over is ignored, in seconds.
    pub(crate) ban_secs: u32,
    /// Authentication failures (wrong password, unknown user) from one source IP address
    /// within a minute that get it banned for `ban_secs` (what stops password guessing).
    pub(crate) ban_after_failures: u32,
}

impl Default for AntiFloodConfig {
    fn default() -> Self {
        AntiFloodConfig {
            enabled: true,
            max_requests: 100,
            window_secs: 10,
            ban_secs: 300,
            ban_after_failures: 4,
        }
    }
}

/// `[modules.sanity]`: RFC 3261 checks before anything else (malformed → 400, loops → 483).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct SanityConfig {
    /// Whether the module runs.
    pub(crate) enabled: bool,
}

impl Default for SanityConfig {
    fn default() -> Self {
        SanityConfig { enabled: true }
    }
}

/// `[modules.authentication]`: digest authentication (RFC 3261 §22, RFC 8760).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct AuthenticationConfig {
    /// Whether the module runs. Without it, anyone may register any address.
    pub(crate) enabled: bool,
    /// Challenge algorithms, most preferred first; `sotto user` stores an HA1 for each.
    pub(crate) algorithms: Vec<DigestAlgorithm>,
    /// How long a nonce is accepted, in seconds (then `stale=true`).
    pub(crate) nonce_lifetime_secs: u32,
}

impl Default for AuthenticationConfig {
    fn default() -> Self {
        AuthenticationConfig {
            enabled: true,
            algorithms: vec![
                DigestAlgorithm(Algorithm::Sha256),
                DigestAlgorithm(Algorithm::Md5),
            ],
            nonce_lifetime_secs: 300,
        }
    }
}

impl AuthenticationConfig {
    /// The configured algorithms.
    pub(crate) fn algorithms(&self) -> Vec<Algorithm> {
        self.algorithms.iter().map(|a| a.0).collect()
    }
}

/// A digest algorithm written by its wire name (`"SHA-256"`, `"MD5"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub(crate) struct DigestAlgorithm(pub(crate) Algorithm);

impl TryFrom<String> for DigestAlgorithm {
    type Error = String;
    fn try_from(name: String) -> Result<Self, String> {
        match Algorithm::from_name(&name) {
            Some(a) if !a.is_sess() => Ok(DigestAlgorithm(a)),
            _ => Err(format!(
                "unknown digest algorithm {name:?} (expected \"SHA-256\" or \"MD5\")"
            )),
        }
    }
}

impl From<DigestAlgorithm> for String {
    fn from(a: DigestAlgorithm) -> String {
        a.0.name().to_owned()
    }
}

/// `[modules.registrar]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RegistrarModuleConfig {
    /// Whether the module runs.
    pub(crate) enabled: bool,
    /// Hand out GRUUs (RFC 5627) to contacts with `+sip.instance`.
    pub(crate) gruu: bool,
    /// Support SIP outbound (RFC 5626): flows keyed by instance and reg-id.
    pub(crate) outbound: bool,
}

impl Default for RegistrarModuleConfig {
    fn default() -> Self {
        RegistrarModuleConfig {
            enabled: true,
            gruu: true,
            outbound: true,
        }
    }
}

/// `[modules.router]`: finds the targets of requests for the served domain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RouterConfig {
    /// Whether the module runs.
    pub(crate) enabled: bool,
}

impl Default for RouterConfig {
    fn default() -> Self {
        RouterConfig { enabled: true }
    }
}

/// `[modules.forward]`: sends requests on to their targets (RFC 3261 §16).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct ForwardConfig {
    /// Whether the module runs.
    pub(crate) enabled: bool,
}

impl Default for ForwardConfig {
    fn default() -> Self {
        ForwardConfig { enabled: true }
    }
}

/// `[log]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct LogConfig {
    /// `text` or `json` (one object per line).
    pub(crate) format: LogFormat,
    /// `error`, `warn`, `info`, `debug` or `trace`.
    pub(crate) level: LogLevel,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Text,
            level: LogLevel::Info,
        }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Log verbosity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum LogLevel {
    /// Errors only.
    Error,
    /// Warnings and errors.
    Warn,
    /// Normal operation.
    Info,
    /// Debugging detail.
    Debug,
    /// Everything.
    Trace,
}

/// `[metrics]`: Prometheus-style metrics over HTTP.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct MetricsConfig {
    /// Whether the endpoint runs.
    pub(crate) enabled: bool,
    /// Where it listens (loopback by default: metrics reveal traffic patterns).
    pub(crate) listen: SocketAddr,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 9464)),
        }
    }
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
        if flood.enabled && (flood.max_requests == 0 || flood.window_secs == 0) {
            anyhow::bail!("modules.anti_flood: max_requests and window_secs must be at least 1");
        }
        if flood.enabled && flood.ban_after_failures == 0 {
            anyhow::bail!("modules.anti_flood.ban_after_failures must be at least 1");
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

/// The commented config file `sotto init` writes for `domain`. It loads back to
/// [`Config::for_domain`].
pub(crate) fn template(domain: &str) -> String {
    let d = Config::for_domain(domain);
    let domain = toml_string(domain);
    let r = &d.registrar;
    let f = &d.modules.anti_flood;
    let a = &d.modules.authentication;
    format!(
        r#"# sotto server configuration, written by `sotto init`.
# Every key below shows its default; a key or section left out takes that default.
# Unknown keys are an error. Relative paths are relative to this file's directory.

[server]
# The SIP domain served: users register as sip:USER@DOMAIN.
domain = {domain}
# The digest authentication realm. Stored password hashes (HA1) are bound to it:
# changing it means setting every user's password again (`sotto user passwd`).
realm = {domain}
# Other names and addresses that mean this server ("host" or "host:port"), besides the
# domain and the addresses of the machine's interfaces, e.g. ["sip.example.org"].
aliases = []
# The host our Via and Record-Route name, for a server behind NAT or with a public name.
# Empty: the address each client reached us at.
public_host = ""

[listen]
# SIP over TLS, on all IPv4 interfaces (the certificate from `sotto init` names the domain,
# localhost and 127.0.0.1). Add "[::]:5061" for IPv6, or use "127.0.0.1:5061" to keep the
# server to this machine.
tls = ["0.0.0.0:5061"]
# Unencrypted SIP over TCP and UDP (port 5060) is off. Enable only for old phones on a
# trusted network, e.g. udp = ["127.0.0.1:5060"].
tcp = []
udp = []

[tls]
certificate = "server.pem"  # PEM chain, server certificate first
key = "server.key"          # PEM private key (keep it mode 0600)
ca = "ca.pem"               # CA that client certificates are checked against
# Client certificates: "none" (phones log in with a password), "optional" or "required".
client_auth = "none"

[security]
# A call or message that would lose encryption on some leg: "refuse" it, or "warn" (allow it
# and log a warning).
downgrade = "refuse"

[storage]
# "sqlite": users and registrations in one file that survives restarts.
# "memory": nothing kept across restarts (tests only).
# "redis": registrations shared by several servers in Redis at url (users stay in path), e.g.
#   url = "redis://127.0.0.1:6379/0" or url = "unix:///run/redis/redis-server.sock"
kind = "sqlite"
path = "sotto.db"

[registrar]
# Registration lifetimes, in seconds: shorter requests get 423 Interval Too Brief, longer
# ones are cut to max_expires; default_expires applies when the phone asks for none.
min_expires = {min}
default_expires = {def}
max_expires = {max}
# Contacts (devices) one user may have registered at once.
max_contacts = {maxc}

# The request pipeline, in order. Each module can be switched off with enabled = false.

[modules.anti_flood]
enabled = true
# A source IP address sending more than max_requests in window_secs is ignored for ban_secs.
max_requests = {fmax}
window_secs = {fwin}
ban_secs = {fban}
# ... and so is one that fails authentication this many times within a minute.
ban_after_failures = {fauth}

[modules.sanity]
# Rejects malformed requests (400) and loops (483) before any other work.
enabled = true

[modules.authentication]
# Digest authentication; without it anyone may register any address.
enabled = true
# Offered in this order (SHA-256 first, RFC 8760); `sotto user` stores a hash for each.
algorithms = [{algs}]
# Seconds a nonce stays valid before the phone is asked again (stale=true).
nonce_lifetime_secs = {nonce}

[modules.registrar]
enabled = true
gruu = true      # GRUUs (RFC 5627) for phones that send +sip.instance
outbound = true  # SIP outbound (RFC 5626): reuse the phone's own connection

[modules.router]
enabled = true

[modules.forward]
enabled = true

[log]
format = "text"  # or "json": one object per line
level = "info"   # error, warn, info, debug or trace

[metrics]
# Prometheus metrics over HTTP; loopback only by default.
enabled = true
listen = "127.0.0.1:9464"

[dns]
# Name servers for NAPTR/SRV/A lookups (RFC 3263), e.g. ["192.0.2.53:53"]; empty: the
# system's (/etc/resolv.conf). Names in /etc/hosts need no name server.
servers = []
timeout_secs = 2

[federation]
# Calls and messages between domains: requests of our users for other domains go to those
# domains' servers (found by DNS, over TLS), and other domains' servers may send to us if
# their certificate proves their domain (mutual TLS, RFC 5922). Off: requests from other
# domains are refused.
enabled = false
# Domains allowed (empty: any domain that proves itself), e.g. ["partner.example"].
domains = []
# CA certificates the other servers' certificates must chain to.
ca = "/etc/ssl/certs/ca-certificates.crt"
"#,
        min = r.min_expires,
        def = r.default_expires,
        max = r.max_expires,
        maxc = r.max_contacts,
        fmax = f.max_requests,
        fwin = f.window_secs,
        fban = f.ban_secs,
        fauth = f.ban_after_failures,
        algs = a
            .algorithms
            .iter()
            .map(|x| toml_string(x.0.name()))
            .collect::<Vec<_>>()
            .join(", "),
        nonce = a.nonce_lifetime_secs,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_loads_back_to_the_defaults() {
        for domain in ["localhost", "example.test", "odd\"name\\"] {
            let parsed = parse(&template(domain));
            if domain.contains('"') {
                // Quoting survives; the realm rule then refuses the quote.
                let err = format!("{:#}", parsed.expect_err("quote in realm"));
                assert!(err.contains("server.realm"), "{err}");
                continue;
            }
            assert_eq!(parsed.expect("template parses"), Config::for_domain(domain));
        }
    }

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
