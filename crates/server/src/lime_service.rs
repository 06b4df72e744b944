//! The LIME key server as an HTTP service, sans-IO: a parsed HTTP request and the time in,
//! a response out (the HTTPS edge is `driver/lime_https.rs`).
//!
//! What Linphone clients send: `POST <path>` with `Content-Type: x3dh/octet-stream`, the
//! device id (its GRUU) in `X-Lime-user-identity` (newer clients) or `From` (older ones),
//! and HTTP digest credentials of the SIP account of the device's user (RFC 7616, the same
//! user database and realm as SIP: the domain of the device id). A device can only act as
//! itself: the authenticated user must be the device id's user. The X3DH protocol's own
//! errors are replies of the protocol (HTTP 200, `x3dh/octet-stream`), as liblime expects.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use sotto_crypto::CryptoProvider;
use sotto_lime::CurveId;
use sotto_lime::keyserver::{KeyServer, KeyStore, Limits};
use sotto_lime::protocol::{ErrorCode, MessageType, Response};
use sotto_sip::digest::{Credentials, NonceConfig, NonceManager, Outcome};
use sotto_store::UserStore;

/// The content type of the X3DH protocol.
pub const CONTENT_TYPE: &str = "x3dh/octet-stream";

/// An HTTP request as the edge read it.
#[derive(Debug, Clone)]
pub struct HttpRequest<'a> {
    /// `POST`, `GET`...
    pub method: &'a str,
    /// The request target (path).
    pub target: &'a str,
    /// Header fields (names compared without case).
    pub headers: Vec<(&'a str, &'a str)>,
    /// The body.
    pub body: &'a [u8],
}

impl HttpRequest<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
    }
}

/// The response to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Extra header fields.
    pub headers: Vec<(String, String)>,
    /// `Content-Type` of the body (none when empty).
    pub content_type: Option<&'static str>,
    /// The body.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// A bare response with `status` (framing errors of the edge: 400, 413).
    pub fn bad(status: u16) -> Self {
        Self::status(status)
    }

    fn status(status: u16) -> Self {
        HttpResponse {
            status,
            headers: Vec::new(),
            content_type: None,
            body: Vec::new(),
        }
    }

    fn x3dh(body: Vec<u8>) -> Self {
        HttpResponse {
            status: 200,
            headers: Vec::new(),
            content_type: Some(CONTENT_TYPE),
            body,
        }
    }
}

/// Settings of the service.
#[derive(Debug, Clone)]
pub struct LimeServiceConfig {
    /// The path clients post to (`/lime`).
    pub path: String,
    /// The digest realm (the SIP realm: the same accounts).
    pub realm: String,
    /// The domains whose devices may register here.
    pub domains: Vec<String>,
    /// Curves served.
    pub curves: Vec<CurveId>,
    /// Per-device limits of the key server.
    pub limits: Limits,
    /// getPeerBundle requests one device may make per minute.
    pub bundle_requests_per_minute: u32,
}

impl Default for LimeServiceConfig {
    fn default() -> Self {
        LimeServiceConfig {
            path: "/lime".into(),
            realm: String::new(),
            domains: Vec::new(),
            curves: vec![CurveId::C25519, CurveId::C448],
            limits: Limits::default(),
            bundle_requests_per_minute: 600,
        }
    }
}

/// The user and domain of a device id (`sip:alice@example.test;gr=…` or
/// `<sip:alice@example.test;gr=…>`, also with a display name).
pub fn device_user(device: &str) -> Option<(&str, &str)> {
    let d = device.trim();
    let d = match (d.find('<'), d.rfind('>')) {
        (Some(a), Some(b)) if a < b => &d[a + 1..b],
        _ => d,
    };
    let rest = d.strip_prefix("sips:").or_else(|| d.strip_prefix("sip:"))?;
    let (user, host) = rest.split_once('@')?;
    let host = host.split([';', '?', '>']).next()?;
    let host = host.split(':').next()?;
    (!user.is_empty() && !host.is_empty()).then_some((user, host))
}

/// The key server service.
pub struct LimeService<S: KeyStore> {
    server: KeyServer<S>,
    users: Arc<dyn UserStore>,
    nonces: Mutex<NonceManager>,
    config: LimeServiceConfig,
    bundle_windows: Mutex<HashMap<String, (Instant, u32)>>,
}

impl<S: KeyStore> LimeService<S> {
    /// A service over `store`, authenticating against `users`.
    pub fn new(
        provider: &'static CryptoProvider,
        store: S,
        users: Arc<dyn UserStore>,
        config: LimeServiceConfig,
        now: Instant,
    ) -> Result<Self, sotto_sip::digest::DigestError> {
        Ok(LimeService {
            server: KeyServer::new(store, config.curves.clone(), config.limits),
            users,
            nonces: Mutex::new(NonceManager::new(provider, NonceConfig::default(), now)?),
            config,
            bundle_windows: Mutex::new(HashMap::new()),
        })
    }

    /// The key server logic (its store).
    pub fn key_server(&self) -> &KeyServer<S> {
        &self.server
    }

    fn challenge(&self, realm: &str, stale: bool, now: Instant) -> HttpResponse {
        let mut r = HttpResponse::status(401);
        let nonces = self.nonces.lock().unwrap_or_else(PoisonError::into_inner);
        if let Ok(challenges) = nonces.challenges(realm, stale, now) {
            for c in challenges {
                r.headers.push(("WWW-Authenticate".into(), c.to_string()));
            }
        }
        r
    }

    /// Too many bundle requests from `device` in the current minute.
    fn bundle_limited(&self, device: &str, now: Instant) -> bool {
        let mut w = self
            .bundle_windows
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if w.len() > 100_000 {
            w.retain(|_, (start, _)| now.duration_since(*start) < Duration::from_secs(60));
        }
        let e = w.entry(device.to_owned()).or_insert((now, 0));
        if now.duration_since(e.0) >= Duration::from_secs(60) {
            *e = (now, 0);
        }
        e.1 += 1;
        e.1 > self.config.bundle_requests_per_minute
    }

    /// The response to `req` at `now`.
    pub fn handle(&self, req: &HttpRequest<'_>, now: Instant) -> HttpResponse {
        if req.target.split('?').next() != Some(self.config.path.as_str()) {
            return HttpResponse::status(404);
        }
        if req.method != "POST" {
            let mut r = HttpResponse::status(405);
            r.headers.push(("Allow".into(), "POST".into()));
            return r;
        }
        let curve = req.body.get(2).copied().and_then(CurveId::from_id);
        let curve_or_default = curve.unwrap_or(CurveId::C25519);
        let error = |code, text: &str| {
            HttpResponse::x3dh(Response::Error(code, text.into()).encode(curve_or_default))
        };
        let content_type = req.header("Content-Type").unwrap_or("");
        if !content_type.eq_ignore_ascii_case(CONTENT_TYPE) {
            return error(ErrorCode::BadContentType, "expected x3dh/octet-stream");
        }
        let Some(device) = req
            .header("X-Lime-user-identity")
            .or_else(|| req.header("From"))
            .map(|d| d.trim_matches(|c| c == '<' || c == '>'))
        else {
            return error(
                ErrorCode::MissingSenderId,
                "no device id (From or X-Lime-user-identity)",
            );
        };
        let Some((user, domain)) = device_user(device) else {
            return error(ErrorCode::MissingSenderId, "the device id is not a SIP URI");
        };
        if !self
            .config
            .domains
            .iter()
            .any(|d| d.eq_ignore_ascii_case(domain))
        {
            return HttpResponse::status(403);
        }
        // Digest, against the SIP account of the device's user.
        let realm = self.config.realm.as_str();
        let Some(auth) = req.header("Authorization") else {
            return self.challenge(realm, false, now);
        };
        let Ok(creds) = Credentials::parse(auth) else {
            return self.challenge(realm, false, now);
        };
        let record = self.users.get(&creds.username, realm).ok().flatten();
        let outcome = self
            .nonces
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .verify(&creds, "POST", req.target, realm, record.as_ref(), now);
        match outcome {
            Outcome::Ok => {}
            Outcome::Stale => return self.challenge(realm, true, now),
            _ => return HttpResponse::status(403),
        }
        if creds.username != user {
            // The account may only act for its own devices.
            return HttpResponse::status(403);
        }
        let is_bundle_request = req.body.get(1) == Some(&(MessageType::GetPeerBundle as u8));
        if is_bundle_request && self.bundle_limited(device, now) {
            return error(ErrorCode::ResourceLimitReached, "too many bundle requests");
        }
        HttpResponse::x3dh(self.server.handle(device, req.body))
    }
}

#[cfg(test)]
mod tests {
    use super::device_user;

    #[test]
    fn device_ids_name_their_user() {
        assert_eq!(
            device_user("sip:alice@example.test;gr=urn:uuid:1"),
            Some(("alice", "example.test"))
        );
        assert_eq!(
            device_user("\"Alice\" <sips:alice@example.test:5061;gr=x>"),
            Some(("alice", "example.test"))
        );
        assert_eq!(device_user("alice@example.test"), None);
        assert_eq!(device_user("sip:@example.test"), None);
    }
}
