//! Registration (RFC 3261 §10.2, RFC 5626 §4.2): REGISTER with our Contact, `+sip.instance`
//! and `reg-id`; digest answers to 401/407; refresh at half the granted lifetime; removal
//! with `expires=0`.

use std::time::{Duration, Instant};

use sotto_crypto::CryptoProvider;
use sotto_sip::message::{Method, Response, StatusCode};

use super::wire::{ALLOW, contact_value, new_request, random_token, registrar_uri, with_warning};
use super::{MAX_AUTH_TRIES, Owner, UaError, UaEvent, UserAgent};

/// Where the registration is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegState {
    /// Not registered, nothing under way.
    Idle,
    /// A REGISTER is out.
    Registering,
    /// The registrar holds our contact.
    Registered,
    /// A REGISTER with `expires=0` is out.
    Unregistering,
}

/// The registration's dialog-like state: one Call-ID and From tag for all our REGISTERs
/// (§10.2.4: a refresh keeps them, and the CSeq grows).
#[derive(Debug)]
pub(super) struct Registration {
    pub(super) state: RegState,
    call_id: String,
    from_tag: String,
    cseq: u32,
    tries: u8,
    refresh_at: Option<Instant>,
    /// How the registrar authenticated us (`digest-SHA-256`, `none`...).
    auth: String,
}

impl Registration {
    pub(super) fn new(provider: &CryptoProvider, auth: &str) -> Result<Self, UaError> {
        Ok(Registration {
            state: RegState::Idle,
            call_id: random_token(provider, 16)?,
            from_tag: random_token(provider, 8)?,
            cseq: 0,
            tries: 0,
            refresh_at: None,
            auth: auth.to_owned(),
        })
    }

    pub(super) fn refresh_at(&self) -> Option<Instant> {
        self.refresh_at
    }
}

impl UserAgent {
    /// Whether the registration is current.
    pub fn is_registered(&self) -> bool {
        self.reg.state == RegState::Registered
    }

    /// Sends a REGISTER (RFC 3261 §10.2, with `+sip.instance`/`reg-id` per RFC 5626 §4.2).
    pub fn register(&mut self, now: Instant) -> Result<(), UaError> {
        self.reg.tries = 0;
        self.reg.state = RegState::Registering;
        self.send_register(now, self.config.register_expires, None)
    }

    /// Removes our contact (REGISTER with `expires=0`). [`UaEvent::Unregistered`] follows.
    pub fn unregister(&mut self, now: Instant) -> Result<(), UaError> {
        self.reg.tries = 0;
        self.reg.refresh_at = None;
        self.reg.state = RegState::Unregistering;
        self.send_register(now, Duration::ZERO, None)
    }

    /// Refreshes the registration when its time has come.
    pub(super) fn refresh_registration(&mut self, now: Instant) {
        if let Some(at) = self.reg.refresh_at
            && at <= now
        {
            self.reg.refresh_at = None;
            self.reg.tries = 0;
            self.reg.state = RegState::Registering;
            let _ = self.send_register(now, self.config.register_expires, None);
        }
    }

    fn send_register(
        &mut self,
        now: Instant,
        expires: Duration,
        auth: Option<(&'static str, String)>,
    ) -> Result<(), UaError> {
        let local = self.local.ok_or(UaError::NoFlow)?;
        let registrar = registrar_uri(&self.config.identity);
        let branch = super::wire::branch(self.provider)?;
        self.reg.cseq += 1;
        let mut req = new_request(
            Method::Register,
            registrar,
            (local, self.config.proxy.transport),
            &branch,
        );
        let aor = format!("<{}>", self.config.identity);
        let h = req.headers_mut();
        h.push("From", format!("{aor};tag={}", self.reg.from_tag));
        h.push("To", aor);
        h.push("Call-ID", self.reg.call_id.clone());
        h.push("CSeq", format!("{} REGISTER", self.reg.cseq));
        h.push("Contact", contact_value(&self.config, local, true));
        h.push("Expires", expires.as_secs().to_string());
        h.push("Supported", "outbound, path");
        h.push("Allow", ALLOW);
        h.push("User-Agent", self.config.user_agent.clone());
        if let Some((name, value)) = auth {
            h.push(name, value);
        }
        let dest = self.proxy_destination();
        self.send_request(req, dest, Owner::Register, now)?;
        self.pump(now);
        Ok(())
    }

    /// The REGISTER got no final answer (time-out, transport error).
    pub(super) fn registration_failed(&mut self, why: &str) {
        self.reg.state = RegState::Idle;
        self.events.push_back(UaEvent::RegistrationFailed {
            status: 408,
            reason: format!("registrar: {why}"),
        });
    }

    pub(super) fn register_response(&mut self, r: Response, now: Instant) {
        let status = r.status();
        if status.is_provisional() {
            return;
        }
        let unregistering = self.reg.state == RegState::Unregistering;
        let challenged = status == StatusCode::UNAUTHORIZED
            || status == StatusCode::PROXY_AUTHENTICATION_REQUIRED;
        if challenged && self.reg.tries < MAX_AUTH_TRIES {
            self.reg.tries += 1;
            let uri = registrar_uri(&self.config.identity).to_string();
            if let Some((name, value, alg)) = self.credentials(&r, "REGISTER", &uri) {
                self.reg.auth = alg;
                let expires = if unregistering {
                    Duration::ZERO
                } else {
                    self.config.register_expires
                };
                let _ = self.send_register(now, expires, Some((name, value)));
                return;
            }
        }
        if status.is_success() {
            if unregistering {
                self.reg.state = RegState::Idle;
                self.events.push_back(UaEvent::Unregistered);
                return;
            }
            let granted = self.granted_expires(&r);
            self.reg.state = RegState::Registered;
            self.reg.refresh_at = Some(now + granted / 2);
            let contact = self
                .local
                .map(|l| contact_value(&self.config, l, true))
                .unwrap_or_default();
            self.events.push_back(UaEvent::Registered {
                expires: granted,
                contact,
                auth: self.reg.auth.clone(),
            });
            return;
        }
        self.reg.state = RegState::Idle;
        let mut reason = with_warning(&r);
        if challenged && self.config.password.is_empty() {
            reason.push_str(if self.config.client_certificate {
                " (the server did not accept the TLS client certificate for this identity and \
                 the account has no password)"
            } else {
                " (the account has no password)"
            });
        } else if challenged {
            reason.push_str(&format!(
                " (the server refused the credentials of user {:?}: check the password and \
                 the user name in the account file, and that the server has this user in \
                 the realm it challenges with)",
                self.config.username
            ));
        }
        self.events.push_back(UaEvent::RegistrationFailed {
            status: status.as_u16(),
            reason,
        });
    }

    /// The lifetime the registrar granted our contact (its `expires` parameter, else the
    /// Expires header, else what we asked), at least one second.
    fn granted_expires(&self, r: &Response) -> Duration {
        let ours = self.config.instance.as_str();
        let from_contact = r.contacts().ok().and_then(|cs| {
            cs.iter().find_map(|c| {
                let a = c.addr()?;
                let inst = a.sip_instance()?;
                (inst.trim_matches(|ch| ch == '<' || ch == '>') == ours)
                    .then(|| a.expires())
                    .flatten()
            })
        });
        let secs = from_contact
            .or_else(|| r.headers().expires().ok().flatten())
            .map(u64::from)
            .unwrap_or(self.config.register_expires.as_secs());
        Duration::from_secs(secs.max(1))
    }
}
