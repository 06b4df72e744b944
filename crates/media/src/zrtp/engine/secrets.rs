//! The shared secrets of an exchange (RFC 6189 §4.3): the IDs we send in our DHPart, and
//! which of our secrets the peer's IDs prove it holds too.

use sotto_crypto::CryptoProvider;
use sotto_crypto::secret::SecretBytes;

use crate::zrtp::ZrtpError;
use crate::zrtp::algorithms::ZrtpHash;
use crate::zrtp::cache::{CacheStatus, PeerSecrets};
use crate::zrtp::keys::secret_id;
use crate::zrtp::messages::dhpart::SecretIds;

/// Our side of an exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// We sent the Commit that won.
    Initiator,
    /// We answered the peer's Commit.
    Responder,
}

impl Role {
    fn label(self) -> &'static [u8] {
        match self {
            Role::Initiator => b"Initiator",
            Role::Responder => b"Responder",
        }
    }

    /// The other side.
    pub fn peer(self) -> Role {
        match self {
            Role::Initiator => Role::Responder,
            Role::Responder => Role::Initiator,
        }
    }
}

/// The secrets we hold for this peer, for one exchange.
#[derive(Debug, Default)]
pub struct Held {
    /// rs1 from the cache.
    pub rs1: Option<SecretBytes>,
    /// rs2 from the cache.
    pub rs2: Option<SecretBytes>,
    /// The auxiliary secret the application gave.
    pub aux: Option<SecretBytes>,
    /// The PBX secret from the cache.
    pub pbx: Option<SecretBytes>,
}

impl Held {
    /// What the cache holds for the peer, and the auxiliary secret: the call's, else the one
    /// the cache keeps for this peer.
    pub fn new(cached: Option<&PeerSecrets>, aux: Option<&SecretBytes>) -> Self {
        Held {
            rs1: cached.and_then(|c| c.rs1.clone()),
            rs2: cached.and_then(|c| c.rs2.clone()),
            aux: aux.cloned().or_else(|| cached.and_then(|c| c.aux.clone())),
            pbx: cached.and_then(|c| c.pbx.clone()),
        }
    }

    /// The IDs for our DHPart as `role`; a secret we lack is a random ID (§4.3.1). The
    /// auxiliary secret's ID is keyed by our H3.
    pub fn ids(
        &self,
        provider: &CryptoProvider,
        hash: ZrtpHash,
        role: Role,
        our_h3: &[u8; 32],
    ) -> Result<SecretIds, ZrtpError> {
        let id = |s: &Option<SecretBytes>, label: &[u8]| -> Result<[u8; 8], ZrtpError> {
            match s {
                Some(s) => secret_id(provider, hash, s.expose(), label),
                None => {
                    let mut r = [0u8; 8];
                    provider
                        .rng
                        .fill(&mut r)
                        .map_err(|_| ZrtpError::Crypto("random"))?;
                    Ok(r)
                }
            }
        };
        Ok(SecretIds {
            rs1: id(&self.rs1, role.label())?,
            rs2: id(&self.rs2, role.label())?,
            aux: id(&self.aux, our_h3)?,
            pbx: id(&self.pbx, role.label())?,
        })
    }
}

/// The secrets both sides proved to hold.
#[derive(Debug)]
pub struct Matched {
    /// s1, the retained secret in common.
    pub s1: Option<SecretBytes>,
    /// s2, the auxiliary secret in common.
    pub s2: Option<SecretBytes>,
    /// s3, the PBX secret in common.
    pub s3: Option<SecretBytes>,
    /// How the cache stood.
    pub status: CacheStatus,
    /// Whether we gave an auxiliary secret and the peer proved the same one.
    pub aux_matched: Option<bool>,
}

/// Compares the peer's IDs (it is `role.peer()`, its H3 `peer_h3`) with what we hold.
/// Retained secrets are tried in one order on both sides (initiator's rs1 with responder's
/// rs1, then rs2; then initiator's rs2), so both pick the same s1.
pub fn match_secrets(
    provider: &CryptoProvider,
    hash: ZrtpHash,
    held: &Held,
    role: Role,
    theirs: &SecretIds,
    peer_h3: &[u8; 32],
) -> Result<Matched, ZrtpError> {
    let label = role.peer().label();
    let proves = |s: &SecretBytes, id: &[u8; 8]| -> Result<bool, ZrtpError> {
        Ok(sotto_crypto::ct_eq(
            &secret_id(provider, hash, s.expose(), label)?,
            id,
        ))
    };
    // (our secret, their ID) pairs, in the initiator-first order.
    let ours = [(&held.rs1, 1u8), (&held.rs2, 2u8)];
    let their = [(&theirs.rs1, 1u8), (&theirs.rs2, 2u8)];
    let mut pairs = Vec::with_capacity(4);
    for (s, si) in ours {
        for (id, ti) in their {
            let (i, r) = match role {
                Role::Initiator => (si, ti),
                Role::Responder => (ti, si),
            };
            pairs.push(((i, r), s, id));
        }
    }
    pairs.sort_by_key(|p| p.0);
    let mut s1 = None;
    for (_, s, id) in pairs {
        if let Some(s) = s
            && proves(s, id)?
        {
            s1 = Some(s.clone());
            break;
        }
    }
    let status = match (&s1, held.rs1.is_some() || held.rs2.is_some()) {
        (Some(_), _) => CacheStatus::Match,
        (None, true) => CacheStatus::Mismatch,
        (None, false) => CacheStatus::New,
    };
    let aux_ok = match &held.aux {
        Some(a) => Some(sotto_crypto::ct_eq(
            &secret_id(provider, hash, a.expose(), peer_h3)?,
            &theirs.aux,
        )),
        None => None,
    };
    let s3 = match &held.pbx {
        Some(p) if proves(p, &theirs.pbx)? => Some(p.clone()),
        _ => None,
    };
    Ok(Matched {
        s1,
        s2: if aux_ok == Some(true) {
            held.aux.clone()
        } else {
            None
        },
        s3,
        status,
        aux_matched: aux_ok,
    })
}
