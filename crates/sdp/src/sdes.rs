//! SDES keying (RFC 4568 §7) of offer/answer: the `a=crypto` lines of an offer, the choice
//! among an offer's, the key of our answer, and the keys read back from an answer; each side
//! ends with [`SdesKeys`] (the key it sends with, the key(s) it receives with).
//!
//! Media encryption policy ([`EncryptionPolicy`]):
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
//!
//! [`create_offer`], [`answer`] and [`process_answer`] are whole SDES offer/answer exchanges
//! built on [`crate::negotiate`].

use sotto_crypto::rng::SecureRandom;

use crate::attr::AttributeError;
use crate::attr::crypto::{Crypto, KeyParam, SdesSuite};
use crate::model::{Attribute, Media, Session};
use crate::negotiate::{
    EncryptionMode, EncryptionPolicy, LocalCapabilities, NegotiatedMedia, Refusal, answer_with,
    answered, audio_stream, offer,
};

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
    suites: &[SdesSuite],
    policy: &EncryptionPolicy,
) -> Result<Keying, Refusal> {
    let has_crypto = m.has_attribute("crypto");
    if m.is_savp() {
        if policy.mode == EncryptionMode::None {
            return Err(Refusal::EncryptionDisabled);
        }
        return choose_crypto(m, suites).map(Keying::Sdes);
    }
    // RTP/AVP.
    if has_crypto && policy.best_effort_sdes && policy.mode != EncryptionMode::None {
        match choose_crypto(m, suites) {
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

/// The profile of an offer under `mode`: `RTP/SAVP` when encryption is mandatory, else
/// `RTP/AVP` (keys then offered best effort, or none).
pub fn offer_profile(mode: EncryptionMode) -> &'static str {
    if mode == EncryptionMode::Mandatory {
        "RTP/SAVP"
    } else {
        "RTP/AVP"
    }
}

/// The `a=crypto` lines of an offer: one per suite of `suites` (tags 1, 2, …, each with a
/// fresh key); none when `mode` is `None`. Fails only if the random number generator fails.
pub fn offer_attributes(
    suites: &[SdesSuite],
    mode: EncryptionMode,
    rng: &dyn SecureRandom,
) -> Result<Vec<Attribute>, sotto_crypto::Error> {
    if mode == EncryptionMode::None {
        return Ok(Vec::new());
    }
    let mut out = Vec::with_capacity(suites.len());
    for (i, suite) in suites.iter().enumerate() {
        let key = KeyParam::generate(*suite, rng)?;
        let tag = u32::try_from(i + 1).unwrap_or(u32::MAX);
        out.push(Crypto::new(tag, *suite, key).to_attribute());
    }
    Ok(out)
}

/// The keying of an offered stream `m`, as answerer: our `a=crypto` (a fresh key of our own
/// with the chosen offered tag, RFC 4568 §7.1.2) and the keys, or no line and no keys for a
/// plain stream the policy allows; `Err` for a stream the policy or the offer rules out.
pub fn answer_media(
    m: &Media,
    suites: &[SdesSuite],
    policy: &EncryptionPolicy,
    rng: &dyn SecureRandom,
) -> Result<Option<(Attribute, SdesKeys)>, Refusal> {
    if !is_plain_rtp_proto(m) {
        return Err(Refusal::UnsupportedTransport(m.proto.clone()));
    }
    let Keying::Sdes(offered) = offer_keying(m, suites, policy)? else {
        return Ok(None);
    };
    let suite = offered.check_supported().map_err(Refusal::AnswerCrypto)?;
    let local = KeyParam::generate(suite, rng).map_err(|_| Refusal::Rng)?;
    let mine = Crypto {
        tag: offered.tag,
        suite_name: offered.suite_name.clone(),
        keys: vec![local.clone()],
        session_params: Vec::new(),
    };
    Ok(Some((
        mine.to_attribute(),
        SdesKeys {
            suite,
            tag: offered.tag,
            local,
            remote: offered.keys,
        },
    )))
}

/// The keys of our offered stream `om` from its answer `am`, as offerer: exactly one answered
/// `a=crypto` whose tag and suite match one we offered (the peer's key; ours is read back
/// from the offer). `Ok(None)` for a plain answer the policy allows.
pub fn answered_media(
    om: &Media,
    am: &Media,
    policy: &EncryptionPolicy,
) -> Result<Option<SdesKeys>, Refusal> {
    let answered: Vec<&Attribute> = am.attributes_named("crypto").collect();
    let srtp = if om.has_attribute("crypto") && !answered.is_empty() {
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
    Ok(srtp)
}

/// An offer with one audio stream keyed by SDES under `policy` (see the module documentation).
/// Fails only if the random number generator fails.
pub fn create_offer(
    caps: &LocalCapabilities,
    policy: &EncryptionPolicy,
    rng: &dyn SecureRandom,
) -> Result<Session, sotto_crypto::Error> {
    let keying = offer_attributes(&caps.sdes_suites, policy.mode, rng)?;
    Ok(offer(caps, offer_profile(policy.mode), keying))
}

/// Answers `offer` with SDES keying under `policy`: the answer, the accepted audio stream
/// and its keys (`None`: plain RTP).
pub fn answer(
    offer: &Session,
    caps: &LocalCapabilities,
    policy: &EncryptionPolicy,
    rng: &dyn SecureRandom,
) -> Result<(Session, NegotiatedMedia, Option<SdesKeys>), Refusal> {
    // Keys per offered m= section: with several audio sections the stream chosen is not
    // always the last one keyed (found by the `sdp` fuzz target: the keys of another section
    // were returned for the chosen stream).
    let mut keyed: Vec<(*const Media, SdesKeys)> = Vec::new();
    let mut keying = |_: &Session, m: &Media| {
        Ok(match answer_media(m, &caps.sdes_suites, policy, rng)? {
            Some((attr, k)) => {
                keyed.push((m as *const Media, k));
                vec![attr]
            }
            None => Vec::new(),
        })
    };
    let a = answer_with(offer, caps, &mut keying)?;
    let neg = audio_stream(&a.streams).cloned().ok_or(Refusal::NoAudio)?;
    let chosen = offer.media.get(neg.media_index).map(|m| m as *const Media);
    let keys = keyed
        .into_iter()
        .find(|(m, _)| Some(*m) == chosen)
        .map(|(_, k)| k);
    Ok((a.session, neg, keys))
}

/// Checks the peer's `answer` to our SDES `offer`: the audio stream and its keys (`None`:
/// plain RTP, when `policy` allows it).
pub fn process_answer(
    offer: &Session,
    answer: &Session,
    policy: &EncryptionPolicy,
) -> Result<(NegotiatedMedia, Option<SdesKeys>), Refusal> {
    let streams = answered(offer, answer)?;
    let neg = audio_stream(&streams).cloned().ok_or(Refusal::NoAudio)?;
    let (Some(om), Some(am)) = (
        offer.media.get(neg.media_index),
        answer.media.get(neg.media_index),
    ) else {
        return Err(Refusal::NoAudio);
    };
    let keys = answered_media(om, am, policy)?;
    Ok((neg, keys))
}
