//! Every encryption and trust decision of the agent, in one place, and the security report
//! built from them.
//!
//! - **Who may reach the user** ([`trust`]): requests over the registration flow, from a
//!   configured trusted host, or inside a direct dialog we are in. Anything else is a ghost
//!   call, refused without ringing.
//! - **SDES needs TLS** ([`sdes_hop`]): SRTP keys in the SDP travel only over a TLS first hop;
//!   on a direct call over UDP, only under the insecure override
//!   `[danger] sdes_without_tls`, and then loudly. The same rule decides what we offer
//!   ([`offer_mode`]), what offers we take ([`sdes_allowed`]) and what the report says.
//! - **How much encryption** ([`answer_policy`]): the account's `[media] encryption`.

use std::net::IpAddr;

use sotto_crypto::CryptoProvider;
use sotto_crypto::dtls::SrtpProfile;
use sotto_crypto::rng::SecureRandom;
use sotto_media::dtls::DtlsExchange;
use sotto_media::keyx::{MediaKeyExchange, MediaProtection, NoKeyExchange};
use sotto_media::zrtp::{ZrtpConfig, ZrtpExchange};
use sotto_sdp::{EncryptionMode, EncryptionPolicy, LocalCapabilities, SdesSuite, Session};
use sotto_sip::transport::{Destination, TransportKind};

use crate::config::{Encryption, KeyExchange};
use crate::sdes::SdesExchange;
use crate::security::{SecurityReport, TlsSummary};
use crate::ua::{UaConfig, UaError};

/// Why a request may reach the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust {
    /// It came over the registration connection (the registrar authenticated the caller).
    RegistrationFlow,
    /// It came from a host of `[security] trusted_hosts`.
    TrustedHost,
    /// It belongs to a direct dialog we are in, and comes from that dialog's peer.
    DirectDialog,
}

impl Trust {
    /// The name in the security report's `auth`.
    pub fn as_str(self) -> &'static str {
        match self {
            Trust::RegistrationFlow => "registration-flow",
            Trust::TrustedHost => "trusted-host",
            Trust::DirectDialog => "direct-dialog",
        }
    }

    /// Whether the request came outside the registration flow (a direct request).
    pub fn is_direct(self) -> bool {
        self != Trust::RegistrationFlow
    }
}

/// Whether a request may reach the user, and why; `None` for a ghost call.
pub(crate) fn trust(
    config: &UaConfig,
    from_proxy: bool,
    source: IpAddr,
    own_direct_dialog: bool,
) -> Option<Trust> {
    if from_proxy {
        Some(Trust::RegistrationFlow)
    } else if config.trusted_hosts.contains(&source) {
        Some(Trust::TrustedHost)
    } else if own_direct_dialog {
        Some(Trust::DirectDialog)
    } else {
        None
    }
}

/// Whether SDES keys may cross a first hop: over TLS always; over anything else only on a
/// direct call under the `[danger] sdes_without_tls` override (`Ok(true)`: allowed, and the
/// call relies on the override). `Err` names why not.
pub(crate) fn sdes_hop(
    config: &UaConfig,
    hop: TransportKind,
    direct: bool,
) -> Result<bool, &'static str> {
    if hop == TransportKind::Tls {
        Ok(false)
    } else if direct && config.sdes_without_tls {
        Ok(true)
    } else {
        Err("SDES keys are never sent or accepted over a non-TLS hop")
    }
}

/// What an offer of ours carries on a call whose first hop is `dest`: the encryption mode,
/// and whether the call relies on the insecure override. Mandatory encryption with no hop
/// SDES may cross refuses the call here, before anything is sent.
pub(crate) fn offer_mode(
    config: &UaConfig,
    dest: &Destination,
    direct: bool,
) -> Result<EncryptionMode, UaError> {
    // ZRTP and DTLS-SRTP need no TLS hop: their keys never travel in the signalling. They
    // are never offered as optional: a peer without them fails the call rather than getting
    // plain media.
    if offers_media_path_keys(config) {
        return Ok(EncryptionMode::Mandatory);
    }
    let sdes_ok = sdes_hop(config, dest.transport, direct).is_ok();
    match (config.encryption, sdes_ok) {
        (Encryption::Mandatory, true) => Ok(EncryptionMode::Mandatory),
        (Encryption::Mandatory, false) if direct => Err(UaError::Policy(format!(
            "media encryption is mandatory and SDES needs TLS: this direct call to {} goes \
             over {}, where the SDES keys would travel in clear text; refused (the insecure \
             override [danger] sdes_without_tls = true allows it)",
            dest.remote,
            dest.transport.as_str()
        ))),
        (Encryption::Mandatory, false) => Err(UaError::Policy(
            "media encryption is mandatory and SDES needs TLS on the first hop".into(),
        )),
        (Encryption::Optional, true) => Ok(EncryptionMode::Optional),
        (Encryption::Optional, false) | (Encryption::None, _) => Ok(EncryptionMode::None),
    }
}

/// Whether an offer that carries SDES keys may be taken from a request that came over `hop`
/// with `trust`.
pub(crate) fn sdes_allowed(config: &UaConfig, hop: TransportKind, trust: Trust) -> bool {
    sdes_hop(config, hop, trust.is_direct()).is_ok()
}

/// The policy offers are answered, and answers checked, with.
pub(crate) fn answer_policy(config: &UaConfig) -> EncryptionPolicy {
    EncryptionPolicy {
        mode: match config.encryption {
            Encryption::Mandatory => EncryptionMode::Mandatory,
            Encryption::Optional => EncryptionMode::Optional,
            Encryption::None => EncryptionMode::None,
        },
        best_effort_sdes: false,
    }
}

/// The URI of a name-addr (`"Bob" <sip:bob@b.example>;tag=x` → `sip:bob@b.example`).
pub(crate) fn party_uri(party: &str) -> String {
    match (party.find('<'), party.find('>')) {
        (Some(a), Some(b)) if a < b => party[a + 1..b].to_owned(),
        _ => party.split(';').next().unwrap_or(party).trim().to_owned(),
    }
}

/// The key exchange our offers use when media is encrypted: the first of `[media] methods`.
fn offered_method(config: &UaConfig) -> Option<KeyExchange> {
    (config.encryption != Encryption::None)
        .then(|| config.methods.first().copied())
        .flatten()
}

/// Whether our offers agree keys on the media path (ZRTP, DTLS-SRTP), not in the SDP.
pub(crate) fn offers_media_path_keys(config: &UaConfig) -> bool {
    matches!(
        offered_method(config),
        Some(KeyExchange::Zrtp | KeyExchange::Dtls)
    )
}

/// A DTLS-SRTP exchange on the agent's certificate; RTCP multiplexed when the peer agrees.
fn dtls_exchange(
    config: &UaConfig,
    provider: &'static CryptoProvider,
) -> Result<Box<dyn MediaKeyExchange>, UaError> {
    let certificate = config
        .dtls_certificate
        .clone()
        .ok_or_else(|| UaError::Policy("no DTLS certificate".into()))?;
    DtlsExchange::new(provider, certificate, SrtpProfile::ALL.to_vec(), true)
        .map(|x| Box::new(x) as Box<dyn MediaKeyExchange>)
        .map_err(|e| UaError::Policy(e.reason))
}

/// A ZRTP exchange for a call with `peer`, on the agent's cache.
fn zrtp_exchange(
    config: &UaConfig,
    provider: &'static CryptoProvider,
    peer: &str,
) -> Result<Box<dyn MediaKeyExchange>, UaError> {
    let mut ssrc = [0u8; 4];
    provider.rng.fill(&mut ssrc).map_err(|_| UaError::Rng)?;
    let mut zc = ZrtpConfig::new(u32::from_be_bytes(ssrc));
    zc.preferences = config.zrtp_preferences.clone();
    zc.peer_uri = Some(peer.to_owned());
    let cache = config
        .zrtp_cache
        .clone()
        .ok_or_else(|| UaError::Policy("no ZRTP cache".into()))?;
    ZrtpExchange::new(provider, zc, cache)
        .map(|x| Box::new(x) as Box<dyn MediaKeyExchange>)
        .map_err(|e| UaError::Policy(e.reason))
}

/// The key exchange of a call we offer to `peer`, for `mode` ([`offer_mode`]): the first of
/// `[media] methods` when encrypting, none for a plain call.
pub(crate) fn offer_key_exchange(
    config: &UaConfig,
    mode: EncryptionMode,
    provider: &'static CryptoProvider,
    peer: &str,
) -> Result<Box<dyn MediaKeyExchange>, UaError> {
    Ok(match (mode, offered_method(config)) {
        (EncryptionMode::None, _) => Box::new(NoKeyExchange),
        (_, Some(KeyExchange::Zrtp)) => zrtp_exchange(config, provider, peer)?,
        (_, Some(KeyExchange::Dtls)) => dtls_exchange(config, provider)?,
        (mode, _) => Box::new(SdesExchange::new(
            SdesSuite::ALL.to_vec(),
            EncryptionPolicy {
                mode,
                best_effort_sdes: false,
            },
        )),
    })
}

/// The key exchange that answers `offer` from `peer`: DTLS-SRTP for a `UDP/TLS/RTP/SAVP`
/// offer when it is one of `[media] methods`; ZRTP when it is one and the offer's audio is
/// `RTP/AVP` (where ZRTP runs; a peer that then sends no ZRTP fails the call, never plain
/// media); SDES otherwise, which also applies the account's policy to plain offers. With one
/// media-path method alone, any other offer is refused by that exchange, with its reason.
pub(crate) fn answer_key_exchange(
    config: &UaConfig,
    offer: &Session,
    provider: &'static CryptoProvider,
    peer: &str,
) -> Result<Box<dyn MediaKeyExchange>, UaError> {
    let audio = offer.media.iter().find(|m| m.kind == "audio");
    let proto = audio.map_or("", |m| m.proto.as_str());
    let avp = matches!(proto, "RTP/AVP" | "RTP/AVPF");
    let dtls_offer = matches!(proto, "UDP/TLS/RTP/SAVP" | "UDP/TLS/RTP/SAVPF");
    let encrypting = config.encryption != Encryption::None;
    let zrtp = encrypting && config.methods.contains(&KeyExchange::Zrtp);
    let dtls = encrypting && config.methods.contains(&KeyExchange::Dtls);
    let sdes = config.methods.contains(&KeyExchange::Sdes);
    if dtls && (dtls_offer || (!sdes && !zrtp)) {
        return dtls_exchange(config, provider);
    }
    if zrtp && (avp || !sdes) {
        return zrtp_exchange(config, provider, peer);
    }
    Ok(Box::new(SdesExchange::new(
        SdesSuite::ALL.to_vec(),
        answer_policy(config),
    )))
}

/// The report of a call: its first hop (`transport`, `tls`), how it was authenticated, and
/// its media protection as it stands; a call keyed by SDES over a non-TLS hop is marked as
/// relying on the insecure override.
pub(crate) fn call_report(
    config: &UaConfig,
    transport: TransportKind,
    tls: Option<&TlsSummary>,
    auth: &str,
    direct: bool,
    protection: &MediaProtection,
) -> SecurityReport {
    let mut report = SecurityReport::new(transport.as_str(), tls, auth, protection).direct(direct);
    if matches!(protection, MediaProtection::Sdes { .. })
        && sdes_hop(config, transport, direct) == Ok(true)
    {
        report = report.sdes_without_tls();
    }
    report
}

/// Whether a change of protection mid-call (a re-INVITE's offer, a key exchange's news) is
/// a downgrade: media that was encrypted would no longer be.
pub(crate) fn is_downgrade(before: &MediaProtection, after: &MediaProtection) -> bool {
    before.is_encrypted() && !after.is_encrypted()
}

/// The protection a re-INVITE's `offer` would give a call protected as `current`, judged by
/// a fresh key exchange of the same kind that accepts plain media; `None` when the offer
/// cannot be answered at all (then it is not a question of encryption).
pub(crate) fn reoffer_protection(
    current: &MediaProtection,
    offer: &Session,
    caps: &LocalCapabilities,
    rng: &dyn SecureRandom,
) -> Option<MediaProtection> {
    let mut probe: Box<dyn MediaKeyExchange> = match current {
        MediaProtection::Sdes { .. } => Box::new(SdesExchange::new(
            SdesSuite::ALL.to_vec(),
            EncryptionPolicy {
                mode: EncryptionMode::Optional,
                best_effort_sdes: false,
            },
        )),
        // Keys agreed on the media path are not re-offered in the SDP.
        _ => return None,
    };
    crate::keying::answer_offer(offer, caps, probe.as_mut(), rng).ok()?;
    Some(probe.protection())
}
