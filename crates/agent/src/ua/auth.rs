//! Digest credentials for a challenged request, and the auth label of one the proxy accepts
//! without a challenge.

use sotto_sip::message::{Response, StatusCode};

use super::{UaConfig, UserAgent};

/// The auth label of requests the proxy accepted on our TLS client certificate.
const TLS_CLIENT_CERT_AUTH: &str = "tls-client-certificate";

impl UserAgent {
    /// Digest credentials answering `r`'s challenge for `method uri`: (header name, value,
    /// auth label `digest-<algorithm>`); `None` without a usable challenge or a password.
    pub(super) fn credentials(
        &mut self,
        r: &Response,
        method: &str,
        uri: &str,
    ) -> Option<(&'static str, String, String)> {
        use sotto_sip::digest::{ClientSecret, parse_challenges, select_challenge};
        let (challenge_header, answer_header) = if r.status() == StatusCode::UNAUTHORIZED {
            ("WWW-Authenticate", "Authorization")
        } else {
            ("Proxy-Authenticate", "Proxy-Authorization")
        };
        let mut challenges = Vec::new();
        for v in r.headers().get_all(challenge_header) {
            if let Ok(mut c) = parse_challenges(v) {
                challenges.append(&mut c);
            }
        }
        let ch = select_challenge(&challenges)?;
        if self.config.password.is_empty() {
            return None;
        }
        let creds = self
            .digest
            .respond(
                ch,
                method,
                uri,
                &self.config.username,
                ClientSecret::Password(&self.config.password),
            )
            .ok()?;
        Some((
            answer_header,
            creds.to_string(),
            format!("digest-{}", creds.algorithm.name()),
        ))
    }
}

/// The auth of a request the proxy accepts without a challenge: our TLS client certificate when
/// we present one to the proxy (not on a direct call), else `none`.
pub(super) fn unchallenged_auth(config: &UaConfig, direct: bool) -> &'static str {
    if config.client_certificate && !direct {
        TLS_CLIENT_CERT_AUTH
    } else {
        "none"
    }
}
