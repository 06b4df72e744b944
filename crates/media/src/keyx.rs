//! The seam between a call's media and the way its SRTP keys are agreed: SDES (RFC 4568,
//! keys in the SDP), ZRTP (RFC 6189, Diffie-Hellman on the media path and a SAS), DTLS-SRTP
//! (RFC 5763/5764, a handshake on the media path checked against SDP fingerprints).
//!
//! A [`MediaKeyExchange`] says what it puts in our SDP and what it makes of the peer's (as
//! plain [`SdpAttribute`]s: the SDP crate is not a dependency of this core), exchanges its
//! own packets on the media path (demultiplexed by [`crate::call::CallMedia`], RFC 7983), runs
//! its own timers, and reports through [`KeyExchangeEvent`]s: keys ready for each direction,
//! the protection as it stands (a SAS shown, then verified), or a failure with its reason.
//! The call and its media use whichever they are given without knowing which it is.

use std::time::Instant;

use sotto_crypto::rng::SecureRandom;

use crate::session::Channel;
use crate::srtp::SrtpPolicy;

/// One SDP attribute line: `a=<name>[:<value>]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdpAttribute {
    /// The name (`crypto`, `zrtp-hash`, `fingerprint`, `setup`...).
    pub name: String,
    /// The value, if any.
    pub value: Option<String>,
}

impl SdpAttribute {
    /// `a=<name>:<value>`.
    pub fn new(name: &str, value: impl Into<String>) -> Self {
        SdpAttribute {
            name: name.to_owned(),
            value: Some(value.into()),
        }
    }
}

/// The peer's side of one stream, as its SDP put it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteMedia<'a> {
    /// The transport protocol of its `m=` line (`RTP/SAVP`, `RTP/AVP`, `UDP/TLS/RTP/SAVP`).
    pub profile: &'a str,
    /// Its attributes (media-level, then session-level).
    pub attributes: &'a [SdpAttribute],
}

/// Which kind of key exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyMethod {
    /// No key exchange: plain RTP (only where the account allows it).
    None,
    /// SDP security descriptions (RFC 4568).
    Sdes,
    /// ZRTP (RFC 6189).
    Zrtp,
    /// DTLS-SRTP (RFC 5763, RFC 5764).
    Dtls,
}

/// How a call's media is protected, as it stands. The security report is rendered from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaProtection {
    /// Plain RTP.
    None,
    /// SRTP keyed by SDES: the keys crossed every proxy on the path.
    Sdes {
        /// The SRTP suite.
        suite: String,
    },
    /// SRTP keyed by ZRTP.
    Zrtp {
        /// The SRTP suite, once keys are agreed.
        suite: Option<String>,
        /// The short authentication string, once computed.
        sas: Option<String>,
        /// Whether the users confirmed the SAS (now or on an earlier call).
        verified: bool,
        /// The negotiated algorithms and the cache status, once known.
        details: Option<Box<ZrtpDetails>>,
    },
    /// SRTP keyed by DTLS-SRTP.
    Dtls {
        /// The negotiated SRTP profile, once the handshake is done.
        profile: Option<String>,
        /// Whether the peer's certificate matched the fingerprint of its SDP.
        fingerprint_verified: bool,
        /// The handshake's particulars, once done.
        details: Option<Box<DtlsDetails>>,
    },
}

impl MediaProtection {
    /// Whether media is (to be) encrypted.
    pub fn is_encrypted(&self) -> bool {
        !matches!(self, MediaProtection::None)
    }

    /// The name in reports: `none`, `srtp-sdes`, `zrtp`, `dtls-srtp`.
    pub fn name(&self) -> &'static str {
        match self {
            MediaProtection::None => "none",
            MediaProtection::Sdes { .. } => "srtp-sdes",
            MediaProtection::Zrtp { .. } => "zrtp",
            MediaProtection::Dtls { .. } => "dtls-srtp",
        }
    }

    /// The SRTP suite or profile, when known.
    pub fn suite(&self) -> Option<&str> {
        match self {
            MediaProtection::None => None,
            MediaProtection::Sdes { suite } => Some(suite),
            MediaProtection::Zrtp { suite, .. } => suite.as_deref(),
            MediaProtection::Dtls { profile, .. } => profile.as_deref(),
        }
    }
}

/// What a ZRTP exchange agreed, for the security report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZrtpDetails {
    /// Key agreement (`X255`, `X448`, `DH3k`...).
    pub key_agreement: String,
    /// Cipher (`AES1`, `AES3`).
    pub cipher: String,
    /// Hash (`S256`, `S384`).
    pub hash: String,
    /// SRTP authentication tag (`HS80`, `HS32`).
    pub auth_tag: String,
    /// SAS rendering (`B32`, `B256`).
    pub sas_type: String,
    /// The key-continuity cache: `new` (first call), `match`, `mismatch` (the peer is
    /// unsafe until the SAS is compared again).
    pub cache: String,
    /// The peer's ZID, hex.
    pub peer_zid: String,
    /// The peer's ZRTP client identifier.
    pub peer_client: String,
}

/// What a DTLS-SRTP handshake agreed, for the security report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DtlsDetails {
    /// The TLS cipher suite of the handshake.
    pub cipher: String,
    /// Our side: `client` (`a=setup:active`) or `server`.
    pub role: String,
    /// The peer certificate's SHA-256 fingerprint, as SDP writes it.
    pub peer_fingerprint: String,
    /// Handshakes run: 1 (RTCP multiplexed) or 2 (one on the RTCP port too).
    pub handshakes: usize,
}

/// The SRTP keys a key exchange agreed: one policy per direction.
#[derive(Debug, Clone)]
pub struct SrtpKeys {
    /// What we send is protected with this.
    pub outbound: SrtpPolicy,
    /// What the peer sends is unprotected with this.
    pub inbound: SrtpPolicy,
    /// RTCP's own keys, when its port agreed them apart (DTLS-SRTP without rtcp-mux runs a
    /// handshake per port, RFC 5764 §4.1); `None`: RTCP uses the keys above.
    pub rtcp: Option<Box<RtcpKeys>>,
}

/// SRTCP keys agreed apart from SRTP's.
#[derive(Debug, Clone)]
pub struct RtcpKeys {
    /// What we send.
    pub outbound: SrtpPolicy,
    /// What the peer sends.
    pub inbound: SrtpPolicy,
}

/// What a key exchange reports.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum KeyExchangeEvent {
    /// Keys for both directions: media may flow protected.
    KeysReady(SrtpKeys),
    /// The protection changed (a SAS shown, then verified; a handshake finished).
    Protection(MediaProtection),
    /// The exchange failed: no media may flow (mandatory encryption), and why.
    Failed {
        /// What went wrong, for the user.
        reason: String,
    },
}

/// Why our SDP or the peer's cannot be used; a stream refused this way is answered 488 with
/// a Warning carrying `warning_code` (RFC 3261 §20.43) and `reason`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct KeyExchangeError {
    /// The SIP status owed (488, or 500 when our random number generator failed).
    pub status: u16,
    /// The Warning code.
    pub warning_code: u16,
    /// What is wrong.
    pub reason: String,
}

/// A way of agreeing a call's SRTP keys; see the [module documentation](self). Driven like
/// the other sans-IO engines: `handle_*` in, `poll_*` out, [`MediaKeyExchange::poll_timeout`]
/// for its one timer.
pub trait MediaKeyExchange: Send + std::fmt::Debug {
    /// Which kind it is.
    fn method(&self) -> KeyMethod;

    /// The transport protocol of our `m=` line (`RTP/SAVP` for SDES, `RTP/AVP` for ZRTP or
    /// plain RTP, `UDP/TLS/RTP/SAVP` for DTLS-SRTP).
    fn profile(&self) -> &'static str;

    /// The attributes of our offer.
    fn offer(&mut self, rng: &dyn SecureRandom) -> Result<Vec<SdpAttribute>, KeyExchangeError>;

    /// As answerer: the attributes of our answer to the peer's offered stream, or why it
    /// cannot be taken.
    fn answer(
        &mut self,
        offered: RemoteMedia<'_>,
        rng: &dyn SecureRandom,
    ) -> Result<Vec<SdpAttribute>, KeyExchangeError>;

    /// As offerer: the peer's answer to our offer.
    fn answered(&mut self, answer: RemoteMedia<'_>) -> Result<(), KeyExchangeError>;

    /// The protection as it stands.
    fn protection(&self) -> MediaProtection;

    /// A packet of this exchange received on the media path (ZRTP, DTLS; SDES has none), on
    /// the stream's RTP port or its separate RTCP port.
    fn handle_packet(&mut self, _now: Instant, _channel: Channel, _packet: &[u8]) {}

    /// The next packet of this exchange to send on the media path, written into `buf`;
    /// returns its length and the port it leaves from (and goes to).
    fn poll_transmit(&mut self, _now: Instant, _buf: &mut [u8]) -> Option<(usize, Channel)> {
        None
    }

    /// When [`MediaKeyExchange::handle_timeout`] is due (retransmissions).
    fn poll_timeout(&self) -> Option<Instant> {
        None
    }

    /// Fires the exchange's timers.
    fn handle_timeout(&mut self, _now: Instant) {}

    /// The users confirmed (`true`) or rejected the SAS (ZRTP; others ignore it). The new
    /// protection follows as an event.
    fn set_sas_verified(&mut self, _verified: bool) {}

    /// The next event.
    fn poll_event(&mut self) -> Option<KeyExchangeEvent>;
}

/// The exchange of a plain call (no encryption, where the account allows it): no attributes,
/// no keys, protection `None`.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoKeyExchange;

impl MediaKeyExchange for NoKeyExchange {
    fn method(&self) -> KeyMethod {
        KeyMethod::None
    }

    fn profile(&self) -> &'static str {
        "RTP/AVP"
    }

    fn offer(&mut self, _rng: &dyn SecureRandom) -> Result<Vec<SdpAttribute>, KeyExchangeError> {
        Ok(Vec::new())
    }

    fn answer(
        &mut self,
        _offered: RemoteMedia<'_>,
        _rng: &dyn SecureRandom,
    ) -> Result<Vec<SdpAttribute>, KeyExchangeError> {
        Ok(Vec::new())
    }

    fn answered(&mut self, _answer: RemoteMedia<'_>) -> Result<(), KeyExchangeError> {
        Ok(())
    }

    fn protection(&self) -> MediaProtection {
        MediaProtection::None
    }

    fn poll_event(&mut self) -> Option<KeyExchangeEvent> {
        None
    }
}
