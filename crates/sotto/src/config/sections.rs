//! The file's sections other than the pipeline's modules: server identity, listeners, TLS,
//! security, storage, registrar lifetimes, transactions, log, metrics, DNS, federation.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

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
        let core = sotto_server::config::RegistrarConfig::default();
        RegistrarConfig {
            min_expires: super::secs(core.min_expires),
            default_expires: super::secs(core.default_expires),
            max_expires: super::secs(core.max_expires),
            max_contacts: u32::try_from(core.max_contacts).unwrap_or(u32::MAX),
        }
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
    /// Which requests get a line on stdout: `none`, `sampled` (at most
    /// [`LogConfig::requests_per_second`], then one line counting those skipped) or `all`.
    pub(crate) requests: RequestLines,
    /// Request lines per second in `sampled` mode.
    pub(crate) requests_per_second: u32,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Text,
            level: LogLevel::Info,
            requests: RequestLines::Sampled,
            requests_per_second: 10,
        }
    }
}

/// Which requests get an event line ([`LogConfig::requests`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RequestLines {
    /// None (counters on `/metrics` only).
    None,
    /// A bounded number per second, then a count of those skipped: the log stays small
    /// under load or attack and still shows what traffic looks like.
    Sampled,
    /// Every request (debugging, tests).
    All,
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

/// `[connections]`: TCP/TLS connections.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct ConnectionsConfig {
    /// Most connections open at once; 0: sized to the file-descriptor limit (raised to its
    /// hard limit at start), less a reserve for the server's other files.
    pub(crate) max: usize,
    /// Most connections from one source address (open or in their TLS handshake): one source
    /// cannot take every slot from the others. Offices behind one NAT need room: one
    /// connection per phone.
    pub(crate) per_source: usize,
    /// A connection with no traffic this long is closed (seconds).
    pub(crate) idle_secs: u64,
    /// An inbound connection over which no authenticated request (a REGISTER or request with
    /// valid credentials, a TLS client certificate, a federated domain) came within this
    /// many seconds of its accept is closed; 0: never.
    pub(crate) unauthenticated_secs: u64,
}

impl Default for ConnectionsConfig {
    fn default() -> Self {
        ConnectionsConfig {
            max: 0,
            per_source: 256,
            idle_secs: 300,
            unauthenticated_secs: 30,
        }
    }
}

/// `[overload]`: load shedding when the proxy falls behind
/// ([`sotto_server::config::OverloadConfig`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct OverloadFileConfig {
    /// Whether new work is refused (503) when received messages queue up.
    pub(crate) enabled: bool,
    /// Received messages that may wait for the proxy (beyond: the sockets wait).
    pub(crate) queue: usize,
    /// Bytes of receive buffer asked of the kernel per UDP socket (capped by
    /// `net.core.rmem_max`): room for bursts; 0: the system default.
    pub(crate) udp_receive_buffer: usize,
    /// Waiting messages from which new requests without credentials get 503.
    pub(crate) shed_unauthenticated_at: usize,
    /// Waiting messages from which every new out-of-dialog request gets 503.
    pub(crate) shed_all_at: usize,
    /// Milliseconds a message waited (since the kernel received it) from which new requests
    /// without credentials get 503.
    pub(crate) shed_unauthenticated_after_ms: u32,
    /// The same, from which every new out-of-dialog request gets 503.
    pub(crate) shed_all_after_ms: u32,
    /// How long such waits must stand (every message meanwhile waited that long) before
    /// they count: a pause of the process is not an overload.
    pub(crate) standing_ms: u32,
    /// Retry-After of those 503s (seconds).
    pub(crate) retry_after_secs: u32,
}

impl Default for OverloadFileConfig {
    fn default() -> Self {
        let core = sotto_server::config::OverloadConfig::default();
        OverloadFileConfig {
            enabled: core.enabled,
            queue: sotto_net::TransportConfig::default().incoming_queue,
            udp_receive_buffer: 4 << 20,
            shed_unauthenticated_at: core.shed_unauthenticated_at,
            shed_all_at: core.shed_all_at,
            shed_unauthenticated_after_ms: core.shed_unauthenticated_after.as_millis() as u32,
            shed_all_after_ms: core.shed_all_after.as_millis() as u32,
            standing_ms: core.standing.as_millis() as u32,
            retry_after_secs: core.retry_after_secs,
        }
    }
}

/// `[admin]`: the operator's control channel (`sotto ban list|lift`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct AdminConfig {
    /// A Unix socket the server answers operator commands on (mode 0600: only the server's
    /// own user); relative paths from the config file's directory; empty: none.
    pub(crate) socket: PathBuf,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            socket: PathBuf::from("admin.sock"),
        }
    }
}

/// `[lime]`: the LIME key server (end-to-end message keys, Linphone's `lime_server_url`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct LimeConfig {
    /// Whether the key server runs (off by default: it opens an HTTPS port).
    pub(crate) enabled: bool,
    /// Where it listens (HTTPS, the server's certificate).
    pub(crate) listen: SocketAddr,
    /// The path clients post to.
    pub(crate) path: String,
    /// The URL to give clients; default `https://<domain>:<port><path>`.
    pub(crate) url: Option<String>,
    /// Its SQLite database (relative paths from the config file's directory).
    pub(crate) database: PathBuf,
    /// A PostgreSQL database instead (`postgres://user@host:port/db`), shared by several
    /// servers.
    pub(crate) postgres_url: Option<String>,
    /// One-time prekeys held for one device at most.
    pub(crate) max_opks_per_device: usize,
    /// Key-bundle requests one device may make per minute.
    pub(crate) bundle_requests_per_minute: u32,
}

impl Default for LimeConfig {
    fn default() -> Self {
        LimeConfig {
            enabled: false,
            listen: SocketAddr::from(([0, 0, 0, 0], 8443)),
            path: "/lime".into(),
            url: None,
            database: PathBuf::from("lime.sqlite"),
            postgres_url: None,
            max_opks_per_device: 500,
            bundle_requests_per_minute: 600,
        }
    }
}

/// `[transactions]`: the SIP transaction layer (RFC 3261 §17 timers, in milliseconds) and the
/// bound on transactions alive at once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct TransactionsConfig {
    /// T1, the round-trip estimate (retransmissions start at T1 and double).
    pub(crate) t1_ms: u32,
    /// T2, the longest retransmission interval of non-INVITE requests and INVITE responses.
    pub(crate) t2_ms: u32,
    /// T4, how long a message may stay in the network.
    pub(crate) t4_ms: u32,
    /// Timer D, how long a client INVITE transaction absorbs response retransmissions.
    pub(crate) timer_d_ms: u32,
    /// How long an INVITE waits before we answer 100 Trying ourselves.
    pub(crate) trying_delay_ms: u32,
    /// Most transactions alive at once; when full, the oldest that only absorb
    /// retransmissions go first, then new requests get 503 with Retry-After.
    pub(crate) max: u32,
}

impl Default for TransactionsConfig {
    fn default() -> Self {
        let timers = sotto_sip::transaction::TimerConfig::default();
        let ms = |d: std::time::Duration| u32::try_from(d.as_millis()).unwrap_or(u32::MAX);
        TransactionsConfig {
            t1_ms: ms(timers.t1),
            t2_ms: ms(timers.t2),
            t4_ms: ms(timers.t4),
            timer_d_ms: ms(timers.timer_d),
            trying_delay_ms: ms(timers.trying_delay),
            max: u32::try_from(sotto_server::config::ServerConfig::default().max_transactions)
                .unwrap_or(u32::MAX),
        }
    }
}
