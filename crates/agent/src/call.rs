//! One call and its dialog (RFC 3261 §12): Call-ID, tags, CSeq, route set, remote target,
//! plus the offer/answer state and what the security report needs.

use bytes::Bytes;
use serde::Serialize;
use sotto_sdp::{NegotiatedMedia, Session};
use sotto_sip::message::{Request, Uri};
use sotto_sip::transaction::TransactionId;
use sotto_sip::transport::Destination;

/// Identifies a call inside one [`crate::UserAgent`] (never reused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct CallId(pub u64);

impl std::fmt::Display for CallId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Which side of the call we are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// We sent the INVITE.
    Uac,
    /// We received the INVITE.
    Uas,
}

/// Where a call is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CallState {
    /// INVITE sent (UAC) or received (UAS), nothing heard yet.
    Calling,
    /// A 180/183 was received (UAC) or sent (UAS).
    Ringing,
    /// A 2xx was received and ACKed (UAC) or sent (UAS).
    Connected,
    /// BYE or CANCEL sent; waiting for its answer.
    Ending,
    /// Over.
    Ended,
}

impl CallState {
    /// The name in `call_state` events.
    pub fn as_str(self) -> &'static str {
        match self {
            CallState::Calling => "calling",
            CallState::Ringing => "ringing",
            CallState::Connected => "connected",
            CallState::Ending => "ending",
            CallState::Ended => "ended",
        }
    }
}

/// A call and its dialog.
#[derive(Debug)]
pub(crate) struct Call {
    pub(crate) role: Role,
    pub(crate) state: CallState,
    pub(crate) call_id: String,
    /// Our From (UAC) or To (UAS) value, with our tag.
    pub(crate) local_party: String,
    /// The peer's From (UAS) or To (UAC) value, with its tag once known.
    pub(crate) remote_party: String,
    pub(crate) remote_tag: Option<String>,
    /// The request URI of the INVITE (UAC).
    pub(crate) target: Uri,
    pub(crate) local_cseq: u32,
    pub(crate) remote_target: Option<Uri>,
    /// Route set in the order requests use it.
    pub(crate) route_set: Vec<String>,
    /// Where requests and responses of this call go (the first hop).
    pub(crate) dest: Destination,
    /// A direct call (not through the outbound proxy).
    pub(crate) direct: bool,
    pub(crate) invite_tx: Option<TransactionId>,
    /// The last INVITE sent (UAC): the base of CANCEL and of an authenticated retry.
    pub(crate) invite: Option<Request>,
    /// Our offer (UAC) or the peer's offer (UAS).
    pub(crate) offer: Option<Session>,
    /// Our answer body (UAS), resent on a re-INVITE.
    pub(crate) local_sdp: Option<Bytes>,
    pub(crate) negotiated: Option<NegotiatedMedia>,
    pub(crate) ack: Option<Bytes>,
    pub(crate) auth: String,
    pub(crate) auth_tries: u8,
    pub(crate) got_provisional: bool,
    pub(crate) cancel_pending: bool,
    /// Our 2xx to the INVITE and its retransmission schedule over an unreliable transport
    /// (RFC 3261 §13.3.1.4): next send, interval, give-up time; cleared by the ACK.
    pub(crate) ok_retransmit: Option<(
        Bytes,
        std::time::Instant,
        std::time::Duration,
        std::time::Instant,
    )>,
    /// An unanswered incoming call is refused (480) at this time.
    pub(crate) ring_deadline: Option<std::time::Instant>,
    pub(crate) transport: &'static str,
    pub(crate) tls: Option<crate::security::TlsSummary>,
    /// Why we ended it, when not the user's hangup (e.g. the media stopped).
    pub(crate) end_reason: Option<String>,
}
