//! Discovery and key agreement: Hello/HelloACK, Commit and its contention, DHPart1/DHPart2.

use std::time::Instant;

use super::secrets::{Held, Role, match_secrets};
use super::timer::{Retransmit, TimerKind};
use super::{State, ZrtpEngine};
use crate::zrtp::ZrtpError;
use crate::zrtp::algorithms::{ZrtpSuite, acceptable, choose};
use crate::zrtp::keys::{self, S0Input};
use crate::zrtp::messages::commit::CommitMode;
use crate::zrtp::messages::small::code;
use crate::zrtp::messages::{chain_mac_ok, commit, dhpart, hello, small};
use crate::zrtp::packet::MessageType;

impl ZrtpEngine {
    pub(super) fn on_hello(&mut self, now: Instant, message: Vec<u8>) -> Result<(), ZrtpError> {
        if let Some((first, _)) = &self.peer_hello {
            // A retransmission (we have not been heard): acknowledge it again.
            if *first == message {
                self.outbox.push_back(small::bare(MessageType::HelloAck));
            }
            return Ok(());
        }
        let h = hello::parse(&message)?;
        if !h.version.starts_with(b"1.1") {
            return Err(ZrtpError::Protocol {
                code: code::VERSION,
                reason: format!(
                    "the peer speaks ZRTP {}, not 1.1x",
                    String::from_utf8_lossy(&h.version)
                ),
            });
        }
        if h.zid == self.zid {
            return Err(ZrtpError::Protocol {
                code: code::EQUAL_ZID,
                reason: "the peer's ZID is ours (a reflected Hello, or a copied cache)".into(),
            });
        }
        if !self.hello_matches_sdp(&message) {
            return Err(ZrtpError::HelloHashMismatch);
        }
        let suite = choose(&self.config.preferences, &h.offered).ok_or(ZrtpError::Protocol {
            code: code::HELLO_MISMATCH,
            reason: "the peer's Hello offers no algorithms we accept".into(),
        })?;
        let cached = self.cache.lock().map_err(|_| ZrtpError::Cache)?;
        self.held = Held::new(cached.peer(&h.zid), self.config.aux_secret.as_ref());
        drop(cached);
        self.suite = Some(suite);
        self.peer_hello = Some((message, h));
        self.outbox.push_back(small::bare(MessageType::HelloAck));
        self.maybe_commit(now)
    }

    pub(super) fn on_hello_ack(&mut self, now: Instant) -> Result<(), ZrtpError> {
        if self.state == State::Discovery && !self.hello_acked {
            self.hello_acked = true;
            self.retransmit = None;
            return self.maybe_commit(now);
        }
        Ok(())
    }

    /// Commits once we hold the peer's Hello and ours was acknowledged.
    fn maybe_commit(&mut self, now: Instant) -> Result<(), ZrtpError> {
        if self.state != State::Discovery || !self.hello_acked {
            return Ok(());
        }
        let (Some(suite), Some((peer_hello, _))) = (self.suite, self.peer_hello.as_ref()) else {
            return Ok(());
        };
        let peer_hello = peer_hello.clone();
        if self.multistream_possible() {
            return self.commit_multistream(now);
        }
        let dh = self
            .provider
            .agreement
            .generate_short_exponent(
                suite.key_agreement.agreement(),
                2 * suite.cipher.key_len(),
                self.provider.rng,
            )
            .map_err(|_| ZrtpError::Crypto("key generation"))?;
        let ids = self
            .held
            .ids(self.provider, suite.hash, Role::Initiator, &self.chain[3])?;
        let dhpart2 = dhpart::encode(
            self.provider,
            false,
            &self.chain[1],
            &ids,
            dh.public_key(),
            &self.chain[0],
        )?;
        let hvi_full = keys::hash(self.provider, suite.hash, &[&dhpart2, &peer_hello])?;
        let mut hvi = [0u8; 32];
        hvi.copy_from_slice(&hvi_full[..32]);
        self.dh = Some(dh);
        self.our_dhpart = Some(dhpart2);
        self.send_commit(now, &suite, CommitMode::Dh { hvi })
    }

    /// Sends our Commit (retransmitted on T2 until answered) and waits for the answer.
    pub(super) fn send_commit(
        &mut self,
        now: Instant,
        suite: &ZrtpSuite,
        mode: CommitMode,
    ) -> Result<(), ZrtpError> {
        let commit = commit::encode(
            self.provider,
            &self.chain[2],
            &self.zid,
            suite,
            &mode,
            &self.chain[1],
        )?;
        self.our_commit = Some((commit.clone(), mode));
        self.outbox.push_back(commit.clone());
        self.retransmit = Some(Retransmit::start(TimerKind::T2, commit, now));
        self.state = State::Committed;
        Ok(())
    }

    pub(super) fn on_commit(&mut self, _now: Instant, message: Vec<u8>) -> Result<(), ZrtpError> {
        match self.state {
            State::Discovery | State::Committed => {}
            // A repeated Commit: DHPart1 again (DH mode), or Confirm1 (Multistream).
            State::SentDhPart1 | State::SentConfirm1 => {
                if self
                    .peer_commit
                    .as_ref()
                    .is_some_and(|(m, _)| *m == message)
                {
                    self.answer_again(MessageType::Commit);
                }
                return Ok(());
            }
            _ => return Ok(()),
        }
        let Some((peer_hello_msg, peer_hello)) = self.peer_hello.as_ref() else {
            // Cannot be checked before the Hello it is chained to; it will come again.
            return Ok(());
        };
        let mut c = commit::parse(&message).map_err(|e| match e {
            ZrtpError::Unsupported(what) => ZrtpError::Protocol {
                code: code::KEY_AGREEMENT,
                reason: format!("the peer committed to {what}, which we do not offer"),
            },
            e => e,
        })?;
        if c.zid != peer_hello.zid {
            return Err(ZrtpError::Malformed(
                "Commit from another ZID than the Hello",
            ));
        }
        // H3 = SHA-256(H2), and the Hello's MAC is keyed by H2.
        if self.sha256(&c.h2)? != peer_hello.h3
            || !chain_mac_ok(self.provider, &c.h2, peer_hello_msg)
        {
            return Err(ZrtpError::HashChain("Commit's H2 does not fit the Hello"));
        }
        if matches!(
            (&self.our_commit, &c.mode),
            (
                Some((_, CommitMode::Dh { .. })),
                CommitMode::Multistream { .. }
            )
        ) {
            // Our DH Commit beats a Multistream one (§4.2).
            return Ok(());
        }
        if matches!(c.mode, CommitMode::Multistream { .. }) {
            // The key agreement is the session's (its first stream's).
            let Some(ms) = self
                .config
                .multistream
                .as_ref()
                .filter(|m| m.first.peer_zid == c.zid)
            else {
                return Err(ZrtpError::Protocol {
                    code: code::NO_SHARED_SECRET,
                    reason: "the peer committed to Multistream mode without a session with us"
                        .into(),
                });
            };
            c.suite.key_agreement = ms.first.suite.key_agreement;
        }
        if !acceptable(&self.config.preferences, &c.suite) {
            return Err(ZrtpError::Protocol {
                code: code::HELLO_MISMATCH,
                reason: "the peer committed to algorithms our Hello did not offer".into(),
            });
        }
        if let Some((_, ours)) = &self.our_commit {
            // Contention (§4.2): a DH Commit beats a Multistream one; between two of the same
            // mode the lower hvi (or nonce) yields.
            let we_win = match (ours, &c.mode) {
                (CommitMode::Dh { .. }, CommitMode::Multistream { .. }) => true,
                (CommitMode::Multistream { .. }, CommitMode::Dh { .. }) => false,
                (o, t) => o.contention_value() > t.contention_value(),
            };
            if we_win {
                return Ok(());
            }
        }
        match c.mode {
            CommitMode::Dh { .. } => self.become_responder(message, c),
            CommitMode::Multistream { .. } => self.become_multistream_responder(message, c),
        }
    }

    fn become_responder(&mut self, message: Vec<u8>, c: commit::Commit) -> Result<(), ZrtpError> {
        // Our own Commit's key serves when it is of the same agreement and exponent length.
        let ours = self.our_commit.as_ref().and(self.suite);
        self.retransmit = None;
        self.our_commit = None;
        self.role = Some(Role::Responder);
        // A Multistream Commit of ours lost to this DH one.
        self.mult = false;
        let suite = c.suite;
        let reuse = self.dh.as_ref().is_some_and(|k| {
            k.algorithm() == suite.key_agreement.agreement()
                && ours.is_some_and(|o| o.cipher.key_len() == suite.cipher.key_len())
        });
        if !reuse {
            self.dh = Some(
                self.provider
                    .agreement
                    .generate_short_exponent(
                        suite.key_agreement.agreement(),
                        2 * suite.cipher.key_len(),
                        self.provider.rng,
                    )
                    .map_err(|_| ZrtpError::Crypto("key generation"))?,
            );
        }
        let ids = self
            .held
            .ids(self.provider, suite.hash, Role::Responder, &self.chain[3])?;
        let pv = self
            .dh
            .as_ref()
            .map(|k| k.public_key().to_vec())
            .unwrap_or_default();
        let dhpart1 = dhpart::encode(
            self.provider,
            true,
            &self.chain[1],
            &ids,
            &pv,
            &self.chain[0],
        )?;
        self.suite = Some(suite);
        self.our_dhpart = Some(dhpart1.clone());
        self.peer_commit = Some((message, c));
        self.answer = Some((MessageType::Commit, dhpart1.clone()));
        self.outbox.push_back(dhpart1);
        self.state = State::SentDhPart1;
        Ok(())
    }

    pub(super) fn on_dhpart1(&mut self, now: Instant, message: Vec<u8>) -> Result<(), ZrtpError> {
        if self.state != State::Committed {
            return Ok(());
        }
        let suite = self
            .suite
            .ok_or(ZrtpError::Malformed("DHPart1 before Hello"))?;
        let d = dhpart::parse(&message, suite.key_agreement.public_len())?;
        let (peer_hello_msg, peer_hello) = self
            .peer_hello
            .as_ref()
            .ok_or(ZrtpError::Malformed("DHPart1 before Hello"))?;
        // We never saw the responder's Commit: H3 = SHA-256(SHA-256(H1)), Hello MAC by H2.
        let h2 = self.sha256(&d.h1)?;
        if self.sha256(&h2)? != peer_hello.h3 || !chain_mac_ok(self.provider, &h2, peer_hello_msg) {
            return Err(ZrtpError::HashChain("DHPart1's H1 does not fit the Hello"));
        }
        self.role = Some(Role::Initiator);
        self.retransmit = None;
        let peer_h3 = peer_hello.h3;
        self.agree(&d, &peer_h3)?;
        let dhpart2 = self.our_dhpart.clone().unwrap_or_default();
        self.peer_dhpart = Some((message, d));
        self.derive()?;
        self.outbox.push_back(dhpart2.clone());
        self.retransmit = Some(Retransmit::start(TimerKind::T2, dhpart2, now));
        self.state = State::SentDhPart2;
        Ok(())
    }

    pub(super) fn on_dhpart2(&mut self, message: Vec<u8>) -> Result<(), ZrtpError> {
        match self.state {
            State::SentDhPart1 => {}
            State::SentConfirm1 => {
                if self
                    .peer_dhpart
                    .as_ref()
                    .is_some_and(|(m, _)| *m == message)
                {
                    self.answer_again(MessageType::DhPart2);
                }
                return Ok(());
            }
            _ => return Ok(()),
        }
        let suite = self
            .suite
            .ok_or(ZrtpError::Malformed("DHPart2 before Commit"))?;
        let d = dhpart::parse(&message, suite.key_agreement.public_len())?;
        let (commit_msg, c) = self
            .peer_commit
            .as_ref()
            .ok_or(ZrtpError::Malformed("DHPart2 before Commit"))?;
        if self.sha256(&d.h1)? != c.h2 || !chain_mac_ok(self.provider, &d.h1, commit_msg) {
            return Err(ZrtpError::HashChain("DHPart2's H1 does not fit the Commit"));
        }
        let hvi = keys::hash(self.provider, suite.hash, &[&message, &self.our_hello])?;
        let CommitMode::Dh { hvi: promised } = c.mode else {
            return Ok(());
        };
        if !sotto_crypto::ct_eq(&hvi[..32], &promised) {
            return Err(ZrtpError::Protocol {
                code: code::BAD_HVI,
                reason: "DHPart2 does not match the hvi its Commit promised".into(),
            });
        }
        let peer_h3 = self
            .peer_hello
            .as_ref()
            .map(|(_, h)| h.h3)
            .unwrap_or_default();
        self.agree(&d, &peer_h3)?;
        self.peer_dhpart = Some((message, d));
        self.derive()?;
        self.send_confirm1(MessageType::DhPart2)
    }

    /// Matches secrets against the peer's DHPart and checks its public value.
    fn agree(&mut self, d: &dhpart::DhPart, peer_h3: &[u8; 32]) -> Result<(), ZrtpError> {
        let suite = self.suite.ok_or(ZrtpError::Malformed("no suite"))?;
        let role = self.role.ok_or(ZrtpError::Malformed("no role"))?;
        self.matched = Some(match_secrets(
            self.provider,
            suite.hash,
            &self.held,
            role,
            &d.ids,
            peer_h3,
        )?);
        Ok(())
    }

    /// The DH result, s0 and every key.
    fn derive(&mut self) -> Result<(), ZrtpError> {
        let suite = self.suite.ok_or(ZrtpError::Malformed("no suite"))?;
        let role = self.role.ok_or(ZrtpError::Malformed("no role"))?;
        let (Some(dh), Some((peer_msg, peer)), Some(ours)) = (
            self.dh.as_ref(),
            self.peer_dhpart.as_ref(),
            self.our_dhpart.as_ref(),
        ) else {
            return Err(ZrtpError::Malformed("DHPart missing"));
        };
        let shared = dh.agree(&peer.pv).map_err(|_| ZrtpError::Protocol {
            code: code::BAD_PV,
            reason: "the peer's public value is invalid".into(),
        })?;
        let peer_zid = self
            .peer_hello
            .as_ref()
            .map(|(_, h)| h.zid)
            .unwrap_or_default();
        let (zid_i, zid_r, responder_hello, commit, dh1, dh2) = match role {
            Role::Initiator => (
                &self.zid,
                &peer_zid,
                self.peer_hello
                    .as_ref()
                    .map(|(m, _)| m.as_slice())
                    .unwrap_or_default(),
                self.our_commit
                    .as_ref()
                    .map(|(m, _)| m.as_slice())
                    .unwrap_or_default(),
                peer_msg.as_slice(),
                ours.as_slice(),
            ),
            Role::Responder => (
                &peer_zid,
                &self.zid,
                self.our_hello.as_slice(),
                self.peer_commit
                    .as_ref()
                    .map(|(m, _)| m.as_slice())
                    .unwrap_or_default(),
                ours.as_slice(),
                peer_msg.as_slice(),
            ),
        };
        let m = self
            .matched
            .as_ref()
            .ok_or(ZrtpError::Malformed("no match"))?;
        let keys = keys::derive(
            self.provider,
            &suite,
            &S0Input {
                dh_result: shared.as_bytes(),
                zid_i,
                zid_r,
                transcript: [responder_hello, commit, dh1, dh2],
                s1: m.s1.as_ref().map(|s| s.expose()),
                s2: m.s2.as_ref().map(|s| s.expose()),
                s3: m.s3.as_ref().map(|s| s.expose()),
            },
        )?;
        self.keys = Some(keys);
        // The private key is no longer needed.
        self.dh = None;
        Ok(())
    }

    /// The responder answers a repeated question with its stored answer.
    pub(super) fn answer_again(&mut self, question: MessageType) {
        if let Some((q, a)) = &self.answer
            && *q == question
        {
            self.outbox.push_back(a.clone());
        }
    }
}
