//! A session's state as bytes, for the store: written whole after every message (so a crash
//! never reuses a message key), read back as it was.
//!
//! `0x01 ‖ curve ‖ flags ‖ Ns ‖ Nr ‖ PN ‖ RK ‖ CKs ‖ CKr ‖ AD ‖ DHs secret ‖ DHs public ‖
//! [DHr] ‖ [X3DH init] ‖ skipped chains`, variable parts length-prefixed (2 octets).

use sotto_crypto::CryptoProvider;
use zeroize::Zeroizing;

use super::{DrSession, SkippedChain};
use crate::kdf::ChainKey;
use crate::keys::KeyPair;
use crate::wire::{Fields, put_var};
use crate::{CurveId, LimeError};

const VERSION: u8 = 1;
const HAS_DHR: u8 = 1;
const HAS_INIT: u8 = 2;
const ACTIVE: u8 = 4;

impl DrSession {
    /// The state as bytes (secret: store it as such).
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut o = Zeroizing::new(Vec::with_capacity(512));
        let mut flags = 0;
        if self.dhr.is_some() {
            flags |= HAS_DHR;
        }
        if self.x3dh_init.is_some() {
            flags |= HAS_INIT;
        }
        if self.active {
            flags |= ACTIVE;
        }
        o.extend_from_slice(&[VERSION, self.curve.id(), flags]);
        for n in [self.ns, self.nr, self.pn] {
            o.extend_from_slice(&n.to_be_bytes());
        }
        for k in [&self.rk[..], &self.cks[..], &self.ckr[..], &self.ad[..]] {
            o.extend_from_slice(k);
        }
        match self.dhs.secret_bytes() {
            Ok(secret) => put_var(&mut o, secret.expose()),
            Err(_) => put_var(&mut o, &[]),
        }
        put_var(&mut o, &self.dhs.public);
        if let Some(d) = &self.dhr {
            put_var(&mut o, d);
        }
        if let Some(x) = &self.x3dh_init {
            put_var(&mut o, x);
        }
        o.extend_from_slice(&(self.skipped.len() as u16).to_be_bytes());
        for c in &self.skipped {
            put_var(&mut o, &c.dhr);
            o.extend_from_slice(&(c.keys.len() as u16).to_be_bytes());
            for (n, mk) in &c.keys {
                o.extend_from_slice(&n.to_be_bytes());
                o.extend_from_slice(&mk[..]);
            }
        }
        o
    }

    /// A session from [`DrSession::to_bytes`].
    pub fn from_bytes(p: &CryptoProvider, b: &[u8]) -> Result<Self, LimeError> {
        let mut r = Fields::new(b, "stored session");
        let head = r.take(3)?;
        let curve = CurveId::from_id(head[1]).ok_or(LimeError::Malformed("stored session"))?;
        if head[0] != VERSION {
            return Err(LimeError::Malformed("stored session version"));
        }
        let flags = head[2];
        // Counters are 2 octets: the casts are lossless.
        let (ns, nr, pn) = (r.u16()? as u16, r.u16()? as u16, r.u16()? as u16);
        let mut key32 = || -> Result<ChainKey, LimeError> {
            let mut k = ChainKey::default();
            k.copy_from_slice(r.take(32)?);
            Ok(k)
        };
        let (rk, cks, ckr) = (key32()?, key32()?, key32()?);
        let ad: [u8; 32] = r
            .take(32)?
            .try_into()
            .map_err(|_| LimeError::Malformed("stored session"))?;
        let secret = r.var()?;
        let dhs = KeyPair::from_secret(p, curve, secret)?;
        if dhs.public != r.var()? {
            return Err(LimeError::Malformed("stored session keys"));
        }
        let dhr = if flags & HAS_DHR != 0 {
            Some(r.var()?.to_vec())
        } else {
            None
        };
        let x3dh_init = if flags & HAS_INIT != 0 {
            Some(r.var()?.to_vec())
        } else {
            None
        };
        let mut skipped = Vec::new();
        for _ in 0..r.u16()? {
            let dhr = r.var()?.to_vec();
            let mut keys = std::collections::BTreeMap::new();
            for _ in 0..r.u16()? {
                let n = r.u16()? as u16;
                let mut mk = Zeroizing::new([0u8; 48]);
                mk.copy_from_slice(r.take(48)?);
                keys.insert(n, mk);
            }
            skipped.push(SkippedChain { dhr, keys });
        }
        Ok(DrSession {
            curve,
            dhs,
            dhr,
            rk,
            cks,
            ckr,
            ns,
            nr,
            pn,
            ad,
            skipped,
            x3dh_init,
            active: flags & ACTIVE != 0,
        })
    }
}
