//! Transaction keys (RFC 3261 §17.1.3, §17.2.3; §9.2 for CANCEL).

use super::TransactionError;
use crate::message::{Method, Request, Response, Via};

/// The ACK of an INVITE belongs to the INVITE's transaction.
fn tx_method(m: &Method) -> Method {
    match m {
        Method::Ack => Method::Invite,
        m => m.clone(),
    }
}

/// Identifies a client transaction: the top Via branch it sent and the CSeq method (§17.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientKey {
    /// The branch parameter of the top Via (with the magic cookie).
    pub branch: String,
    /// The CSeq method of the request.
    pub method: Method,
}

impl ClientKey {
    /// The key of a request about to be sent (requires an RFC 3261 branch).
    pub fn from_request(req: &Request) -> Result<Self, TransactionError> {
        let via = req.via_top().map_err(|_| TransactionError::InvalidVia)?;
        let method = req
            .cseq()
            .map_err(|_| TransactionError::InvalidHeader("CSeq"))?
            .method;
        match via.branch {
            Some(branch) if via_is_rfc3261(&branch) => Ok(ClientKey { branch, method }),
            _ => Err(TransactionError::NotRfc3261Branch),
        }
    }

    /// The key a response belongs to.
    pub fn from_response(resp: &Response) -> Result<Self, TransactionError> {
        let via = resp.via_top().map_err(|_| TransactionError::InvalidVia)?;
        let method = resp
            .cseq()
            .map_err(|_| TransactionError::InvalidHeader("CSeq"))?
            .method;
        let branch = via.branch.ok_or(TransactionError::InvalidVia)?;
        Ok(ClientKey { branch, method })
    }
}

/// Identifies a server transaction (§17.2.3).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ServerKey {
    /// Branch with the magic cookie: branch, sent-by, and method (ACK as INVITE).
    Rfc3261 {
        /// The top Via branch.
        branch: String,
        /// The top Via sent-by, `host:port` with the host lower-cased and the default port
        /// filled in.
        sent_by: String,
        /// The transaction's method (INVITE for an ACK).
        method: Method,
    },
    /// RFC 2543 fallback: Request-URI, From tag, Call-ID, CSeq number, top Via and method
    /// (ACK as INVITE). The To tag is not part of the key (an ACK carries the tag of the
    /// response; an INVITE retransmission none).
    Rfc2543 {
        /// The Request-URI as written.
        request_uri: String,
        /// The From tag (empty if none).
        from_tag: String,
        /// The Call-ID.
        call_id: String,
        /// The CSeq number.
        cseq: u32,
        /// The top Via, printed.
        top_via: String,
        /// The transaction's method (INVITE for an ACK).
        method: Method,
    },
}

fn via_is_rfc3261(branch: &str) -> bool {
    branch.len() > crate::message::MAGIC_COOKIE.len()
        && branch.starts_with(crate::message::MAGIC_COOKIE)
}

fn sent_by(via: &Via) -> String {
    format!(
        "{}:{}",
        via.host.to_ascii_lowercase(),
        via.port_or_default()
    )
}

impl ServerKey {
    /// The key of the transaction an incoming request belongs to (an ACK maps to its INVITE).
    pub fn from_request(req: &Request) -> Result<Self, TransactionError> {
        Self::with_method(req, tx_method(req.method()))
    }

    /// The key of the INVITE transaction a CANCEL refers to (§9.2: same key with the method
    /// INVITE).
    pub fn invite_for_cancel(cancel: &Request) -> Result<Self, TransactionError> {
        Self::with_method(cancel, Method::Invite)
    }

    fn with_method(req: &Request, method: Method) -> Result<Self, TransactionError> {
        let via = req.via_top().map_err(|_| TransactionError::InvalidVia)?;
        match via.branch.as_deref() {
            Some(b) if via_is_rfc3261(b) => Ok(ServerKey::Rfc3261 {
                branch: b.to_owned(),
                sent_by: sent_by(&via),
                method,
            }),
            _ => {
                let cseq = req
                    .cseq()
                    .map_err(|_| TransactionError::InvalidHeader("CSeq"))?;
                let call_id = req
                    .call_id()
                    .map_err(|_| TransactionError::InvalidHeader("Call-ID"))?;
                let from_tag = req
                    .from_tag()
                    .map_err(|_| TransactionError::InvalidHeader("From"))?;
                Ok(ServerKey::Rfc2543 {
                    request_uri: req.uri().as_str().to_owned(),
                    from_tag: from_tag.unwrap_or_default().to_owned(),
                    call_id: call_id.to_owned(),
                    cseq: cseq.seq,
                    top_via: via.to_string(),
                    method,
                })
            }
        }
    }

    /// The transaction's method (INVITE for ACK-matched transactions).
    pub fn method(&self) -> &Method {
        match self {
            ServerKey::Rfc3261 { method, .. } | ServerKey::Rfc2543 { method, .. } => method,
        }
    }
}
