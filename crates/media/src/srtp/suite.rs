//! SRTP crypto suites: RFC 4568 §6.2 (AES_CM_128_HMAC_SHA1_80/32), RFC 6188 (AES-192/256-CM),
//! RFC 7714 (AEAD_AES_128_GCM / AEAD_AES_256_GCM), and the NULL-cipher suites kept for
//! testing only.

/// The cipher family of a suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CipherKind {
    /// AES counter mode (RFC 3711 §4.1.1) with HMAC-SHA1 authentication.
    AesCm,
    /// AES-GCM AEAD (RFC 7714).
    AesGcm,
    /// No encryption (test/debug only).
    Null,
}

/// An SRTP protection profile / SDES crypto suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SrtpSuite {
    /// `AES_CM_128_HMAC_SHA1_80` (RFC 4568, RFC 5764 `SRTP_AES128_CM_HMAC_SHA1_80`).
    AesCm128HmacSha1_80,
    /// `AES_CM_128_HMAC_SHA1_32` (32-bit SRTP tag; SRTCP keeps 80 bits).
    AesCm128HmacSha1_32,
    /// `AES_192_CM_HMAC_SHA1_80` (RFC 6188).
    Aes192CmHmacSha1_80,
    /// `AES_192_CM_HMAC_SHA1_32` (RFC 6188).
    Aes192CmHmacSha1_32,
    /// `AES_256_CM_HMAC_SHA1_80` (RFC 6188).
    Aes256CmHmacSha1_80,
    /// `AES_256_CM_HMAC_SHA1_32` (RFC 6188).
    Aes256CmHmacSha1_32,
    /// `AEAD_AES_128_GCM` (RFC 7714).
    AeadAes128Gcm,
    /// `AEAD_AES_256_GCM` (RFC 7714).
    AeadAes256Gcm,
    /// `NULL_HMAC_SHA1_80`: authentication without encryption. Refused unless the policy
    /// sets `danger_allow_null_cipher`.
    NullHmacSha1_80,
    /// `NULL_HMAC_SHA1_32`: authentication without encryption. Refused unless the policy
    /// sets `danger_allow_null_cipher`.
    NullHmacSha1_32,
    /// `NULL_NULL`: no encryption and no authentication. Refused unless the policy sets
    /// `danger_allow_null_cipher`.
    NullNull,
}

impl SrtpSuite {
    /// Every suite, secure ones first.
    pub const ALL: [SrtpSuite; 11] = [
        SrtpSuite::AesCm128HmacSha1_80,
        SrtpSuite::AesCm128HmacSha1_32,
        SrtpSuite::Aes192CmHmacSha1_80,
        SrtpSuite::Aes192CmHmacSha1_32,
        SrtpSuite::Aes256CmHmacSha1_80,
        SrtpSuite::Aes256CmHmacSha1_32,
        SrtpSuite::AeadAes128Gcm,
        SrtpSuite::AeadAes256Gcm,
        SrtpSuite::NullHmacSha1_80,
        SrtpSuite::NullHmacSha1_32,
        SrtpSuite::NullNull,
    ];

    /// The SDES name (RFC 4568 / RFC 6188 / RFC 7714).
    pub const fn name(self) -> &'static str {
        match self {
            SrtpSuite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            SrtpSuite::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
            SrtpSuite::Aes192CmHmacSha1_80 => "AES_192_CM_HMAC_SHA1_80",
            SrtpSuite::Aes192CmHmacSha1_32 => "AES_192_CM_HMAC_SHA1_32",
            SrtpSuite::Aes256CmHmacSha1_80 => "AES_256_CM_HMAC_SHA1_80",
            SrtpSuite::Aes256CmHmacSha1_32 => "AES_256_CM_HMAC_SHA1_32",
            SrtpSuite::AeadAes128Gcm => "AEAD_AES_128_GCM",
            SrtpSuite::AeadAes256Gcm => "AEAD_AES_256_GCM",
            SrtpSuite::NullHmacSha1_80 => "NULL_HMAC_SHA1_80",
            SrtpSuite::NullHmacSha1_32 => "NULL_HMAC_SHA1_32",
            SrtpSuite::NullNull => "NULL_NULL",
        }
    }

    /// Looks a suite up by its SDES name; libsrtp's spellings `AES_CM_192_…`/`AES_CM_256_…`
    /// are accepted too.
    pub fn from_name(name: &str) -> Option<Self> {
        let alias = match name {
            "AES_CM_192_HMAC_SHA1_80" => Some(SrtpSuite::Aes192CmHmacSha1_80),
            "AES_CM_192_HMAC_SHA1_32" => Some(SrtpSuite::Aes192CmHmacSha1_32),
            "AES_CM_256_HMAC_SHA1_80" => Some(SrtpSuite::Aes256CmHmacSha1_80),
            "AES_CM_256_HMAC_SHA1_32" => Some(SrtpSuite::Aes256CmHmacSha1_32),
            _ => None,
        };
        alias.or_else(|| Self::ALL.into_iter().find(|s| s.name() == name))
    }

    pub(crate) const fn cipher(self) -> CipherKind {
        match self {
            SrtpSuite::AeadAes128Gcm | SrtpSuite::AeadAes256Gcm => CipherKind::AesGcm,
            SrtpSuite::NullHmacSha1_80 | SrtpSuite::NullHmacSha1_32 | SrtpSuite::NullNull => {
                CipherKind::Null
            }
            _ => CipherKind::AesCm,
        }
    }

    /// Whether this suite does not encrypt (the NULL-cipher suites).
    pub const fn is_null_cipher(self) -> bool {
        matches!(self.cipher(), CipherKind::Null)
    }

    /// Master (and session) key length in bytes.
    pub const fn master_key_len(self) -> usize {
        match self {
            SrtpSuite::Aes192CmHmacSha1_80 | SrtpSuite::Aes192CmHmacSha1_32 => 24,
            SrtpSuite::Aes256CmHmacSha1_80
            | SrtpSuite::Aes256CmHmacSha1_32
            | SrtpSuite::AeadAes256Gcm => 32,
            _ => 16,
        }
    }

    /// Master salt length in bytes: 14 (112 bits) for AES-CM and NULL, 12 (96 bits) for GCM.
    pub const fn master_salt_len(self) -> usize {
        match self.cipher() {
            CipherKind::AesGcm => 12,
            _ => 14,
        }
    }

    /// Length of the SRTP authentication tag (the GCM tag for AEAD suites).
    pub const fn rtp_tag_len(self) -> usize {
        match self {
            SrtpSuite::AesCm128HmacSha1_32
            | SrtpSuite::Aes192CmHmacSha1_32
            | SrtpSuite::Aes256CmHmacSha1_32
            | SrtpSuite::NullHmacSha1_32 => 4,
            SrtpSuite::AeadAes128Gcm | SrtpSuite::AeadAes256Gcm => 16,
            SrtpSuite::NullNull => 0,
            _ => 10,
        }
    }

    /// Length of the SRTCP authentication tag: 80 bits for every HMAC suite (RFC 4568
    /// §6.2.1), the GCM tag for AEAD suites.
    pub const fn rtcp_tag_len(self) -> usize {
        match self {
            SrtpSuite::AeadAes128Gcm | SrtpSuite::AeadAes256Gcm => 16,
            SrtpSuite::NullNull => 0,
            _ => 10,
        }
    }

    /// Whether the suite authenticates with HMAC-SHA1 (20-byte session auth key).
    pub(crate) const fn uses_hmac(self) -> bool {
        !matches!(
            self,
            SrtpSuite::AeadAes128Gcm | SrtpSuite::AeadAes256Gcm | SrtpSuite::NullNull
        )
    }
}

impl core::fmt::Display for SrtpSuite {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

impl core::str::FromStr for SrtpSuite {
    type Err = super::SrtpError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_name(s).ok_or(super::SrtpError::UnknownSuite)
    }
}
