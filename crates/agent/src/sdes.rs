//! SDES (RFC 4568) behind the media key-exchange seam ([`MediaKeyExchange`]): the keys travel
//! in the SDP (`a=crypto`), so they are ready the moment the offer/answer completes, and every
//! proxy on the path can read them (the report says so). The SDP side is `sotto_sdp::sdes`;
//! this type carries its result to the media as SRTP keys for each direction.

use std::collections::VecDeque;

use sotto_crypto::rng::SecureRandom;
use sotto_media::keyx::{
    KeyExchangeError, KeyExchangeEvent, KeyMethod, MediaKeyExchange, MediaProtection, RemoteMedia,
    SdpAttribute, SrtpKeys,
};
use sotto_media::{SrtpPolicy, SrtpSuite};
use sotto_sdp::sdes::{self, SdesKeys};
use sotto_sdp::{Attribute, EncryptionPolicy, KeyParam, Media, Refusal, SdesSuite};

use crate::keying::{from_sdp, to_sdp};

/// SDES keying of one call's audio stream.
#[derive(Debug)]
pub struct SdesExchange {
    suites: Vec<SdesSuite>,
    policy: EncryptionPolicy,
    /// Our offer's attributes (as offerer), to read our keys back from the answer.
    offered: Vec<Attribute>,
    keys: Option<SdesKeys>,
    /// The offer/answer is complete (keys or, where the policy allows, none).
    negotiated: bool,
    events: VecDeque<KeyExchangeEvent>,
}

/// A refusal of the SDP side as the seam's error.
pub(crate) fn exchange_error(r: &Refusal) -> KeyExchangeError {
    KeyExchangeError {
        status: r.status_code(),
        warning_code: r.warning_code(),
        reason: r.warning_text(),
    }
}

/// The peer's stream as an SDP section (what `sotto_sdp::sdes` reads).
fn media_of(profile: &str, attributes: Vec<Attribute>) -> Media {
    let mut m = Media::new("audio", 9, profile);
    m.attributes = attributes;
    m
}

fn srtp_policy(suite: SrtpSuite, key: &KeyParam) -> SrtpPolicy {
    let p = SrtpPolicy::new(suite, key.master_key.expose(), key.master_salt.expose());
    match key.mki {
        Some(m) => p.with_mki(&m.to_bytes()),
        None => p,
    }
}

impl SdesExchange {
    /// SDES with `suites` (offered in this order, the only ones accepted) under `policy`.
    pub fn new(suites: Vec<SdesSuite>, policy: EncryptionPolicy) -> Self {
        SdesExchange {
            suites,
            policy,
            offered: Vec::new(),
            keys: None,
            negotiated: false,
            events: VecDeque::new(),
        }
    }

    /// The keys agreed (RFC 4568 §6.1: we send with ours, receive with the peer's).
    fn agreed(&mut self, keys: Option<SdesKeys>) -> Result<(), KeyExchangeError> {
        self.negotiated = true;
        let Some(keys) = keys else {
            return Ok(());
        };
        let engine = |name: &str| SrtpSuite::from_name(name);
        let suite = engine(keys.suite.name()).ok_or_else(|| KeyExchangeError {
            status: 488,
            warning_code: 306,
            reason: format!(
                "SRTP suite {} not supported by the engine",
                keys.suite.name()
            ),
        })?;
        let remote = keys.remote.first().ok_or_else(|| KeyExchangeError {
            status: 488,
            warning_code: 306,
            reason: "no remote SDES key".into(),
        })?;
        self.events.push_back(KeyExchangeEvent::KeysReady(SrtpKeys {
            outbound: srtp_policy(suite, &keys.local),
            inbound: srtp_policy(suite, remote),
            rtcp: None,
        }));
        self.keys = Some(keys);
        Ok(())
    }
}

impl MediaKeyExchange for SdesExchange {
    fn method(&self) -> KeyMethod {
        if self.negotiated && self.keys.is_none() {
            KeyMethod::None
        } else {
            KeyMethod::Sdes
        }
    }

    fn profile(&self) -> &'static str {
        sdes::offer_profile(self.policy.mode)
    }

    fn offer(&mut self, rng: &dyn SecureRandom) -> Result<Vec<SdpAttribute>, KeyExchangeError> {
        let attrs = sdes::offer_attributes(&self.suites, self.policy.mode, rng).map_err(|_| {
            KeyExchangeError {
                status: 500,
                warning_code: 399,
                reason: "random number generator failed".into(),
            }
        })?;
        self.offered = attrs.clone();
        Ok(from_sdp(&attrs))
    }

    fn answer(
        &mut self,
        offered: RemoteMedia<'_>,
        rng: &dyn SecureRandom,
    ) -> Result<Vec<SdpAttribute>, KeyExchangeError> {
        // A new answer (the first audio line refused elsewhere): nothing of an earlier one.
        self.events.clear();
        let m = media_of(offered.profile, to_sdp(offered.attributes));
        let (attrs, keys) = match sdes::answer_media(&m, &self.suites, &self.policy, rng)
            .map_err(|r| exchange_error(&r))?
        {
            Some((attr, keys)) => (vec![attr], Some(keys)),
            None => (Vec::new(), None),
        };
        self.agreed(keys)?;
        Ok(from_sdp(&attrs))
    }

    fn answered(&mut self, answer: RemoteMedia<'_>) -> Result<(), KeyExchangeError> {
        let ours = media_of(self.profile(), self.offered.clone());
        let theirs = media_of(answer.profile, to_sdp(answer.attributes));
        let keys =
            sdes::answered_media(&ours, &theirs, &self.policy).map_err(|r| exchange_error(&r))?;
        self.agreed(keys)
    }

    fn protection(&self) -> MediaProtection {
        match &self.keys {
            Some(k) => MediaProtection::Sdes {
                suite: k.suite.name().to_owned(),
            },
            None => MediaProtection::None,
        }
    }

    fn poll_event(&mut self) -> Option<KeyExchangeEvent> {
        self.events.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sotto_sdp::EncryptionMode;

    fn rng() -> &'static dyn SecureRandom {
        sotto_crypto_rust::provider().rng
    }

    #[test]
    fn offerer_and_answerer_agree_mirrored_keys() {
        let policy = EncryptionPolicy::default();
        let mut a = SdesExchange::new(SdesSuite::ALL.to_vec(), policy);
        let mut b = SdesExchange::new(SdesSuite::ALL.to_vec(), policy);
        assert_eq!(a.profile(), "RTP/SAVP");
        let offer = a.offer(rng()).unwrap();
        assert!(offer.iter().all(|x| x.name == "crypto"));
        let answer = b
            .answer(
                RemoteMedia {
                    profile: "RTP/SAVP",
                    attributes: &offer,
                },
                rng(),
            )
            .unwrap();
        assert_eq!(answer.len(), 1);
        a.answered(RemoteMedia {
            profile: "RTP/SAVP",
            attributes: &answer,
        })
        .unwrap();
        let (Some(KeyExchangeEvent::KeysReady(ka)), Some(KeyExchangeEvent::KeysReady(kb))) =
            (a.poll_event(), b.poll_event())
        else {
            panic!("keys on both sides");
        };
        assert_eq!(
            ka.outbound.master_key.expose(),
            kb.inbound.master_key.expose()
        );
        assert_eq!(
            kb.outbound.master_key.expose(),
            ka.inbound.master_key.expose()
        );
        assert_eq!(a.protection(), b.protection());
        assert_eq!(a.method(), KeyMethod::Sdes);
    }

    #[test]
    fn mandatory_refuses_a_plain_offer_with_the_usual_warning() {
        let mut b = SdesExchange::new(SdesSuite::ALL.to_vec(), EncryptionPolicy::default());
        let e = b
            .answer(
                RemoteMedia {
                    profile: "RTP/AVP",
                    attributes: &[],
                },
                rng(),
            )
            .unwrap_err();
        assert_eq!((e.status, e.warning_code), (488, 399));
        assert!(e.reason.contains("mandatory"), "{e}");
        // Optional: a plain answer, no keys, no protection.
        let optional = EncryptionPolicy {
            mode: EncryptionMode::Optional,
            best_effort_sdes: false,
        };
        let mut b = SdesExchange::new(SdesSuite::ALL.to_vec(), optional);
        assert!(
            b.answer(
                RemoteMedia {
                    profile: "RTP/AVP",
                    attributes: &[],
                },
                rng(),
            )
            .unwrap()
            .is_empty()
        );
        assert_eq!(b.method(), KeyMethod::None);
        assert_eq!(b.protection(), MediaProtection::None);
    }
}
