//! From a negotiated stream ([`sotto_sdp::NegotiatedMedia`]) to an RTP stream's settings
//! ([`sotto_media::session::MediaConfig`]): addresses, codec, RTCP multiplexing, latching.
//! Its protection comes from the call's key exchange, through
//! [`sotto_media::call::CallMedia`].

use std::net::{IpAddr, SocketAddr};

use sotto_media::audio::Codec;
use sotto_media::session::MediaConfig;
use sotto_sdp::NegotiatedMedia;

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
}

/// The RTP session settings for a negotiated stream.
/// `encrypted`: whether the call's key exchange encrypts its media.
pub fn media_config(
    neg: &NegotiatedMedia,
    cname: &str,
    encrypted: bool,
) -> Result<MediaConfig, MediaError> {
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
    cfg.latching = encrypted;
    Ok(cfg)
}
