//! Offer/answer (RFC 3264) of media streams, as pure functions, whatever keys them: the key
//! exchange (SDES in [`crate::sdes`]; ZRTP, DTLS-SRTP) chooses the profile of our offer and
//! the attributes it adds, and decides on each offered stream's keying.
//!
//! - [`offer`] builds an offer with one audio stream from [`LocalCapabilities`], a profile
//!   and the key exchange's attributes.
//! - [`answer_with`] answers a remote offer, one [`StreamOutcome`] per `m=` line: the first
//!   acceptable audio stream is accepted (the key exchange's `keying` decides its attributes,
//!   or refuses it), every other stream is declined with port 0 (RFC 3264 §6; video, until
//!   sotto has it). Codecs are intersected keeping the offerer's payload type numbers and
//!   order; telephone-event is kept when both support it at the same clock rate; the direction
//!   is the intersection of both sides' (RFC 3264 §6.1); rtcp-mux is used when both want it.
//! - [`answered`] checks a remote answer against our offer, one [`StreamOutcome`] per line.
//!
//! Each accepted stream is a [`NegotiatedMedia`]: the remote transport address, the codecs,
//! the direction, and the peer's attributes for the key exchange to read.
//!
//! [`EncryptionPolicy`] is how much encryption the account requires (mandatory by default);
//! the key exchanges apply it.

use crate::attr::crypto::SdesSuite;
use crate::attr::{AttributeError, Direction, Fmtp, Rtcp, Rtpmap, media_direction, parse_pt};
use crate::model::{Attribute, Connection, Media, Origin, Session, Timing};

/// A codec: RTP encoding name, clock rate, channel count, payload type number, fmtp.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Codec {
    /// The payload type: ours in an offer, the offerer's after negotiation.
    pub payload_type: u8,
    /// The encoding name (`PCMU`, `PCMA`, `telephone-event`…), compared case-insensitively.
    pub encoding: String,
    /// The RTP clock rate in Hz.
    pub clock_rate: u32,
    /// The channel count (1 for G.711).
    pub channels: u16,
    /// Format parameters (`a=fmtp`), if any.
    pub fmtp: Option<String>,
}

impl Codec {
    /// G.711 µ-law, static payload type 0.
    pub fn pcmu() -> Self {
        Codec::new(0, "PCMU", 8000)
    }

    /// G.711 A-law, static payload type 8.
    pub fn pcma() -> Self {
        Codec::new(8, "PCMA", 8000)
    }

    /// RFC 4733 telephone events at 8 kHz on `payload_type`, events 0–16.
    pub fn telephone_event(payload_type: u8) -> Self {
        let mut c = Codec::new(payload_type, "telephone-event", 8000);
        c.fmtp = Some("0-16".to_owned());
        c
    }

    /// A mono codec without format parameters.
    pub fn new(payload_type: u8, encoding: &str, clock_rate: u32) -> Self {
        Codec {
            payload_type,
            encoding: encoding.to_owned(),
            clock_rate,
            channels: 1,
            fmtp: None,
        }
    }

    fn matches(&self, other: &Codec) -> bool {
        self.encoding.eq_ignore_ascii_case(&other.encoding)
            && self.clock_rate == other.clock_rate
            && self.channels == other.channels
    }

    fn is_telephone_event(&self) -> bool {
        self.encoding.eq_ignore_ascii_case("telephone-event")
    }

    fn rtpmap(&self) -> Attribute {
        Rtpmap {
            payload_type: self.payload_type,
            encoding: self.encoding.clone(),
            clock_rate: self.clock_rate,
            params: (self.channels != 1).then(|| self.channels.to_string()),
        }
        .to_attribute()
    }
}

/// The static RTP/AVP payload types (RFC 3551 §6) that may appear without `a=rtpmap`.
fn static_codec(pt: u8) -> Option<Codec> {
    let (name, rate) = match pt {
        0 => ("PCMU", 8000),
        3 => ("GSM", 8000),
        4 => ("G723", 8000),
        8 => ("PCMA", 8000),
        9 => ("G722", 8000),
        18 => ("G729", 8000),
        _ => return None,
    };
    Some(Codec::new(pt, name, rate))
}

/// What this side can do, for offers and answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalCapabilities {
    /// `o=` user name (`-` if none).
    pub username: String,
    /// `o=` session id (decimal digits).
    pub session_id: String,
    /// `o=` session version.
    pub session_version: u64,
    /// `s=` session name.
    pub session_name: String,
    /// Our media (and origin) address.
    pub address: String,
    /// Our RTP port for audio.
    pub audio_port: u16,
    /// Audio codecs, in order of preference, with the payload types to offer.
    pub codecs: Vec<Codec>,
    /// Telephone events (RFC 4733), if supported.
    pub telephone_event: Option<Codec>,
    /// Packetization time to announce, in milliseconds.
    pub ptime: Option<u32>,
    /// The direction we want.
    pub direction: Direction,
    /// Whether to offer/accept RTP/RTCP multiplexing (RFC 5761).
    pub rtcp_mux: bool,
    /// SDES suites to offer, in order, and the only ones accepted in offers and answers.
    pub sdes_suites: Vec<SdesSuite>,
}

impl LocalCapabilities {
    /// PCMU, PCMA and telephone-event (PT 101), `sendrecv`, 20 ms, rtcp-mux, every SDES suite
    /// of [`SdesSuite::ALL`].
    pub fn new(address: &str, audio_port: u16) -> Self {
        LocalCapabilities {
            username: "-".to_owned(),
            session_id: "0".to_owned(),
            session_version: 0,
            session_name: "-".to_owned(),
            address: address.to_owned(),
            audio_port,
            codecs: vec![Codec::pcmu(), Codec::pcma()],
            telephone_event: Some(Codec::telephone_event(101)),
            ptime: Some(20),
            direction: Direction::SendRecv,
            rtcp_mux: true,
            sdes_suites: SdesSuite::ALL.to_vec(),
        }
    }

    fn origin(&self) -> Origin {
        let c = Connection::new_ip(&self.address);
        Origin {
            username: self.username.clone(),
            session_id: self.session_id.clone(),
            session_version: self.session_version,
            net_type: c.net_type,
            addr_type: c.addr_type,
            address: c.address,
        }
    }

    fn session(&self) -> Session {
        Session {
            origin: self.origin(),
            name: self.session_name.clone(),
            info: None,
            uri: None,
            emails: Vec::new(),
            phones: Vec::new(),
            connection: Some(Connection::new_ip(&self.address)),
            bandwidths: Vec::new(),
            times: vec![Timing {
                start: 0,
                stop: 0,
                repeats: Vec::new(),
            }],
            time_zones: None,
            key: None,
            attributes: Vec::new(),
            media: Vec::new(),
        }
    }
}

/// How much media encryption is required.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum EncryptionMode {
    /// SRTP or no call (the default).
    #[default]
    Mandatory,
    /// SRTP when the peer supports it, otherwise RTP.
    Optional,
    /// RTP only; SRTP offers are refused.
    None,
}

/// The media encryption policy. `Default` is the secure choice: mandatory, no best effort.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct EncryptionPolicy {
    /// How much encryption is required.
    pub mode: EncryptionMode,
    /// Honour `a=crypto` on an `RTP/AVP` offer ("best effort" SRTP). Off by default.
    pub best_effort_sdes: bool,
}

/// The outcome of offer/answer for the audio stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NegotiatedMedia {
    /// The index of the `m=` section.
    pub media_index: usize,
    /// The peer's media address (`c=`), without `/ttl`.
    pub remote_address: String,
    /// The peer's RTP port.
    pub remote_rtp_port: u16,
    /// The peer's RTCP port (`a=rtcp`, else RTP port + 1; equal to the RTP port with mux).
    pub remote_rtcp_port: u16,
    /// Whether RTP and RTCP share one port (RFC 5761).
    pub rtcp_mux: bool,
    /// The negotiated audio codecs with the offerer's payload types, in the answer's order:
    /// the first is the one to send.
    pub codecs: Vec<Codec>,
    /// Telephone events, if both support them.
    pub telephone_event: Option<Codec>,
    /// Our direction (whether we send and/or receive).
    pub direction: Direction,
    /// The peer's `a=ptime`, if any.
    pub remote_ptime: Option<u32>,
    /// The transport protocol of the stream (`RTP/SAVP`, `RTP/AVP`, `UDP/TLS/RTP/SAVP`).
    pub profile: String,
    /// The peer's attributes for the stream (its media-level ones, then the session-level
    /// ones), for the key exchange (`a=crypto`, `a=zrtp-hash`, `a=fingerprint`...).
    pub remote_attributes: Vec<Attribute>,
}

/// What became of one `m=` line of an offer or answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StreamOutcome {
    /// Accepted: its negotiated parameters.
    Accepted(NegotiatedMedia),
    /// Declined (port 0): its media type and, when we refused it for a reason, why.
    Declined {
        /// The index of the `m=` section.
        index: usize,
        /// Its media type (`audio`, `video`...).
        kind: String,
        /// Why, when it was an audio stream we could not take.
        refusal: Option<Refusal>,
    },
}

impl StreamOutcome {
    /// The negotiated stream, when accepted.
    pub fn accepted(&self) -> Option<&NegotiatedMedia> {
        match self {
            StreamOutcome::Accepted(n) => Some(n),
            StreamOutcome::Declined { .. } => None,
        }
    }
}

/// The accepted audio stream of a set of outcomes (the first one).
pub fn audio_stream(streams: &[StreamOutcome]) -> Option<&NegotiatedMedia> {
    streams.iter().find_map(StreamOutcome::accepted)
}

/// Why an offer (or an answer) was refused. Each reason maps to a SIP status and a Warning
/// (RFC 3261 §20.43) through [`Refusal::status_code`], [`Refusal::warning_code`] and its
/// `Display` text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// No audio stream over RTP was offered.
    #[error("no audio stream over RTP offered")]
    NoAudio,
    /// The transport protocol is not supported (e.g. `UDP/TLS/RTP/SAVP` before DTLS-SRTP).
    #[error("transport protocol {0} not supported")]
    UnsupportedTransport(String),
    /// No codec in common.
    #[error("no common audio codec")]
    NoCommonCodec,
    /// Encryption is mandatory and the offer (or answer) has no SRTP.
    #[error("media encryption is mandatory: the peer offered no SRTP")]
    EncryptionRequired,
    /// SRTP was offered and this side's policy disables media encryption.
    #[error("SRTP offered but media encryption is disabled here")]
    EncryptionDisabled,
    /// SRTP was offered but no `a=crypto` is usable; names the offered suites and the first
    /// problem found.
    #[error("no supported SDES crypto suite offered (offered: {offered}){}", first_error.as_ref().map(|e| format!("; {e}")).unwrap_or_default())]
    NoSupportedCrypto {
        /// The offered suite names, comma-separated.
        offered: String,
        /// The first unsupported or malformed parameter found, if any.
        first_error: Option<AttributeError>,
    },
    /// The answer does not match the offer (m-line count, formats, protocol, tag…).
    #[error("answer does not match the offer: {0}")]
    AnswerMismatch(&'static str),
    /// The answer's `a=crypto` is unusable.
    #[error("answer a=crypto unusable: {0}")]
    AnswerCrypto(AttributeError),
    /// Generating our key failed (the random number generator).
    #[error("random number generator failed")]
    Rng,
    /// The stream's key exchange refused it (its own status, Warning code and reason).
    #[error("{reason}")]
    KeyExchange {
        /// The SIP status owed.
        status: u16,
        /// The Warning code.
        warning_code: u16,
        /// Why.
        reason: String,
    },
}

impl Refusal {
    /// The SIP status to answer an INVITE with: 488 Not Acceptable Here, or 500 when our
    /// random number generator failed.
    pub fn status_code(&self) -> u16 {
        match self {
            Refusal::Rng => 500,
            Refusal::KeyExchange { status, .. } => *status,
            _ => 488,
        }
    }

    /// The Warning code (RFC 3261 §20.43): 302 incompatible transport, 304 media type not
    /// available, 305 incompatible media format, 306 attribute not understood, 399 otherwise.
    pub fn warning_code(&self) -> u16 {
        match self {
            Refusal::NoAudio => 304,
            Refusal::UnsupportedTransport(_) => 302,
            Refusal::NoCommonCodec => 305,
            Refusal::NoSupportedCrypto { .. } | Refusal::AnswerCrypto(_) => 306,
            Refusal::KeyExchange { warning_code, .. } => *warning_code,
            _ => 399,
        }
    }

    /// The Warning text (the `Display` text).
    pub fn warning_text(&self) -> String {
        self.to_string()
    }
}

/// Builds an offer with one audio stream on `profile` (the key exchange's: `RTP/SAVP` for
/// SDES, `RTP/AVP` for ZRTP or no encryption), carrying the key exchange's `keying`
/// attributes after ours.
pub fn offer(caps: &LocalCapabilities, profile: &str, keying: Vec<Attribute>) -> Session {
    let mut s = caps.session();
    let mut m = Media::new("audio", caps.audio_port, profile);
    let mut codecs = caps.codecs.clone();
    codecs.extend(caps.telephone_event.clone());
    for c in &codecs {
        m.formats.push(c.payload_type.to_string());
    }
    push_codec_attributes(&mut m, &codecs);
    push_common_attributes(&mut m, caps, caps.direction, caps.rtcp_mux);
    m.attributes.extend(keying);
    s.media.push(m);
    s
}

fn push_codec_attributes(m: &mut Media, codecs: &[Codec]) {
    for c in codecs {
        m.attributes.push(c.rtpmap());
        if let Some(f) = &c.fmtp {
            m.attributes.push(
                Fmtp {
                    format: c.payload_type.to_string(),
                    params: f.clone(),
                }
                .to_attribute(),
            );
        }
    }
}

fn push_common_attributes(m: &mut Media, caps: &LocalCapabilities, dir: Direction, mux: bool) {
    if let Some(p) = caps.ptime {
        m.attributes.push(Attribute::new("ptime", p.to_string()));
    }
    m.attributes.push(dir.to_attribute());
    if mux {
        m.attributes.push(Attribute::property("rtcp-mux"));
    }
}

/// The codecs of a media section, in format order (formats that are not valid payload types
/// or have no known mapping are skipped).
fn media_codecs(m: &Media) -> Vec<Codec> {
    let rtpmaps: Vec<Rtpmap> = m
        .attributes_named("rtpmap")
        .filter_map(|a| Rtpmap::from_attribute(a).ok())
        .collect();
    let fmtps: Vec<Fmtp> = m
        .attributes_named("fmtp")
        .filter_map(|a| Fmtp::from_attribute(a).ok())
        .collect();
    let mut out = Vec::new();
    for f in &m.formats {
        let Some(pt) = parse_pt(f) else { continue };
        let codec = match rtpmaps.iter().find(|r| r.payload_type == pt) {
            Some(r) => Some(Codec {
                payload_type: pt,
                encoding: r.encoding.clone(),
                clock_rate: r.clock_rate,
                channels: r.channels(),
                fmtp: None,
            }),
            None => static_codec(pt),
        };
        if let Some(mut c) = codec {
            c.fmtp = fmtps
                .iter()
                .find(|x| x.format == *f)
                .map(|x| x.params.clone());
            out.push(c);
        }
    }
    out
}

fn remote_ptime(m: &Media) -> Option<u32> {
    m.attribute("ptime")
        .and_then(|a| a.value.as_deref())
        .and_then(|v| crate::attr::parse_ptime(v).ok())
}

fn remote_rtcp_port(m: &Media, mux: bool) -> u16 {
    if mux {
        return m.port;
    }
    m.attribute("rtcp")
        .and_then(|a| Rtcp::from_attribute(a).ok())
        .map(|r| r.port)
        .unwrap_or_else(|| m.port.saturating_add(1))
}

/// The key exchange's decision on an offered stream: the attributes our answer adds, or why
/// the stream is refused.
pub type Keying<'a> = dyn FnMut(&Session, &Media) -> Result<Vec<Attribute>, Refusal> + 'a;

/// The peer's attributes of stream `m` of `s`: media-level, then session-level.
fn remote_attributes(s: &Session, m: &Media) -> Vec<Attribute> {
    m.attributes
        .iter()
        .chain(s.attributes.iter())
        .cloned()
        .collect()
}

/// Accepts one offered audio section, building the answer section and the negotiation.
fn answer_stream(
    offer: &Session,
    index: usize,
    m: &Media,
    caps: &LocalCapabilities,
    keying: &mut Keying<'_>,
) -> Result<(Media, NegotiatedMedia), Refusal> {
    let key_attributes = keying(offer, m)?;
    // Codec intersection, keeping the offerer's payload types and order.
    let offered = media_codecs(m);
    let mut codecs = Vec::new();
    let mut te = None;
    for c in &offered {
        if c.is_telephone_event() {
            if te.is_none() && caps.telephone_event.as_ref().is_some_and(|l| l.matches(c)) {
                let mut t = c.clone();
                t.fmtp = caps.telephone_event.as_ref().and_then(|l| l.fmtp.clone());
                te = Some(t);
            }
        } else if caps.codecs.iter().any(|l| l.matches(c)) {
            codecs.push(c.clone());
        }
    }
    if codecs.is_empty() {
        return Err(Refusal::NoCommonCodec);
    }
    let remote_address = offer
        .connection_for(index)
        .map(|c| c.base_address().to_owned())
        .ok_or(Refusal::AnswerMismatch("no c= for the offered stream"))?;
    let offered_dir = media_direction(&offer.attributes, &m.attributes);
    let dir = Direction::from_flags(
        offered_dir.receives() && caps.direction.sends(),
        offered_dir.sends() && caps.direction.receives(),
    );
    let mux = caps.rtcp_mux && m.has_attribute("rtcp-mux");

    let mut out = Media::new(&m.kind, caps.audio_port, &m.proto);
    let mut all = codecs.clone();
    all.extend(te.clone());
    for c in &all {
        out.formats.push(c.payload_type.to_string());
    }
    push_codec_attributes(&mut out, &all);
    push_common_attributes(&mut out, caps, dir, mux);
    out.attributes.extend(key_attributes);
    let neg = NegotiatedMedia {
        media_index: index,
        remote_address,
        remote_rtp_port: m.port,
        remote_rtcp_port: remote_rtcp_port(m, mux),
        rtcp_mux: mux,
        codecs,
        telephone_event: te,
        direction: dir,
        remote_ptime: remote_ptime(m),
        profile: m.proto.clone(),
        remote_attributes: remote_attributes(offer, m),
    };
    Ok((out, neg))
}

/// A rejected section: port 0, the offered protocol and formats (RFC 3264 §6).
fn rejected(m: &Media) -> Media {
    let mut r = Media::new(&m.kind, 0, &m.proto);
    r.formats = m.formats.clone();
    r
}

/// An answer and what became of each offered stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// The answer to send.
    pub session: Session,
    /// One outcome per offered `m=` line, in order.
    pub streams: Vec<StreamOutcome>,
}

/// Answers `offer`. The first acceptable audio stream is accepted (`keying` decides its key
/// exchange); every other stream is declined with port 0. Refuses (no answer) when no audio
/// stream can be accepted, giving the reason found for the first audio stream.
pub fn answer_with(
    offer: &Session,
    caps: &LocalCapabilities,
    keying: &mut Keying<'_>,
) -> Result<Answer, Refusal> {
    let mut s = caps.session();
    let mut streams = Vec::with_capacity(offer.media.len());
    let mut accepted = false;
    let mut first_refusal = None;
    for (i, m) in offer.media.iter().enumerate() {
        let candidate = !accepted && m.kind == "audio" && m.port != 0 && m.is_rtp();
        let mut refusal = None;
        if candidate {
            match answer_stream(offer, i, m, caps, keying) {
                Ok((out, neg)) => {
                    s.media.push(out);
                    streams.push(StreamOutcome::Accepted(neg));
                    accepted = true;
                    continue;
                }
                Err(Refusal::Rng) => return Err(Refusal::Rng),
                Err(e) => {
                    first_refusal.get_or_insert(e.clone());
                    refusal = Some(e);
                }
            }
        }
        s.media.push(rejected(m));
        streams.push(StreamOutcome::Declined {
            index: i,
            kind: m.kind.clone(),
            refusal,
        });
    }
    if !accepted {
        return Err(first_refusal.unwrap_or(Refusal::NoAudio));
    }
    Ok(Answer {
        session: s,
        streams,
    })
}

/// Checks the peer's `answer` to our `offer`: as many sections as the offer, our audio stream
/// answered with the same protocol and a subset of our formats; one outcome per `m=` line.
/// The keying of the answered stream is the key exchange's to check
/// ([`NegotiatedMedia::remote_attributes`]).
pub fn answered(offer: &Session, answer: &Session) -> Result<Vec<StreamOutcome>, Refusal> {
    if offer.media.len() != answer.media.len() {
        return Err(Refusal::AnswerMismatch("number of m= lines"));
    }
    let audio = offer
        .media
        .iter()
        .zip(&answer.media)
        .position(|(o, a)| o.kind == "audio" && o.port != 0 && a.port != 0)
        .ok_or(Refusal::NoAudio)?;
    let mut streams = Vec::with_capacity(offer.media.len());
    for (index, (om, am)) in offer.media.iter().zip(&answer.media).enumerate() {
        if index != audio {
            streams.push(StreamOutcome::Declined {
                index,
                kind: om.kind.clone(),
                refusal: None,
            });
            continue;
        }
        streams.push(StreamOutcome::Accepted(answered_stream(
            offer, answer, index, om, am,
        )?));
    }
    Ok(streams)
}

fn answered_stream(
    offer: &Session,
    answer: &Session,
    index: usize,
    om: &Media,
    am: &Media,
) -> Result<NegotiatedMedia, Refusal> {
    if !am.kind.eq_ignore_ascii_case(&om.kind) {
        return Err(Refusal::AnswerMismatch("media type"));
    }
    if !am.proto.eq_ignore_ascii_case(&om.proto) {
        return Err(Refusal::AnswerMismatch("transport protocol"));
    }
    // Codecs: answered formats must be among ours; the mapping is the one we offered.
    let ours = media_codecs(om);
    let mut codecs = Vec::new();
    let mut te = None;
    for f in &am.formats {
        let pt = parse_pt(f).ok_or(Refusal::AnswerMismatch("format"))?;
        let c = ours
            .iter()
            .find(|c| c.payload_type == pt)
            .ok_or(Refusal::AnswerMismatch("format not offered"))?;
        if c.is_telephone_event() {
            te.get_or_insert_with(|| c.clone());
        } else {
            codecs.push(c.clone());
        }
    }
    if codecs.is_empty() {
        return Err(Refusal::NoCommonCodec);
    }
    let remote_address = answer
        .connection_for(index)
        .map(|c| c.base_address().to_owned())
        .ok_or(Refusal::AnswerMismatch("no c= for the answered stream"))?;
    let offered_dir = media_direction(&offer.attributes, &om.attributes);
    let answered_dir = media_direction(&answer.attributes, &am.attributes);
    let direction = Direction::from_flags(
        offered_dir.sends() && answered_dir.receives(),
        offered_dir.receives() && answered_dir.sends(),
    );
    let mux = om.has_attribute("rtcp-mux") && am.has_attribute("rtcp-mux");
    Ok(NegotiatedMedia {
        media_index: index,
        remote_address,
        remote_rtp_port: am.port,
        remote_rtcp_port: remote_rtcp_port(am, mux),
        rtcp_mux: mux,
        codecs,
        telephone_event: te,
        direction,
        remote_ptime: remote_ptime(am),
        profile: am.proto.clone(),
        remote_attributes: remote_attributes(answer, am),
    })
}
