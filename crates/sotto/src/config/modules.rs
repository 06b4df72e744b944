//! `[modules.*]`: the request pipeline's modules, in the order requests meet them; each one's
//! settings are the core's ([`sotto_server::config`]) in the file's units, with the core's
//! defaults.

use serde::{Deserialize, Serialize};
use sotto_sip::digest::Algorithm;

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

/// `[modules.anti_flood]`: a token bucket per source IP address, and a ban for sources that
/// keep failing authentication (what stops password guessing).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct AntiFloodConfig {
    /// Whether the module runs.
    pub(crate) enabled: bool,
    /// Requests per second one source IP address may send, sustained; beyond the burst its
    /// requests are dropped until its bucket refills.
    pub(crate) rate_per_s: f64,
    /// Requests one source may send at once (the bucket's size).
    pub(crate) burst: u32,
    /// Authentication failures (wrong password, unknown user) for one account from one
    /// source within `failure_window_secs` that lock that account out from that source for
    /// `account_lockout_secs` (its requests get 403 with Retry-After; other users of the
    /// address are not touched).
    pub(crate) ban_after_failures: u32,
    /// How long an account stays locked out from a source, in seconds.
    pub(crate) account_lockout_secs: u32,
    /// Different accounts failing from one source within `failure_window_secs` that get the
    /// source banned for `ban_secs` (a guesser trying many users).
    pub(crate) ban_after_accounts: u32,
    /// The window failures are counted in, in seconds.
    pub(crate) failure_window_secs: u32,
    /// How long a banned source is ignored, in seconds.
    pub(crate) ban_secs: u32,
    /// Most source addresses tracked at once (bounded memory under a flood).
    pub(crate) max_sources: u32,
    /// Networks (`10.0.0.0/8`) or addresses never rate-limited, locked out or banned.
    pub(crate) trusted_networks: Vec<String>,
    /// Files written before the rate was per second: requests per window, read as `burst`
    /// and, over `window_secs`, as `rate_per_s`. Never written.
    #[serde(skip_serializing)]
    pub(crate) max_requests: Option<u32>,
    /// The window of `max_requests`, in seconds (10 when absent). Never written.
    #[serde(skip_serializing)]
    pub(crate) window_secs: Option<u32>,
}

impl Default for AntiFloodConfig {
    fn default() -> Self {
        let core = sotto_server::config::AntiFloodConfig::default();
        AntiFloodConfig {
            enabled: core.enabled,
            rate_per_s: core.rate_per_s,
            burst: core.burst,
            ban_after_failures: core.ban_after_failures,
            account_lockout_secs: secs(core.account_lockout),
            ban_after_accounts: core.ban_after_accounts,
            failure_window_secs: secs(core.failure_window),
            ban_secs: secs(core.ban_duration),
            max_sources: u32::try_from(core.max_sources).unwrap_or(u32::MAX),
            trusted_networks: core
                .trusted_networks
                .iter()
                .map(ToString::to_string)
                .collect(),
            max_requests: None,
            window_secs: None,
        }
    }
}

/// A network (`10.0.0.0/8`) or a single address (`192.0.2.7`).
pub(crate) fn parse_network(s: &str) -> Option<ipnet::IpNet> {
    s.parse()
        .ok()
        .or_else(|| s.parse::<std::net::IpAddr>().ok().map(ipnet::IpNet::from))
}

impl AntiFloodConfig {
    /// (rate per second, burst), from an older file's `max_requests` per `window_secs` when
    /// it has them.
    pub(crate) fn rate(&self) -> (f64, u32) {
        match self.max_requests {
            Some(max) => {
                let window = self.window_secs.unwrap_or(10).max(1);
                (f64::from(max) / f64::from(window), max)
            }
            None => (self.rate_per_s, self.burst),
        }
    }
}

/// Whole seconds of a core default (the file's unit).
pub(crate) fn secs(d: std::time::Duration) -> u32 {
    u32::try_from(d.as_secs()).unwrap_or(u32::MAX)
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
    /// Accept a TLS client certificate whose SAN URI or CN matches the From URI instead of a
    /// digest (with `[tls] client_auth` optional or required).
    pub(crate) tls_client_certificates: bool,
}

impl Default for AuthenticationConfig {
    fn default() -> Self {
        let core = sotto_server::config::AuthenticationConfig::default();
        AuthenticationConfig {
            enabled: core.enabled,
            algorithms: core.algorithms.into_iter().map(DigestAlgorithm).collect(),
            nonce_lifetime_secs: secs(core.nonce_lifetime),
            tls_client_certificates: core.tls_client_certificates,
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
        let core = sotto_server::config::RegistrarConfig::default();
        RegistrarModuleConfig {
            enabled: core.enabled,
            gruu: core.gruu,
            outbound: core.outbound,
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
