//! Multistream mode (RFC 6189 §4.4.3): a further stream of a call whose first stream is
//! secured by ZRTP with the same peer. No DH: the Commit carries a nonce (`Mult`), the
//! responder answers with Confirm1, and s0 comes from the first stream's ZRTPSess. The SAS,
//! the verification and the cache are the first stream's.

use std::time::Instant;

use super::ZrtpEngine;
use super::secrets::Role;
use crate::zrtp::ZrtpError;
use crate::zrtp::keys;
use crate::zrtp::messages::chain_mac_ok;
use crate::zrtp::messages::commit::{Commit, CommitMode};
use crate::zrtp::packet::MessageType;

impl ZrtpEngine {
    /// Whether this stream can use Multistream mode: a session with this very peer, who lists
    /// `Mult` in its Hello.
    pub(super) fn multistream_possible(&self) -> bool {
        match (&self.config.multistream, &self.peer_hello) {
            (Some(ms), Some((_, h))) => h.offered.multistream && h.zid == ms.first.peer_zid,
            _ => false,
        }
    }

    /// Sends a Multistream Commit with the session's algorithms.
    pub(super) fn commit_multistream(&mut self, now: Instant) -> Result<(), ZrtpError> {
        let suite = self
            .config
            .multistream
            .as_ref()
            .map(|m| m.first.suite)
            .ok_or(ZrtpError::Malformed("no session"))?;
        let mode = CommitMode::Multistream {
            nonce: self.random::<16>()?,
        };
        self.suite = Some(suite);
        self.mult = true;
        self.send_commit(now, &suite, mode)
    }

    /// The responder's side of a Multistream Commit: keys at once, then Confirm1.
    pub(super) fn become_multistream_responder(
        &mut self,
        message: Vec<u8>,
        c: Commit,
    ) -> Result<(), ZrtpError> {
        let ms = self
            .config
            .multistream
            .clone()
            .ok_or(ZrtpError::Malformed("no session"))?;
        self.retransmit = None;
        self.our_commit = None;
        self.dh = None;
        self.role = Some(Role::Responder);
        self.mult = true;
        self.suite = Some(c.suite);
        let keys = keys::derive_multistream(
            self.provider,
            &c.suite,
            ms.zrtp_session.expose(),
            &c.zid,
            &self.zid,
            [&self.our_hello, &message],
        )?;
        self.keys = Some(keys);
        self.peer_commit = Some((message, c));
        self.send_confirm1(MessageType::Commit)
    }

    /// The initiator's keys, when the responder's Confirm1 arrives.
    pub(super) fn multistream_initiator_keys(&mut self) -> Result<(), ZrtpError> {
        if self.keys.is_some() {
            return Ok(());
        }
        let ms = self
            .config
            .multistream
            .clone()
            .ok_or(ZrtpError::Malformed("no session"))?;
        let suite = self.suite.ok_or(ZrtpError::Malformed("no suite"))?;
        let (peer_hello, h) = self
            .peer_hello
            .as_ref()
            .ok_or(ZrtpError::Malformed("no Hello"))?;
        let (commit, _) = self
            .our_commit
            .as_ref()
            .ok_or(ZrtpError::Malformed("no Commit"))?;
        let keys = keys::derive_multistream(
            self.provider,
            &suite,
            ms.zrtp_session.expose(),
            &self.zid,
            &h.zid,
            [peer_hello, commit],
        )?;
        self.keys = Some(keys);
        self.role = Some(Role::Initiator);
        self.retransmit = None;
        Ok(())
    }

    /// A Confirm's H0 against what the peer sent before it: its Hello (it was responder:
    /// H3 = SHA-256³(H0), Hello MAC by H2) or its Commit (H2 = SHA-256²(H0), Commit MAC by H1).
    pub(super) fn check_multistream_h0(
        &self,
        h0: &[u8; 32],
        sender: Role,
    ) -> Result<(), ZrtpError> {
        let h1 = self.sha256(h0)?;
        let h2 = self.sha256(&h1)?;
        let ok = match sender {
            Role::Responder => {
                let (msg, h) = self
                    .peer_hello
                    .as_ref()
                    .ok_or(ZrtpError::Malformed("no Hello"))?;
                self.sha256(&h2)? == h.h3 && chain_mac_ok(self.provider, &h2, msg)
            }
            Role::Initiator => {
                let (msg, c) = self
                    .peer_commit
                    .as_ref()
                    .ok_or(ZrtpError::Malformed("no Commit"))?;
                h2 == c.h2 && chain_mac_ok(self.provider, &h1, msg)
            }
        };
        if ok {
            Ok(())
        } else {
            Err(ZrtpError::HashChain("Confirm's H0 does not fit the chain"))
        }
    }
}
