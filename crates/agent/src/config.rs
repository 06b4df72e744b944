//! The account file (`agent.toml`), written by `sotto agent init` and read by every other
//! `sotto agent` command.
//!
//! ```toml
//! format = 1
//!
//! [account]
//! identity = "sip:alice@example.test"   # address of record
//! username = "alice"                    # digest user name (default: the identity's user)
//! password = "..."                      # the file is written with mode 0600
//! # client_certificate = "client.pem"   # TLS client certificate (instead of or with a password)
//! # client_key = "client.key"           # its PEM private key
//! instance = "urn:uuid:..."             # RFC 5626 +sip.instance, stable across runs
//! register_expires_secs = 600
//!
//! [proxy]
//! uri = "sips:example.test"             # outbound proxy and registrar (first hop): a
//!                                       # domain (DNS: NAPTR, SRV, A) or an address
//! ca = "/path/ca.pem"                   # CA that the proxy's certificate must chain to
//! keepalive_secs = 25                   # CRLF keep-alive; a broken flow is re-opened
//!
//! [media]
//! encryption = "mandatory"              # mandatory | optional | none
//! methods = ["sdes"]                    # key exchanges, in order of preference: sdes, zrtp, dtls
//! # zrtp_key_agreements = ["X255", "X448", "DH3k"]   # ZRTP preference (default X255 E255 X448 DH3k)
//! # media_encryption = "zrtp"           # Linphone's spelling (zrtp | srtp | dtls | none): sets methods
//! rtp_timeout_secs = 30                 # hang up when media stops for this long (0: never)
//!
//! [security]
//! trusted_hosts = []                    # IPs allowed to send requests directly
//! listen_udp = []                       # extra direct listeners (none by default)
//! # listen_tls = "127.0.0.1:5071"       # direct TLS listener (needs certificate and key)
//! # certificate = "cert.pem"            # PEM chain of the direct TLS listener
//! # key = "key.pem"                     # its PEM private key
//!
//! [data]
//! dir = "data"                          # relative to this file
//!
//! [dns]
//! servers = []                          # name servers (default: the system's)
//!
//! [danger]
//! sdes_without_tls = false              # insecure overrides; see DangerSection
//! ```
//!
//! `Default` values are the secure ones: mandatory media encryption, no direct listener, no
//! trusted host, no `[danger]` override.

use sotto_media::zrtp::algorithms::Algorithm;
use sotto_media::zrtp::{ZrtpKeyAgreement, ZrtpPreferences};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sotto_sip::message::{Scheme, Uri};

/// The version of the file format written by this crate.
pub const FORMAT_VERSION: u32 = 1;

/// Why an account file could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Reading or writing the file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this model.
    #[error("{path}: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The TOML error text.
        message: String,
    },
    /// A value is wrong (names the field).
    #[error("{field}: {message}")]
    Invalid {
        /// The field, e.g. `account.identity`.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
}

/// Media encryption policy of the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encryption {
    /// SRTP or no call (the default).
    #[default]
    Mandatory,
    /// SRTP when possible, plain RTP otherwise.
    Optional,
    /// Plain RTP only.
    None,
}

impl Encryption {
    /// The policy's name as written in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            Encryption::Mandatory => "mandatory",
            Encryption::Optional => "optional",
            Encryption::None => "none",
        }
    }
}

/// A media key-exchange method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyExchange {
    /// SDP security descriptions (RFC 4568): keys in the SDP, protected only by the TLS hops.
    Sdes,
    /// ZRTP (RFC 6189): keys agreed end to end on the media path, checked by the SAS and the
    /// key-continuity cache; needs no TLS hop.
    Zrtp,
    /// DTLS-SRTP (RFC 5763/5764): keys agreed on the media path by a DTLS handshake whose
    /// certificates are vouched for by the fingerprints of the SDP (so by every proxy on the
    /// path, as SDES's keys are); the agent's certificate is kept in its data directory.
    Dtls,
}

impl KeyExchange {
    /// The name in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyExchange::Sdes => "sdes",
            KeyExchange::Zrtp => "zrtp",
            KeyExchange::Dtls => "dtls",
        }
    }
}

/// `[account]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountSection {
    /// The address of record, e.g. `sip:alice@example.test`.
    pub identity: String,
    /// Digest user name; the identity's user part when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Digest password; empty when the account logs in with a TLS client certificate only.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub password: String,
    /// PEM certificate chain presented to the proxy in the TLS handshake (client-certificate
    /// login); relative to the account file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_certificate: Option<PathBuf>,
    /// PEM private key of `client_certificate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key: Option<PathBuf>,
    /// RFC 5626 instance id (`urn:uuid:...`).
    pub instance: String,
    /// Registration lifetime asked for, in seconds.
    #[serde(default = "default_expires")]
    pub register_expires_secs: u32,
}

fn default_expires() -> u32 {
    600
}

/// `[proxy]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxySection {
    /// The outbound proxy/registrar URI, e.g. `sips:127.0.0.1:5061`.
    pub uri: String,
    /// PEM CA file the proxy certificate is verified against.
    pub ca: PathBuf,
    /// Name to verify the certificate against (default: the URI's host).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    /// Seconds between CRLF keep-alives on the connection to the proxy; a keep-alive that
    /// finds the connection closed opens a new one and registers again.
    #[serde(default = "default_keepalive")]
    pub keepalive_secs: u32,
}

fn default_keepalive() -> u32 {
    25
}

/// `[media]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaSection {
    /// Encryption policy.
    #[serde(default)]
    pub encryption: Encryption,
    /// Key exchanges in order of preference.
    #[serde(default = "default_methods")]
    pub methods: Vec<KeyExchange>,
    /// A connected call whose media stopped arriving for this many seconds is hung up
    /// (Linphone's `nortp_timeout`); 0: never.
    #[serde(default = "default_rtp_timeout")]
    pub rtp_timeout_secs: u32,
    /// ZRTP key agreements in order of preference (`X255`, `E255`, `X448`, `DH3k`, `DH2k`);
    /// empty: the default (`X255`, `E255`, `X448`, `DH3k`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub zrtp_key_agreements: Vec<String>,
    /// Linphone's spelling, when written: `zrtp`, `srtp` (SDES), `dtls` or `none`; it sets
    /// `methods` (and `none` sets `encryption = "none"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_encryption: Option<String>,
}

fn default_methods() -> Vec<KeyExchange> {
    vec![KeyExchange::Sdes]
}

fn default_rtp_timeout() -> u32 {
    30
}

impl Default for MediaSection {
    fn default() -> Self {
        MediaSection {
            encryption: Encryption::Mandatory,
            methods: default_methods(),
            rtp_timeout_secs: default_rtp_timeout(),
            zrtp_key_agreements: Vec::new(),
            media_encryption: None,
        }
    }
}

/// `[dns]`: the name servers that locate the proxy (RFC 3263: NAPTR, SRV, A/AAAA).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsSection {
    /// Name servers as `address:port`; empty: the system's (`/etc/resolv.conf`).
    #[serde(default)]
    pub servers: Vec<SocketAddr>,
}

/// `[security]`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecuritySection {
    /// Hosts allowed to send requests directly (not through the registration flow).
    #[serde(default)]
    pub trusted_hosts: Vec<IpAddr>,
    /// UDP addresses to listen on for direct requests (none by default: requests arrive only
    /// over the registration connection).
    #[serde(default)]
    pub listen_udp: Vec<SocketAddr>,
    /// A TLS address to listen on for direct calls (none by default). Requests there still
    /// pass the ghost-call check: only `trusted_hosts` reach the user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen_tls: Option<SocketAddr>,
    /// PEM certificate chain (end-entity first) of the direct TLS listener.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<PathBuf>,
    /// PEM private key of the direct TLS listener.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<PathBuf>,
}

/// `[danger]`: insecure overrides, all off by default. Every one in use is announced on
/// stderr at start and shows up in each affected call's security report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DangerSection {
    /// Allow SDES (SRTP keys inside the SDP) on a DIRECT call whose only hop is not TLS
    /// (e.g. `sip:bob@127.0.0.1:5072` over UDP): the keys then travel in clear text and
    /// anyone on the path can decrypt the call. Calls through the proxy are not affected.
    #[serde(default)]
    pub sdes_without_tls: bool,
}

impl DangerSection {
    /// The names of the overrides in use (`sdes_without_tls`...), empty when none.
    pub fn in_use(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.sdes_without_tls {
            v.push("sdes_without_tls");
        }
        v
    }
}

/// `[lime]`: the LIME key server and curve of this device's message keys (Linphone's
/// `lime_server_url`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct LimeSection {
    /// The key server, e.g. `https://example.test:8443/lime`; none: no message keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_url: Option<String>,
    /// `c25519` (default) or `c448`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub curve: Option<String>,
}

impl LimeSection {
    /// The curve (default Curve25519).
    pub fn curve_id(&self) -> Result<sotto_lime::CurveId, ConfigError> {
        match self.curve.as_deref().unwrap_or("c25519") {
            "c25519" => Ok(sotto_lime::CurveId::C25519),
            "c448" => Ok(sotto_lime::CurveId::C448),
            other => Err(ConfigError::Invalid {
                field: "lime.curve",
                message: format!("{other:?}: expected c25519 or c448"),
            }),
        }
    }
}

/// `[data]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSection {
    /// The data directory (relative paths are relative to the account file).
    pub dir: PathBuf,
}

impl Default for DataSection {
    fn default() -> Self {
        DataSection {
            dir: PathBuf::from("data"),
        }
    }
}

/// The whole account file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountConfig {
    /// File format version ([`FORMAT_VERSION`]).
    pub format: u32,
    /// `[account]`.
    pub account: AccountSection,
    /// `[proxy]`.
    pub proxy: ProxySection,
    /// `[media]`.
    #[serde(default)]
    pub media: MediaSection,
    /// `[security]`.
    #[serde(default)]
    pub security: SecuritySection,
    /// `[data]`.
    #[serde(default)]
    pub data: DataSection,
    /// `[dns]`: how the proxy's host name is looked up.
    #[serde(default)]
    pub dns: DnsSection,
    /// `[danger]`: insecure overrides (all off by default).
    #[serde(default)]
    pub danger: DangerSection,
    /// `[lime]`: end-to-end message keys.
    #[serde(default)]
    pub lime: LimeSection,
    /// The directory of the file it was loaded from (for relative paths); not serialized.
    #[serde(skip)]
    pub base_dir: PathBuf,
}

impl AccountConfig {
    /// Parses and checks the text of an account file.
    pub fn from_toml(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let mut c: AccountConfig = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        c.base_dir = path.parent().map(Path::to_owned).unwrap_or_default();
        c.check()?;
        Ok(c)
    }

    /// Reads and checks an account file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml(&text, path)
    }

    /// The file text.
    pub fn to_toml(&self) -> Result<String, ConfigError> {
        toml::to_string(self).map_err(|e| ConfigError::Invalid {
            field: "account file",
            message: e.to_string(),
        })
    }

    /// Checks every value that later use depends on.
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.format != FORMAT_VERSION {
            return Err(ConfigError::Invalid {
                field: "format",
                message: format!(
                    "unsupported format {} (this build reads {FORMAT_VERSION})",
                    self.format
                ),
            });
        }
        let id = self.identity()?;
        if id.user().is_none_or(str::is_empty) {
            return Err(ConfigError::Invalid {
                field: "account.identity",
                message: "needs a user part, e.g. sip:alice@example.test".into(),
            });
        }
        self.proxy_uri()?;
        match (&self.account.client_certificate, &self.account.client_key) {
            (Some(_), None) | (None, Some(_)) => {
                return Err(ConfigError::Invalid {
                    field: "account.client_certificate",
                    message: "account.client_certificate and account.client_key go together".into(),
                });
            }
            (None, None) if self.account.password.is_empty() => {
                return Err(ConfigError::Invalid {
                    field: "account.password",
                    message: "needs a password or account.client_certificate and \
                              account.client_key"
                        .into(),
                });
            }
            _ => {}
        }
        if !self.account.instance.starts_with("urn:") {
            return Err(ConfigError::Invalid {
                field: "account.instance",
                message: "must be a URN (urn:uuid:...)".into(),
            });
        }
        if self.proxy.keepalive_secs == 0 {
            return Err(ConfigError::Invalid {
                field: "proxy.keepalive_secs",
                message: "must be above 0".into(),
            });
        }
        if self.security.listen_tls.is_some()
            && (self.security.certificate.is_none() || self.security.key.is_none())
        {
            return Err(ConfigError::Invalid {
                field: "security.listen_tls",
                message: "a TLS listener needs security.certificate and security.key".into(),
            });
        }
        if self.account.register_expires_secs == 0 {
            return Err(ConfigError::Invalid {
                field: "account.register_expires_secs",
                message: "must be above 0".into(),
            });
        }
        self.media_policy()?;
        if self.media.methods.is_empty() {
            return Err(ConfigError::Invalid {
                field: "media.methods",
                message: "name at least one key exchange: sdes, zrtp, dtls".into(),
            });
        }
        self.zrtp_preferences()?;
        self.lime.curve_id()?;
        Ok(())
    }

    /// The encryption policy and key exchanges: `[media] encryption` and `methods`, or
    /// Linphone's `media_encryption` when written.
    pub fn media_policy(&self) -> Result<(Encryption, Vec<KeyExchange>), ConfigError> {
        let m = &self.media;
        Ok(match m.media_encryption.as_deref() {
            None => (m.encryption, m.methods.clone()),
            Some("zrtp") => (m.encryption, vec![KeyExchange::Zrtp]),
            Some("dtls") => (m.encryption, vec![KeyExchange::Dtls]),
            Some("srtp" | "sdes") => (m.encryption, vec![KeyExchange::Sdes]),
            Some("none") => (Encryption::None, m.methods.clone()),
            Some(other) => {
                return Err(ConfigError::Invalid {
                    field: "media.media_encryption",
                    message: format!("{other:?}: expected zrtp, srtp, dtls or none"),
                });
            }
        })
    }

    /// The ZRTP algorithms to offer: the defaults, with `media.zrtp_key_agreements` when set.
    pub fn zrtp_preferences(&self) -> Result<ZrtpPreferences, ConfigError> {
        let mut p = ZrtpPreferences::default();
        if !self.media.zrtp_key_agreements.is_empty() {
            p.key_agreements = self
                .media
                .zrtp_key_agreements
                .iter()
                .map(|n| {
                    ZrtpKeyAgreement::from_name(format!("{n:<4}").as_bytes()).ok_or_else(|| {
                        ConfigError::Invalid {
                            field: "media.zrtp_key_agreements",
                            message: format!("{n:?}: expected X255, E255, X448, DH3k or DH2k"),
                        }
                    })
                })
                .collect::<Result<_, _>>()?;
        }
        if !p.is_valid() {
            return Err(ConfigError::Invalid {
                field: "media.zrtp_key_agreements",
                message: "at most 7, without repeats".into(),
            });
        }
        Ok(p)
    }

    /// The parsed identity.
    pub fn identity(&self) -> Result<Uri, ConfigError> {
        let u = Uri::parse(&self.account.identity).map_err(|e| ConfigError::Invalid {
            field: "account.identity",
            message: e.to_string(),
        })?;
        if !matches!(u.scheme(), Scheme::Sip | Scheme::Sips) {
            return Err(ConfigError::Invalid {
                field: "account.identity",
                message: "must be a sip: or sips: URI".into(),
            });
        }
        Ok(u)
    }

    /// The parsed proxy URI: an IP address, or a host name located by DNS (RFC 3263).
    pub fn proxy_uri(&self) -> Result<Uri, ConfigError> {
        let u = Uri::parse(&self.proxy.uri).map_err(|e| ConfigError::Invalid {
            field: "proxy.uri",
            message: e.to_string(),
        })?;
        if !matches!(u.scheme(), Scheme::Sip | Scheme::Sips) {
            return Err(ConfigError::Invalid {
                field: "proxy.uri",
                message: "must be a sip: or sips: URI".into(),
            });
        }
        if u.host().is_empty() {
            return Err(ConfigError::Invalid {
                field: "proxy.uri",
                message: "needs a host, e.g. sips:example.test".into(),
            });
        }
        Ok(u)
    }

    /// The digest user name.
    pub fn username(&self) -> String {
        match &self.account.username {
            Some(u) => u.clone(),
            None => self
                .identity()
                .ok()
                .and_then(|u| u.user().map(str::to_owned))
                .unwrap_or_default(),
        }
    }

    /// The TLS client certificate chain and key files (resolved), when the account has them.
    pub fn client_cert_files(&self) -> Option<(PathBuf, PathBuf)> {
        match (&self.account.client_certificate, &self.account.client_key) {
            (Some(c), Some(k)) => Some((self.resolve(c), self.resolve(k))),
            _ => None,
        }
    }

    /// A path from the file, resolved against the file's directory.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_owned()
        } else {
            self.base_dir.join(p)
        }
    }
}

/// Parses a URI host as an IP address (`[::1]` brackets allowed).
pub fn host_ip(host: &str) -> Option<IpAddr> {
    let h = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    h.parse().ok()
}

/// A random RFC 4122 version-4 UUID URN from `rng`.
pub fn new_instance_urn(
    rng: &dyn sotto_crypto::rng::SecureRandom,
) -> Result<String, sotto_crypto::Error> {
    let mut b = [0u8; 16];
    rng.fill(&mut b)?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = sotto_crypto::hex::encode(&b);
    Ok(format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        h.get(0..8).unwrap_or_default(),
        h.get(8..12).unwrap_or_default(),
        h.get(12..16).unwrap_or_default(),
        h.get(16..20).unwrap_or_default(),
        h.get(20..32).unwrap_or_default()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> AccountConfig {
        AccountConfig {
            format: FORMAT_VERSION,
            account: AccountSection {
                identity: "sip:alice@example.test".into(),
                username: None,
                password: "pw".into(),
                client_certificate: None,
                client_key: None,
                instance: "urn:uuid:00000000-0000-4000-8000-000000000000".into(),
                register_expires_secs: 600,
            },
            proxy: ProxySection {
                uri: "sips:127.0.0.1:5061".into(),
                ca: PathBuf::from("ca.pem"),
                server_name: None,
                keepalive_secs: 25,
            },
            media: MediaSection::default(),
            security: SecuritySection::default(),
            data: DataSection::default(),
            lime: LimeSection::default(),
            dns: DnsSection::default(),
            danger: DangerSection::default(),
            base_dir: PathBuf::new(),
        }
    }

    #[test]
    fn linphone_media_encryption_sets_the_key_exchange() {
        let mut c = sample();
        assert_eq!(
            c.media_policy().unwrap(),
            (Encryption::Mandatory, vec![KeyExchange::Sdes])
        );
        c.media.media_encryption = Some("zrtp".into());
        assert_eq!(
            c.media_policy().unwrap(),
            (Encryption::Mandatory, vec![KeyExchange::Zrtp])
        );
        c.media.media_encryption = Some("none".into());
        assert_eq!(c.media_policy().unwrap().0, Encryption::None);
        c.media.media_encryption = Some("dtls".into());
        assert_eq!(
            c.media_policy().unwrap(),
            (Encryption::Mandatory, vec![KeyExchange::Dtls])
        );
        c.media.media_encryption = Some("zrtp-please".into());
        assert!(c.check().is_err());
        c.media.zrtp_key_agreements = vec!["X448".into(), "DH3k".into()];
        c.media.media_encryption = None;
        assert_eq!(
            c.zrtp_preferences().unwrap().key_agreements,
            vec![ZrtpKeyAgreement::X448, ZrtpKeyAgreement::Dh3k]
        );
        c.media.zrtp_key_agreements = vec!["EC25".into()];
        assert!(c.check().is_err());
    }

    #[test]
    fn round_trip_and_defaults() {
        let c = sample();
        let text = c.to_toml().unwrap();
        let back = AccountConfig::from_toml(&text, Path::new("/x/agent.toml")).unwrap();
        assert_eq!(back.account, c.account);
        assert_eq!(back.media.encryption, Encryption::Mandatory);
        assert_eq!(back.username(), "alice");
        assert_eq!(
            back.resolve(Path::new("ca.pem")),
            PathBuf::from("/x/ca.pem")
        );
    }

    #[test]
    fn rejects_bad_values() {
        let mut c = sample();
        c.proxy.uri = "sips:proxy.example.test".into();
        assert!(c.check().is_ok(), "a domain is located by DNS");
        c.proxy.uri = "mailto:proxy@example.test".into();
        assert!(matches!(
            c.check(),
            Err(ConfigError::Invalid {
                field: "proxy.uri",
                ..
            })
        ));
        let mut c = sample();
        c.account.identity = "sip:example.test".into();
        assert!(matches!(
            c.check(),
            Err(ConfigError::Invalid {
                field: "account.identity",
                ..
            })
        ));
        let mut c = sample();
        c.security.listen_tls = Some("127.0.0.1:5071".parse().unwrap());
        assert!(matches!(
            c.check(),
            Err(ConfigError::Invalid {
                field: "security.listen_tls",
                ..
            })
        ));
        c.security.certificate = Some(PathBuf::from("cert.pem"));
        c.security.key = Some(PathBuf::from("key.pem"));
        assert!(c.check().is_ok());
        let back = AccountConfig::from_toml(&c.to_toml().unwrap(), Path::new("a.toml")).unwrap();
        assert_eq!(back.security, c.security);
        let text = sample()
            .to_toml()
            .unwrap()
            .replace("format = 1", "format = 9");
        assert!(AccountConfig::from_toml(&text, Path::new("a.toml")).is_err());
    }

    #[test]
    fn password_or_client_certificate() {
        let mut c = sample();
        c.account.password.clear();
        assert!(matches!(
            c.check(),
            Err(ConfigError::Invalid {
                field: "account.password",
                ..
            })
        ));
        c.account.client_certificate = Some(PathBuf::from("client.pem"));
        assert!(matches!(
            c.check(),
            Err(ConfigError::Invalid {
                field: "account.client_certificate",
                ..
            })
        ));
        c.account.client_key = Some(PathBuf::from("client.key"));
        assert!(c.check().is_ok());
        let text = c.to_toml().unwrap();
        assert!(!text.contains("password"), "{text}");
        let back = AccountConfig::from_toml(&text, Path::new("/x/agent.toml")).unwrap();
        assert_eq!(back.account, c.account);
        assert_eq!(
            back.client_cert_files(),
            Some((
                PathBuf::from("/x/client.pem"),
                PathBuf::from("/x/client.key")
            ))
        );
        let mut c = sample();
        c.account.client_key = Some(PathBuf::from("client.key"));
        assert!(c.check().is_err());
        assert_eq!(sample().client_cert_files(), None);
    }

    #[test]
    fn danger_is_off_by_default_and_round_trips() {
        let c = sample();
        assert!(!c.danger.sdes_without_tls);
        assert!(c.danger.in_use().is_empty());
        let text = c.to_toml().unwrap();
        assert!(text.contains("sdes_without_tls = false"), "{text}");
        // A file without [danger] (older files) reads as all off.
        let old = text
            .replace("[danger]", "")
            .replace("sdes_without_tls = false", "");
        let back = AccountConfig::from_toml(&old, Path::new("a.toml")).unwrap();
        assert_eq!(back.danger, DangerSection::default());
        let on = text.replace("sdes_without_tls = false", "sdes_without_tls = true");
        let back = AccountConfig::from_toml(&on, Path::new("a.toml")).unwrap();
        assert!(back.danger.sdes_without_tls);
        assert_eq!(back.danger.in_use(), vec!["sdes_without_tls"]);
        let bad = text.replace("sdes_without_tls = false", "sdes_anywhere = true");
        assert!(AccountConfig::from_toml(&bad, Path::new("a.toml")).is_err());
    }

    #[test]
    fn instance_urn_is_v4() {
        let u = new_instance_urn(sotto_crypto_rust::provider().rng).unwrap();
        assert_eq!(u.len(), "urn:uuid:".len() + 36);
        assert_eq!(u.as_bytes().get(23), Some(&b'4'));
    }
}
