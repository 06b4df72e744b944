//! ZRTP behind the media key-exchange seam: our SDP says `RTP/AVP` with
//! `a=zrtp-hash:1.10 <SHA-256 of our Hello>` (RFC 6189 §8.1); the peer's `a=zrtp-hash` is
//! checked against the Hello it sends on the media path. Keys come from the media path, so
//! no SDP carries them and no proxy can read them.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use sotto_crypto::CryptoProvider;
use sotto_crypto::rng::SecureRandom;

use super::algorithms::Algorithm;
use super::cache::ZidCache;
use super::engine::{ZrtpConfig, ZrtpEngine, ZrtpEvent, ZrtpSecured};
use crate::keyx::{
    KeyExchangeError, KeyExchangeEvent, KeyMethod, MediaKeyExchange, MediaProtection, RemoteMedia,
    SdpAttribute,
};
use crate::session::Channel;

/// The ZRTP key exchange of one call's audio stream.
#[derive(Debug)]
pub struct ZrtpExchange {
    engine: ZrtpEngine,
    protection: MediaProtection,
    events: VecDeque<KeyExchangeEvent>,
}

/// `hash` of an `a=zrtp-hash:<version> <hex>` value.
fn parse_zrtp_hash(value: &str) -> Option<[u8; 32]> {
    let (version, hex) = value.trim().split_once(' ')?;
    let mut out = [0u8; 32];
    (version.starts_with("1.1") && sotto_crypto::hex::decode(hex.trim(), &mut out)).then_some(out)
}

/// The protection a (partial) result stands for.
pub fn protection_of(s: Option<&ZrtpSecured>) -> MediaProtection {
    match s {
        None => MediaProtection::Zrtp {
            suite: None,
            sas: None,
            verified: false,
            details: None,
        },
        Some(s) => MediaProtection::Zrtp {
            suite: Some(
                s.suite
                    .cipher
                    .srtp_suite(s.suite.auth_tag)
                    .name()
                    .to_owned(),
            ),
            sas: Some(s.sas.clone()),
            verified: s.verified,
            details: Some(Box::new(crate::keyx::ZrtpDetails {
                key_agreement: s.suite.key_agreement.label(),
                cipher: s.suite.cipher.label(),
                hash: s.suite.hash.label(),
                auth_tag: s.suite.auth_tag.label(),
                sas_type: s.suite.sas_type.label(),
                cache: s.cache.name().to_owned(),
                peer_zid: sotto_crypto::hex::encode(&s.peer_zid),
                peer_client: s.peer_client.clone(),
            })),
        },
    }
}

impl ZrtpExchange {
    /// ZRTP with `config`, our ZID and retained secrets in `cache`.
    pub fn new(
        provider: &'static CryptoProvider,
        config: ZrtpConfig,
        cache: Arc<Mutex<ZidCache>>,
    ) -> Result<Self, KeyExchangeError> {
        let engine = ZrtpEngine::new(provider, config, cache).map_err(|e| KeyExchangeError {
            status: 500,
            warning_code: 399,
            reason: e.to_string(),
        })?;
        Ok(ZrtpExchange {
            engine,
            protection: protection_of(None),
            events: VecDeque::new(),
        })
    }

    /// The engine (its state, its result).
    pub fn engine(&self) -> &ZrtpEngine {
        &self.engine
    }

    fn our_attributes(&self) -> Vec<SdpAttribute> {
        vec![SdpAttribute::new(
            "zrtp-hash",
            format!("1.10 {}", self.engine.hello_hash()),
        )]
    }

    fn take_peer_hash(&mut self, remote: RemoteMedia<'_>) {
        let hash = remote
            .attributes
            .iter()
            .filter(|a| a.name == "zrtp-hash")
            .find_map(|a| a.value.as_deref().and_then(parse_zrtp_hash));
        if let Some(h) = hash {
            self.engine.set_peer_hello_hash(h);
        }
        self.pump();
    }

    fn pump(&mut self) {
        while let Some(e) = self.engine.poll_event() {
            match e {
                ZrtpEvent::Sas(s) => {
                    self.protection = protection_of(Some(&s));
                    self.events
                        .push_back(KeyExchangeEvent::Protection(self.protection.clone()));
                }
                ZrtpEvent::Secure(s, keys) => {
                    self.protection = protection_of(Some(&s));
                    self.events.push_back(KeyExchangeEvent::KeysReady(*keys));
                    self.events
                        .push_back(KeyExchangeEvent::Protection(self.protection.clone()));
                }
                ZrtpEvent::Failed(reason) => {
                    self.events.push_back(KeyExchangeEvent::Failed { reason });
                }
                ZrtpEvent::GoClearRefused => {}
            }
        }
    }
}

fn refuse(reason: &str) -> KeyExchangeError {
    KeyExchangeError {
        status: 488,
        warning_code: 399,
        reason: reason.to_owned(),
    }
}

impl MediaKeyExchange for ZrtpExchange {
    fn method(&self) -> KeyMethod {
        KeyMethod::Zrtp
    }

    fn profile(&self) -> &'static str {
        "RTP/AVP"
    }

    fn offer(&mut self, _rng: &dyn SecureRandom) -> Result<Vec<SdpAttribute>, KeyExchangeError> {
        Ok(self.our_attributes())
    }

    fn answer(
        &mut self,
        offered: RemoteMedia<'_>,
        _rng: &dyn SecureRandom,
    ) -> Result<Vec<SdpAttribute>, KeyExchangeError> {
        if !matches!(offered.profile, "RTP/AVP" | "RTP/AVPF") {
            return Err(refuse(&format!(
                "ZRTP runs over RTP/AVP; the offer is {}",
                offered.profile
            )));
        }
        self.take_peer_hash(offered);
        Ok(self.our_attributes())
    }

    fn answered(&mut self, answer: RemoteMedia<'_>) -> Result<(), KeyExchangeError> {
        if !matches!(answer.profile, "RTP/AVP" | "RTP/AVPF") {
            return Err(refuse(&format!(
                "ZRTP was offered; the answer is {}",
                answer.profile
            )));
        }
        self.take_peer_hash(answer);
        Ok(())
    }

    fn protection(&self) -> MediaProtection {
        self.protection.clone()
    }

    fn handle_packet(&mut self, now: Instant, channel: Channel, packet: &[u8]) {
        if channel != Channel::Rtp {
            // ZRTP runs on the RTP port only (RFC 6189 §4).
            return;
        }
        self.engine.handle_packet(now, packet);
        self.pump();
    }

    fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<(usize, Channel)> {
        let n = self.engine.poll_transmit(now, buf);
        self.pump();
        n.map(|n| (n, Channel::Rtp))
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.engine.poll_timeout()
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.engine.handle_timeout(now);
        self.pump();
    }

    fn set_sas_verified(&mut self, verified: bool) {
        self.engine.set_sas_verified(verified);
        if let Some(s) = self.engine.secured() {
            self.protection = protection_of(Some(s));
            self.events
                .push_back(KeyExchangeEvent::Protection(self.protection.clone()));
        }
    }

    fn poll_event(&mut self) -> Option<KeyExchangeEvent> {
        self.events.pop_front()
    }
}
