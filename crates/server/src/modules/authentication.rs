//! Authentication: HTTP digest (RFC 3261 §22, RFC 7616, RFC 8760: SHA-256 and MD5 challenges
//! both offered, `qop=auth`, stale nonces) and TLS client certificates (the From URI must match
//! a SAN URI or the CN of the certificate the connection presented, as Flexisip does).
//!
//! - REGISTER is challenged with 401/WWW-Authenticate; other requests whose From is in one of
//!   our domains with 407/Proxy-Authenticate. Requests from foreign domains are not challenged
//!   (the router only delivers them to local users: no open relay). ACK, CANCEL and in-dialog
//!   requests are not challenged (RFC 3261 §22.1 for ACK/CANCEL).
//! - An unknown user and a wrong password get exactly the same answer (a fresh challenge), so
//!   user names cannot be enumerated. Every failure is reported to anti-flood.
//! - The credentials of our realm are removed before forwarding (they are ours alone).

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Instant;

use sotto_crypto::CryptoProvider;
use sotto_sip::digest::{Credentials, NonceConfig, NonceManager, Outcome};
use sotto_sip::message::{Method, StatusCode, Uri};

use crate::config::AuthenticationConfig;
use crate::modules::store_outage::StoreOutage;
use crate::pipeline::{Locality, Module, Reply, RequestContext, Verdict};
use crate::store_ops::{StoreAnswer, StoreOp};

/// Used nonces whose count is remembered (replay protection). Past that, the oldest are
/// forgotten and nonces issued before them are answered as stale, so this bounds how long a
/// client may take to answer a challenge while others authenticate: 32,768 is about 4.5 s at
/// 7,000 authentications/s (the default 4,096 was under 0.6 s), for about 3.5 MiB at most.
const NONCES_TRACKED: usize = 32_768;

/// Bytes reserved for one formatted challenge, besides its realm.
const CHALLENGE_CAPACITY: usize = 160;

/// The authentication module.
pub struct Authentication {
    config: AuthenticationConfig,
    locality: Arc<Locality>,
    realm: String,
    nonces: NonceManager,
    failures: u64,
    outage: StoreOutage,
}

impl std::fmt::Debug for Authentication {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authentication")
            .field("realm", &self.realm)
            .field("failures", &self.failures)
            .finish_non_exhaustive()
    }
}

/// Builds the module; fails only if the crypto provider cannot make a nonce secret.
impl Authentication {
    /// A module for `realm` (users' records are fetched from the store, [`StoreOp::User`]).
    pub fn new(
        config: AuthenticationConfig,
        realm: &str,
        locality: Arc<Locality>,
        provider: &'static CryptoProvider,
        now: Instant,
    ) -> Result<Self, sotto_sip::digest::DigestError> {
        let nonce_config = NonceConfig {
            lifetime: config.nonce_lifetime,
            algorithms: config.algorithms.clone(),
            max_tracked: NONCES_TRACKED,
            ..NonceConfig::default()
        };
        Ok(Authentication {
            nonces: NonceManager::new(provider, nonce_config, now)?,
            config,
            locality,
            realm: realm.to_owned(),
            failures: 0,
            outage: StoreOutage::default(),
        })
    }

    /// Authentication failures seen so far.
    pub fn failures(&self) -> u64 {
        self.failures
    }

    fn challenge(&self, register: bool, stale: bool, now: Instant) -> Verdict {
        let Ok(challenges) = self.nonces.challenges(&self.realm, stale, now) else {
            return Reply::new(StatusCode::SERVER_INTERNAL_ERROR).verdict();
        };
        let (status, header) = if register {
            (StatusCode::UNAUTHORIZED, "WWW-Authenticate")
        } else {
            (
                StatusCode::PROXY_AUTHENTICATION_REQUIRED,
                "Proxy-Authenticate",
            )
        };
        let mut reply = Reply::new(status);
        for c in challenges {
            // Sized for a SHA-256 challenge, so that formatting does not grow the string
            // several times.
            let mut value = String::with_capacity(CHALLENGE_CAPACITY + self.realm.len());
            // Writing to a String cannot fail.
            let _ = write!(value, "{c}");
            reply = reply.with(header, value);
        }
        reply.verdict()
    }
}

/// Whether a certificate identity names `uri` (`sip:user@host`, or `user@host` for a CN).
fn identity_matches(identity: &str, uri: &Uri) -> bool {
    let (Some(user), host) = (uri.user(), uri.host()) else {
        return false;
    };
    let bare = identity
        .strip_prefix("sips:")
        .or_else(|| identity.strip_prefix("sip:"))
        .unwrap_or(identity);
    match bare.rsplit_once('@') {
        Some((u, h)) => u == user && h.eq_ignore_ascii_case(host),
        None => false,
    }
}

impl Module for Authentication {
    fn name(&self) -> &'static str {
        "authentication"
    }

    fn counters(&self, out: &mut dyn FnMut(&'static str, u64)) {
        out("store_failures_total", self.outage.total());
    }

    fn on_request(&mut self, ctx: &mut RequestContext, now: Instant) -> Verdict {
        if !self.config.enabled {
            return Verdict::Continue;
        }
        let answer = ctx.answer.take();
        let req = &ctx.request;
        let method = req.method().clone();
        if matches!(method, Method::Ack | Method::Cancel) || req.to_tag().ok().flatten().is_some() {
            return Verdict::Continue;
        }
        let register = method == Method::Register;
        let (Ok(from), Ok(to)) = (req.from(), req.to()) else {
            return Reply::new(StatusCode::BAD_REQUEST).verdict();
        };
        // The identity is the To URI of a REGISTER, the From URI otherwise.
        let identity_uri = if register { &to.uri } else { &from.uri };
        if !register && !self.locality.is_local_host(identity_uri.host()) {
            return Verdict::Continue;
        }
        let Some(user) = identity_uri.user() else {
            return Reply::new(StatusCode::FORBIDDEN).verdict();
        };
        if self.config.tls_client_certificates
            && ctx
                .client_identities
                .iter()
                .any(|i| identity_matches(i, identity_uri))
        {
            ctx.authenticated = Some(user.to_owned());
            return Verdict::Continue;
        }
        let header = if register {
            "Authorization"
        } else {
            "Proxy-Authorization"
        };
        let creds = req
            .headers()
            .get_all(header)
            .filter_map(|v| Credentials::parse(v).ok())
            .find(|c| c.realm == self.realm);
        let Some(creds) = creds else {
            return self.challenge(register, false, now);
        };
        let record = match answer {
            Some(StoreAnswer::User(Ok(r))) => {
                self.outage.answered("authentication");
                r
            }
            Some(StoreAnswer::User(Err(e))) => return self.outage.failed("authentication", &e),
            _ => {
                return Verdict::Fetch(StoreOp::User {
                    username: creds.username.clone(),
                    realm: self.realm.clone(),
                });
            }
        };
        // The digest `uri` must be the Request-URI (RFC 7616 §3.4.6), or name this server
        // itself: SIPp answers with the server's address whatever the Request-URI is.
        let names_us = Uri::parse(&creds.uri).is_ok_and(|u| self.locality.is_self(&u));
        let uri = if names_us {
            creds.uri.as_str()
        } else {
            req.uri().as_str()
        };
        let outcome = self.nonces.verify(
            &creds,
            method.as_str(),
            uri,
            &self.realm,
            record.as_ref(),
            now,
        );
        match outcome {
            Outcome::Ok if creds.username == user => {
                ctx.authenticated = Some(user.to_owned());
                if !register {
                    remove_our_credentials(ctx, &self.realm);
                }
                Verdict::Continue
            }
            Outcome::Ok => {
                // Right password, but for another identity than the From/To user.
                self.failures += 1;
                ctx.auth_failure = true;
                ctx.auth_account = Some(user.to_owned());
                Reply::new(StatusCode::FORBIDDEN).verdict()
            }
            Outcome::Stale => self.challenge(register, true, now),
            other => {
                tracing::debug!(outcome = ?other, "digest authentication failed");
                self.failures += 1;
                ctx.auth_failure = true;
                ctx.auth_account = Some(user.to_owned());
                self.challenge(register, false, now)
            }
        }
    }
}

/// Removes the Proxy-Authorization values of `realm` (keeping others, for other proxies).
fn remove_our_credentials(ctx: &mut RequestContext, realm: &str) {
    let keep: Vec<String> = ctx
        .request
        .headers()
        .get_all("Proxy-Authorization")
        .filter(|v| Credentials::parse(v).map_or(true, |c| c.realm != realm))
        .map(str::to_owned)
        .collect();
    let h = ctx.request.headers_mut();
    h.remove("Proxy-Authorization");
    for v in keep {
        h.push("Proxy-Authorization", v);
    }
}

#[cfg(test)]
mod tests;
