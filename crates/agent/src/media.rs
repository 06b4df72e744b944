//! From a negotiated stream ([`sotto_sdp::NegotiatedMedia`]) to an RTP session
//! ([`sotto_media::session`]): addresses, codec, RTCP multiplexing, and the SRTP protection
//! keyed by the SDES keys (RFC 4568 §6.1: we send with our key, receive with the peer's).

use std::net::{IpAddr, SocketAddr};

use sotto_crypto::CryptoProvider;
use sotto_media::audio::Codec;
use sotto_media::session::{MediaConfig, NoProtection, Protection, SrtpProtection};
use sotto_media::srtp::{SrtpPolicy, SrtpSession, SrtpSuite};
use sotto_sdp::{KeyParam, NegotiatedMedia, SdesKeys};

/// Why media could not be set up from a negotiation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MediaError {
    /// The peer's address is not an IP address.
    #[error("remote media address {0:?} is not an IP address")]
    Address(String),
    /// No G.711 codec was negotiated.
    #[error("no G.711 codec negotiated")]
    Codec,
    /// The SDES suite has no SRTP engine counterpart.
    #[error("SRTP suite {0} not supported by the engine")]
    Suite(&'static str),
    /// The SRTP engine refused the keys.
    #[error("SRTP: {0}")]
    Srtp(#[from] sotto_media::SrtpError),
    /// The peer sent no key.
    #[error("no remote SDES key")]
    NoRemoteKey,
}

/// The RTP session settings for a negotiated stream.
pub fn media_config(neg: &NegotiatedMedia, cname: &str) -> Result<MediaConfig, MediaError> {
    let ip: IpAddr = neg
        .remote_address
        .parse()
        .map_err(|_| MediaError::Address(neg.remote_address.clone()))?;
    let codec = neg
        .codecs
        .iter()
        .find_map(|c| Codec::from_payload_type(c.payload_type))
        .ok_or(MediaError::Codec)?;
    let mut cfg = MediaConfig::to(SocketAddr::new(ip, neg.remote_rtp_port), codec);
    cfg.remote_rtcp = Some(SocketAddr::new(ip, neg.remote_rtcp_port));
    cfg.rtcp_mux = neg.rtcp_mux;
    cfg.telephone_event_pt = neg.telephone_event.as_ref().map(|c| c.payload_type);
    cfg.cname = cname.to_owned();
    // Comedia (latching on the first valid packet) only when packets are authenticated:
    // with SRTP a forged first packet fails authentication and cannot steer our media.
    cfg.latching = neg.srtp.is_some();
    Ok(cfg)
}

fn policy(suite: SrtpSuite, key: &KeyParam) -> SrtpPolicy {
    let p = SrtpPolicy::new(suite, key.master_key.expose(), key.master_salt.expose());
    match key.mki {
        Some(m) => p.with_mki(&m.to_bytes()),
        None => p,
    }
}

/// The SRTP protection for SDES keys.
pub fn srtp_protection(
    provider: &CryptoProvider,
    keys: &SdesKeys,
) -> Result<SrtpProtection, MediaError> {
    let suite =
        SrtpSuite::from_name(keys.suite.name()).ok_or(MediaError::Suite(keys.suite.name()))?;
    let outbound = SrtpSession::new(provider, policy(suite, &keys.local))?;
    let first = keys.remote.first().ok_or(MediaError::NoRemoteKey)?;
    let inbound = SrtpSession::new(provider, policy(suite, first))?;
    Ok(SrtpProtection::new(outbound, inbound))
}

/// The protection step for a negotiated stream: SRTP when keys were agreed, else none.
pub fn protection(
    provider: &CryptoProvider,
    neg: &NegotiatedMedia,
) -> Result<Box<dyn Protection>, MediaError> {
    Ok(match &neg.srtp {
        Some(keys) => Box::new(srtp_protection(provider, keys)?),
        None => Box::new(NoProtection::new()),
    })
}
