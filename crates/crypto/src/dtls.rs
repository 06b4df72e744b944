//! DTLS 1.2 with the `use_srtp` extension and keying-material export, as DTLS-SRTP
//! (RFC 5763, RFC 5764) needs it.
//!
//! A [`DtlsSession`] is a handshake driven without IO and without a clock: datagrams in
//! ([`DtlsSession::handle_datagram`]), datagrams out ([`DtlsSession::poll_datagram`]), and
//! [`DtlsSession::retransmit`] when the caller's retransmission timer fires. When to
//! retransmit and when to give up is protocol policy, kept by the caller (RFC 6347 §4.2.4.1),
//! so that tests run it on virtual time.
//!
//! The session checks nothing about the peer's certificate beyond its proof of possession:
//! DTLS-SRTP authenticates it by the fingerprint in the peer's SDP, which the caller compares
//! with [`DtlsEstablished::peer_certificate`].

use crate::Error;
use crate::secret::SecretBytes;

/// Which side of the handshake (RFC 5763 §5: `a=setup:active` is the client).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DtlsRole {
    /// Sends the ClientHello.
    Client,
    /// Answers it.
    Server,
}

/// An SRTP protection profile of the `use_srtp` extension (RFC 5764 §4.1.2, RFC 7714 §14.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SrtpProfile {
    /// `SRTP_AES128_CM_HMAC_SHA1_80` (0x0001).
    Aes128CmSha1_80,
    /// `SRTP_AES128_CM_HMAC_SHA1_32` (0x0002).
    Aes128CmSha1_32,
    /// `SRTP_AEAD_AES_128_GCM` (0x0007).
    AeadAes128Gcm,
    /// `SRTP_AEAD_AES_256_GCM` (0x0008).
    AeadAes256Gcm,
}

impl SrtpProfile {
    /// Every profile, in our order of preference (AEAD first, as RFC 7714 recommends).
    pub const ALL: [SrtpProfile; 4] = [
        SrtpProfile::AeadAes128Gcm,
        SrtpProfile::AeadAes256Gcm,
        SrtpProfile::Aes128CmSha1_80,
        SrtpProfile::Aes128CmSha1_32,
    ];

    /// The name in the registry (and in OpenSSL's list).
    pub const fn name(self) -> &'static str {
        match self {
            SrtpProfile::Aes128CmSha1_80 => "SRTP_AES128_CM_SHA1_80",
            SrtpProfile::Aes128CmSha1_32 => "SRTP_AES128_CM_SHA1_32",
            SrtpProfile::AeadAes128Gcm => "SRTP_AEAD_AES_128_GCM",
            SrtpProfile::AeadAes256Gcm => "SRTP_AEAD_AES_256_GCM",
        }
    }

    /// The profile's number on the wire.
    pub const fn id(self) -> u16 {
        match self {
            SrtpProfile::Aes128CmSha1_80 => 0x0001,
            SrtpProfile::Aes128CmSha1_32 => 0x0002,
            SrtpProfile::AeadAes128Gcm => 0x0007,
            SrtpProfile::AeadAes256Gcm => 0x0008,
        }
    }

    /// The profile of a wire number.
    pub fn from_id(id: u16) -> Option<Self> {
        SrtpProfile::ALL.into_iter().find(|p| p.id() == id)
    }

    /// Master key length in bytes.
    pub const fn key_len(self) -> usize {
        match self {
            SrtpProfile::AeadAes256Gcm => 32,
            _ => 16,
        }
    }

    /// Master salt length in bytes (RFC 7714 §12: 12 for the AEAD profiles).
    pub const fn salt_len(self) -> usize {
        match self {
            SrtpProfile::AeadAes128Gcm | SrtpProfile::AeadAes256Gcm => 12,
            _ => 14,
        }
    }
}

/// A certificate and its private key (ECDSA P-256, self-signed), as DER.
#[derive(Clone)]
pub struct DtlsCertificate {
    /// The X.509 certificate, DER.
    pub certificate_der: Vec<u8>,
    /// The private key, PKCS#8 DER.
    pub private_key_der: SecretBytes,
}

impl std::fmt::Debug for DtlsCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DtlsCertificate")
            .field("certificate_der", &self.certificate_der.len())
            .field("private_key_der", &"<redacted>")
            .finish()
    }
}

/// How a session starts.
#[derive(Debug, Clone)]
pub struct DtlsConfig<'a> {
    /// Our side.
    pub role: DtlsRole,
    /// Our certificate, presented on either side (DTLS-SRTP has both sides authenticate).
    pub certificate: &'a DtlsCertificate,
    /// The SRTP profiles we accept, in order of preference.
    pub profiles: &'a [SrtpProfile],
    /// The largest datagram to send.
    pub mtu: usize,
}

/// What a completed handshake gives.
#[derive(Clone)]
pub struct DtlsEstablished {
    /// The SRTP profile both sides chose.
    pub profile: SrtpProfile,
    /// The exported keying material (RFC 5764 §4.2, label `EXTRACTOR-dtls_srtp`):
    /// client key, server key, client salt, server salt.
    pub keying_material: SecretBytes,
    /// The peer's certificate, DER (proved by its handshake signature; not otherwise checked).
    pub peer_certificate: Vec<u8>,
    /// The TLS cipher suite, for the report.
    pub cipher: String,
}

impl std::fmt::Debug for DtlsEstablished {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DtlsEstablished")
            .field("profile", &self.profile)
            .field("cipher", &self.cipher)
            .field("keying_material", &"<redacted>")
            .finish()
    }
}

/// A handshake that failed: the session is of no further use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("DTLS: {0}")]
pub struct DtlsError(pub String);

/// One DTLS-SRTP handshake; see the [module documentation](self).
pub trait DtlsSession: Send + std::fmt::Debug {
    /// Starts the handshake (the client writes its ClientHello; the server waits).
    fn start(&mut self) -> Result<(), DtlsError>;

    /// One datagram from the peer (it may hold several records). Records that do not
    /// authenticate or repeat are dropped silently, as DTLS wants.
    fn handle_datagram(&mut self, datagram: &[u8]) -> Result<(), DtlsError>;

    /// The caller's retransmission timer fired: send our last flight again.
    fn retransmit(&mut self) -> Result<(), DtlsError>;

    /// The next datagram to send.
    fn poll_datagram(&mut self) -> Option<Vec<u8>>;

    /// Whether we still wait for the peer's flight (the retransmission timer should run).
    fn awaiting_peer(&self) -> bool;

    /// The result, once the handshake is complete.
    fn established(&self) -> Option<&DtlsEstablished>;
}

/// DTLS for DTLS-SRTP.
pub trait DtlsProvider: Send + Sync + std::fmt::Debug {
    /// A new self-signed ECDSA P-256 certificate, with `common_name`.
    fn generate_certificate(&self, common_name: &str) -> Result<DtlsCertificate, Error>;

    /// A new session.
    fn session(&self, config: &DtlsConfig<'_>) -> Result<Box<dyn DtlsSession>, Error>;
}
