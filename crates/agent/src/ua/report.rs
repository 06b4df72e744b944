//! What the agent reports of a call's security and end: `call_security` when it connects
//! and whenever its media protection changes (a SAS shown or verified), the reasoned end of a
//! call that never carried media, and the loud hang-up when encryption would drop mid-call or
//! the key exchange fails.

use std::time::Instant;

use sotto_media::call::MediaEvent;
use sotto_media::keyx::{MediaKeyExchange, MediaProtection};

use super::{UaEvent, UserAgent};
use crate::call::{CallId, CallState};
use crate::security::SecurityReport;

impl UserAgent {
    pub(super) fn end_call(&mut self, id: CallId, reason: String) {
        let Some(c) = self.calls.get(&id) else {
            return;
        };
        if c.state != CallState::Ended {
            // Every call gets its report, including one that never carried media.
            let unestablished = c.negotiated.is_none().then(|| {
                let tls = self.tls_of(c);
                SecurityReport::not_established(
                    c.transport.as_str(),
                    tls.as_ref(),
                    &c.auth,
                    &reason,
                )
                .direct(c.direct)
            });
            self.report_end(id, unestablished, reason);
        }
        self.calls.remove(&id);
    }

    /// A call's end: the report of a call that never connected (when given), then its
    /// `ended` state with the reason.
    pub(super) fn report_end(
        &mut self,
        id: CallId,
        unestablished: Option<SecurityReport>,
        reason: String,
    ) {
        if let Some(report) = unestablished {
            self.events.push_back(UaEvent::CallSecurity {
                call: id,
                report: Box::new(report),
            });
        }
        self.events.push_back(UaEvent::CallState {
            call: id,
            state: CallState::Ended,
            reason: Some(reason),
        });
    }

    /// A call became connected (either side): its state, its security report, then its
    /// media, in that order.
    pub(super) fn announce_connected(&mut self, id: CallId) {
        let Some(c) = self.calls.get(&id) else {
            return;
        };
        let (Some(neg), Some(keyx)) = (c.negotiated.clone(), c.keyx.as_ref()) else {
            return;
        };
        let protection = keyx.protection();
        self.events.push_back(UaEvent::CallState {
            call: id,
            state: CallState::Connected,
            reason: None,
        });
        self.report_security(id, protection.clone());
        self.events.push_back(UaEvent::MediaReady {
            call: id,
            media: Box::new(neg),
            protection,
        });
    }

    /// Records a call's protection and reports it (`call_security`).
    pub(super) fn report_security(&mut self, id: CallId, protection: MediaProtection) {
        let Some(c) = self.calls.get(&id) else {
            return;
        };
        let report = crate::policy::call_report(
            &self.config,
            c.transport,
            self.tls_of(c).as_ref(),
            &c.auth,
            c.direct,
            &protection,
        );
        if let Some(c) = self.calls.get_mut(&id) {
            c.protection = Some(protection);
        }
        self.events.push_back(UaEvent::CallSecurity {
            call: id,
            report: Box::new(report),
        });
    }

    /// Hands the call's key exchange to its media ([`sotto_media::call::CallMedia`]), once,
    /// after [`UaEvent::MediaReady`].
    pub fn take_key_exchange(&mut self, id: CallId) -> Option<Box<dyn MediaKeyExchange>> {
        self.calls.get_mut(&id)?.keyx.take()
    }

    /// What the call's media reports: a new protection (a SAS to show, a SAS verified) is
    /// reported again; a key exchange that failed, or a protection that would drop
    /// encryption, ends the call loudly.
    pub fn handle_media_event(&mut self, id: CallId, event: MediaEvent, now: Instant) {
        let current = match self.calls.get(&id) {
            Some(c) => c.protection.clone(),
            None => return,
        };
        match event {
            MediaEvent::Secured => {}
            MediaEvent::Protection(p) => {
                if let Some(before) = current.as_ref()
                    && crate::policy::is_downgrade(before, &p)
                {
                    let reason = format!(
                        "media encryption dropped mid-call ({} to {}): hung up",
                        before.name(),
                        p.name()
                    );
                    self.security_alert_hangup(id, reason, now);
                } else if current.as_ref() != Some(&p) {
                    self.zrtp_news(id, current.as_ref(), &p);
                    self.report_security(id, p);
                }
            }
            MediaEvent::Failed { reason } => {
                let reason = format!("media key exchange failed: {reason}");
                self.security_alert_hangup(id, reason, now);
            }
            _ => {}
        }
    }

    pub(super) fn security_alert_hangup(&mut self, id: CallId, reason: String, now: Instant) {
        self.events.push_back(UaEvent::SecurityAlert {
            call: id,
            reason: reason.clone(),
        });
        let _ = self.hangup_because(id, reason, now);
    }
}
