//! A local LIME device: its keys, its sessions with peer devices, and what it knows of them.
//!
//! Sans-IO against the key server: [`LimeUser::create`] gives the registerUser body;
//! [`LimeUser::encrypt`] fails with [`LimeError::NoSession`] for devices it has no session
//! with, whose bundles the caller fetches ([`LimeUser::bundle_request`], then
//! [`LimeUser::handle_bundles`] with the reply). A first message from a peer carries its
//! X3DH init and starts the session ([`LimeUser::decrypt`]); the OPk it used is then
//! forgotten, only once the message decrypted.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use sotto_crypto::CryptoProvider;
use zeroize::Zeroizing;

use crate::header;
use crate::keys::{IdentityKey, OneTimePreKey, SignedPreKey};
use crate::message::{Encrypted, EncryptionPolicy, decrypt_message, encrypt_message};
use crate::protocol::{BundleEntry, Request, Response, SpkUpload};
use crate::session::DrSession;
use crate::x3dh;
use crate::{CurveId, LimeError};

/// What we know of a peer device's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerTrust {
    /// Known, never confirmed.
    Untrusted,
    /// Its identity key confirmed (a ZRTP SAS compared).
    Trusted,
    /// A different identity key was seen for it: do not trust it until confirmed again.
    Unsafe,
}

/// A peer device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerDevice {
    /// Its identity public key.
    pub ik: Vec<u8>,
    /// Our trust in it.
    pub trust: PeerTrust,
}

/// The status of the peer after a decryption: `first_contact` when this message started
/// the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerStatus {
    /// Our trust in the sender.
    pub trust: PeerTrust,
    /// This message opened our first session with it.
    pub first_contact: bool,
}

/// How long an SPk serves before a new one (liblime: 7 days).
pub const SPK_LIFETIME_SECS: u64 = 7 * 24 * 3600;
/// How long a retired SPk is kept for first messages still in flight (liblime: 30 days).
pub const SPK_KEPT_SECS: u64 = 30 * 24 * 3600;

/// A local device.
pub struct LimeUser {
    device_id: String,
    ik: IdentityKey,
    spk: SignedPreKey,
    /// When the current SPk was first in service (unix seconds; 0 until [`LimeUser::maintain`]
    /// first runs).
    spk_since: u64,
    /// Earlier SPks, for first messages still in flight, with when they were retired.
    old_spks: Vec<(SignedPreKey, u64)>,
    opks: BTreeMap<u32, OneTimePreKey>,
    sessions: HashMap<String, DrSession>,
    peers: HashMap<String, PeerDevice>,
    /// The keys changed since the last `take_changes`.
    dirty_keys: bool,
    /// The sessions that moved since the last `take_changes`.
    dirty_sessions: BTreeSet<String>,
}

mod persist;
pub use persist::Changes;

impl std::fmt::Debug for LimeUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LimeUser")
            .field("device_id", &self.device_id)
            .field("curve", &self.ik.curve)
            .field("opks", &self.opks.len())
            .field("sessions", &self.sessions.len())
            .finish_non_exhaustive()
    }
}

fn opk_upload(opks: &[OneTimePreKey]) -> Vec<(Vec<u8>, u32)> {
    opks.iter().map(|o| (o.key.public.clone(), o.id)).collect()
}

fn spk_upload(spk: &SignedPreKey) -> SpkUpload {
    SpkUpload {
        spk: spk.key.public.clone(),
        signature: spk.signature.clone(),
        id: spk.id,
    }
}

impl LimeUser {
    /// A new device `device_id` (its GRUU) on `curve` with `opk_count` OPks; returns it and
    /// the registerUser body to post.
    pub fn create(
        p: &CryptoProvider,
        device_id: &str,
        curve: CurveId,
        opk_count: usize,
    ) -> Result<(Self, Vec<u8>), LimeError> {
        let ik = IdentityKey::generate(p, curve)?;
        let spk = SignedPreKey::generate(p, &ik)?;
        let opks: Vec<OneTimePreKey> = (0..opk_count)
            .map(|_| OneTimePreKey::generate(p, curve))
            .collect::<Result<_, _>>()?;
        let body = Request::RegisterUser {
            ik: ik.public.clone(),
            spk: spk_upload(&spk),
            opks: opk_upload(&opks),
        }
        .encode(curve);
        Ok((
            LimeUser {
                device_id: device_id.to_owned(),
                ik,
                spk,
                spk_since: 0,
                old_spks: Vec::new(),
                opks: opks.into_iter().map(|o| (o.id, o)).collect(),
                sessions: HashMap::new(),
                peers: HashMap::new(),
                dirty_keys: true,
                dirty_sessions: BTreeSet::new(),
            },
            body,
        ))
    }

    /// Our device id.
    pub fn device_id(&self) -> &str {
        &self.device_id
    }

    /// Our curve.
    pub fn curve(&self) -> CurveId {
        self.ik.curve
    }

    /// Our identity public key.
    pub fn identity_key(&self) -> &[u8] {
        &self.ik.public
    }

    /// Our sessions' peer devices.
    pub fn session_peers(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.sessions.keys().map(String::as_str).collect();
        v.sort_unstable();
        v
    }

    /// The ids of the OPks we hold the private half of.
    pub fn opk_ids(&self) -> Vec<u32> {
        self.opks.keys().copied().collect()
    }

    /// How many OPks we hold the private half of.
    pub fn opk_count(&self) -> usize {
        self.opks.len()
    }

    /// The state of our session with `device`, as bytes for the store.
    pub fn session_bytes(&self, device: &str) -> Option<Zeroizing<Vec<u8>>> {
        self.sessions.get(device).map(DrSession::to_bytes)
    }

    /// What we know of a peer device.
    pub fn peer(&self, device: &str) -> Option<&PeerDevice> {
        self.peers.get(device)
    }

    /// The devices of `devices` we have no usable session with.
    pub fn sessions_needed(&self, devices: &[&str]) -> Vec<String> {
        devices
            .iter()
            .filter(|d| !self.sessions.get(**d).is_some_and(DrSession::is_active))
            .map(|d| (*d).to_owned())
            .collect()
    }

    /// The getPeerBundle body for `devices`.
    pub fn bundle_request(&self, devices: &[String]) -> Vec<u8> {
        Request::GetPeerBundle(devices.to_vec()).encode(self.curve())
    }

    /// Starts sessions from a peerBundle reply; returns the devices the server had no
    /// bundle for. A bundle whose identity key differs from the one we know for the device
    /// marks it unsafe.
    pub fn handle_bundles(
        &mut self,
        p: &CryptoProvider,
        reply: &[u8],
    ) -> Result<Vec<String>, LimeError> {
        let Response::PeerBundles(entries) = Response::parse(self.curve(), reply)? else {
            return Err(LimeError::Malformed("peerBundle reply"));
        };
        let mut missing = Vec::new();
        for e in entries {
            let b = match e {
                BundleEntry::NoBundle(d) => {
                    missing.push(d);
                    continue;
                }
                BundleEntry::Bundle(b) => b,
            };
            let (secret, init) = x3dh::initiate(p, &self.ik, &self.device_id, &b)?;
            let mut encoded = Vec::new();
            init.encode(&mut encoded);
            let session =
                DrSession::initiator(p, self.curve(), secret.sk, secret.ad, &b.spk, encoded)?;
            self.note_peer(&b.device_id, &b.ik);
            self.dirty_sessions.insert(b.device_id.clone());
            self.sessions.insert(b.device_id, session);
        }
        Ok(missing)
    }

    /// Records a peer's identity key: new peers are untrusted; a changed key makes it unsafe.
    fn note_peer(&mut self, device: &str, ik: &[u8]) -> PeerTrust {
        self.dirty_keys = true;
        let entry = self
            .peers
            .entry(device.to_owned())
            .or_insert_with(|| PeerDevice {
                ik: ik.to_vec(),
                trust: PeerTrust::Untrusted,
            });
        if entry.ik != ik {
            entry.ik = ik.to_vec();
            entry.trust = PeerTrust::Unsafe;
        }
        entry.trust
    }

    /// Sets our trust in a peer device whose identity key is `ik` (e.g. after a ZRTP SAS): a
    /// key other than the one we know for it makes it unsafe instead.
    pub fn set_peer_trust(&mut self, device: &str, ik: &[u8], trust: PeerTrust) {
        self.dirty_keys = true;
        match self.peers.get_mut(device) {
            Some(peer) if peer.ik != ik => peer.trust = PeerTrust::Unsafe,
            Some(peer) => peer.trust = trust,
            None => {
                self.peers.insert(
                    device.to_owned(),
                    PeerDevice {
                        ik: ik.to_vec(),
                        trust,
                    },
                );
            }
        }
    }

    /// Encrypts `plaintext` to `recipient_user` for every device of `devices`; fails with
    /// [`LimeError::NoSession`] naming one we must fetch a bundle for first. Sessions move
    /// on: store the user before sending.
    pub fn encrypt(
        &mut self,
        p: &CryptoProvider,
        recipient_user: &str,
        devices: &[&str],
        plaintext: &[u8],
        policy: EncryptionPolicy,
    ) -> Result<Encrypted, LimeError> {
        if let Some(d) = self.sessions_needed(devices).into_iter().next() {
            return Err(LimeError::NoSession(d));
        }
        // Work on copies: a failure part-way leaves every session as it was.
        let mut copies: Vec<(String, DrSession)> = devices
            .iter()
            .filter_map(|d| Some(((*d).to_owned(), self.sessions.get(*d)?.clone())))
            .collect();
        let mut refs: Vec<(&str, &mut DrSession)> =
            copies.iter_mut().map(|(d, s)| (d.as_str(), s)).collect();
        let out = encrypt_message(
            p,
            &mut refs,
            plaintext,
            recipient_user,
            &self.device_id,
            policy,
        )?;
        for (d, s) in copies {
            self.dirty_sessions.insert(d.clone());
            self.sessions.insert(d, s);
        }
        Ok(out)
    }

    /// Decrypts a message from `sender` to `recipient_user` (our DR message and the cipher
    /// message, empty under the DR-message policy).
    pub fn decrypt(
        &mut self,
        p: &CryptoProvider,
        sender: &str,
        recipient_user: &str,
        dr_message: &[u8],
        cipher_message: &[u8],
    ) -> Result<(Zeroizing<Vec<u8>>, PeerStatus), LimeError> {
        let h = header::parse(self.curve(), dr_message)?;
        // The session we have first (an initiator repeats its X3DH init until answered).
        // (A failed attempt leaves the session as it was.)
        if let Some(s) = self.sessions.get_mut(sender)
            && let Ok(plain) = decrypt_message(
                p,
                s,
                sender,
                &self.device_id,
                recipient_user,
                dr_message,
                cipher_message,
            )
        {
            self.dirty_sessions.insert(sender.to_owned());
            let trust = self
                .peers
                .get(sender)
                .map_or(PeerTrust::Untrusted, |d| d.trust);
            return Ok((
                plain,
                PeerStatus {
                    trust,
                    first_contact: false,
                },
            ));
        }
        let init = h.x3dh_init.ok_or(LimeError::DecryptFailed)?;
        if init.ik.len() != self.curve().ik_len() {
            return Err(LimeError::Malformed("X3DH init"));
        }
        let spk = std::iter::once(&self.spk)
            .chain(self.old_spks.iter().map(|(k, _)| k))
            .find(|s| s.id == init.spk_id)
            .ok_or(LimeError::UnknownPrekey("signed", init.spk_id))?;
        let opk = match init.opk_id {
            Some(id) => Some(
                self.opks
                    .get(&id)
                    .ok_or(LimeError::UnknownPrekey("one-time", id))?,
            ),
            None => None,
        };
        let secret = x3dh::respond(p, &self.ik, &self.device_id, sender, &init, spk, opk)?;
        let mut session = DrSession::responder(self.curve(), secret.sk, secret.ad, spk.key.clone());
        let plain = decrypt_message(
            p,
            &mut session,
            sender,
            &self.device_id,
            recipient_user,
            dr_message,
            cipher_message,
        )?;
        if let Some(id) = init.opk_id {
            self.opks.remove(&id);
        }
        self.dirty_keys = true;
        self.dirty_sessions.insert(sender.to_owned());
        let first_contact = !self.peers.contains_key(sender);
        let trust = self.note_peer(sender, &init.ik);
        self.sessions.insert(sender.to_owned(), session);
        Ok((
            plain,
            PeerStatus {
                trust,
                first_contact,
            },
        ))
    }

    /// New OPks (`count`) and the postOPks body that publishes them.
    pub fn new_opks(&mut self, p: &CryptoProvider, count: usize) -> Result<Vec<u8>, LimeError> {
        let opks: Vec<OneTimePreKey> = (0..count)
            .map(|_| OneTimePreKey::generate(p, self.curve()))
            .collect::<Result<_, _>>()?;
        let body = Request::PostOpks(opk_upload(&opks)).encode(self.curve());
        self.opks.extend(opks.into_iter().map(|o| (o.id, o)));
        self.dirty_keys = true;
        Ok(body)
    }

    /// A new SPk (the old one kept for first messages still in flight; at most `keep_old`
    /// kept) and the postSPk body that publishes it; `now` in unix seconds.
    pub fn rotate_spk(
        &mut self,
        p: &CryptoProvider,
        keep_old: usize,
        now: u64,
    ) -> Result<Vec<u8>, LimeError> {
        let spk = SignedPreKey::generate(p, &self.ik)?;
        let body = Request::PostSpk(spk_upload(&spk)).encode(self.curve());
        let old = std::mem::replace(&mut self.spk, spk);
        self.spk_since = now;
        self.old_spks.insert(0, (old, now));
        self.old_spks.truncate(keep_old);
        self.dirty_keys = true;
        Ok(body)
    }

    /// Key upkeep at `now` (unix seconds), as liblime does: a new SPk every
    /// [`SPK_LIFETIME_SECS`] (its postSPk body returned), retired SPks kept
    /// [`SPK_KEPT_SECS`] for first messages still in flight, then forgotten.
    pub fn maintain(&mut self, p: &CryptoProvider, now: u64) -> Result<Option<Vec<u8>>, LimeError> {
        if self.spk_since == 0 {
            self.spk_since = now;
            self.dirty_keys = true;
        }
        let before = self.old_spks.len();
        self.old_spks
            .retain(|(_, retired)| now.saturating_sub(*retired) < SPK_KEPT_SECS);
        if self.old_spks.len() != before {
            self.dirty_keys = true;
        }
        if now.saturating_sub(self.spk_since) >= SPK_LIFETIME_SECS {
            return self.rotate_spk(p, 16, now).map(Some);
        }
        Ok(None)
    }
}
