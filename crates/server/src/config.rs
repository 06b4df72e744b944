//! The server's configuration as plain data. Every `Default` is the secure choice: TLS only,
//! digest with SHA-256 and MD5, anti-flood on, downgrades refused, SDES kept off plain hops.

use std::time::Duration;

use sotto_sip::digest::Algorithm;
use sotto_sip::transaction::TimerConfig;

use crate::locality::Alias;

/// Everything the proxy/registrar core needs to know (no file paths, no sockets).
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    /// The domains this server is responsible for (host part of local addresses of record),
    /// e.g. `example.test`. Listener addresses are local too.
    pub domains: Vec<String>,
    /// The digest realm (default: the first domain).
    pub realm: String,
    /// Other names and addresses that mean this server (`[server] aliases`).
    pub aliases: Vec<Alias>,
    /// The host our Via and Record-Route name (a public name or address), instead of the
    /// address each request arrived on.
    pub public_host: Option<String>,
    /// Calls and messages between domains (server-to-server over mutual TLS, RFC 5922).
    pub federation: FederationConfig,
    /// Anti-flood module.
    pub anti_flood: AntiFloodConfig,
    /// Sanity module.
    pub sanity: SanityConfig,
    /// Authentication module.
    pub authentication: AuthenticationConfig,
    /// Registrar module.
    pub registrar: RegistrarConfig,
    /// Router module.
    pub router: RouterConfig,
    /// Forward module.
    pub forward: ForwardConfig,
    /// Transaction timers (RFC 3261 defaults).
    pub timers: TimerConfig,
    /// Most transactions alive at once. When full, the oldest transactions that only absorb
    /// retransmissions (completed or accepted, waiting out Timer J/I/K/D/L/M) are evicted first; 503 with
    /// Retry-After is answered (statelessly) only when live transactions fill the table.
    ///
    /// Default 65,536: a completed transaction keeps ~1.3 kB (its final response's bytes, key,
    /// deadline and table entries), so the table stays under ~100 MB; at 7,000 requests/s it
    /// holds ~9 s of completed transactions, which covers the retransmission intervals
    /// (T1 to T2) after a lost response.
    pub max_transactions: usize,
    /// Load shedding when the proxy falls behind.
    pub overload: OverloadConfig,
}

/// Load shedding ([`crate::proxy::Proxy::set_backlog`]): when received messages queue up
/// faster than the proxy handles them, new work is refused early and cheaply — a stateless
/// 503 with Retry-After, before any module runs — while responses and requests within a
/// dialog or transaction (ACK, BYE, CANCEL, retransmissions) are still handled, so calls
/// already set up finish. A dropped request would come back as up to 10 retransmissions;
/// an answered one does not.
#[derive(Debug, Clone, PartialEq)]
pub struct OverloadConfig {
    /// Whether new work is shed.
    pub enabled: bool,
    /// Backlog (received messages waiting in the proxy's queue) from which new requests
    /// without credentials are refused: each would only be challenged and come back. A
    /// backstop for a queue about to overflow, so near its size: a count, unlike a wait, has
    /// no standing rule, and a lower one shed calls on a hiccup of a few milliseconds (the
    /// first seconds after a registration storm).
    pub shed_unauthenticated_at: usize,
    /// Backlog from which every new out-of-dialog request is refused (same backstop).
    pub shed_all_at: usize,
    /// Queueing delay (how long a message waited between its arrival — the kernel's receive
    /// time for UDP — and the proxy taking it) from which new requests without credentials
    /// are refused. A wait that nears T1 (500 ms) brings retransmissions: more load.
    pub shed_unauthenticated_after: Duration,
    /// Queueing delay from which every new out-of-dialog request is refused.
    pub shed_all_after: Duration,
    /// How long a wait must stand — every message handled meanwhile waited that long —
    /// before it counts: a pause of the process is not an overload.
    pub standing: Duration,
    /// The Retry-After of the 503 (seconds).
    pub retry_after_secs: u32,
}

impl Default for OverloadConfig {
    fn default() -> Self {
        OverloadConfig {
            enabled: true,
            shed_unauthenticated_at: 1000,
            shed_all_at: 1020,
            shed_unauthenticated_after: Duration::from_millis(20),
            shed_all_after: Duration::from_millis(100),
            standing: Duration::from_millis(100),
            retry_after_secs: 5,
        }
    }
}

impl ServerConfig {
    /// A configuration for one domain, everything else at its default.
    pub fn for_domain(domain: &str) -> Self {
        ServerConfig {
            domains: vec![domain.to_ascii_lowercase()],
            realm: domain.to_owned(),
            aliases: Vec::new(),
            public_host: None,
            federation: FederationConfig::default(),
            anti_flood: AntiFloodConfig::default(),
            sanity: SanityConfig::default(),
            authentication: AuthenticationConfig::default(),
            registrar: RegistrarConfig::default(),
            router: RouterConfig::default(),
            forward: ForwardConfig::default(),
            timers: TimerConfig::default(),
            max_transactions: 65_536,
            overload: OverloadConfig::default(),
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig::for_domain("localhost")
    }
}

/// Per-source rate limit and ban after repeated authentication failures.
#[derive(Debug, Clone, PartialEq)]
pub struct AntiFloodConfig {
    /// Whether the module runs.
    pub enabled: bool,
    /// Sustained requests per second allowed from one IP address.
    pub rate_per_s: f64,
    /// Burst size (bucket capacity) per IP address.
    pub burst: u32,
    /// Authentication failures for one account from one address within
    /// [`AntiFloodConfig::failure_window`] that lock that account out from that address for
    /// [`AntiFloodConfig::account_lockout`] (a typo slows its author, not the neighbours).
    pub ban_after_failures: u32,
    /// How long an account stays locked out from an address.
    pub account_lockout: Duration,
    /// Distinct accounts failing from one address within the window that ban the address
    /// (what marks a guesser trying many users, not a user with a typo).
    pub ban_after_accounts: u32,
    /// The window failures are counted in.
    pub failure_window: Duration,
    /// How long a ban lasts.
    pub ban_duration: Duration,
    /// Most source addresses tracked at once (bounded memory under a flood).
    pub max_sources: usize,
    /// Networks never rate-limited, locked out or banned (an office's NAT, a trunk).
    pub trusted_networks: Vec<ipnet::IpNet>,
}

impl Default for AntiFloodConfig {
    fn default() -> Self {
        AntiFloodConfig {
            enabled: true,
            rate_per_s: 100.0,
            burst: 200,
            ban_after_failures: 4,
            account_lockout: Duration::from_secs(60),
            ban_after_accounts: 3,
            failure_window: Duration::from_secs(60),
            ban_duration: Duration::from_secs(600),
            max_sources: 65_536,
            trusted_networks: Vec::new(),
        }
    }
}

/// RFC 3261 / RFC 4475 request checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SanityConfig {
    /// Whether the module runs.
    pub enabled: bool,
}

impl Default for SanityConfig {
    fn default() -> Self {
        SanityConfig { enabled: true }
    }
}

/// Digest and TLS client certificate authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticationConfig {
    /// Whether the module runs (off means: nobody is challenged).
    pub enabled: bool,
    /// Digest algorithms challenged with, preferred first.
    pub algorithms: Vec<Algorithm>,
    /// How long a nonce is accepted before `stale=true`.
    pub nonce_lifetime: Duration,
    /// Accept a TLS client certificate whose SAN URI or CN matches the From URI instead of
    /// a digest.
    pub tls_client_certificates: bool,
}

impl Default for AuthenticationConfig {
    fn default() -> Self {
        AuthenticationConfig {
            enabled: true,
            algorithms: vec![Algorithm::Sha256, Algorithm::Md5],
            nonce_lifetime: Duration::from_secs(300),
            tls_client_certificates: true,
        }
    }
}

/// The registrar (RFC 3261 §10.3, RFC 5626, RFC 5627).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrarConfig {
    /// Whether the module runs.
    pub enabled: bool,
    /// Shortest registration accepted (shorter, non-zero ones get 423 with Min-Expires).
    pub min_expires: Duration,
    /// Used when the REGISTER gives no expiry.
    pub default_expires: Duration,
    /// Longer registrations are cut to this.
    pub max_expires: Duration,
    /// Most contacts per address of record.
    pub max_contacts: usize,
    /// Hand out GRUUs (RFC 5627) to contacts with `+sip.instance` whose UA supports them.
    pub gruu: bool,
    /// SIP outbound (RFC 5626): bindings keyed by instance and `reg-id` (several flows of one
    /// device), `Require: outbound` in the 200. Off: `reg-id` is ignored.
    pub outbound: bool,
}

impl Default for RegistrarConfig {
    fn default() -> Self {
        RegistrarConfig {
            enabled: true,
            min_expires: Duration::from_secs(60),
            default_expires: Duration::from_secs(3600),
            max_expires: Duration::from_secs(86_400),
            max_contacts: 16,
            gruu: true,
            outbound: true,
        }
    }
}

/// The router.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterConfig {
    /// Whether the module runs.
    pub enabled: bool,
}

impl Default for RouterConfig {
    fn default() -> Self {
        RouterConfig { enabled: true }
    }
}

/// What to do when a request would go from a TLS hop to a plain one or back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DowngradePolicy {
    /// Refuse (403 with a Warning). The default.
    Refuse,
    /// Forward, and add a Warning header to the responses sent back.
    Flag,
}

/// The forwarding step: transport security policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardConfig {
    /// Whether the module runs (off: targets are never forwarded).
    pub enabled: bool,
    /// TLS ↔ non-TLS hops.
    pub downgrade: DowngradePolicy,
}

impl Default for ForwardConfig {
    fn default() -> Self {
        ForwardConfig {
            enabled: true,
            downgrade: DowngradePolicy::Refuse,
        }
    }
}

/// Federation: requests to and from other domains' servers (RFC 3263 to find them, RFC 5922
/// to authenticate them). Off by default: requests from other domains are refused, and
/// requests for other domains are never relayed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FederationConfig {
    /// Whether the module runs.
    pub enabled: bool,
    /// The domains whose servers may send to us and that we send to; empty: any domain whose
    /// server presents a certificate for it.
    pub domains: Vec<String>,
}

impl FederationConfig {
    /// Whether `domain` may be federated with.
    pub fn allows(&self, domain: &str) -> bool {
        self.enabled
            && (self.domains.is_empty()
                || self.domains.iter().any(|d| d.eq_ignore_ascii_case(domain)))
    }
}
