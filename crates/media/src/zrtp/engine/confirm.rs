//! Confirmation: Confirm1, Confirm2, Conf2ACK; the SAS, the cache update, the SRTP keys.

use std::time::Instant;

use super::secrets::Role;
use super::timer::{Retransmit, TimerKind};
use super::{State, ZrtpEngine, ZrtpEvent, ZrtpSecured};
use crate::keyx::SrtpKeys;
use crate::srtp::SrtpPolicy;
use crate::zrtp::ZrtpError;
use crate::zrtp::cache::CacheStatus;
use crate::zrtp::messages::confirm::{self, ConfirmBody, ConfirmKeys};
use crate::zrtp::messages::{chain_mac_ok, small};
use crate::zrtp::packet::MessageType;
use crate::zrtp::sas;

impl ZrtpEngine {
    fn confirm_keys(&self, role: Role) -> Result<ConfirmKeys<'_>, ZrtpError> {
        let suite = self.suite.ok_or(ZrtpError::Malformed("no suite"))?;
        let k = self.keys.as_ref().ok_or(ZrtpError::Malformed("no keys"))?;
        let (mac_key, cipher_key) = match role {
            Role::Initiator => (k.mac_i.expose(), k.zrtp_i.expose()),
            Role::Responder => (k.mac_r.expose(), k.zrtp_r.expose()),
        };
        Ok(ConfirmKeys {
            hash: suite.hash,
            mac_key,
            cipher_key,
        })
    }

    fn our_confirm(&self, role: Role) -> Result<Vec<u8>, ZrtpError> {
        let iv = self.random::<16>()?;
        let cached_verified = self.held_verified();
        let body = ConfirmBody {
            h0: self.chain[0],
            enrollment: false,
            sas_verified: cached_verified,
            allow_clear: false,
            disclosure: false,
            cache_expiry: u32::MAX,
        };
        confirm::encode(
            self.provider,
            role == Role::Responder,
            &body,
            &self.confirm_keys(role)?,
            &iv,
        )
    }

    /// Whether our cache says the SAS with this peer was verified (and no mismatch since).
    fn held_verified(&self) -> bool {
        if self.mult {
            return self
                .config
                .multistream
                .as_ref()
                .is_some_and(|m| m.first.verified);
        }
        let Some((_, h)) = &self.peer_hello else {
            return false;
        };
        let matched = self
            .matched
            .as_ref()
            .is_some_and(|m| m.status == CacheStatus::Match);
        matched
            && self
                .cache
                .lock()
                .ok()
                .and_then(|c| c.peer(&h.zid).map(|p| p.verified && !p.unsafe_mismatch))
                .unwrap_or(false)
    }

    /// Sends Confirm1, our answer to `question` (DHPart2, or a Multistream Commit).
    pub(super) fn send_confirm1(&mut self, question: MessageType) -> Result<(), ZrtpError> {
        let c1 = self.our_confirm(Role::Responder)?;
        self.answer = Some((question, c1.clone()));
        self.outbox.push_back(c1);
        self.state = State::SentConfirm1;
        Ok(())
    }

    /// Checks a peer's Confirm: its MAC and cipher, then H0 against the peer's DHPart.
    fn open_confirm(&self, message: &[u8], sender: Role) -> Result<ConfirmBody, ZrtpError> {
        let body = confirm::open(self.provider, message, &self.confirm_keys(sender)?)
            // Dropped, not fatal (anyone may send to the port); told if the exchange times out.
            ?;
        if self.mult {
            self.check_multistream_h0(&body.h0, sender)?;
            return Ok(body);
        }
        let (dh_msg, dh) = self
            .peer_dhpart
            .as_ref()
            .ok_or(ZrtpError::Malformed("Confirm before DHPart"))?;
        if self.sha256(&body.h0)? != dh.h1 || !chain_mac_ok(self.provider, &body.h0, dh_msg) {
            return Err(ZrtpError::HashChain("Confirm's H0 does not fit the DHPart"));
        }
        Ok(body)
    }

    pub(super) fn on_confirm1(&mut self, now: Instant, message: Vec<u8>) -> Result<(), ZrtpError> {
        if self.state == State::Committed && self.mult {
            self.multistream_initiator_keys()?;
        } else if self.state != State::SentDhPart2 {
            return Ok(());
        }
        let body = self.open_confirm(&message, Role::Responder)?;
        self.peer_verified_flag = body.sas_verified;
        let c2 = self.our_confirm(Role::Initiator)?;
        self.outbox.push_back(c2.clone());
        self.retransmit = Some(Retransmit::start(TimerKind::T2, c2, now));
        self.state = State::SentConfirm2;
        let s = self.result()?;
        self.events.push_back(ZrtpEvent::Sas(s));
        Ok(())
    }

    pub(super) fn on_confirm2(&mut self, message: Vec<u8>) -> Result<(), ZrtpError> {
        match self.state {
            State::SentConfirm1 => {}
            State::Secure if self.role == Some(Role::Responder) => {
                self.outbox.push_back(small::bare(MessageType::Conf2Ack));
                return Ok(());
            }
            _ => return Ok(()),
        }
        let body = self.open_confirm(&message, Role::Initiator)?;
        self.peer_verified_flag = body.sas_verified;
        self.outbox.push_back(small::bare(MessageType::Conf2Ack));
        self.finish()
    }

    pub(super) fn on_conf2ack(&mut self) -> Result<(), ZrtpError> {
        if self.state == State::SentConfirm2 {
            self.retransmit = None;
            self.finish()?;
        }
        Ok(())
    }

    /// The outcome as it stands (SAS, algorithms, verification, cache status).
    fn result(&self) -> Result<ZrtpSecured, ZrtpError> {
        if self.mult {
            let ms = self
                .config
                .multistream
                .as_ref()
                .ok_or(ZrtpError::Malformed("no session"))?;
            return Ok(ZrtpSecured {
                role: self.role.ok_or(ZrtpError::Malformed("no role"))?,
                verified: ms.first.verified && self.peer_verified_flag,
                ..ms.first.clone()
            });
        }
        let suite = self.suite.ok_or(ZrtpError::Malformed("no suite"))?;
        let keys = self.keys.as_ref().ok_or(ZrtpError::Malformed("no keys"))?;
        let m = self
            .matched
            .as_ref()
            .ok_or(ZrtpError::Malformed("no match"))?;
        let (_, h) = self
            .peer_hello
            .as_ref()
            .ok_or(ZrtpError::Malformed("no Hello"))?;
        Ok(ZrtpSecured {
            sas: sas::render(suite.sas_type, keys.sas_value),
            suite,
            role: self.role.ok_or(ZrtpError::Malformed("no role"))?,
            verified: self.held_verified() && self.peer_verified_flag,
            cache: m.status,
            aux_matched: m.aux_matched,
            peer_zid: h.zid,
            peer_client: String::from_utf8_lossy(&h.client_id)
                .trim_end_matches(['\0', ' '])
                .to_owned(),
        })
    }

    /// Keys agreed: the cache learns the new rs1, SRTP gets its keys, s0's children go.
    fn finish(&mut self) -> Result<(), ZrtpError> {
        let s = self.result()?;
        let suite = s.suite;
        let keys = self.keys.take().ok_or(ZrtpError::Malformed("no keys"))?;
        let srtp = suite.cipher.srtp_suite(suite.auth_tag);
        let policy = |k: &(
            sotto_crypto::secret::SecretBytes,
            sotto_crypto::secret::SecretBytes,
        )| { SrtpPolicy::new(srtp, k.0.expose(), k.1.expose()) };
        let (outbound, inbound) = match s.role {
            Role::Initiator => (policy(&keys.srtp_i), policy(&keys.srtp_r)),
            Role::Responder => (policy(&keys.srtp_r), policy(&keys.srtp_i)),
        };
        // A Multistream stream leaves the cache alone: its first stream updated it.
        if !self.mult {
            self.cache.lock().map_err(|_| ZrtpError::Cache)?.update(
                s.peer_zid,
                keys.new_rs1.clone(),
                s.cache,
                self.config.peer_uri.as_deref(),
            );
            self.zrtp_session = Some(keys.zrtp_session.clone());
        }
        self.state = State::Secure;
        self.retransmit = None;
        self.held = Default::default();
        self.secured = Some(s.clone());
        self.events.push_back(ZrtpEvent::Secure(
            s,
            Box::new(SrtpKeys {
                outbound,
                inbound,
                rtcp: None,
            }),
        ));
        Ok(())
    }
}
