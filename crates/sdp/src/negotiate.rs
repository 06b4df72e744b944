//! Offer/answer (RFC 3264) for one audio stream, with SDES keying (RFC 4568 §7) and rtcp-mux
//! (RFC 5761 §5.1.1), as pure functions.
//!
//! - [`create_offer`] builds an offer from [`LocalCapabilities`] and an [`EncryptionPolicy`].
//! - [`answer`] answers a remote offer: the first acceptable audio stream is accepted, every
//!   other stream is rejected with port 0 (RFC 3264 §6). Codecs are intersected keeping the
//!   offerer's payload type numbers and order; telephone-event is kept when both support it at
//!   the same clock rate; the direction is the intersection of both sides' (RFC 3264 §6.1);
//!   rtcp-mux is used when both want it. For SDES, the first offered `a=crypto` that sotto
//!   supports and the capabilities allow is chosen, and the answer carries a fresh key of the
//!   answerer's own with the same tag (RFC 4568 §7.1.2).
//! - [`process_answer`] checks a remote answer against our offer.
//!
//! Both sides end with a [`NegotiatedMedia`]: the remote transport address, the codecs, the
//! direction, and for SRTP the suite plus the key we send with and the key(s) we receive with.
//!
//! Media encryption policy (the `mode` of [`EncryptionPolicy`]):
//! - `Mandatory` (default): offers use `RTP/SAVP` with `a=crypto`; an offer without usable
//!   SRTP is refused ([`Refusal`], which maps to 488 and a Warning text).
//! - `Optional`: offers use `RTP/AVP` with `a=crypto` ("best effort" SRTP: a peer that
//!   understands it encrypts, another one answers in the clear); an `RTP/SAVP` offer is
//!   answered with SRTP, an `RTP/AVP` offer in the clear (or with SRTP if it carries `a=crypto`
//!   and `best_effort_sdes` is set).
//! - `None`: offers use `RTP/AVP` without keys; an `RTP/SAVP` offer is refused.
//!
//! An `a=crypto` on an `RTP/AVP` offer is ignored unless `best_effort_sdes` is set: it is not
//! standard (RFC 4568 defines `a=crypto` for `RTP/SAVP`), so sotto uses it only when asked.

use sotto_crypto::rng::SecureRandom;

use crate::attr::crypto::{Crypto, KeyParam, SdesSuite};
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

/// The SRTP keys of a negotiated stream, for the SRTP engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SdesKeys {
    /// The suite.
    pub suite: SdesSuite,
    /// The `a=crypto` tag both sides used.
    pub tag: u32,
    /// The key we protect outgoing SRTP/SRTCP with (ours).
    pub local: KeyParam,
    /// The key(s) we unprotect incoming packets with (the peer's; several only with MKIs).
    pub remote: Vec<KeyParam>,
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
    /// SDES keys when the stream is SRTP; `None` means plain RTP.
    pub srtp: Option<SdesKeys>,
}

impl NegotiatedMedia {
    /// Whether the media is encrypted.
    pub fn is_encrypted(&self) -> bool {
        self.srtp.is_some()
    }
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
}

impl Refusal {
    /// The SIP status to answer an INVITE with: 488 Not Acceptable Here, or 500 when our
    /// random number generator failed.
    pub fn status_code(&self) -> u16 {
        match self {
            Refusal::Rng => 500,
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
            _ => 399,
        }
    }

    /// The Warning text (the `Display` text).
    pub fn warning_text(&self) -> String {
        self.to_string()
    }
}

fn rtp_profile(enc: bool) -> &'static str {
    if enc { "RTP/SAVP" } else { "RTP/AVP" }
}

/// Builds an offer with one audio stream.
///
/// `Mandatory` offers `RTP/SAVP` with one `a=crypto` per suite of `caps.sdes_suites` (tags
/// 1, 2, …, each with a fresh key); `Optional` offers the same keys on `RTP/AVP`; `None`
/// offers `RTP/AVP` without keys. Fails only if the random number generator fails.
pub fn create_offer(
    caps: &LocalCapabilities,
    policy: &EncryptionPolicy,
    rng: &dyn SecureRandom,
) -> Result<Session, sotto_crypto::Error> {
    let mut s = caps.session();
    let with_keys = policy.mode != EncryptionMode::None && !caps.sdes_suites.is_empty();
    let savp = policy.mode == EncryptionMode::Mandatory;
    let mut m = Media::new("audio", caps.audio_port, rtp_profile(savp));
    let mut codecs = caps.codecs.clone();
    codecs.extend(caps.telephone_event.clone());
    for c in &codecs {
        m.formats.push(c.payload_type.to_string());
    }
    push_codec_attributes(&mut m, &codecs);
    push_common_attributes(&mut m, caps, caps.direction, caps.rtcp_mux);
    if with_keys {
        for (i, suite) in caps.sdes_suites.iter().enumerate() {
            let key = KeyParam::generate(*suite, rng)?;
            let tag = u32::try_from(i + 1).unwrap_or(u32::MAX);
            m.attributes
                .push(Crypto::new(tag, *suite, key).to_attribute());
        }
    }
    s.media.push(m);
    Ok(s)
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

fn is_plain_rtp_proto(m: &Media) -> bool {
    let p = m.proto.to_ascii_uppercase();
    matches!(
        p.as_str(),
        "RTP/AVP" | "RTP/SAVP" | "RTP/AVPF" | "RTP/SAVPF"
    )
}

/// Chooses the first offered `a=crypto` that is supported and allowed by `suites`.
fn choose_crypto(m: &Media, suites: &[SdesSuite]) -> Result<Crypto, Refusal> {
    let mut offered = Vec::new();
    let mut first_error = None;
    for a in m.attributes_named("crypto") {
        if let Some(name) = a.value.as_deref().and_then(|v| v.split_whitespace().nth(1)) {
            offered.push(name.to_owned());
        }
        let res = Crypto::from_attribute(a).and_then(|c| {
            let suite = c.check_supported()?;
            if suites.contains(&suite) {
                Ok(c)
            } else {
                Err(AttributeError::Unsupported {
                    attribute: "crypto",
                    what: format!("crypto suite {} (disabled here)", suite.name()),
                })
            }
        });
        match res {
            Ok(c) => return Ok(c),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    Err(Refusal::NoSupportedCrypto {
        offered: offered.join(","),
        first_error,
    })
}

/// What to do with the offered stream's security.
enum Keying {
    Plain,
    Sdes(Crypto),
}

fn offer_keying(
    m: &Media,
    caps: &LocalCapabilities,
    policy: &EncryptionPolicy,
) -> Result<Keying, Refusal> {
    let has_crypto = m.has_attribute("crypto");
    if m.is_savp() {
        if policy.mode == EncryptionMode::None {
            return Err(Refusal::EncryptionDisabled);
        }
        return choose_crypto(m, &caps.sdes_suites).map(Keying::Sdes);
    }
    // RTP/AVP.
    if has_crypto && policy.best_effort_sdes && policy.mode != EncryptionMode::None {
        match choose_crypto(m, &caps.sdes_suites) {
            Ok(c) => return Ok(Keying::Sdes(c)),
            Err(e) if policy.mode == EncryptionMode::Mandatory => return Err(e),
            Err(_) => return Ok(Keying::Plain),
        }
    }
    if policy.mode == EncryptionMode::Mandatory {
        return Err(Refusal::EncryptionRequired);
    }
    Ok(Keying::Plain)
}

/// Accepts one offered audio section, building the answer section and the negotiation.
fn answer_stream(
    offer: &Session,
    index: usize,
    m: &Media,
    caps: &LocalCapabilities,
    policy: &EncryptionPolicy,
    rng: &dyn SecureRandom,
) -> Result<(Media, NegotiatedMedia), Refusal> {
    if !is_plain_rtp_proto(m) {
        return Err(Refusal::UnsupportedTransport(m.proto.clone()));
    }
    let keying = offer_keying(m, caps, policy)?;
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
    let srtp = match keying {
        Keying::Plain => None,
        Keying::Sdes(offered) => {
            let suite = offered.check_supported().map_err(Refusal::AnswerCrypto)?;
            let local = KeyParam::generate(suite, rng).map_err(|_| Refusal::Rng)?;
            let mine = Crypto {
                tag: offered.tag,
                suite_name: offered.suite_name.clone(),
                keys: vec![local.clone()],
                session_params: Vec::new(),
            };
            out.attributes.push(mine.to_attribute());
            Some(SdesKeys {
                suite,
                tag: offered.tag,
                local,
                remote: offered.keys,
            })
        }
    };
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
        srtp,
    };
    Ok((out, neg))
}

/// A rejected section: port 0, the offered protocol and formats (RFC 3264 §6).
fn rejected(m: &Media) -> Media {
    let mut r = Media::new(&m.kind, 0, &m.proto);
    r.formats = m.formats.clone();
    r
}

/// Answers `offer`. The first acceptable audio stream is accepted; every other stream is
/// rejected with port 0. Refuses (no answer) when no audio stream can be accepted, giving the
/// reason found for the first audio stream.
pub fn answer(
    offer: &Session,
    caps: &LocalCapabilities,
    policy: &EncryptionPolicy,
    rng: &dyn SecureRandom,
) -> Result<(Session, NegotiatedMedia), Refusal> {
    let mut s = caps.session();
    let mut negotiated = None;
    let mut first_refusal = None;
    for (i, m) in offer.media.iter().enumerate() {
        let candidate = negotiated.is_none() && m.kind == "audio" && m.port != 0 && m.is_rtp();
        if candidate {
            match answer_stream(offer, i, m, caps, policy, rng) {
                Ok((out, neg)) => {
                    s.media.push(out);
                    negotiated = Some(neg);
                    continue;
                }
                Err(Refusal::Rng) => return Err(Refusal::Rng),
                Err(e) => {
                    first_refusal.get_or_insert(e);
                }
            }
        }
        s.media.push(rejected(m));
    }
    match negotiated {
        Some(n) => Ok((s, n)),
        None => Err(first_refusal.unwrap_or(Refusal::NoAudio)),
    }
}

/// Checks the peer's `answer` to our `offer` and returns the negotiated audio stream.
///
/// The answer must have as many sections as the offer, answer our audio stream with the same
/// protocol and a subset of our formats, and, for SRTP, carry exactly one `a=crypto` whose tag
/// and suite match one we offered (the peer's key; ours is read back from the offer).
pub fn process_answer(
    offer: &Session,
    answer: &Session,
    policy: &EncryptionPolicy,
) -> Result<NegotiatedMedia, Refusal> {
    if offer.media.len() != answer.media.len() {
        return Err(Refusal::AnswerMismatch("number of m= lines"));
    }
    let (index, om, am) = offer
        .media
        .iter()
        .zip(&answer.media)
        .enumerate()
        .find(|(_, (o, a))| o.kind == "audio" && o.port != 0 && a.port != 0)
        .map(|(i, (o, a))| (i, o, a))
        .ok_or(Refusal::NoAudio)?;
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
    // Security.
    let answered: Vec<&Attribute> = am.attributes_named("crypto").collect();
    let offered_crypto = om.has_attribute("crypto");
    let srtp = if offered_crypto && !answered.is_empty() {
        let [a] = answered.as_slice() else {
            return Err(Refusal::AnswerMismatch("more than one a=crypto"));
        };
        let theirs = Crypto::from_attribute(a).map_err(Refusal::AnswerCrypto)?;
        let suite = theirs.check_supported().map_err(Refusal::AnswerCrypto)?;
        let mine = om
            .attributes_named("crypto")
            .filter_map(|x| Crypto::from_attribute(x).ok())
            .find(|c| c.tag == theirs.tag)
            .ok_or(Refusal::AnswerMismatch("a=crypto tag not offered"))?;
        if mine.suite() != Some(suite) {
            return Err(Refusal::AnswerMismatch(
                "a=crypto suite differs from the offer",
            ));
        }
        let local = mine
            .keys
            .into_iter()
            .next()
            .ok_or(Refusal::AnswerMismatch("offer a=crypto without key"))?;
        Some(SdesKeys {
            suite,
            tag: theirs.tag,
            local,
            remote: theirs.keys,
        })
    } else {
        None
    };
    if srtp.is_none() && (om.is_savp() || policy.mode == EncryptionMode::Mandatory) {
        return Err(Refusal::EncryptionRequired);
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
        srtp,
    })
}
