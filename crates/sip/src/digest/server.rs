//! Server side of digest authentication: nonce issuing and response verification
//! (RFC 7616 §3.3, §3.4, §5.4, §5.5; RFC 3261 §22.4; RFC 8760 §2.4).
//!
//! A nonce is `hex(issued_ms || random || tag)`: `issued_ms` is the time since the manager's
//! epoch (8 bytes, big endian), `random` 8 bytes from the provider RNG, and `tag` the first 16
//! bytes of `HMAC-SHA-256(secret, label || len(realm) || realm || issued_ms || random)`.
//! Verifying a nonce therefore needs no table; only nonce-counts are remembered, in a bounded
//! map.

use super::{Algorithm, Challenge, Credentials, DigestError, Qop, compute_response, hex_decode};
use super::{UserRecord, hex_lower};
use sotto_crypto::CryptoProvider;
use sotto_crypto::mac::{MacAlgorithm, MacKey};
use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

const NONCE_BYTES: usize = 8 + 8 + 16;
const TAG_LABEL: &[u8] = b"sotto digest nonce v1";

/// Server digest policy. `Default` is the secure choice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NonceConfig {
    /// How long a nonce is accepted; after that a right response gets [`Outcome::Stale`].
    pub lifetime: Duration,
    /// How many nonces' highest `nc` are remembered (bounded memory against floods).
    pub max_tracked: usize,
    /// Algorithms challenged with, in order of preference (SHA-256 first, RFC 8760 §2.4).
    pub algorithms: Vec<Algorithm>,
    /// Accept RFC 2069 responses (no qop, so no nonce-count and no replay protection within
    /// the nonce lifetime). Off by default.
    pub allow_rfc2069: bool,
}

impl Default for NonceConfig {
    fn default() -> Self {
        NonceConfig {
            lifetime: Duration::from_secs(300),
            max_tracked: 4096,
            algorithms: vec![Algorithm::Sha256, Algorithm::Md5],
            allow_rfc2069: false,
        }
    }
}

/// The result of checking credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// Authenticated.
    Ok,
    /// The response does not match the stored HA1 (wrong password).
    Mismatch,
    /// The response is right but the nonce expired (or its count history was evicted):
    /// challenge again with `stale=true`.
    Stale,
    /// The nonce-count was already used or is lower than one already seen.
    Replay,
    /// The algorithm is not one this server offers.
    UnknownAlgorithm,
    /// The credentials lack something required (qop policy, cnonce, nc) or use `auth-int`.
    Malformed,
    /// The credentials are for another realm.
    RealmMismatch,
    /// The `uri` parameter is not the Request-URI.
    UriMismatch,
    /// The nonce was not issued by this server (tampered, foreign or from the future).
    InvalidNonce,
    /// No HA1 is stored for this user, realm and algorithm. Answer it like [`Outcome::Mismatch`]
    /// so as not to reveal which users exist.
    UnknownUser,
}

impl Outcome {
    /// Whether the request is authenticated.
    pub fn is_ok(self) -> bool {
        self == Outcome::Ok
    }
}

/// Issues and verifies digest nonces for one server (sans-IO: time is passed in).
pub struct NonceManager {
    provider: &'static CryptoProvider,
    config: NonceConfig,
    /// HMAC-SHA-256 keyed with the server secret (the key lives only inside the backend).
    tag_key: Box<dyn MacKey>,
    epoch: Instant,
    /// nonce (raw bytes) -> (issued_ms, highest nc seen).
    seen: HashMap<[u8; NONCE_BYTES], (u64, u32)>,
    /// (issued_ms, nonce) ordered for eviction of the oldest.
    order: BTreeSet<(u64, [u8; NONCE_BYTES])>,
    /// Nonces issued at or before this time whose counts may have been evicted are stale.
    evicted_floor_ms: Option<u64>,
}

impl core::fmt::Debug for NonceManager {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("NonceManager")
            .field("config", &self.config)
            .field("tracked", &self.seen.len())
            .finish_non_exhaustive()
    }
}

impl NonceManager {
    /// A manager with a fresh random 256-bit secret; `now` is its epoch.
    pub fn new(
        provider: &'static CryptoProvider,
        config: NonceConfig,
        now: Instant,
    ) -> Result<Self, DigestError> {
        let mut secret = Zeroizing::new([0u8; 32]);
        provider
            .rng
            .fill(secret.as_mut())
            .map_err(|_| DigestError::Crypto)?;
        Self::with_secret(provider, config, secret.as_ref(), now)
    }

    /// A manager with a given secret (e.g. one shared by a cluster, at least 32 bytes
    /// recommended); `now` is its epoch.
    pub fn with_secret(
        provider: &'static CryptoProvider,
        config: NonceConfig,
        secret: &[u8],
        now: Instant,
    ) -> Result<Self, DigestError> {
        let tag_key = provider
            .mac
            .hmac(MacAlgorithm::Sha256, secret)
            .map_err(|_| DigestError::Crypto)?;
        Ok(NonceManager {
            provider,
            config,
            tag_key,
            epoch: now,
            seen: HashMap::new(),
            order: BTreeSet::new(),
            evicted_floor_ms: None,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &NonceConfig {
        &self.config
    }

    /// How many nonces currently have a remembered nonce-count.
    pub fn tracked(&self) -> usize {
        self.seen.len()
    }

    /// Issues a fresh nonce for `realm`.
    pub fn issue_nonce(&self, realm: &str, now: Instant) -> Result<String, DigestError> {
        let ms = self.ms_since_epoch(now);
        let mut random = [0u8; 8];
        self.provider
            .rng
            .fill(&mut random)
            .map_err(|_| DigestError::Crypto)?;
        let tag = self.tag(realm, ms, &random)?;
        let mut raw = [0u8; NONCE_BYTES];
        // invariant: NONCE_BYTES = 8 + 8 + 16, so these constant ranges are in bounds.
        raw[..8].copy_from_slice(&ms.to_be_bytes());
        raw[8..16].copy_from_slice(&random);
        raw[16..].copy_from_slice(&tag);
        Ok(hex_lower(&raw))
    }

    /// One challenge for `realm` per configured algorithm, preferred first, sharing one nonce.
    /// Set `stale` after an [`Outcome::Stale`].
    pub fn challenges(
        &self,
        realm: &str,
        stale: bool,
        now: Instant,
    ) -> Result<Vec<Challenge>, DigestError> {
        let nonce = self.issue_nonce(realm, now)?;
        Ok(self
            .config
            .algorithms
            .iter()
            .map(|&a| {
                let mut c = Challenge::new(realm, nonce.clone(), a);
                c.stale = stale;
                c
            })
            .collect())
    }

    /// Verifies `creds` for a request `method request_uri` in `realm`, against `user` (the
    /// record found by `creds.username`, or `None`). Records the nonce-count on success.
    ///
    /// Checks, in order: realm, algorithm, qop policy, uri, nonce authenticity, user, response
    /// (constant time), nonce age ([`Outcome::Stale`] only for an otherwise right response),
    /// nonce-count ([`Outcome::Replay`]).
    pub fn verify(
        &mut self,
        creds: &Credentials,
        method: &str,
        request_uri: &str,
        realm: &str,
        user: Option<&UserRecord>,
        now: Instant,
    ) -> Outcome {
        if creds.realm != realm {
            return Outcome::RealmMismatch;
        }
        if !self.config.algorithms.contains(&creds.algorithm) {
            return Outcome::UnknownAlgorithm;
        }
        match creds.qop {
            Some(Qop::Auth) if creds.cnonce.is_some() && creds.nc.is_some() => {}
            None if self.config.allow_rfc2069 => {}
            _ => return Outcome::Malformed,
        }
        if creds.uri != request_uri {
            return Outcome::UriMismatch;
        }
        let Some((raw, issued_ms)) = self.check_nonce(&creds.nonce, realm) else {
            return Outcome::InvalidNonce;
        };
        let now_ms = self.ms_since_epoch(now);
        if issued_ms > now_ms {
            return Outcome::InvalidNonce;
        }
        let Some(ha1) = user
            .filter(|u| u.username() == creds.username)
            .and_then(|u| u.ha1(realm, creds.algorithm))
        else {
            return Outcome::UnknownUser;
        };
        let nc = creds.nc.unwrap_or(0);
        let Ok(expected) = compute_response(
            self.provider,
            creds.algorithm,
            ha1,
            &creds.nonce,
            nc,
            creds.cnonce.as_deref().unwrap_or(""),
            creds.qop,
            method,
            &creds.uri,
        ) else {
            return Outcome::Malformed;
        };
        if !sotto_crypto::ct_eq(expected.as_bytes(), creds.response.as_bytes()) {
            return Outcome::Mismatch;
        }
        let lifetime_ms = u64::try_from(self.config.lifetime.as_millis()).unwrap_or(u64::MAX);
        if now_ms.saturating_sub(issued_ms) > lifetime_ms {
            return Outcome::Stale;
        }
        if creds.qop.is_none() {
            return Outcome::Ok; // RFC 2069: nothing to count
        }
        self.prune(now_ms, lifetime_ms);
        match self.seen.get_mut(&raw) {
            Some((_, highest)) => {
                if nc <= *highest {
                    return Outcome::Replay;
                }
                *highest = nc;
            }
            None => {
                if self.evicted_floor_ms.is_some_and(|f| issued_ms <= f) {
                    // Its history may have been forgotten: make the client take a new nonce.
                    return Outcome::Stale;
                }
                if nc == 0 {
                    return Outcome::Replay;
                }
                self.seen.insert(raw, (issued_ms, nc));
                self.order.insert((issued_ms, raw));
                self.evict_to_bound();
            }
        }
        Outcome::Ok
    }

    /// Decodes and authenticates a nonce for `realm`: `(raw bytes, issued_ms)`.
    fn check_nonce(&self, nonce: &str, realm: &str) -> Option<([u8; NONCE_BYTES], u64)> {
        let mut raw = [0u8; NONCE_BYTES];
        if !hex_decode(nonce, &mut raw) {
            return None;
        }
        let ms = u64::from_be_bytes(raw.get(..8)?.try_into().ok()?);
        let random: [u8; 8] = raw.get(8..16)?.try_into().ok()?;
        let tag = self.tag(realm, ms, &random).ok()?;
        sotto_crypto::ct_eq(&tag, raw.get(16..)?).then_some((raw, ms))
    }

    fn tag(&self, realm: &str, ms: u64, random: &[u8; 8]) -> Result<[u8; 16], DigestError> {
        let mut tag = [0u8; 16];
        self.tag_key
            .compute(
                &[
                    TAG_LABEL,
                    &(realm.len() as u64).to_be_bytes(),
                    realm.as_bytes(),
                    &ms.to_be_bytes(),
                    random,
                ],
                &mut tag,
            )
            .map_err(|_| DigestError::Crypto)?;
        Ok(tag)
    }

    fn ms_since_epoch(&self, now: Instant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.epoch).as_millis()).unwrap_or(u64::MAX)
    }

    /// Forgets counts of expired nonces (they are stale anyway, whatever their count).
    fn prune(&mut self, now_ms: u64, lifetime_ms: u64) {
        while let Some(&(issued, raw)) = self.order.first() {
            if now_ms.saturating_sub(issued) <= lifetime_ms {
                break;
            }
            self.order.pop_first();
            self.seen.remove(&raw);
        }
    }

    /// Evicts the oldest entries above `max_tracked`, raising the stale floor.
    fn evict_to_bound(&mut self) {
        while self.seen.len() > self.config.max_tracked.max(1) {
            let Some((issued, raw)) = self.order.pop_first() else {
                break;
            };
            self.seen.remove(&raw);
            self.evicted_floor_ms = Some(self.evicted_floor_ms.map_or(issued, |f| f.max(issued)));
        }
    }
}
