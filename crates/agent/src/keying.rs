//! Offer/answer (`sotto-sdp`) with the call's key exchange ([`MediaKeyExchange`]): the SDP
//! crate builds and checks the media lines, the key exchange owns its attributes. The call
//! logic goes through these three functions and never learns which key exchange it has.

use sotto_crypto::rng::SecureRandom;
use sotto_media::keyx::{KeyExchangeError, MediaKeyExchange, RemoteMedia, SdpAttribute};
use sotto_sdp::{Attribute, LocalCapabilities, Media, NegotiatedMedia, Refusal, Session};

/// Attributes from the key exchange's form to the SDP crate's.
pub(crate) fn to_sdp(a: &[SdpAttribute]) -> Vec<Attribute> {
    a.iter()
        .map(|x| Attribute {
            name: x.name.clone(),
            value: x.value.clone(),
        })
        .collect()
}

/// Attributes from the SDP crate's form to the key exchange's.
pub(crate) fn from_sdp(a: &[Attribute]) -> Vec<SdpAttribute> {
    a.iter()
        .map(|x| SdpAttribute {
            name: x.name.clone(),
            value: x.value.clone(),
        })
        .collect()
}

/// A key exchange's refusal as an offer/answer refusal (same status, Warning and reason).
pub(crate) fn refusal(e: KeyExchangeError) -> Refusal {
    Refusal::KeyExchange {
        status: e.status,
        warning_code: e.warning_code,
        reason: e.reason,
    }
}

/// Our offer: one audio stream keyed by `keyx`.
pub(crate) fn create_offer(
    caps: &LocalCapabilities,
    keyx: &mut dyn MediaKeyExchange,
    rng: &dyn SecureRandom,
) -> Result<Session, KeyExchangeError> {
    let attrs = keyx.offer(rng)?;
    Ok(sotto_sdp::offer(caps, keyx.profile(), to_sdp(&attrs)))
}

/// Our answer to `offer`, its audio stream keyed by `keyx`; or why the offer is refused.
pub(crate) fn answer_offer(
    offer: &Session,
    caps: &LocalCapabilities,
    keyx: &mut dyn MediaKeyExchange,
    rng: &dyn SecureRandom,
) -> Result<(Session, NegotiatedMedia), Refusal> {
    let mut keying = |s: &Session, m: &Media| {
        let remote: Vec<SdpAttribute> = from_sdp(&m.attributes)
            .into_iter()
            .chain(from_sdp(&s.attributes))
            .collect();
        let attrs = keyx
            .answer(
                RemoteMedia {
                    profile: &m.proto,
                    attributes: &remote,
                },
                rng,
            )
            .map_err(refusal)?;
        Ok(to_sdp(&attrs))
    };
    let a = sotto_sdp::answer_with(offer, caps, &mut keying)?;
    let neg = sotto_sdp::audio_stream(&a.streams)
        .cloned()
        .ok_or(Refusal::NoAudio)?;
    Ok((a.session, neg))
}

/// Checks the peer's `answer` to our `offer`: the media lines here, the keying by `keyx`.
pub(crate) fn check_answer(
    offer: &Session,
    answer: &Session,
    keyx: &mut dyn MediaKeyExchange,
) -> Result<NegotiatedMedia, Refusal> {
    let streams = sotto_sdp::answered(offer, answer)?;
    let neg = sotto_sdp::audio_stream(&streams)
        .cloned()
        .ok_or(Refusal::NoAudio)?;
    let remote = from_sdp(&neg.remote_attributes);
    keyx.answered(RemoteMedia {
        profile: &neg.profile,
        attributes: &remote,
    })
    .map_err(refusal)?;
    Ok(neg)
}
