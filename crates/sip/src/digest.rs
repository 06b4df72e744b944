//! HTTP digest authentication for SIP (RFC 3261 §22, RFC 7616, RFC 8760).
//!
//! - [`Challenge`] and [`Credentials`] parse and print the `Digest` scheme of
//!   `WWW-Authenticate`/`Proxy-Authenticate` and `Authorization`/`Proxy-Authorization`
//!   (RFC 7616 §3.3, §3.4; quoted strings with escapes, case-insensitive parameter names,
//!   unknown parameters ignored). [`parse_challenges`] reads several challenges from one value.
//! - [`Ha1`] is `H(username:realm:password)`, zeroized on drop; a [`UserRecord`] keeps one per
//!   realm and algorithm so a server never stores the clear password.
//! - [`DigestClient`] answers a challenge with `qop=auth`, a random cnonce and a per-nonce
//!   nonce-count, or in RFC 2069 form when the server offers no qop.
//! - [`NonceManager`] is the sans-IO server side: it issues self-authenticating nonces (a
//!   timestamp and a random part, tagged with a keyed hash over a server secret, so verifying
//!   needs no state), expires them (`stale=true`), rejects repeated nonce-counts, and compares
//!   responses in constant time. Time is passed in as `now: Instant`; nothing reads a clock.
//!
//! Hashes and random numbers come only from [`sotto_crypto::CryptoProvider`]. MD5 is offered
//! because RFC 8760 still lets SIP peers use it; the server lists SHA-256 first (RFC 8760 §2.4).

mod client;
mod ha1;
mod params;
mod server;

pub use client::{ClientSecret, DigestClient, select_challenge};
pub use ha1::{Ha1, UserRecord};
pub use params::{Challenge, Credentials, parse_challenges};
pub use server::{NonceConfig, NonceManager, Outcome};

use sotto_crypto::CryptoProvider;
use sotto_crypto::hash::HashAlgorithm;

/// A digest algorithm (RFC 7616 §6.1; RFC 8760 §2 for SIP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Algorithm {
    /// `MD5` (RFC 2617; kept for compatibility, RFC 8760 §3).
    Md5,
    /// `MD5-sess`.
    Md5Sess,
    /// `SHA-256` (RFC 7616 / RFC 8760).
    Sha256,
    /// `SHA-256-sess`.
    Sha256Sess,
}

impl Algorithm {
    /// Parses an `algorithm` parameter value (case-insensitive). `None` if unknown.
    pub fn from_name(name: &str) -> Option<Self> {
        let all = [
            Algorithm::Md5,
            Algorithm::Md5Sess,
            Algorithm::Sha256,
            Algorithm::Sha256Sess,
        ];
        all.into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(name))
    }

    /// The name used on the wire.
    pub const fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Md5Sess => "MD5-sess",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha256Sess => "SHA-256-sess",
        }
    }

    /// The same algorithm without the `-sess` variant: the one an [`Ha1`] is computed with.
    pub const fn base(self) -> Self {
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => Algorithm::Md5,
            Algorithm::Sha256 | Algorithm::Sha256Sess => Algorithm::Sha256,
        }
    }

    /// Whether this is a `-sess` variant (HA1 bound to nonce and cnonce).
    pub const fn is_sess(self) -> bool {
        matches!(self, Algorithm::Md5Sess | Algorithm::Sha256Sess)
    }

    /// The hash function behind the algorithm.
    pub const fn hash(self) -> HashAlgorithm {
        match self.base() {
            Algorithm::Sha256 | Algorithm::Sha256Sess => HashAlgorithm::Sha256,
            Algorithm::Md5 | Algorithm::Md5Sess => HashAlgorithm::Md5,
        }
    }

    /// Length of a hex-encoded hash value of this algorithm.
    pub const fn hex_len(self) -> usize {
        self.hash().output_len() * 2
    }

    /// Preference order when a peer offers several challenges: higher is better.
    pub(crate) const fn strength(self) -> u8 {
        match self {
            Algorithm::Sha256 => 4,
            Algorithm::Sha256Sess => 3,
            Algorithm::Md5 => 2,
            Algorithm::Md5Sess => 1,
        }
    }
}

impl core::fmt::Display for Algorithm {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// A quality of protection (RFC 7616 §3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Qop {
    /// `auth`: authentication only.
    Auth,
    /// `auth-int`: authentication with body integrity (parsed; not produced or accepted here).
    AuthInt,
}

impl Qop {
    /// Parses a qop value (case-insensitive). `None` if unknown.
    pub fn from_name(name: &str) -> Option<Self> {
        if name.eq_ignore_ascii_case("auth") {
            Some(Qop::Auth)
        } else if name.eq_ignore_ascii_case("auth-int") {
            Some(Qop::AuthInt)
        } else {
            None
        }
    }

    /// The name used on the wire.
    pub const fn name(self) -> &'static str {
        match self {
            Qop::Auth => "auth",
            Qop::AuthInt => "auth-int",
        }
    }
}

/// Errors from parsing digest headers or computing digest values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DigestError {
    /// The header is not of the `Digest` scheme.
    #[error("authentication scheme is not Digest")]
    NotDigest,
    /// The header value is not syntactically valid (at byte `offset`).
    #[error("malformed digest header at byte {offset}")]
    Malformed {
        /// Byte offset in the header value where parsing failed.
        offset: usize,
    },
    /// A required parameter is absent.
    #[error("missing digest parameter {0}")]
    MissingParam(&'static str),
    /// A parameter occurs twice.
    #[error("duplicate digest parameter {0}")]
    DuplicateParam(&'static str),
    /// A parameter value is invalid (e.g. `nc` not 8 hex digits).
    #[error("invalid value for digest parameter {0}")]
    InvalidParam(&'static str),
    /// The algorithm is not one this implementation offers.
    #[error("unknown digest algorithm")]
    UnknownAlgorithm,
    /// The challenge asks only for qop values we do not implement (`auth-int`).
    #[error("unsupported qop")]
    UnsupportedQop,
    /// The stored HA1 was computed for another realm or algorithm.
    #[error("HA1 does not match the challenge's realm or algorithm")]
    Ha1Mismatch,
    /// The crypto provider failed or does not offer the hash.
    #[error("crypto provider error")]
    Crypto,
}

/// Hex decoding into a buffer (the crypto API's).
pub(crate) use sotto_crypto::hex::decode as hex_decode;
/// Lower-case hex encoding (the crypto API's, shared by every crate).
pub(crate) use sotto_crypto::hex::encode as hex_lower;

/// `hex(H(parts...))` with the algorithm's hash function, parts joined by `:`.
pub(crate) fn hash_hex_joined(
    provider: &CryptoProvider,
    algorithm: Algorithm,
    parts: &[&[u8]],
) -> Result<String, DigestError> {
    let mut h = provider
        .hash
        .start(algorithm.hash())
        .ok_or(DigestError::Crypto)?;
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            h.update(b":");
        }
        h.update(p);
    }
    Ok(hex_lower(h.finish().as_ref()))
}

/// Computes the `response` value of RFC 7616 §3.4.1 for `qop=auth` (or RFC 2069 when `qop`
/// is `None`), from an HA1 already in hex.
///
/// For `-sess` algorithms the session HA1 `H(HA1:nonce:cnonce)` is derived here. `nc` is the
/// 8-hex-digit nonce count. `qop=auth-int` is refused ([`DigestError::UnsupportedQop`]).
#[allow(clippy::too_many_arguments)]
pub fn compute_response(
    provider: &CryptoProvider,
    algorithm: Algorithm,
    ha1: &Ha1,
    nonce: &str,
    nc: u32,
    cnonce: &str,
    qop: Option<Qop>,
    method: &str,
    uri: &str,
) -> Result<String, DigestError> {
    if ha1.algorithm() != algorithm.base() {
        return Err(DigestError::Ha1Mismatch);
    }
    let session: zeroize::Zeroizing<String>;
    let ha1_hex: &str = if algorithm.is_sess() {
        session = zeroize::Zeroizing::new(hash_hex_joined(
            provider,
            algorithm,
            &[ha1.as_hex().as_bytes(), nonce.as_bytes(), cnonce.as_bytes()],
        )?);
        session.as_str()
    } else {
        ha1.as_hex()
    };
    let ha2 = hash_hex_joined(provider, algorithm, &[method.as_bytes(), uri.as_bytes()])?;
    match qop {
        None => hash_hex_joined(
            provider,
            algorithm,
            &[ha1_hex.as_bytes(), nonce.as_bytes(), ha2.as_bytes()],
        ),
        Some(Qop::Auth) => {
            let nc = format!("{nc:08x}");
            hash_hex_joined(
                provider,
                algorithm,
                &[
                    ha1_hex.as_bytes(),
                    nonce.as_bytes(),
                    nc.as_bytes(),
                    cnonce.as_bytes(),
                    b"auth",
                    ha2.as_bytes(),
                ],
            )
        }
        Some(Qop::AuthInt) => Err(DigestError::UnsupportedQop),
    }
}
