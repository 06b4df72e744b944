//! Client side of digest authentication (RFC 7616 §3.4, RFC 3261 §22.2, §22.3).

use super::{
    Algorithm, Challenge, Credentials, DigestError, Ha1, Qop, compute_response, hex_lower,
};
use sotto_crypto::CryptoProvider;

/// How many nonces a [`DigestClient`] keeps a count for (oldest forgotten first).
const MAX_NONCES: usize = 16;

/// What the client authenticates with.
#[derive(Debug, Clone, Copy)]
pub enum ClientSecret<'a> {
    /// The clear password (HA1 is derived per challenge and not kept).
    Password(&'a str),
    /// A precomputed HA1; it must match the challenge's realm and base algorithm.
    Ha1(&'a Ha1),
}

/// Answers digest challenges, counting `nc` per nonce (RFC 7616 §3.4: the count of requests
/// sent with that nonce, starting at 1).
#[derive(Debug)]
pub struct DigestClient {
    provider: &'static CryptoProvider,
    counts: Vec<(String, u32)>,
}

impl DigestClient {
    /// A client using `provider` for hashes and cnonces.
    pub fn new(provider: &'static CryptoProvider) -> Self {
        DigestClient {
            provider,
            counts: Vec::new(),
        }
    }

    /// Produces credentials answering `challenge` for a request `method uri`.
    ///
    /// Uses `qop=auth` when offered, with a 128-bit random cnonce; uses RFC 2069 form (no qop,
    /// no cnonce, no nc) when the challenge offers no qop. A challenge offering only `auth-int`
    /// gives [`DigestError::UnsupportedQop`]. With [`ClientSecret::Ha1`], the HA1's algorithm
    /// must be the challenge's base algorithm ([`DigestError::Ha1Mismatch`]).
    pub fn respond(
        &mut self,
        challenge: &Challenge,
        method: &str,
        uri: &str,
        username: &str,
        secret: ClientSecret<'_>,
    ) -> Result<Credentials, DigestError> {
        let qop = if challenge.qop.contains(&Qop::Auth) {
            Some(Qop::Auth)
        } else if challenge.qop.is_empty() {
            None
        } else {
            return Err(DigestError::UnsupportedQop);
        };
        let derived;
        let ha1 = match secret {
            ClientSecret::Ha1(h) => h,
            ClientSecret::Password(p) => {
                derived = Ha1::from_password(
                    self.provider,
                    challenge.algorithm,
                    username,
                    &challenge.realm,
                    p,
                )?;
                &derived
            }
        };
        let (cnonce, nc) = match qop {
            Some(_) => {
                let mut raw = [0u8; 16];
                self.provider
                    .rng
                    .fill(&mut raw)
                    .map_err(|_| DigestError::Crypto)?;
                (Some(hex_lower(&raw)), Some(self.next_nc(&challenge.nonce)))
            }
            None => (None, None),
        };
        let response = compute_response(
            self.provider,
            challenge.algorithm,
            ha1,
            &challenge.nonce,
            nc.unwrap_or(0),
            cnonce.as_deref().unwrap_or(""),
            qop,
            method,
            uri,
        )?;
        Ok(Credentials {
            username: username.to_owned(),
            realm: challenge.realm.clone(),
            nonce: challenge.nonce.clone(),
            uri: uri.to_owned(),
            response,
            algorithm: challenge.algorithm,
            algorithm_explicit: challenge.algorithm_explicit
                || challenge.algorithm != Algorithm::Md5,
            cnonce,
            opaque: challenge.opaque.clone(),
            qop,
            nc,
        })
    }

    fn next_nc(&mut self, nonce: &str) -> u32 {
        if let Some(pos) = self.counts.iter().position(|(n, _)| n == nonce) {
            let (n, c) = self.counts.remove(pos);
            let c = c.saturating_add(1);
            self.counts.push((n, c));
            return c;
        }
        if self.counts.len() >= MAX_NONCES {
            self.counts.remove(0);
        }
        self.counts.push((nonce.to_owned(), 1));
        1
    }
}

/// Picks the challenge to answer among several: the strongest algorithm (SHA-256 before MD5,
/// RFC 8760 §2.4), among those we can answer (`qop=auth` offered, or no qop at all).
pub fn select_challenge(challenges: &[Challenge]) -> Option<&Challenge> {
    challenges
        .iter()
        .filter(|c| c.qop.is_empty() || c.qop.contains(&Qop::Auth))
        .max_by_key(|c| c.algorithm.strength())
}
