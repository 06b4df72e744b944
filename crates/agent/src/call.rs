//! One call: its dialog (RFC 3261 §12, `sotto_sip::dialog`), the offer/answer state, and
//! what the security report needs.

use bytes::Bytes;
use serde::Serialize;
use sotto_media::keyx::{MediaKeyExchange, MediaProtection};
use sotto_sdp::{NegotiatedMedia, Session};
use sotto_sip::dialog::{Dialog, Retransmit2xx};
use sotto_sip::message::{Request, Uri};
use sotto_sip::transaction::TransactionId;
use sotto_sip::transport::{Destination, TransportKind};

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
    /// The dialog (RFC 3261 §12): for a UAC, from the INVITE on (the peer's tag, target and
    /// route set come with its 2xx).
    pub(crate) dialog: Dialog,
    /// The request URI of the INVITE (UAC).
    pub(crate) target: Uri,
    /// Where requests and responses of this call go (the first hop).
    pub(crate) dest: Destination,
    /// A direct call (not through the outbound proxy).
    pub(crate) direct: bool,
    pub(crate) invite_tx: Option<TransactionId>,
    /// The last INVITE sent (UAC) or received (UAS): the base of CANCEL and of an
    /// authenticated retry, and of our responses.
    pub(crate) invite: Option<Request>,
    /// Our offer (UAC) or the peer's offer (UAS).
    pub(crate) offer: Option<Session>,
    /// Our SDP (offer or answer), resent on a re-INVITE.
    pub(crate) local_sdp: Option<Bytes>,
    pub(crate) negotiated: Option<NegotiatedMedia>,
    /// The call's key exchange, from our offer (UAC) or answer (UAS) until the driver takes
    /// it for the media ([`crate::UserAgent::take_key_exchange`]).
    pub(crate) keyx: Option<Box<dyn MediaKeyExchange>>,
    /// The media protection as it stands once connected (updated by media events).
    pub(crate) protection: Option<MediaProtection>,
    /// Our ACK of the 2xx (UAC), sent again for a retransmitted 2xx.
    pub(crate) ack: Option<Bytes>,
    pub(crate) auth: String,
    pub(crate) auth_tries: u8,
    pub(crate) got_provisional: bool,
    pub(crate) cancel_pending: bool,
    /// Our 2xx to the INVITE over an unreliable transport, until its ACK (RFC 3261
    /// §13.3.1.4).
    pub(crate) ok_retransmit: Option<Retransmit2xx>,
    /// An unanswered incoming call is refused (480) at this time.
    pub(crate) ring_deadline: Option<std::time::Instant>,
    /// The first hop's transport.
    pub(crate) transport: TransportKind,
    pub(crate) tls: Option<crate::security::TlsSummary>,
    /// Why we ended it, when not the user's hangup (e.g. the media stopped).
    pub(crate) end_reason: Option<String>,
}
