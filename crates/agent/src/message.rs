//! Messages (SIP MESSAGE, RFC 3428) and the seam their end-to-end encryption plugs into.
//!
//! [`MessageEncryption`] is the engine every message and shared file goes through: one
//! implementation per scheme (LIME's X3DH and Double Ratchet comes with the messaging work),
//! chosen by the account, the agent's message logic unaware of which. It is declared here,
//! before any message is sent, so that the SIP side is built around it. [`PassThrough`] is
//! the only implementation so far: it encrypts nothing, and says so in every result, so it can
//! never pass for protection.
//!
//! Until an encrypting engine exists, the agent answers an incoming MESSAGE with 405 (it lists
//! only what it handles in `Allow`): secure by default, no message is carried in clear.

/// Who a message is for or from: an address of record and, where known, its devices
/// (GRUUs), each of which gets its own encrypted copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// The address of record, e.g. `sip:bob@example.test`.
    pub aor: String,
    /// The devices (GRUUs) known for it; empty when not known yet.
    pub devices: Vec<String>,
}

/// How a message or file was protected, for the user and the `--json` events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageProtection {
    /// The scheme (`none`, later `lime`).
    pub scheme: &'static str,
    /// Whether only the conversation's devices can read it.
    pub end_to_end: bool,
}

/// An encrypted message: the body to send and its content type, per recipient device (one
/// body for every device when the scheme does not split).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// `(device or AOR, content type, body)`.
    pub copies: Vec<(String, String, Vec<u8>)>,
    /// How it is protected.
    pub protection: MessageProtection,
}

/// A decrypted incoming message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    /// The content type of the plain message (e.g. `text/plain`).
    pub content_type: String,
    /// The plain body.
    pub body: Vec<u8>,
    /// How it was protected.
    pub protection: MessageProtection,
}

/// Why a message could not be encrypted or decrypted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MessageError {
    /// The engine has no keys for a recipient (no session, no bundle).
    #[error("no keys for {0}")]
    NoKeys(String),
    /// The body does not decrypt or does not verify.
    #[error("message cannot be decrypted: {0}")]
    Undecryptable(String),
}

/// The message encryption engine: outgoing and incoming messages, file upload and download.
pub trait MessageEncryption: Send {
    /// Encrypts a message for `to` (each of its devices).
    fn outgoing_message(
        &mut self,
        to: &Peer,
        content_type: &str,
        body: &[u8],
    ) -> Result<Sealed, MessageError>;

    /// Decrypts a message from `from`.
    fn incoming_message(
        &mut self,
        from: &Peer,
        content_type: &str,
        body: &[u8],
    ) -> Result<Opened, MessageError>;

    /// Encrypts a file before upload; returns the bytes to upload and the key material the
    /// message announcing the file carries.
    fn file_upload(&mut self, file: &[u8]) -> Result<(Vec<u8>, Vec<u8>), MessageError>;

    /// Decrypts a downloaded file with the key material its message carried.
    fn file_download(&mut self, file: &[u8], key: &[u8]) -> Result<Vec<u8>, MessageError>;
}

/// The engine that encrypts nothing (and says so: `end_to_end: false`, scheme `none`).
#[derive(Debug, Clone, Copy, Default)]
pub struct PassThrough;

const PLAIN: MessageProtection = MessageProtection {
    scheme: "none",
    end_to_end: false,
};

impl MessageEncryption for PassThrough {
    fn outgoing_message(
        &mut self,
        to: &Peer,
        content_type: &str,
        body: &[u8],
    ) -> Result<Sealed, MessageError> {
        Ok(Sealed {
            copies: vec![(to.aor.clone(), content_type.to_owned(), body.to_vec())],
            protection: PLAIN,
        })
    }

    fn incoming_message(
        &mut self,
        _from: &Peer,
        content_type: &str,
        body: &[u8],
    ) -> Result<Opened, MessageError> {
        Ok(Opened {
            content_type: content_type.to_owned(),
            body: body.to_vec(),
            protection: PLAIN,
        })
    }

    fn file_upload(&mut self, file: &[u8]) -> Result<(Vec<u8>, Vec<u8>), MessageError> {
        Ok((file.to_vec(), Vec::new()))
    }

    fn file_download(&mut self, file: &[u8], _key: &[u8]) -> Result<Vec<u8>, MessageError> {
        Ok(file.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pass_through_never_claims_protection() {
        let mut e = PassThrough;
        let bob = Peer {
            aor: "sip:bob@example.test".into(),
            devices: Vec::new(),
        };
        let s = e.outgoing_message(&bob, "text/plain", b"hi").unwrap();
        assert!(!s.protection.end_to_end);
        assert_eq!(s.protection.scheme, "none");
        let o = e.incoming_message(&bob, "text/plain", b"hi").unwrap();
        assert_eq!(o.body, b"hi");
        assert!(!o.protection.end_to_end);
        let (up, key) = e.file_upload(b"file").unwrap();
        assert_eq!(e.file_download(&up, &key).unwrap(), b"file");
    }
}
