//! The key-continuity cache (RFC 6189 §4.9): per peer ZID the retained secrets rs1 and rs2,
//! the PBX secret, whether the users verified the SAS, and the peer's SIP URI.
//!
//! This is the in-memory model the engine reads and updates; the agent loads it from its
//! data directory and writes it back (SQLite, atomically) at its edge. A cache mismatch (we
//! held a secret for this ZID and the peer proved none) marks the peer `unsafe` until the
//! users compare the SAS again.

use std::collections::HashMap;

use sotto_crypto::secret::SecretBytes;

/// What we remember of one peer.
#[derive(Debug, Clone, Default)]
pub struct PeerSecrets {
    /// The newest retained secret.
    pub rs1: Option<SecretBytes>,
    /// The one before it.
    pub rs2: Option<SecretBytes>,
    /// The PBX secret (trusted-MitM enrollment, §7.3), if enrolled.
    pub pbx: Option<SecretBytes>,
    /// An auxiliary secret the application shares with this peer (§4.3: the messaging
    /// layer binds identity keys to the SAS through it), used when the call gives none.
    pub aux: Option<SecretBytes>,
    /// The users compared the SAS and confirmed it.
    pub verified: bool,
    /// A cache mismatch was seen and the SAS not verified since.
    pub unsafe_mismatch: bool,
    /// The peer's address of record, as last seen.
    pub uri: Option<String>,
}

/// Our ZID and what we remember of each peer.
#[derive(Debug, Clone)]
pub struct ZidCache {
    zid: [u8; 12],
    peers: HashMap<[u8; 12], PeerSecrets>,
    dirty: bool,
}

/// How the cache stood for one exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheStatus {
    /// No secret was held for this peer: a first call.
    New,
    /// A retained secret matched: key continuity holds.
    Match,
    /// We held a secret and the peer did not prove it: a man in the middle, or a peer that
    /// lost its cache. The SAS must be compared again.
    Mismatch,
}

impl CacheStatus {
    /// `new`, `match`, `mismatch`.
    pub fn name(self) -> &'static str {
        match self {
            CacheStatus::New => "new",
            CacheStatus::Match => "match",
            CacheStatus::Mismatch => "mismatch",
        }
    }
}

impl ZidCache {
    /// An empty cache with our `zid` (drawn at random once, then kept).
    pub fn new(zid: [u8; 12]) -> Self {
        ZidCache {
            zid,
            peers: HashMap::new(),
            dirty: false,
        }
    }

    /// Our ZID.
    pub fn zid(&self) -> &[u8; 12] {
        &self.zid
    }

    /// What we hold for `peer`.
    pub fn peer(&self, peer: &[u8; 12]) -> Option<&PeerSecrets> {
        self.peers.get(peer)
    }

    /// Every peer (for storage).
    pub fn peers(&self) -> impl Iterator<Item = (&[u8; 12], &PeerSecrets)> {
        self.peers.iter()
    }

    /// Puts a peer's record (when loading).
    pub fn insert(&mut self, peer: [u8; 12], secrets: PeerSecrets) {
        self.peers.insert(peer, secrets);
    }

    /// After a successful exchange: the new rs1, the old one becomes rs2 (§4.6.1); a
    /// mismatch clears the verified flag and marks the peer unsafe.
    pub fn update(
        &mut self,
        peer: [u8; 12],
        new_rs1: SecretBytes,
        status: CacheStatus,
        uri: Option<&str>,
    ) {
        let e = self.peers.entry(peer).or_default();
        e.rs2 = e.rs1.take();
        e.rs1 = Some(new_rs1);
        if status == CacheStatus::Mismatch {
            e.verified = false;
            e.unsafe_mismatch = true;
        }
        if let Some(u) = uri {
            e.uri = Some(u.to_owned());
        }
        self.dirty = true;
    }

    /// Keeps `aux` as the auxiliary secret shared with `peer` (`None` forgets it).
    pub fn set_aux(&mut self, peer: [u8; 12], aux: Option<SecretBytes>) {
        self.peers.entry(peer).or_default().aux = aux;
        self.dirty = true;
    }

    /// The users confirmed (`true`) or rejected the SAS shown for `peer`.
    pub fn set_verified(&mut self, peer: [u8; 12], verified: bool) {
        let e = self.peers.entry(peer).or_default();
        e.verified = verified;
        if verified {
            e.unsafe_mismatch = false;
        }
        self.dirty = true;
    }

    /// Whether something changed since [`ZidCache::mark_saved`].
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// The cache was written to storage.
    pub fn mark_saved(&mut self) {
        self.dirty = false;
    }
}
