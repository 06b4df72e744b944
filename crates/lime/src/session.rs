//! The Double Ratchet session with one peer device, as LIME runs it.
//!
//! - Encrypt: `MK ‖ IV = KDF_CK(CKs)`; AES-256-GCM (16-octet IV) over the payload with
//!   associated data `given AD ‖ session AD ‖ header`; the message is
//!   `header ‖ ciphertext ‖ tag(16)`. Until the peer's first message arrives, every header
//!   carries the X3DH init. After [`MAX_SENDING_CHAIN`] messages without a reply the session
//!   turns inactive (a new X3DH is made).
//! - Decrypt: skipped keys first; a new ratchet key from the peer turns the DH ratchet
//!   (keys of the old chain up to PN kept); at most [`MAX_MESSAGE_SKIP`] keys derived for one
//!   message. A message that does not authenticate leaves the session exactly as it was (the
//!   work is done on a copy, kept only on success), so a forged message costs nothing.

use std::collections::BTreeMap;

use sotto_crypto::CryptoProvider;
use sotto_crypto::cipher::GCM_TAG_LEN;
use zeroize::Zeroizing;

use crate::header::{self, DrHeader};
use crate::kdf::{ChainKey, MessageKey, kdf_ck, kdf_rk};
use crate::keys::KeyPair;
use crate::{CurveId, LimeError};

/// The most message keys derived (skipped) for one message (liblime 5.1: 1024).
pub const MAX_MESSAGE_SKIP: usize = 1024;
/// Messages sent without a reply before the session turns inactive (liblime 5.1: 1000).
pub const MAX_SENDING_CHAIN: u16 = 1000;

/// The skipped keys of one receiving chain.
#[derive(Clone)]
struct SkippedChain {
    dhr: Vec<u8>,
    keys: BTreeMap<u16, MessageKey>,
}

/// A Double Ratchet session with one peer device.
#[derive(Clone)]
pub struct DrSession {
    curve: CurveId,
    dhs: KeyPair,
    dhr: Option<Vec<u8>>,
    rk: ChainKey,
    cks: ChainKey,
    ckr: ChainKey,
    ns: u16,
    nr: u16,
    pn: u16,
    ad: [u8; 32],
    skipped: Vec<SkippedChain>,
    /// The X3DH init, sent in every header until the peer answers.
    x3dh_init: Option<Vec<u8>>,
    active: bool,
}

impl std::fmt::Debug for DrSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DrSession")
            .field("curve", &self.curve)
            .field("ns", &self.ns)
            .field("nr", &self.nr)
            .field("pn", &self.pn)
            .field("active", &self.active)
            .finish_non_exhaustive()
    }
}

fn seal(
    p: &CryptoProvider,
    mk: &MessageKey,
    aad: &[u8],
    plaintext: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), LimeError> {
    let key = p.cipher.aes256_gcm_iv16(&mk[..32])?;
    let iv: [u8; 16] = mk[32..48]
        .try_into()
        .map_err(|_| LimeError::DecryptFailed)?;
    let start = out.len();
    out.extend_from_slice(plaintext);
    let mut tag = [0u8; GCM_TAG_LEN];
    key.seal_in_place_detached(&iv, aad, &mut out[start..], &mut tag)?;
    out.extend_from_slice(&tag);
    Ok(())
}

/// Opens `body` (`ciphertext ‖ tag`) with the message key `mk`.
pub(crate) fn open(
    p: &CryptoProvider,
    mk: &[u8],
    aad: &[u8],
    body: &[u8],
) -> Result<Zeroizing<Vec<u8>>, LimeError> {
    let n = body
        .len()
        .checked_sub(GCM_TAG_LEN)
        .ok_or(LimeError::Malformed("message"))?;
    let key = p.cipher.aes256_gcm_iv16(&mk[..32])?;
    let iv: [u8; 16] = mk[32..48]
        .try_into()
        .map_err(|_| LimeError::DecryptFailed)?;
    let mut plain = Zeroizing::new(body[..n].to_vec());
    key.open_in_place_detached(&iv, aad, &mut plain, &body[n..])
        .map_err(|_| LimeError::DecryptFailed)?;
    Ok(plain)
}

/// Encrypts `plaintext` with a fresh key/IV pair `mk` (the cipher-message policy).
pub(crate) fn seal_with(
    p: &CryptoProvider,
    mk: &MessageKey,
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, LimeError> {
    let mut out = Vec::with_capacity(plaintext.len() + GCM_TAG_LEN);
    seal(p, mk, aad, plaintext, &mut out)?;
    Ok(out)
}

impl DrSession {
    /// The initiator's session after X3DH: its first remote ratchet key is the peer's SPk;
    /// `x3dh_init` (encoded) rides in every header until the peer answers.
    pub fn initiator(
        p: &CryptoProvider,
        curve: CurveId,
        sk: ChainKey,
        ad: [u8; 32],
        peer_spk: &[u8],
        x3dh_init: Vec<u8>,
    ) -> Result<Self, LimeError> {
        let dhs = KeyPair::generate(p, curve)?;
        let mut rk = sk;
        let dh = dhs.agree(peer_spk)?;
        let cks = kdf_rk(p, &mut rk, dh.expose())?;
        Ok(DrSession {
            curve,
            dhs,
            dhr: Some(peer_spk.to_vec()),
            rk,
            cks,
            ckr: ChainKey::default(),
            ns: 0,
            nr: 0,
            pn: 0,
            ad,
            skipped: Vec::new(),
            x3dh_init: Some(x3dh_init),
            active: true,
        })
    }

    /// The responder's session after X3DH: its ratchet key is its SPk until the first
    /// message turns the ratchet.
    pub fn responder(curve: CurveId, sk: ChainKey, ad: [u8; 32], spk: KeyPair) -> Self {
        DrSession {
            curve,
            dhs: spk,
            dhr: None,
            rk: sk,
            cks: ChainKey::default(),
            ckr: ChainKey::default(),
            ns: 0,
            nr: 0,
            pn: 0,
            ad,
            skipped: Vec::new(),
            x3dh_init: None,
            active: true,
        }
    }

    /// Whether the session may still encrypt (not past [`MAX_SENDING_CHAIN`]).
    pub fn is_active(&self) -> bool {
        self.active
    }

    /// Whether the peer has not answered yet (the X3DH init still rides in headers).
    pub fn awaiting_reply(&self) -> bool {
        self.x3dh_init.is_some()
    }

    /// Encrypts `payload` with the given associated data; `direct`: the payload is the
    /// plaintext (DR-message policy), else a cipher message's seed.
    pub fn encrypt(
        &mut self,
        p: &CryptoProvider,
        payload: &[u8],
        given_ad: &[u8],
        direct: bool,
    ) -> Result<Vec<u8>, LimeError> {
        if self.dhr.is_none() {
            // A responder sends only after the first message turned its ratchet.
            return Err(LimeError::Malformed("session with no sending chain"));
        }
        let mk = kdf_ck(p, &mut self.cks)?;
        let mut msg = header::encode(
            self.curve,
            self.ns,
            self.pn,
            &self.dhs.public,
            self.x3dh_init.as_deref(),
            direct,
        );
        self.ns = self.ns.wrapping_add(1);
        let aad = [given_ad, &self.ad, &msg].concat();
        seal(p, &mk, &aad, payload, &mut msg)?;
        if self.ns >= MAX_SENDING_CHAIN {
            self.active = false;
        }
        Ok(msg)
    }

    /// Decrypts `msg`; on any failure the session is unchanged.
    pub fn decrypt(
        &mut self,
        p: &CryptoProvider,
        msg: &[u8],
        given_ad: &[u8],
        direct: bool,
    ) -> Result<Zeroizing<Vec<u8>>, LimeError> {
        self.decrypt_then(p, msg, given_ad, direct, Ok)
    }

    /// Decrypts `msg` and hands the payload to `then`; the session moves on only when both
    /// succeed (a cipher message's seed is kept only if the cipher message opens with it).
    pub fn decrypt_then<T>(
        &mut self,
        p: &CryptoProvider,
        msg: &[u8],
        given_ad: &[u8],
        direct: bool,
        then: impl FnOnce(Zeroizing<Vec<u8>>) -> Result<T, LimeError>,
    ) -> Result<T, LimeError> {
        let h = header::parse(self.curve, msg)?;
        if h.direct != direct {
            return Err(LimeError::Malformed("DR message (policy flag)"));
        }
        let aad = [given_ad, &self.ad, &msg[..h.len]].concat();
        // The ratchet moves on a copy, kept only on success: a forged message costs nothing.
        let mut next = self.clone();
        let out = then(next.decrypt_on(p, &h, &aad, &msg[h.len..])?)?;
        next.x3dh_init = None;
        *self = next;
        Ok(out)
    }

    fn decrypt_on(
        &mut self,
        p: &CryptoProvider,
        h: &DrHeader,
        aad: &[u8],
        body: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, LimeError> {
        let mut allowed = MAX_MESSAGE_SKIP as i64;
        match self.dhr.clone() {
            None => self.dh_ratchet(p, &h.dhs)?,
            Some(dhr) => {
                if let Some(mk) = self.take_skipped(&h.dhs, h.ns) {
                    return open(p, &mk[..], aad, body);
                }
                if dhr != h.dhs {
                    allowed -= i64::from(h.pn) - i64::from(self.nr);
                    self.skip(p, h.pn, MAX_MESSAGE_SKIP as i64 - i64::from(h.ns))?;
                    self.dh_ratchet(p, &h.dhs)?;
                }
            }
        }
        self.skip(p, h.ns, allowed)?;
        let mk = kdf_ck(p, &mut self.ckr)?;
        self.nr = self.nr.wrapping_add(1);
        open(p, &mk[..], aad, body)
    }

    fn take_skipped(&mut self, dhr: &[u8], n: u16) -> Option<MessageKey> {
        let i = self.skipped.iter().position(|c| c.dhr == dhr)?;
        let mk = self.skipped[i].keys.remove(&n)?;
        if self.skipped[i].keys.is_empty() {
            self.skipped.remove(i);
        }
        Some(mk)
    }

    /// Derives and keeps the receiving chain's keys up to `until`, at most `limit` of them.
    fn skip(&mut self, p: &CryptoProvider, until: u16, limit: i64) -> Result<(), LimeError> {
        if self.nr >= until {
            return Ok(());
        }
        let n = i64::from(until) - i64::from(self.nr);
        if n > limit {
            return Err(LimeError::TooManySkipped(n as usize));
        }
        let Some(dhr) = self.dhr.clone() else {
            return Ok(());
        };
        let i = match self.skipped.iter().position(|c| c.dhr == dhr) {
            Some(i) => i,
            None => {
                self.skipped.push(SkippedChain {
                    dhr,
                    keys: BTreeMap::new(),
                });
                self.skipped.len() - 1
            }
        };
        while self.nr < until {
            let mk = kdf_ck(p, &mut self.ckr)?;
            self.skipped[i].keys.insert(self.nr, mk);
            self.nr += 1;
        }
        // Keep at most MAX_MESSAGE_SKIP keys in all: the oldest chains go first.
        while self.skipped.iter().map(|c| c.keys.len()).sum::<usize>() > MAX_MESSAGE_SKIP {
            self.skipped.remove(0);
        }
        Ok(())
    }

    fn dh_ratchet(&mut self, p: &CryptoProvider, dhr: &[u8]) -> Result<(), LimeError> {
        if dhr.len() != self.curve.dh_len() {
            return Err(LimeError::Malformed("ratchet key"));
        }
        self.pn = self.ns;
        self.ns = 0;
        self.nr = 0;
        self.dhr = Some(dhr.to_vec());
        let dh = self.dhs.agree(dhr)?;
        self.ckr = kdf_rk(p, &mut self.rk, dh.expose())?;
        self.dhs = KeyPair::generate(p, self.curve)?;
        let dh = self.dhs.agree(dhr)?;
        self.cks = kdf_rk(p, &mut self.rk, dh.expose())?;
        Ok(())
    }
}

mod persist;
