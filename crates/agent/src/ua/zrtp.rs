//! What the agent tells the user of a ZRTP call: the SAS when it is known or its
//! verification changes, and a loud alert when the key-continuity cache does not match.

use sotto_media::keyx::MediaProtection;

use super::{UaEvent, UserAgent};
use crate::call::CallId;

impl UserAgent {
    /// ZRTP news in a protection change (`before` → `after`).
    pub(super) fn zrtp_news(
        &mut self,
        id: CallId,
        before: Option<&MediaProtection>,
        after: &MediaProtection,
    ) {
        let MediaProtection::Zrtp {
            sas: Some(sas),
            verified,
            details,
            ..
        } = after
        else {
            return;
        };
        let (old_sas, old_verified) = match before {
            Some(MediaProtection::Zrtp { sas, verified, .. }) => (sas.as_ref(), *verified),
            _ => (None, false),
        };
        if old_sas == Some(sas) && old_verified == *verified {
            return;
        }
        let first = old_sas.is_none();
        self.events.push_back(UaEvent::ZrtpSas {
            call: id,
            sas: sas.clone(),
            verified: *verified,
            details: details.clone(),
        });
        if first && details.as_ref().is_some_and(|d| d.cache == "mismatch") {
            self.events.push_back(UaEvent::SecurityAlert {
                call: id,
                reason: format!(
                    "ZRTP cache mismatch: this peer (ZID {}) does not hold the secret of your \
                     earlier calls; someone may be in the middle. The peer is unsafe until you \
                     compare the SAS {sas} aloud and confirm it",
                    details.as_ref().map_or("?", |d| d.peer_zid.as_str())
                ),
            });
        }
    }
}
