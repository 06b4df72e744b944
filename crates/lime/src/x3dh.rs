//! X3DH as LIME runs it: the initiator takes the peer's key bundle (its SPk signature
//! checked), the responder the X3DH init the first message carries.
//!
//! `DH1 = DH(Ik_A, SPk_B)`, `DH2 = DH(Ek_A, Ik_B)`, `DH3 = DH(Ek_A, SPk_B)`,
//! `DH4 = DH(Ek_A, OPk_B)` when an OPk was served (identity keys in their Montgomery form);
//! `SK = HKDF-SHA512(salt = 64 zero octets, F ‖ DH1 ‖ DH2 ‖ DH3 [‖ DH4], "Lime")` with F the
//! identity key's length of 0xFF octets; the session's associated data
//! `AD = HKDF-SHA512(same salt, Ik_A ‖ Ik_B ‖ deviceId_A ‖ deviceId_B, "X3DH Associated Data")`.

use sotto_crypto::CryptoProvider;
use zeroize::Zeroizing;

use crate::kdf::{ChainKey, X3DH_AD_INFO, X3DH_SK_INFO, hkdf};
use crate::keys::{IdentityKey, KeyPair, OneTimePreKey, SignedPreKey, peer_agreement_public};
use crate::{CurveId, LimeError};

/// A device's key bundle as the key server hands it out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerBundle {
    /// The device id (its GRUU).
    pub device_id: String,
    /// Its identity public key.
    pub ik: Vec<u8>,
    /// Its signed prekey.
    pub spk: Vec<u8>,
    /// The signed prekey's id.
    pub spk_id: u32,
    /// The identity key's signature over `spk`.
    pub spk_signature: Vec<u8>,
    /// A one-time prekey and its id, when the server still had one.
    pub opk: Option<(Vec<u8>, u32)>,
}

/// The X3DH init a first message carries in its header:
/// `OPk flag(1) ‖ Ik ‖ Ek ‖ SPk id(4) [‖ OPk id(4)]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct X3dhInit {
    /// The initiator's identity public key.
    pub ik: Vec<u8>,
    /// Its ephemeral public key.
    pub ek: Vec<u8>,
    /// The responder's signed prekey it used.
    pub spk_id: u32,
    /// The responder's one-time prekey it used, if any.
    pub opk_id: Option<u32>,
}

impl X3dhInit {
    /// Its length on the wire.
    pub fn wire_len(curve: CurveId, with_opk: bool) -> usize {
        1 + curve.ik_len() + curve.dh_len() + 4 + if with_opk { 4 } else { 0 }
    }

    /// Appends its encoding to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(u8::from(self.opk_id.is_some()));
        out.extend_from_slice(&self.ik);
        out.extend_from_slice(&self.ek);
        out.extend_from_slice(&self.spk_id.to_be_bytes());
        if let Some(id) = self.opk_id {
            out.extend_from_slice(&id.to_be_bytes());
        }
    }

    /// Parses one at the start of `b`; returns it and its length.
    pub fn parse(curve: CurveId, b: &[u8]) -> Result<(Self, usize), LimeError> {
        let with_opk = *b.first().ok_or(LimeError::Malformed("X3DH init"))? == 1;
        let len = Self::wire_len(curve, with_opk);
        let b = b.get(..len).ok_or(LimeError::Malformed("X3DH init"))?;
        let (ik, rest) = b[1..].split_at(curve.ik_len());
        let (ek, rest) = rest.split_at(curve.dh_len());
        let id = |x: &[u8]| u32::from_be_bytes([x[0], x[1], x[2], x[3]]);
        Ok((
            X3dhInit {
                ik: ik.to_vec(),
                ek: ek.to_vec(),
                spk_id: id(rest),
                opk_id: with_opk.then(|| id(&rest[4..])),
            },
            len,
        ))
    }
}

/// What X3DH agrees: the ratchet's first root key and the session's associated data.
pub struct X3dhSecret {
    /// SK.
    pub sk: ChainKey,
    /// AD (32 octets).
    pub ad: [u8; 32],
}

const SALT: [u8; 64] = [0u8; 64];

fn derive(
    p: &CryptoProvider,
    curve: CurveId,
    dhs: &[&[u8]],
    ad_input: &[&[u8]],
) -> Result<X3dhSecret, LimeError> {
    let mut ikm = Zeroizing::new(vec![0xffu8; curve.ik_len()]);
    for dh in dhs {
        ikm.extend_from_slice(dh);
    }
    let mut sk = ChainKey::default();
    hkdf(p, &SALT, &ikm, X3DH_SK_INFO, &mut sk[..])?;
    let mut ad = [0u8; 32];
    hkdf(p, &SALT, &ad_input.concat(), X3DH_AD_INFO, &mut ad)?;
    Ok(X3dhSecret { sk, ad })
}

/// As initiator with `bundle`: checks its SPk signature, makes the ephemeral key; returns the
/// secret, the X3DH init to send, and the ratchet's first remote key (the peer's SPk).
pub fn initiate(
    p: &CryptoProvider,
    ik: &IdentityKey,
    self_device: &str,
    bundle: &PeerBundle,
) -> Result<(X3dhSecret, X3dhInit), LimeError> {
    let curve = ik.curve;
    if bundle.ik.len() != curve.ik_len() || bundle.spk.len() != curve.dh_len() {
        return Err(LimeError::Malformed("key bundle"));
    }
    p.signature
        .verify(
            curve.signature(),
            &bundle.ik,
            &bundle.spk,
            &bundle.spk_signature,
        )
        .map_err(|_| LimeError::BadSignature(bundle.device_id.clone()))?;
    let ek = KeyPair::generate(p, curve)?;
    let dh1 = ik.agreement_key(p)?.agree(&bundle.spk)?;
    let peer_ik = peer_agreement_public(p, curve, &bundle.ik)?;
    let dh2 = ek.agree(&peer_ik)?;
    let dh3 = ek.agree(&bundle.spk)?;
    let dh4 = match &bundle.opk {
        Some((opk, _)) => Some(ek.agree(opk)?),
        None => None,
    };
    let mut dhs: Vec<&[u8]> = vec![dh1.as_bytes(), dh2.expose(), dh3.expose()];
    if let Some(d) = &dh4 {
        dhs.push(d.expose());
    }
    let secret = derive(
        p,
        curve,
        &dhs,
        &[
            &ik.public,
            &bundle.ik,
            self_device.as_bytes(),
            bundle.device_id.as_bytes(),
        ],
    )?;
    Ok((
        secret,
        X3dhInit {
            ik: ik.public.clone(),
            ek: ek.public.clone(),
            spk_id: bundle.spk_id,
            opk_id: bundle.opk.as_ref().map(|(_, id)| *id),
        },
    ))
}

/// As responder to `init` from `peer_device`, with the SPk and OPk it names.
pub fn respond(
    p: &CryptoProvider,
    ik: &IdentityKey,
    self_device: &str,
    peer_device: &str,
    init: &X3dhInit,
    spk: &SignedPreKey,
    opk: Option<&OneTimePreKey>,
) -> Result<X3dhSecret, LimeError> {
    let curve = ik.curve;
    let peer_ik = peer_agreement_public(p, curve, &init.ik)?;
    let dh1 = spk.key.agree(&peer_ik)?;
    let dh2 = ik.agreement_key(p)?.agree(&init.ek)?;
    let dh3 = spk.key.agree(&init.ek)?;
    let dh4 = match opk {
        Some(o) => Some(o.key.agree(&init.ek)?),
        None => None,
    };
    let mut dhs: Vec<&[u8]> = vec![dh1.expose(), dh2.as_bytes(), dh3.expose()];
    if let Some(d) = &dh4 {
        dhs.push(d.expose());
    }
    derive(
        p,
        curve,
        &dhs,
        &[
            &init.ik,
            &ik.public,
            peer_device.as_bytes(),
            self_device.as_bytes(),
        ],
    )
}
