//! A local device's state for its store, in two parts so a message costs one small write:
//!
//! - its keys (identity key, SPk and earlier SPks, OPks, what it knows of peer devices): one
//!   blob, rewritten when they change (an OPk used, a new SPk, a peer's key seen);
//! - one blob per session, rewritten when that session moves.
//!
//! [`LimeUser::take_changes`] gives what changed since the last call: the caller writes it
//! in one transaction before it sends the encrypted message or shows the decrypted one, so a
//! crash between two messages never loses or reuses a message key.
//!
//! Keys blob: `0x01 ‖ curve ‖ device id ‖ Ik seed ‖ Ik ‖ SPk ‖ SPk since ‖ count ‖ (old SPk
//! ‖ retired at)× ‖ count ‖ OPks ‖ count ‖ peers`; variable parts length-prefixed (2
//! octets), ids 4 octets, times 8 (unix seconds).

use std::collections::{BTreeMap, HashMap};

use sotto_crypto::CryptoProvider;
use sotto_crypto::secret::SecretBytes;
use zeroize::Zeroizing;

use super::{LimeUser, PeerDevice, PeerTrust};
use crate::keys::{IdentityKey, KeyPair, OneTimePreKey, SignedPreKey};
use crate::session::DrSession;
use crate::wire::{Fields, put_var};
use crate::{CurveId, LimeError};

const VERSION: u8 = 1;

/// What changed since the last [`LimeUser::take_changes`].
#[derive(Default)]
pub struct Changes {
    /// The keys blob, when the keys changed.
    pub keys: Option<Zeroizing<Vec<u8>>>,
    /// (peer device, session blob) of every session that moved.
    pub sessions: Vec<(String, Zeroizing<Vec<u8>>)>,
}

impl Changes {
    /// Nothing to write.
    pub fn is_empty(&self) -> bool {
        self.keys.is_none() && self.sessions.is_empty()
    }
}

fn put_spk(o: &mut Vec<u8>, s: &SignedPreKey) -> Result<(), LimeError> {
    o.extend_from_slice(&s.id.to_be_bytes());
    put_var(o, s.key.secret_bytes()?.expose());
    put_var(o, &s.signature);
    Ok(())
}

fn read_spk(
    p: &CryptoProvider,
    curve: CurveId,
    r: &mut Fields<'_>,
) -> Result<SignedPreKey, LimeError> {
    let id = r.u32()?;
    let key = KeyPair::from_secret(p, curve, r.var()?)?;
    Ok(SignedPreKey {
        id,
        key,
        signature: r.var()?.to_vec(),
    })
}

fn trust_byte(t: PeerTrust) -> u8 {
    match t {
        PeerTrust::Untrusted => 0,
        PeerTrust::Trusted => 1,
        PeerTrust::Unsafe => 2,
    }
}

impl LimeUser {
    /// The keys blob (secret: store it as such).
    pub fn keys_to_bytes(&self) -> Result<Zeroizing<Vec<u8>>, LimeError> {
        let mut o = Zeroizing::new(Vec::with_capacity(4096));
        o.extend_from_slice(&[VERSION, self.curve().id()]);
        put_var(&mut o, self.device_id.as_bytes());
        put_var(&mut o, self.ik.seed.expose());
        put_var(&mut o, &self.ik.public);
        put_spk(&mut o, &self.spk)?;
        o.extend_from_slice(&self.spk_since.to_be_bytes());
        o.extend_from_slice(&(self.old_spks.len() as u16).to_be_bytes());
        for (s, retired) in &self.old_spks {
            put_spk(&mut o, s)?;
            o.extend_from_slice(&retired.to_be_bytes());
        }
        o.extend_from_slice(&(self.opks.len() as u16).to_be_bytes());
        for k in self.opks.values() {
            o.extend_from_slice(&k.id.to_be_bytes());
            put_var(&mut o, k.key.secret_bytes()?.expose());
        }
        o.extend_from_slice(&(self.peers.len() as u16).to_be_bytes());
        for (d, peer) in &self.peers {
            put_var(&mut o, d.as_bytes());
            put_var(&mut o, &peer.ik);
            o.push(trust_byte(peer.trust));
        }
        Ok(o)
    }

    /// A device from its keys blob and its sessions' blobs (peer, blob).
    pub fn from_bytes(
        p: &CryptoProvider,
        keys: &[u8],
        sessions: &[(String, Vec<u8>)],
    ) -> Result<Self, LimeError> {
        let mut r = Fields::new(keys, "stored keys");
        let head = r.take(2)?;
        if head[0] != VERSION {
            return Err(LimeError::Malformed("stored keys version"));
        }
        let curve = CurveId::from_id(head[1]).ok_or(LimeError::Malformed("stored keys"))?;
        let device_id = String::from_utf8(r.var()?.to_vec())
            .map_err(|_| LimeError::Malformed("stored keys"))?;
        let ik = IdentityKey {
            curve,
            seed: SecretBytes::from_slice(r.var()?),
            public: r.var()?.to_vec(),
        };
        let spk = read_spk(p, curve, &mut r)?;
        let spk_since = r.u64()?;
        let old_spks = (0..r.u16()?)
            .map(|_| Ok((read_spk(p, curve, &mut r)?, r.u64()?)))
            .collect::<Result<Vec<_>, LimeError>>()?;
        let mut opks = BTreeMap::new();
        for _ in 0..r.u16()? {
            let id = r.u32()?;
            let key = KeyPair::from_secret(p, curve, r.var()?)?;
            opks.insert(id, OneTimePreKey { id, key });
        }
        let mut peers = HashMap::new();
        for _ in 0..r.u16()? {
            let d = String::from_utf8(r.var()?.to_vec())
                .map_err(|_| LimeError::Malformed("stored keys"))?;
            let ik = r.var()?.to_vec();
            let trust = match r.u8()? {
                1 => PeerTrust::Trusted,
                2 => PeerTrust::Unsafe,
                _ => PeerTrust::Untrusted,
            };
            peers.insert(d, PeerDevice { ik, trust });
        }
        let sessions = sessions
            .iter()
            .map(|(d, b)| Ok((d.clone(), DrSession::from_bytes(p, b)?)))
            .collect::<Result<HashMap<_, _>, LimeError>>()?;
        Ok(LimeUser {
            device_id,
            ik,
            spk,
            spk_since,
            old_spks,
            opks,
            sessions,
            peers,
            dirty_keys: false,
            dirty_sessions: Default::default(),
        })
    }

    /// What changed since the last call (see the module documentation).
    pub fn take_changes(&mut self) -> Result<Changes, LimeError> {
        let keys = if self.dirty_keys {
            Some(self.keys_to_bytes()?)
        } else {
            None
        };
        let sessions = std::mem::take(&mut self.dirty_sessions)
            .into_iter()
            .filter_map(|d| {
                let s = self.sessions.get(&d)?.to_bytes();
                Some((d, s))
            })
            .collect();
        self.dirty_keys = false;
        Ok(Changes { keys, sessions })
    }
}
