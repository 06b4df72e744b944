//! SDES: the `a=crypto` attribute (RFC 4568 §9.1 grammar, §6 SRTP parameters), with the
//! suites of RFC 4568 §6.2, RFC 6188 (AES-192/256) and RFC 7714 (AES-GCM).
//!
//! ```text
//! a=crypto:<tag> <crypto-suite> <key-params> [<session-param> ...]
//! key-params = key-param *(";" key-param)
//! key-param  = "inline:" <base64(master key || master salt)> ["|" lifetime] ["|" mki:length]
//! ```
//!
//! Decoded key material is held in [`SecretBytes`] (zeroized on drop, `Debug` redacted).
//! Parsing accepts every syntactically valid session parameter; [`Crypto::check_supported`]
//! then says whether sotto can honour the attribute, naming the first thing it cannot.

use core::fmt;

use base64ct::{Base64, Base64Unpadded, Encoding};
use sotto_crypto::rng::SecureRandom;
use sotto_crypto::secret::SecretBytes;
use zeroize::Zeroizing;

use super::{AttributeError, malformed};
use crate::model::Attribute;
use crate::parse::is_digits;

const ATTR: &str = "crypto";

/// Longest decoded key||salt we accept (AES-256: 32 + 14 bytes), with margin.
const MAX_KEY_SALT_BYTES: usize = 64;
/// Most key parameters in one attribute (RFC 4568 allows several master keys, each with MKI).
const MAX_KEY_PARAMS: usize = 16;
/// Most session parameters in one attribute.
const MAX_SESSION_PARAMS: usize = 16;
/// Largest SRTP lifetime (RFC 3711 §9.2: 2^48 packets).
pub const MAX_LIFETIME_PACKETS: u64 = 1 << 48;

/// An SDES crypto suite that sotto's SRTP engine implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SdesSuite {
    /// `AES_CM_128_HMAC_SHA1_80` (RFC 4568 §6.2.1).
    AesCm128HmacSha1_80,
    /// `AES_CM_128_HMAC_SHA1_32` (RFC 4568 §6.2.2).
    AesCm128HmacSha1_32,
    /// `AES_192_CM_HMAC_SHA1_80` (RFC 6188).
    Aes192CmHmacSha1_80,
    /// `AES_192_CM_HMAC_SHA1_32` (RFC 6188).
    Aes192CmHmacSha1_32,
    /// `AES_256_CM_HMAC_SHA1_80` (RFC 6188).
    Aes256CmHmacSha1_80,
    /// `AES_256_CM_HMAC_SHA1_32` (RFC 6188).
    Aes256CmHmacSha1_32,
    /// `AEAD_AES_128_GCM` (RFC 7714 §14.2).
    AeadAes128Gcm,
    /// `AEAD_AES_256_GCM` (RFC 7714 §14.2).
    AeadAes256Gcm,
}

impl SdesSuite {
    /// Every suite, in sotto's default order of preference for offers (the AES-CM suites
    /// linphone and most SIP peers know first).
    pub const ALL: [SdesSuite; 8] = [
        SdesSuite::AesCm128HmacSha1_80,
        SdesSuite::AesCm128HmacSha1_32,
        SdesSuite::Aes256CmHmacSha1_80,
        SdesSuite::Aes256CmHmacSha1_32,
        SdesSuite::Aes192CmHmacSha1_80,
        SdesSuite::Aes192CmHmacSha1_32,
        SdesSuite::AeadAes128Gcm,
        SdesSuite::AeadAes256Gcm,
    ];

    /// The SDES name.
    pub const fn name(self) -> &'static str {
        match self {
            SdesSuite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            SdesSuite::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
            SdesSuite::Aes192CmHmacSha1_80 => "AES_192_CM_HMAC_SHA1_80",
            SdesSuite::Aes192CmHmacSha1_32 => "AES_192_CM_HMAC_SHA1_32",
            SdesSuite::Aes256CmHmacSha1_80 => "AES_256_CM_HMAC_SHA1_80",
            SdesSuite::Aes256CmHmacSha1_32 => "AES_256_CM_HMAC_SHA1_32",
            SdesSuite::AeadAes128Gcm => "AEAD_AES_128_GCM",
            SdesSuite::AeadAes256Gcm => "AEAD_AES_256_GCM",
        }
    }

    /// Looks a suite up by its SDES name (exact, as RFC 4568 names are case-sensitive).
    /// libsrtp's spellings `AES_CM_192_…` and `AES_CM_256_…` are accepted as aliases.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "AES_CM_192_HMAC_SHA1_80" => Some(SdesSuite::Aes192CmHmacSha1_80),
            "AES_CM_192_HMAC_SHA1_32" => Some(SdesSuite::Aes192CmHmacSha1_32),
            "AES_CM_256_HMAC_SHA1_80" => Some(SdesSuite::Aes256CmHmacSha1_80),
            "AES_CM_256_HMAC_SHA1_32" => Some(SdesSuite::Aes256CmHmacSha1_32),
            _ => Self::ALL.into_iter().find(|s| s.name() == name),
        }
    }

    /// Master key length in bytes.
    pub const fn key_len(self) -> usize {
        match self {
            SdesSuite::Aes192CmHmacSha1_80 | SdesSuite::Aes192CmHmacSha1_32 => 24,
            SdesSuite::Aes256CmHmacSha1_80
            | SdesSuite::Aes256CmHmacSha1_32
            | SdesSuite::AeadAes256Gcm => 32,
            _ => 16,
        }
    }

    /// Master salt length in bytes: 14 for AES-CM, 12 for AES-GCM.
    pub const fn salt_len(self) -> usize {
        match self {
            SdesSuite::AeadAes128Gcm | SdesSuite::AeadAes256Gcm => 12,
            _ => 14,
        }
    }
}

impl fmt::Display for SdesSuite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Key and salt lengths of a suite name: sotto's suites, plus `F8_128_HMAC_SHA1_80`
/// (RFC 4568 §6.2.3), which is decoded but not supported.
fn key_salt_lengths(name: &str) -> Option<(usize, usize)> {
    if let Some(s) = SdesSuite::from_name(name) {
        return Some((s.key_len(), s.salt_len()));
    }
    (name == "F8_128_HMAC_SHA1_80").then_some((16, 14))
}

/// A key lifetime (RFC 4568 §6.1): the number of packets the master key may protect.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Lifetime {
    /// Written `2^n`.
    PowerOfTwo(u8),
    /// Written as a decimal number of packets.
    Packets(u64),
}

impl Lifetime {
    /// The number of packets (None if it does not fit in 64 bits).
    pub fn packets(self) -> Option<u64> {
        match self {
            Lifetime::PowerOfTwo(n) => 1u64.checked_shl(u32::from(n)),
            Lifetime::Packets(p) => Some(p),
        }
    }
}

impl fmt::Display for Lifetime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Lifetime::PowerOfTwo(n) => write!(f, "2^{n}"),
            Lifetime::Packets(p) => write!(f, "{p}"),
        }
    }
}

/// A master key identifier (RFC 4568 §6.1): `<value>:<length in bytes>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Mki {
    /// The MKI value.
    pub value: u64,
    /// The MKI field length carried in each SRTP packet, 1–128 bytes.
    pub length: u8,
}

impl Mki {
    /// The MKI as it appears in SRTP packets: `value`, big-endian, in `length` bytes.
    pub fn to_bytes(self) -> Vec<u8> {
        let len = usize::from(self.length);
        let mut out = vec![0u8; len];
        let be = self.value.to_be_bytes();
        for (dst, src) in out.iter_mut().rev().zip(be.iter().rev()) {
            *dst = *src;
        }
        out
    }
}

/// One `inline:` key parameter: a master key and salt with optional lifetime and MKI.
#[derive(Clone, Debug)]
pub struct KeyParam {
    /// The master key.
    pub master_key: SecretBytes,
    /// The master salt.
    pub master_salt: SecretBytes,
    /// The lifetime; `None` means the SRTP default (2^48 packets).
    pub lifetime: Option<Lifetime>,
    /// The MKI, if the key is identified by one.
    pub mki: Option<Mki>,
}

impl PartialEq for KeyParam {
    fn eq(&self, other: &Self) -> bool {
        self.master_key.ct_eq(other.master_key.expose())
            && self.master_salt.ct_eq(other.master_salt.expose())
            && self.lifetime == other.lifetime
            && self.mki == other.mki
    }
}

impl Eq for KeyParam {}

impl KeyParam {
    /// A fresh random key and salt for `suite`, with no lifetime and no MKI.
    pub fn generate(suite: SdesSuite, rng: &dyn SecureRandom) -> Result<Self, sotto_crypto::Error> {
        let mut master_key = SecretBytes::zeroed(suite.key_len());
        rng.fill(master_key.expose_mut())?;
        let mut master_salt = SecretBytes::zeroed(suite.salt_len());
        rng.fill(master_salt.expose_mut())?;
        Ok(KeyParam {
            master_key,
            master_salt,
            lifetime: None,
            mki: None,
        })
    }

    /// Parses one key parameter for a suite with the given key and salt lengths.
    fn parse(v: &str, key_len: usize, salt_len: usize) -> Result<Self, AttributeError> {
        let (method, info) = v.split_once(':').ok_or(malformed(ATTR, "key method"))?;
        if method != "inline" {
            return Err(AttributeError::Unsupported {
                attribute: ATTR,
                what: "key method (only inline)".to_owned(),
            });
        }
        let mut parts = info.split('|');
        let b64 = parts.next().unwrap_or_default();
        let mut lifetime = None;
        let mut mki = None;
        for (i, p) in parts.enumerate() {
            // The lifetime, if present, comes first; an MKI contains ':'.
            if p.contains(':') {
                if mki.is_some() {
                    return Err(malformed(ATTR, "key parameter (two MKIs)"));
                }
                mki = Some(parse_mki(p)?);
            } else if i == 0 {
                lifetime = Some(parse_lifetime(p)?);
            } else {
                return Err(malformed(ATTR, "key parameter (lifetime after MKI)"));
            }
        }
        let key_salt = decode_key_salt(b64, key_len + salt_len)?;
        let (k, s) = key_salt
            .split_at_checked(key_len)
            .ok_or(malformed(ATTR, "key length"))?;
        Ok(KeyParam {
            master_key: SecretBytes::from_slice(k),
            master_salt: SecretBytes::from_slice(s),
            lifetime,
            mki,
        })
    }

    /// Writes `inline:<base64>[|lifetime][|mki:len]`.
    fn write(&self, out: &mut String) {
        let mut ks = Zeroizing::new(Vec::with_capacity(
            self.master_key.len() + self.master_salt.len(),
        ));
        ks.extend_from_slice(self.master_key.expose());
        ks.extend_from_slice(self.master_salt.expose());
        let mut buf = Zeroizing::new(vec![0u8; Base64::encoded_len(&ks)]);
        out.push_str("inline:");
        // invariant: the buffer has exactly the encoded length, so encoding cannot fail.
        if let Ok(s) = Base64::encode(&ks, &mut buf[..]) {
            out.push_str(s);
        }
        if let Some(l) = self.lifetime {
            out.push('|');
            out.push_str(&l.to_string());
        }
        if let Some(m) = self.mki {
            out.push_str(&format!("|{}:{}", m.value, m.length));
        }
    }
}

fn decode_key_salt(b64: &str, expected: usize) -> Result<Zeroizing<Vec<u8>>, AttributeError> {
    if b64.is_empty() || b64.len() > 2 * MAX_KEY_SALT_BYTES {
        return Err(malformed(ATTR, "key||salt base64"));
    }
    let mut buf = Zeroizing::new([0u8; 2 * MAX_KEY_SALT_BYTES]);
    let decoded = if b64.ends_with('=') {
        Base64::decode(b64, &mut buf[..])
    } else {
        Base64Unpadded::decode(b64, &mut buf[..])
    }
    .map_err(|_| malformed(ATTR, "key||salt base64"))?;
    if decoded.len() != expected {
        return Err(malformed(ATTR, "key||salt length for the suite"));
    }
    Ok(Zeroizing::new(decoded.to_vec()))
}

fn parse_lifetime(p: &str) -> Result<Lifetime, AttributeError> {
    if let Some(exp) = p.strip_prefix("2^") {
        if !is_digits(exp, 2) {
            return Err(malformed(ATTR, "lifetime"));
        }
        let n: u8 = exp.parse().map_err(|_| malformed(ATTR, "lifetime"))?;
        if n > 63 {
            return Err(malformed(ATTR, "lifetime"));
        }
        return Ok(Lifetime::PowerOfTwo(n));
    }
    if !is_digits(p, 20) {
        return Err(malformed(ATTR, "lifetime"));
    }
    p.parse()
        .map(Lifetime::Packets)
        .map_err(|_| malformed(ATTR, "lifetime"))
}

fn parse_mki(p: &str) -> Result<Mki, AttributeError> {
    let (v, l) = p.split_once(':').ok_or(malformed(ATTR, "MKI"))?;
    if !is_digits(v, 20) || !is_digits(l, 3) {
        return Err(malformed(ATTR, "MKI"));
    }
    let value: u64 = v.parse().map_err(|_| malformed(ATTR, "MKI value"))?;
    let length: u8 = l.parse().map_err(|_| malformed(ATTR, "MKI length"))?;
    if !(1..=128).contains(&length) {
        return Err(malformed(ATTR, "MKI length (1-128)"));
    }
    if length < 8 && value >> (8 * u32::from(length)) != 0 {
        return Err(malformed(ATTR, "MKI value larger than its length"));
    }
    Ok(Mki { value, length })
}

/// An SRTP session parameter (RFC 4568 §6.3–6.9).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SessionParam {
    /// `KDR=<n>`: key derivation rate 2^n (0: derive once, the SRTP default).
    Kdr(u8),
    /// `UNENCRYPTED_SRTP`.
    UnencryptedSrtp,
    /// `UNENCRYPTED_SRTCP`.
    UnencryptedSrtcp,
    /// `UNAUTHENTICATED_SRTP`.
    UnauthenticatedSrtp,
    /// `FEC_ORDER=FEC_SRTP` (`true`) or `FEC_ORDER=SRTP_FEC` (`false`).
    FecOrder {
        /// Whether FEC is applied before SRTP (`FEC_SRTP`, the default).
        fec_first: bool,
    },
    /// `FEC_KEY=<key-params>` (kept as text).
    FecKey(String),
    /// `WSH=<n>`: replay window size hint, at least 64.
    Wsh(u32),
    /// Any other parameter; one starting with `-` may be ignored (RFC 4568 §9.2).
    Extension(String),
}

impl SessionParam {
    fn parse(p: &str) -> Result<Self, AttributeError> {
        Ok(match p {
            "UNENCRYPTED_SRTP" => SessionParam::UnencryptedSrtp,
            "UNENCRYPTED_SRTCP" => SessionParam::UnencryptedSrtcp,
            "UNAUTHENTICATED_SRTP" => SessionParam::UnauthenticatedSrtp,
            "FEC_ORDER=FEC_SRTP" => SessionParam::FecOrder { fec_first: true },
            "FEC_ORDER=SRTP_FEC" => SessionParam::FecOrder { fec_first: false },
            _ => {
                if let Some(n) = p.strip_prefix("KDR=") {
                    let n: u8 = is_digits(n, 2)
                        .then(|| n.parse().ok())
                        .flatten()
                        .filter(|&n| n <= 24)
                        .ok_or(malformed(ATTR, "KDR"))?;
                    SessionParam::Kdr(n)
                } else if let Some(n) = p.strip_prefix("WSH=") {
                    let n: u32 = is_digits(n, 9)
                        .then(|| n.parse().ok())
                        .flatten()
                        .filter(|&n| n >= 64)
                        .ok_or(malformed(ATTR, "WSH"))?;
                    SessionParam::Wsh(n)
                } else if let Some(k) = p.strip_prefix("FEC_KEY=") {
                    if k.is_empty() {
                        return Err(malformed(ATTR, "FEC_KEY"));
                    }
                    SessionParam::FecKey(k.to_owned())
                } else if p.starts_with("FEC_ORDER=") {
                    return Err(malformed(ATTR, "FEC_ORDER"));
                } else {
                    SessionParam::Extension(p.to_owned())
                }
            }
        })
    }

    /// Whether sotto can honour this parameter. Refused: anything that weakens protection
    /// (`UNENCRYPTED_*`, `UNAUTHENTICATED_SRTP`), key derivation rates other than 0, FEC keys
    /// and `SRTP_FEC` ordering (no FEC support), and unknown parameters not marked optional
    /// with a leading `-`.
    pub fn is_supported(&self) -> bool {
        match self {
            SessionParam::Kdr(n) => *n == 0,
            SessionParam::FecOrder { fec_first } => *fec_first,
            SessionParam::Wsh(_) => true,
            SessionParam::Extension(e) => e.starts_with('-'),
            SessionParam::UnencryptedSrtp
            | SessionParam::UnencryptedSrtcp
            | SessionParam::UnauthenticatedSrtp
            | SessionParam::FecKey(_) => false,
        }
    }
}

impl fmt::Display for SessionParam {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionParam::Kdr(n) => write!(f, "KDR={n}"),
            SessionParam::UnencryptedSrtp => f.write_str("UNENCRYPTED_SRTP"),
            SessionParam::UnencryptedSrtcp => f.write_str("UNENCRYPTED_SRTCP"),
            SessionParam::UnauthenticatedSrtp => f.write_str("UNAUTHENTICATED_SRTP"),
            SessionParam::FecOrder { fec_first: true } => f.write_str("FEC_ORDER=FEC_SRTP"),
            SessionParam::FecOrder { fec_first: false } => f.write_str("FEC_ORDER=SRTP_FEC"),
            SessionParam::FecKey(k) => write!(f, "FEC_KEY={k}"),
            SessionParam::Wsh(n) => write!(f, "WSH={n}"),
            SessionParam::Extension(e) => f.write_str(e),
        }
    }
}

/// A decoded `a=crypto` attribute.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Crypto {
    /// The tag (1–9 digits) that the answer echoes.
    pub tag: u32,
    /// The suite name as written (case kept, so an answer can echo it).
    pub suite_name: String,
    /// One or more key parameters.
    pub keys: Vec<KeyParam>,
    /// Session parameters, in order.
    pub session_params: Vec<SessionParam>,
}

impl Crypto {
    /// A new attribute for one of sotto's suites with one key.
    pub fn new(tag: u32, suite: SdesSuite, key: KeyParam) -> Self {
        Crypto {
            tag,
            suite_name: suite.name().to_owned(),
            keys: vec![key],
            session_params: Vec::new(),
        }
    }

    /// Parses an `a=crypto` value. Fails on grammar errors and on suites whose key length is
    /// unknown (a key cannot be decoded without it).
    pub fn parse(v: &str) -> Result<Self, AttributeError> {
        let mut fields = v.split([' ', '\t']).filter(|f| !f.is_empty());
        let tag_s = fields.next().ok_or(malformed(ATTR, "tag"))?;
        if !is_digits(tag_s, 9) {
            return Err(malformed(ATTR, "tag"));
        }
        let tag: u32 = tag_s.parse().map_err(|_| malformed(ATTR, "tag"))?;
        let suite_name = fields.next().ok_or(malformed(ATTR, "crypto suite"))?;
        if !suite_name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_')
        {
            return Err(malformed(ATTR, "crypto suite"));
        }
        let key_field = fields.next().ok_or(malformed(ATTR, "key parameters"))?;
        let (key_len, salt_len) =
            key_salt_lengths(suite_name).ok_or_else(|| AttributeError::Unsupported {
                attribute: ATTR,
                what: format!("crypto suite {suite_name}"),
            })?;
        let mut keys = Vec::new();
        for kp in key_field.split(';') {
            if keys.len() >= MAX_KEY_PARAMS {
                return Err(malformed(ATTR, "too many key parameters"));
            }
            keys.push(KeyParam::parse(kp, key_len, salt_len)?);
        }
        let mut session_params = Vec::new();
        for p in fields {
            if session_params.len() >= MAX_SESSION_PARAMS {
                return Err(malformed(ATTR, "too many session parameters"));
            }
            if !p.bytes().all(|c| c.is_ascii_graphic()) {
                return Err(malformed(ATTR, "session parameter"));
            }
            session_params.push(SessionParam::parse(p)?);
        }
        Ok(Crypto {
            tag,
            suite_name: suite_name.to_owned(),
            keys,
            session_params,
        })
    }

    /// Decodes an `a=crypto` attribute.
    pub fn from_attribute(a: &Attribute) -> Result<Self, AttributeError> {
        Self::parse(
            a.value
                .as_deref()
                .ok_or(AttributeError::MissingValue("crypto"))?,
        )
    }

    /// The suite, if it is one sotto implements.
    pub fn suite(&self) -> Option<SdesSuite> {
        SdesSuite::from_name(&self.suite_name)
    }

    /// Checks that sotto can use this attribute: a supported suite, supported session
    /// parameters, lifetimes within the SRTP maximum (2^48), and, when there are several
    /// keys, an MKI of the same length on each with distinct values. Returns the suite.
    pub fn check_supported(&self) -> Result<SdesSuite, AttributeError> {
        let suite = self.suite().ok_or_else(|| AttributeError::Unsupported {
            attribute: ATTR,
            what: format!("crypto suite {}", self.suite_name),
        })?;
        if let Some(p) = self.session_params.iter().find(|p| !p.is_supported()) {
            return Err(AttributeError::Unsupported {
                attribute: ATTR,
                what: format!("session parameter {p}"),
            });
        }
        for k in &self.keys {
            if k.master_key.len() != suite.key_len() || k.master_salt.len() != suite.salt_len() {
                return Err(malformed(ATTR, "key length for the suite"));
            }
            if let Some(l) = k.lifetime
                && l.packets()
                    .is_none_or(|p| p == 0 || p > MAX_LIFETIME_PACKETS)
            {
                return Err(AttributeError::Unsupported {
                    attribute: ATTR,
                    what: format!("lifetime {l} (maximum 2^48)"),
                });
            }
        }
        if self.keys.len() > 1 {
            let first_len = self.keys.first().and_then(|k| k.mki).map(|m| m.length);
            let mut seen = Vec::new();
            for k in &self.keys {
                match k.mki {
                    Some(m) if Some(m.length) == first_len && !seen.contains(&m.value) => {
                        seen.push(m.value);
                    }
                    _ => {
                        return Err(malformed(
                            ATTR,
                            "several keys need distinct MKIs of one length",
                        ));
                    }
                }
            }
        }
        Ok(suite)
    }

    /// The attribute value (`<tag> <suite> <key-params> [<session-params>]`), base64 padded.
    pub fn to_value(&self) -> String {
        let mut out = format!("{} {} ", self.tag, self.suite_name);
        for (i, k) in self.keys.iter().enumerate() {
            if i > 0 {
                out.push(';');
            }
            k.write(&mut out);
        }
        for p in &self.session_params {
            out.push(' ');
            out.push_str(&p.to_string());
        }
        out
    }

    /// The `a=crypto` attribute.
    pub fn to_attribute(&self) -> Attribute {
        Attribute::new("crypto", self.to_value())
    }
}
